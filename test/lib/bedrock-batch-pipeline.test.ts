import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RUN_COMPLETED_DETAIL_TYPE, RUN_COMPLETED_SOURCE, runKeys, s3Uri } from '../../lambdas/shared/contracts';
import { BedrockBatchPipeline, type BedrockBatchPipelineProps } from '../../lib';
import { matchesEventPattern } from '../../local/services/event-pattern';
import { resolveFake } from './helpers';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const NOVA_PROFILE = 'us.amazon.nova-lite-v1:0';

function newStack(env?: { region: string; account: string }): Stack {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return new Stack(app, 'Shared', env ? { env } : {});
}

/**
 * Every physical name a resource is given (`Name`, or `<type>Name`: `LogGroupName` of an
 * `AWS::Logs::LogGroup`, `PolicyName` of an `AWS::IAM::Policy`, ...), by resource.
 */
function namedProperties(template: Template): Array<{ resource: string; key: string; value: string }> {
  const out: Array<{ resource: string; key: string; value: string }> = [];
  for (const [id, r] of Object.entries(template.toJSON().Resources as Record<string, any>)) {
    const typeName = (r.Type as string).split('::').pop()!;
    for (const [key, value] of Object.entries((r.Properties ?? {}) as Record<string, unknown>)) {
      if (key === 'Name' || key === `${typeName}Name`) {
        out.push({ resource: `${r.Type as string} ${id}`, key, value: JSON.stringify(value) });
      }
    }
  }
  return out;
}

