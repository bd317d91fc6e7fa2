import { HANDLER_METADATA_KEY } from '../../lib/batch-function';
import { PIPELINE_FUNCTION_NAMES } from '../../lib/pipeline-functions';
import { actionsOf, buildStack, config, functionIdOf, onlyResource, statementsOfFunction } from './helpers';

const fs = require('node:fs');
const path = require('node:path');

describe('pipeline functions', () => {
  const cfg = config({
    default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' },
    nightly: { modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', trigger: 'nightly', smallRemainder: 'hold' },
  });
  const { template } = buildStack(cfg);
  const functions = template.findResources('AWS::Lambda::Function');

  test('the metadata key is the one the local twin reads', () => {
    expect(HANDLER_METADATA_KEY).toBe('bedrock-batch:handler');
  });

  test('one function per lambdas/ folder, each bound by its handler metadata', () => {
    expect(Object.keys(functions)).toHaveLength(PIPELINE_FUNCTION_NAMES.length);
    const bound = Object.values(functions).map((f: any) => f.Metadata?.[HANDLER_METADATA_KEY]).sort();
    expect(bound).toEqual([...PIPELINE_FUNCTION_NAMES].sort());
    for (const name of PIPELINE_FUNCTION_NAMES) {
      expect(fs.existsSync(path.join(__dirname, '../../lambdas', name, 'handler.ts'))).toBe(true);
    }
  });

  test.each(PIPELINE_FUNCTION_NAMES)('%s: arm64, nodejs22.x, handler, 15 min, 1024 MB, own log group', (name) => {
    const fn = functions[functionIdOf(template, name)]!;
    expect(fn.Properties).toMatchObject({
      Architectures: ['arm64'],
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Timeout: 900,
      MemorySize: 1024,
      LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
    });
    const logGroup = template.findResources('AWS::Logs::LogGroup')[fn.Properties.LoggingConfig.LogGroup.Ref]!;
    expect(logGroup.Properties.RetentionInDays).toBe(30);
    // No AWS managed policy on the function roles: logs go to the function's own group only.
    const role = template.findResources('AWS::IAM::Role')[fn.Properties.Role['Fn::GetAtt'][0]]!;
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const logStatement = statementsOfFunction(template, name).find((s) => actionsOf([s]).includes('logs:PutLogEvents'));
    expect(logStatement.Resource).toEqual({ 'Fn::GetAtt': [fn.Properties.LoggingConfig.LogGroup.Ref, 'Arn'] });
  });

  test.each(PIPELINE_FUNCTION_NAMES)('%s: the shared environment', (name) => {
    const vars = functions[functionIdOf(template, name)]!.Properties.Environment.Variables;
    expect(Object.keys(vars).sort()).toEqual(
      [
        'BUCKET_NAME',
        'TABLE_NAME',
        'BEDROCK_ROLE_ARN',
        'PIPELINE_CONFIG',
        'EVENT_BUS_NAME',
        'POWERTOOLS_SERVICE_NAME',
        'POWERTOOLS_LOG_LEVEL',
        'NODE_OPTIONS',
        ...(name === 'start-run' ? ['STATE_MACHINE_ARN'] : []),
      ].sort(),
    );
    expect(vars).toMatchObject({
      EVENT_BUS_NAME: 'default',
      POWERTOOLS_SERVICE_NAME: 'bedrock-batch',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
      BUCKET_NAME: { Ref: expect.stringMatching(/^DropBucket/) },
      TABLE_NAME: { Ref: expect.stringMatching(/^JobTable/) },
    });
    expect(JSON.parse(vars.PIPELINE_CONFIG)).toEqual({
      maxConcurrentJobs: cfg.maxConcurrentJobs,
      jobTimeoutHours: cfg.jobTimeoutHours,
      historyEventBudget: cfg.historyEventBudget,
      routes: cfg.routes,
    });
  });

  test('start-run gets the state machine ARN', () => {
    const sm = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    expect(functions[functionIdOf(template, 'start-run')]!.Properties.Environment.Variables.STATE_MACHINE_ARN).toEqual({ Ref: sm.id });
  });

  const S3_DATA = ['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:PutObject'];
  const TABLE = [
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:ConditionCheckItem',
    'dynamodb:DeleteItem',
    'dynamodb:DescribeTable',
    'dynamodb:GetItem',
    'dynamodb:GetRecords',
    'dynamodb:GetShardIterator',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:Scan',
    'dynamodb:UpdateItem',
  ];
  const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
  const TASK_RESPONSE = ['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess'];
  /** Functions EventBridge invokes send their failed invocations to their dead-letter queue (lib/event-delivery.ts). */
  const DEAD_LETTER = ['sqs:SendMessage'];

  test.each<[string, string[]]>([
    ['start-run', [...LOGS, ...S3_DATA, ...TABLE, 'states:StartExecution', ...DEAD_LETTER]],
    ['prepare', [...LOGS, ...S3_DATA, 'bedrock:InvokeModel']],
    ['next-window', [...LOGS, 'states:GetExecutionHistory', 'states:StartExecution']],
    ['acquire-slot', [...LOGS, ...TABLE]],
    ['submit-job', [...LOGS, ...TABLE, 'bedrock:CreateModelInvocationJob', 'bedrock:GetModelInvocationJob', 'iam:PassRole', ...TASK_RESPONSE]],
    ['reconcile-chunk', [...LOGS, ...S3_DATA, ...TABLE, 'bedrock:GetModelInvocationJob', 'bedrock:StopModelInvocationJob']],
    ['end-round', [...LOGS, ...S3_DATA, 'bedrock:InvokeModel']],
    ['finalize', [...LOGS, ...S3_DATA, 'events:PutEvents']],
    ['job-state', [...LOGS, ...TABLE, ...TASK_RESPONSE, ...DEAD_LETTER]],
    ['sweeper', [...LOGS, ...TABLE, 'bedrock:GetModelInvocationJob', ...TASK_RESPONSE, ...DEAD_LETTER]],
    ['stop-run', [...LOGS, ...S3_DATA, ...TABLE, 'bedrock:StopModelInvocationJob', 'events:PutEvents', ...DEAD_LETTER]],
  ])('%s may do exactly what it needs', (name, expected) => {
    expect(actionsOf(statementsOfFunction(template, name))).toEqual([...expected].sort());
  });

  test('S3 access is to the drop bucket only, never delete', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      for (const s of statementsOfFunction(template, name)) {
        const actions = actionsOf([s]);
        if (!actions.some((a) => a.startsWith('s3:'))) continue;
        expect(JSON.stringify(s.Resource)).toMatch(/DropBucket/);
        expect(actions.some((a) => a.includes('Delete') || a.includes('*'))).toBe(false);
      }
    }
  });

  test('no function may list jobs, only stop-run and reconcile-chunk may stop them, none uses a wildcard action', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      const actions = actionsOf(statementsOfFunction(template, name));
      expect(actions).not.toContain('bedrock:ListModelInvocationJobs');
      if (name !== 'stop-run' && name !== 'reconcile-chunk') expect(actions).not.toContain('bedrock:StopModelInvocationJob');
      expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    }
  });

  test('task responses are scoped to the workflow, executions started only on it', () => {
    const sm = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    for (const name of ['job-state', 'sweeper', 'submit-job']) {
      const s = statementsOfFunction(template, name).find((x) => actionsOf([x]).includes('states:SendTaskSuccess'));
      expect(s.Resource).toEqual({ Ref: sm.id });
    }
    for (const name of ['start-run', 'next-window']) {
      const start = statementsOfFunction(template, name).find((x) => actionsOf([x]).includes('states:StartExecution'));
      expect(start.Resource).toEqual({ Ref: sm.id });
    }
    // next-window reads the history of this state machine's executions only.
    const history = statementsOfFunction(template, 'next-window').find((x) => actionsOf([x]).includes('states:GetExecutionHistory'));
    expect(JSON.stringify(history.Resource)).toMatch(/:execution:/);
    expect(JSON.stringify(history.Resource)).toContain(sm.id);
  });

  test('jobs are created on the routes\' models only; on-demand invokes the same models', () => {
    const create = statementsOfFunction(template, 'submit-job').find((x) => x.Action === 'bedrock:CreateModelInvocationJob');
    const flat = JSON.stringify(create.Resource);
    expect(flat).toContain(':model-invocation-job/*');
    expect(flat).toContain('::foundation-model/anthropic.claude-3-haiku-20240307-v1:0');
    expect(flat).toContain(':inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0');
    expect(flat).toContain(':bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0');
    for (const name of ['prepare', 'end-round']) {
      const invoke = statementsOfFunction(template, name).find((x) => x.Action === 'bedrock:InvokeModel');
      expect(invoke.Resource).toHaveLength(3);
      expect(JSON.stringify(invoke.Resource)).not.toContain('model-invocation-job');
    }
  });

  test('events go to the default bus only', () => {
    const put = statementsOfFunction(template, 'finalize').find((x) => x.Action === 'events:PutEvents');
    expect(JSON.stringify(put.Resource)).toMatch(/:event-bus\/default"/);
  });
});

describe('pipeline functions limits', () => {
  test('a configuration too large for the Lambda environment is refused at synth', () => {
    const routes: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) routes[`route-${i}`] = { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' };
    expect(() => buildStack(config(routes))).toThrow(/Lambda's 4 KB environment limit/);
  });
});
