import { KEY_PREFIX_VARIABLE } from '../lambdas/shared/contracts';
import { Arn, ArnFormat, Aws, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { PipelineSettings } from './pipeline-config';
import { BatchFunction } from './batch-function';
import type { DropBucket } from './drop-bucket';
import { ACCESS, JOB_TAG_KEYS, PIPELINE_FUNCTION_NAMES, type PipelineFunctionName } from './function-access';
import { grantBucketAccess, grantTableAccess } from './function-grants';
import { modelInvocationJobArnPattern, modelResourceArnsOf } from './model-arns';
import { acknowledgeNag, nagResourceFinding } from './nag';

export { PIPELINE_FUNCTION_NAMES, type PipelineFunctionName } from './function-access';

/** Lambda's limit on the total size of a function's environment variables. */
const LAMBDA_ENV_LIMIT_BYTES = 4096;

/** Properties of {@link PipelineFunctions}. */
export interface PipelineFunctionsProps {
  /** The validated configuration; its routes and limits go to `PIPELINE_CONFIG`. */
  readonly config: PipelineSettings;
  /** The drop bucket (`BUCKET_NAME`); functions with S3 access read and write its objects. */
  readonly dropBucket: DropBucket;
  /** The job table (`TABLE_NAME`). */
  readonly table: dynamodb.ITable;
  /** The role Bedrock assumes for the jobs (`BEDROCK_ROLE_ARN`). */
  readonly bedrockServiceRole: iam.IRole;
  /** Powertools log level of every function. @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** How long each function's logs are kept. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the functions' log groups when they are removed. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

function constructId(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash: string, c: string) => c.toUpperCase());
}

/**
 * The eleven functions of docs/ARCHITECTURE.md, built by {@link BatchFunction}, with the shared
 * environment and least-privilege grants. {@link connectWorkflow} adds what needs the state
 * machine, which itself needs the workflow functions first.
 */
export class PipelineFunctions extends Construct {
  /** The functions by name. */
  readonly byName: Readonly<Record<PipelineFunctionName, BatchFunction>>;

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    const { config } = props;
    const pipelineConfig = JSON.stringify({
      maxConcurrentJobs: config.maxConcurrentJobs,
      jobTimeoutHours: config.jobTimeoutHours,
      historyEventBudget: config.historyEventBudget,
      routes: config.routes,
      // Read by finalize and stop-run, which write the summaries and their cost.
      ...(config.prices && Object.keys(config.prices).length > 0 ? { prices: config.prices } : {}),
    });
    // Leave room for the other variables: a too-large environment fails only at deploy time.
    if (Buffer.byteLength(pipelineConfig) > LAMBDA_ENV_LIMIT_BYTES - 1024) {
      throw new Error(
        `routes: PIPELINE_CONFIG would be ${Buffer.byteLength(pipelineConfig)} bytes, over the ~3 KB left by Lambda's 4 KB environment limit; use fewer routes or price overrides`,
      );
    }
    const environment = {
      BUCKET_NAME: props.dropBucket.bucket.bucketName,
      TABLE_NAME: props.table.tableName,
      BEDROCK_ROLE_ARN: props.bedrockServiceRole.roleArn,
      PIPELINE_CONFIG: pipelineConfig,
      EVENT_BUS_NAME: 'default',
      // The value of the bedrock-batch:stack tag of the jobs submit-job creates.
      STACK_NAME: Stack.of(this).stackName,
      // Every key the handlers read or write is under it (lambdas/shared/contracts.ts, S3_PREFIXES).
      ...(props.dropBucket.keyPrefix ? { [KEY_PREFIX_VARIABLE]: props.dropBucket.keyPrefix } : {}),
    };

    const env = { partition: Aws.PARTITION, region: Aws.REGION, account: Aws.ACCOUNT_ID };
    const jobArns = modelInvocationJobArnPattern(env);
    const modelArns = modelResourceArnsOf(
      Object.values(config.routes).map((r) => r.modelId),
      env,
    );
    const defaultBus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    const byName = {} as Record<PipelineFunctionName, BatchFunction>;
    for (const name of PIPELINE_FUNCTION_NAMES) {
      const access = ACCESS[name];
      const fn = new BatchFunction(this, constructId(name), {
        handlerName: name,
        description: `bedrock-batch ${name}: ${access.description}`,
        environment,
        logLevel: props.logLevel,
        logRetention: props.logRetention,
        logRemovalPolicy: props.logRemovalPolicy,
      });
      byName[name] = fn;
      const ack = (reason: string, findings: string[]) => acknowledgeNag(fn.role, 'AwsSolutions-IAM5', reason, findings);

      if (access.s3) {
        const { allowed, reason } = grantBucketAccess(fn.role, props.dropBucket, access.s3);
        ack(
          reason,
          allowed.map((arn) => nagResourceFinding(this, arn)),
        );
      }
      if (access.table) grantTableAccess(fn.role, props.table, access.table);

      const jobActions = access.bedrockJobs ?? [];
      const perJob = jobActions.filter((a) => a === 'Get' || a === 'Stop');
      if (perJob.length > 0) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: perJob.map((a) => `bedrock:${a}ModelInvocationJob`), resources: [jobArns] }));
      }
      if (jobActions.includes('Create')) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:CreateModelInvocationJob'], resources: [jobArns, ...modelArns] }));
        // Jobs are created with tags (JOB_TAG_KEYS). Bedrock's guide to batch permissions lists
        // bedrock:TagResource among the caller's actions; granted for these keys only.
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ['bedrock:TagResource'],
            resources: [jobArns],
            conditions: { 'ForAllValues:StringEquals': { 'aws:TagKeys': [...JOB_TAG_KEYS] } },
          }),
        );
      }
      if (jobActions.length > 0) {
        ack("Batch job ids are generated by Bedrock at creation; the functions act on this account's model-invocation jobs in this region only.", [
          nagResourceFinding(this, jobArns),
        ]);
      }
      if (access.invokeModel) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: modelArns }));
      }
      const anyRegionModels = modelArns.filter((arn) => arn.includes(':bedrock:*::'));
      if ((jobActions.includes('Create') || access.invokeModel) && anyRegionModels.length > 0) {
        ack(
          "A route on an inference profile is served in every region the profile spans, and Bedrock authorizes the foundation model in each; only the routes' foundation models get the region wildcard.",
          anyRegionModels.map((arn) => nagResourceFinding(this, arn)),
        );
      }
      if (access.passServiceRole) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ['iam:PassRole'],
            resources: [props.bedrockServiceRole.roleArn],
            conditions: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
          }),
        );
      }
      if (access.putEvents) defaultBus.grantPutEventsTo(fn.role);
      if (access.readQuotas) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: ['servicequotas:ListServiceQuotas', 'servicequotas:ListAWSDefaultServiceQuotas'], resources: ['*'] }),
        );
        ack(
          'Service Quotas: ListServiceQuotas and ListAWSDefaultServiceQuotas have no resource type to scope to (the quota codes are not known before reading them).',
          ['Resource::*'],
        );
      }
    }
    this.byName = byName;
  }

  /**
   * Wires the functions that act on the workflow: `start-run` starts executions
   * (`STATE_MACHINE_ARN`) and describes an existing one of the same name; `job-state`, `sweeper` and `submit-job` complete task tokens.
   */
  connectWorkflow(stateMachine: sfn.IStateMachine): void {
    const startRun = this.byName['start-run'];
    startRun.addEnvironment('STATE_MACHINE_ARN', stateMachine.stateMachineArn);
    stateMachine.grantStartExecution(startRun.role);
    // SendTask* calls are authorized against the state machine the token belongs to.
    stateMachine.grantTaskResponse(this.byName['job-state'].role);
    stateMachine.grantTaskResponse(this.byName.sweeper.role);
    // submit-job runs inside the workflow: its function depends on its role's default policy and
    // the state machine depends on the function, so this grant lives in a separate policy that
    // nothing in the workflow depends on (else: a dependency cycle).
    // next-window measures its execution's history and starts the successor execution before the
    // 25,000-event limit; a separate policy for the same reason as below.
    const executionsArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${Arn.split(stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const continuation = new iam.Policy(this, 'NextWindowContinuation', {
      roles: [this.byName['next-window'].role],
      statements: [
        new iam.PolicyStatement({ actions: ['states:GetExecutionHistory', 'states:DescribeExecution'], resources: [executionsArn] }),
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachine.stateMachineArn] }),
      ],
    });
    // start-run compares an existing execution of the name it would start with its own input; a
    // separate policy so that its nag acknowledgement names this grant only.
    const startRunCheck = new iam.Policy(this, 'StartRunExecutionCheck', {
      roles: [startRun.role],
      statements: [new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executionsArn] })],
    });
    acknowledgeNag(
      startRunCheck,
      'AwsSolutions-IAM5',
      "DescribeExecution is granted on this state machine's executions (<state machine>:*): start-run names executions after the events it starts them for.",
      [nagResourceFinding(this, executionsArn)],
    );
    acknowledgeNag(
      continuation,
      'AwsSolutions-IAM5',
      "GetExecutionHistory and DescribeExecution are granted on this state machine's executions (<state machine>:*): a function cannot name the execution it runs in, or the successor it starts, before it exists.",
      [nagResourceFinding(this, executionsArn)],
    );
    // FinalizeFailed checks whether the successor its execution handed the run to exists.
    const handOverCheck = new iam.Policy(this, 'FinalizeHandOverCheck', {
      roles: [this.byName.finalize.role],
      statements: [new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executionsArn] })],
    });
    acknowledgeNag(
      handOverCheck,
      'AwsSolutions-IAM5',
      "DescribeExecution is granted on this state machine's executions (<state machine>:*): the successor's name is known only at run time.",
      [nagResourceFinding(this, executionsArn)],
    );
    new iam.Policy(this, 'SubmitJobTaskResponse', {
      roles: [this.byName['submit-job'].role],
      statements: [
        new iam.PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: [stateMachine.stateMachineArn],
        }),
      ],
    });
  }
}