describe('two BedrockBatchPipelines in one stack', () => {
  const stack = newStack();
  const tickets = new BedrockBatchPipeline(stack, 'Tickets', { routes: { default: { modelId: HAIKU } } });
  const evals = new BedrockBatchPipeline(stack, 'Evals', {
    maxConcurrentJobs: 3,
    routes: { nova: { modelId: NOVA_PROFILE, trigger: 'nightly' } },
  });
  const template = Template.fromStack(stack);
  const json = template.toJSON();

  test('synthesize, each with its own bucket, table, state machine, service role, topic and functions', () => {
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 2);
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
    template.resourceCountIs('AWS::SNS::Topic', 2);
    template.resourceCountIs('AWS::Lambda::Function', 22);
    const r = (token: string) => JSON.stringify(stack.resolve(token));
    expect(r(tickets.bucket.bucketName)).not.toBe(r(evals.bucket.bucketName));
    expect(r(tickets.jobTable.tableName)).not.toBe(r(evals.jobTable.tableName));
    expect(r(tickets.stateMachine.stateMachineArn)).not.toBe(r(evals.stateMachine.stateMachineArn));
    expect(r(tickets.serviceRole.roleArn)).not.toBe(r(evals.serviceRole.roleArn));
    expect(r(tickets.alarmTopic.topicArn)).not.toBe(r(evals.alarmTopic.topicArn));
  });

  test('every name a resource gives itself differs, and nothing is exported', () => {
    const named = namedProperties(template);
    // The execution log groups are named (under /aws/vendedlogs/); they must not collide.
    expect(named.filter((n) => n.key === 'LogGroupName')).toHaveLength(2);
    const seen = new Map<string, string>();
    for (const n of named) {
      const key = `${n.key}=${n.value}`;
      expect({ name: key, also: seen.get(key) }).toEqual({ name: key, also: undefined });
      seen.set(key, n.resource);
    }
    for (const output of Object.values((json.Outputs ?? {}) as Record<string, any>)) expect(output.Export).toBeUndefined();
  });

  test('each pipeline configures its own functions (its bucket, table and routes)', () => {
    const prepares = Object.values(template.findResources('AWS::Lambda::Function')).filter((f) => f.Metadata?.['bedrock-batch:handler'] === 'prepare');
    const env = prepares.map((f) => f.Properties.Environment.Variables);
    expect(env.map((e) => Object.keys(JSON.parse(e.PIPELINE_CONFIG).routes)).sort()).toEqual([['default'], ['nova']]);
    expect(JSON.stringify(env[0].BUCKET_NAME)).not.toBe(JSON.stringify(env[1].BUCKET_NAME));
    expect(JSON.stringify(env[0].TABLE_NAME)).not.toBe(JSON.stringify(env[1].TABLE_NAME));
  });

  test('cdk-nag AwsSolutions: zero unacknowledged findings', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
    const findings = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((x) => x.constructPath).join(', ')}`);
    expect(findings).toEqual([]);
  });

  test("the completion event pattern matches this pipeline's Batch Run Completed and not the other's", () => {
    const eventOf = (p: BedrockBatchPipeline) => ({
      source: RUN_COMPLETED_SOURCE,
      'detail-type': RUN_COMPLETED_DETAIL_TYPE,
      detail: {
        runId: 'run-1',
        status: 'Succeeded',
        // What finalize puts: the run's outputs are in the pipeline's own bucket.
        outputs: { failed: s3Uri(resolveFake(stack.resolve(p.bucket.bucketName)) as string, runKeys.results('run-1', 'failed.jsonl')) },
      },
    });
    // As a rule of the user's renders it.
    const patternOf = (p: BedrockBatchPipeline) => {
      const rule = new events.Rule(new Stack(), 'OnRun', { eventPattern: p.completionEventPattern });
      return resolveFake(stack.resolve((rule.node.defaultChild as events.CfnRule).eventPattern)) as object;
    };
    expect(matchesEventPattern(patternOf(tickets), eventOf(tickets))).toBe(true);
    expect(matchesEventPattern(patternOf(evals), eventOf(evals))).toBe(true);
    expect(matchesEventPattern(patternOf(tickets), eventOf(evals))).toBe(false);
    expect(matchesEventPattern(patternOf(evals), eventOf(tickets))).toBe(false);
    expect(matchesEventPattern(patternOf(tickets), { ...eventOf(tickets), 'detail-type': 'Something Else' })).toBe(false);
  });
});

describe('BedrockBatchPipeline props', () => {
  const build = (props: BedrockBatchPipelineProps, env?: { region: string; account: string }) => {
    const stack = newStack(env);
    const pipeline = new BedrockBatchPipeline(stack, 'Pipeline', props);
    return { stack, pipeline, template: Template.fromStack(stack) };
  };
  const routes = { default: { modelId: HAIKU } };

  test('bad props throw at synth, naming the construct and every bad prop by its path', () => {
    expect(() => build({ routes: { default: { modelId: HAIKU, maxAttempts: 0 } }, maxConcurrentJobs: 41 })).toThrow(
      /Invalid BedrockBatchPipeline props \(Shared\/Pipeline\):\n {2}- props\.maxConcurrentJobs must be an integer 1\.\.40 \(got 41\).*\n {2}- props\.routes\.default\.maxAttempts must be an integer 1\.\.10 \(got 0\)/,
    );
    expect(() => build({ routes: {} })).toThrow(/props\.routes must define at least one route/);
    expect(() => build({ routes: { Bad_Name: { modelId: HAIKU } } })).toThrow(/props\.routes\.Bad_Name: route names must match/);
    // What a plain JavaScript caller can get wrong, that TypeScript would have refused.
    expect(() => build({ routes, maxConcurentJobs: 5 } as unknown as BedrockBatchPipelineProps)).toThrow(/props\.maxConcurentJobs is not a known setting/);
    expect(() => build({ routes, logRetention: 10 as logs.RetentionDays })).toThrow(/props\.logRetention must be a logs\.RetentionDays value \(got 10\)/);
    expect(() => build({ routes, removalPolicy: 'keep' as RemovalPolicy })).toThrow(/props\.removalPolicy must be a RemovalPolicy/);
    expect(() => build({ routes, alarmTopic: 'arn:aws:sns:us-east-1:111122223333:x' as unknown as sns.ITopic })).toThrow(
      /props\.alarmTopic must be an sns\.ITopic/,
    );
  });

  test('an existing alarm topic is notified by every alarm; none is created', () => {
    const stack = newStack();
    const topic = sns.Topic.fromTopicArn(stack, 'Paging', 'arn:aws:sns:eu-west-1:111122223333:team-paging');
    const pipeline = new BedrockBatchPipeline(stack, 'Pipeline', { routes, alarmTopic: topic });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    expect(pipeline.alarmTopic).toBe(topic);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual(['arn:aws:sns:eu-west-1:111122223333:team-paging']);
  });

  test('an alarm topic of another region is refused', () => {
    const stack = newStack({ region: 'us-east-1', account: '111122223333' });
    const topic = sns.Topic.fromTopicArn(stack, 'Paging', 'arn:aws:sns:eu-west-1:111122223333:team-paging');
    expect(() => new BedrockBatchPipeline(stack, 'Pipeline', { routes, alarmTopic: topic })).toThrow(
      'props.alarmTopic is in region eu-west-1, the stack in us-east-1: CloudWatch alarms can notify only an SNS topic of their own region',
    );
  });

  test('logRetention applies to every log group, removalPolicy to the buckets, the table and the log groups', () => {
    const { template } = build({ routes, logRetention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    expect(groups).toHaveLength(12);
    for (const g of groups) {
      expect(g.Properties.RetentionInDays).toBe(7);
      expect(g.DeletionPolicy).toBe('Delete');
    }
    for (const type of ['AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      for (const r of Object.values(template.findResources(type))) expect(r.DeletionPolicy).toBe('Delete');
    }
  });

  test('by default data is retained and logs are kept a month', () => {
    const { template } = build({ routes });
    for (const type of ['AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      for (const r of Object.values(template.findResources(type))) expect(r.DeletionPolicy).toBe('Retain');
    }
    for (const g of Object.values(template.findResources('AWS::Logs::LogGroup'))) expect(g.Properties.RetentionInDays).toBe(30);
  });
});
