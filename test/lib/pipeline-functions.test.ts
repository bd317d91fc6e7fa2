import { HANDLER_METADATA_KEY } from '../../lib/batch-function';
import { PIPELINE_FUNCTION_NAMES } from '../../lib/pipeline-functions';
import { loadPipelineConfig } from '../../lib/pipeline-config';
import { actionsOf, buildStack, config, functionIdOf, onlyResource, rawConfig, statementsOfFunction } from './helpers';

import * as fs from 'node:fs';
import * as path from 'node:path';

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
    const bound = Object.values(functions)
      .map((f: any) => f.Metadata?.[HANDLER_METADATA_KEY])
      .sort();
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
        'STACK_NAME',
        ...(name === 'start-run' ? ['STATE_MACHINE_ARN'] : []),
      ].sort(),
    );
    expect(vars).toMatchObject({
      EVENT_BUS_NAME: 'default',
      STACK_NAME: 'TestStack',
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

  test("cdk.json's prices reach finalize and stop-run (the functions that write summaries) in PIPELINE_CONFIG", () => {
    const priced = loadPipelineConfig({
      ...rawConfig(),
      prices: { 'meta.llama3-1-70b-instruct-v1:0': { onDemandInput: 0.72, onDemandOutput: 0.72, source: 'https://aws.amazon.com/bedrock/pricing/' } },
    });
    const t = buildStack(priced).template;
    const fns = t.findResources('AWS::Lambda::Function');
    for (const name of ['finalize', 'stop-run']) {
      const vars = fns[functionIdOf(t, name)]!.Properties.Environment.Variables;
      expect(JSON.parse(vars.PIPELINE_CONFIG).prices).toEqual(priced.prices);
    }
    expect(JSON.parse(functions[functionIdOf(template, 'finalize')]!.Properties.Environment.Variables.PIPELINE_CONFIG)).not.toHaveProperty('prices');
  });

  test('start-run gets the state machine ARN', () => {
    const sm = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    expect(functions[functionIdOf(template, 'start-run')]!.Properties.Environment.Variables.STATE_MACHINE_ARN).toEqual({ Ref: sm.id });
  });

  const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
  const TASK_RESPONSE = ['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess'];
  /** Functions EventBridge invokes send their failed invocations to their dead-letter queue (lib/event-delivery.ts). */
  const DEAD_LETTER = ['sqs:SendMessage'];

  test.each<[string, string[]]>([
    [
      'start-run',
      [
        ...LOGS,
        's3:ListBucket',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'states:DescribeExecution',
        'states:StartExecution',
        ...DEAD_LETTER,
      ],
    ],
    [
      'prepare',
      [
        ...LOGS,
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'bedrock:InvokeModel',
        'servicequotas:ListServiceQuotas',
        'servicequotas:ListAWSDefaultServiceQuotas',
      ],
    ],
    ['next-window', [...LOGS, 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'states:DescribeExecution', 'states:GetExecutionHistory', 'states:StartExecution']],
    ['acquire-slot', [...LOGS, 'dynamodb:UpdateItem']],
    [
      'submit-job',
      [
        ...LOGS,
        'dynamodb:GetItem',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'dynamodb:UpdateItem',
        'bedrock:CreateModelInvocationJob',
        'bedrock:GetModelInvocationJob',
        'bedrock:TagResource',
        'iam:PassRole',
        ...TASK_RESPONSE,
      ],
    ],
    [
      'reconcile-chunk',
      [
        ...LOGS,
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'dynamodb:GetItem',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'dynamodb:UpdateItem',
        'bedrock:GetModelInvocationJob',
        'bedrock:StopModelInvocationJob',
      ],
    ],
    [
      'end-round',
      [...LOGS, 's3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:PutObject', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'bedrock:InvokeModel'],
    ],
    [
      'finalize',
      // DescribeExecution: FinalizeFailed checks that the successor it handed the run to exists.
      [
        ...LOGS,
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'states:DescribeExecution',
      ],
    ],
    ['job-state', [...LOGS, 'dynamodb:GetItem', 'dynamodb:UpdateItem', ...TASK_RESPONSE, ...DEAD_LETTER]],
    [
      'sweeper',
      [
        ...LOGS,
        'dynamodb:GetItem',
        'dynamodb:GetItem',
        'dynamodb:Scan',
        'dynamodb:UpdateItem',
        'dynamodb:UpdateItem',
        'bedrock:GetModelInvocationJob',
        ...TASK_RESPONSE,
        ...DEAD_LETTER,
      ],
    ],
    [
      'stop-run',
      [
        ...LOGS,
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'dynamodb:GetItem',
        'dynamodb:GetItem',
        'dynamodb:GetItem',
        'dynamodb:Scan',
        'dynamodb:UpdateItem',
        'dynamodb:UpdateItem',
        'dynamodb:UpdateItem',
        // Get: it reads the jobs it stopped, to reconcile those that ended.
        'bedrock:GetModelInvocationJob',
        'bedrock:StopModelInvocationJob',
        'events:PutEvents',
        ...DEAD_LETTER,
      ],
    ],
  ])('%s may do exactly what it needs (each action once per statement)', (name, expected) => {
    expect(actionsOf(statementsOfFunction(template, name))).toEqual([...expected].sort());
  });

  /**
   * Every S3 and DynamoDB grant of a function as `Effect action resource [condition]`, one line
   * per action and resource: the drop bucket is `bucket`, its objects `bucket/<key pattern>`,
   * the job table `table`.
   */
  function dataGrants(name: string): string[] {
    const flat = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const o = value as Record<string, any>;
      if (o['Fn::GetAtt']) {
        const id = String(o['Fn::GetAtt'][0]);
        if (id.startsWith('DropBucket')) return 'bucket';
        if (id.startsWith('JobTable')) return 'table';
        return `<${id}>`;
      }
      if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(flat).join(o['Fn::Join'][0]);
      if (o.Ref) return `<${o.Ref}>`;
      throw new Error(`unexpected resource ${JSON.stringify(value)}`);
    };
    const sortedCondition = (c: Record<string, Record<string, string | string[]>> | undefined): string => {
      if (!c) return '';
      const sorted = Object.fromEntries(
        Object.entries(c).map(([op, keys]) => [op, Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Array.isArray(v) ? [...v].sort() : v]))]),
      );
      return ` ${JSON.stringify(sorted)}`;
    };
    const out: string[] = [];
    for (const s of statementsOfFunction(template, name)) {
      const actions: string[] = Array.isArray(s.Action) ? s.Action : [s.Action];
      const resources: unknown[] = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
      for (const a of actions.filter((x) => x.startsWith('s3:') || x.startsWith('dynamodb:'))) {
        for (const r of resources) out.push(`${s.Effect} ${a} ${flat(r)}${sortedCondition(s.Condition)}`);
      }
    }
    return out.sort();
  }

  const read = (...keys: string[]) => keys.map((k) => `Allow s3:GetObject bucket/${k}`);
  const write = (...keys: string[]) => keys.flatMap((k) => [`Allow s3:AbortMultipartUpload bucket/${k}`, `Allow s3:PutObject bucket/${k}`]);
  const list = (...prefixes: string[]) => [`Allow s3:ListBucket bucket ${JSON.stringify({ StringLike: { 's3:prefix': [...prefixes].sort() } })}`];
  // For a function that reads keys that may be missing: S3 answers NoSuchKey (404) rather than
  // AccessDenied only to a caller allowed to list the bucket, checked without an s3:prefix.
  const listAndProbe = (...prefixes: string[]) => [
    `Allow s3:ListBucket bucket ${JSON.stringify({ StringLikeIfExists: { 's3:prefix': [...prefixes].sort() } })}`,
  ];
  const items = (pk: string, ...actions: string[]) =>
    actions.map((a) => `Allow dynamodb:${a} table ${JSON.stringify({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [pk] } })}`);

  // What each handler touches (docs/ARCHITECTURE.md, "Functions": the "may (IAM)" column, and
  // "Data layout"), written out independently of lib/pipeline-functions.ts.
  test.each<[string, string[]]>([
    // Lists a route's inbox/ and held/ files for a sweep, marks them (SWEPT#), unmarks them when the start fails;
    // claims the run id for the execution it starts (RUN#, reading the holder when refused).
    ['start-run', [...list('inbox/*', 'held/*'), ...items('SWEPT#*', 'PutItem', 'DeleteItem'), ...items('RUN#*', 'UpdateItem', 'GetItem')]],
    [
      'prepare',
      [
        // Inputs may be anywhere but the pipeline's own output prefixes (explicitly denied).
        'Allow s3:GetObject bucket/*',
        'Deny s3:GetObject bucket/jobs-output/*',
        'Deny s3:GetObject bucket/results/*',
        'Allow s3:ListBucket bucket',
        ...write('jobs-input/*', 'work/*', 'held/*'),
        // Claims the run id, lists itself as a running step, reads the claim to resume a successor.
        ...items('RUN#*', 'GetItem', 'UpdateItem'),
      ],
    ],
    // RUN#: GetItem found missing by the twin's IAM check (chooseSuccessorName reads the claim).
    ['next-window', items('RUN#*', 'GetItem', 'UpdateItem')],
    ['acquire-slot', items('CAP#*', 'UpdateItem')],
    // RUN#: the stop mark, checked as a submit lists itself as a running step of the run.
    ['submit-job', [...items('JOB#*', 'UpdateItem', 'GetItem'), ...items('RUN#*', 'GetItem', 'UpdateItem')]],
    [
      'reconcile-chunk',
      [
        // work/: found missing by the twin's IAM check (it reads its chunk's stats.json first).
        ...read('jobs-input/*', 'jobs-output/*', 'work/*'),
        ...listAndProbe('jobs-output/*', 'work/*'),
        ...write('work/*'),
        ...items('JOB#*', 'GetItem'),
        ...items('CAP#*', 'UpdateItem'),
        ...items('RUN#*', 'GetItem', 'UpdateItem'),
      ],
    ],
    [
      'end-round',
      // Listed under work/ and held/ only: a key that may be missing (a remainder part, an earlier
      // attempt's held file) is probed by a listing.
      [
        ...read('work/*', 'jobs-input/*'),
        ...list('work/*', 'held/*'),
        ...write('work/*', 'jobs-input/*', 'held/*'),
        ...items('RUN#*', 'GetItem', 'UpdateItem'),
      ],
    ],
    // RUN#: checks it owns the run; FinalizeFailed claims an unclaimed id.
    // Lists results/<runId>/ too: a rerun finds the results parts an earlier attempt left (to empty them).
    ['finalize', [...read('work/*'), ...listAndProbe('work/*', 'results/*'), ...write('results/*'), ...items('RUN#*', 'GetItem', 'UpdateItem')]],
    ['job-state', items('JOB#*', 'GetItem', 'UpdateItem')],
    ['sweeper', ['Allow dynamodb:Scan table', ...items('JOB#*', 'GetItem', 'UpdateItem'), ...items('CAP#*', 'GetItem', 'UpdateItem')]],
    [
      'stop-run',
      [
        // jobs-output/: the output of the jobs it stopped, whose processed records it keeps.
        ...read('work/*', 'jobs-input/*', 'jobs-output/*'),
        // held/: whether a hold remainder's held file was written (key names only).
        ...listAndProbe('work/*', 'results/*', 'jobs-output/*', 'held/*'),
        ...write('work/*', 'results/*'),
        'Allow dynamodb:Scan table',
        ...items('JOB#*', 'GetItem', 'UpdateItem'),
        ...items('CAP#*', 'GetItem', 'UpdateItem'),
        ...items('RUN#*', 'GetItem', 'UpdateItem'),
      ],
    ],
  ])('%s reads, writes and lists only the prefixes and items it uses', (name, expected) => {
    expect(dataGrants(name)).toEqual([...expected].sort());
  });

  test('a LeadingKeys statement holds only single-item actions (ForAllValues is vacuously true for a request without keys, such as a Scan)', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      for (const s of statementsOfFunction(template, name)) {
        if (!JSON.stringify(s.Condition ?? {}).includes('dynamodb:LeadingKeys')) continue;
        for (const a of actionsOf([s])) expect(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']).toContain(a);
      }
    }
  });

  test("jobs are created with their tags: submit-job may tag jobs with the pipeline's tag keys only", () => {
    const tag = statementsOfFunction(template, 'submit-job').find((x) => x.Action === 'bedrock:TagResource');
    expect(JSON.stringify(tag.Resource)).toMatch(/:model-invocation-job\/\*"\]\]\}$/);
    expect(tag.Condition).toEqual({
      'ForAllValues:StringEquals': { 'aws:TagKeys': ['bedrock-batch:run', 'bedrock-batch:route', 'bedrock-batch:stack'] },
    });
    for (const name of PIPELINE_FUNCTION_NAMES.filter((n) => n !== 'submit-job')) {
      expect(actionsOf(statementsOfFunction(template, name))).not.toContain('bedrock:TagResource');
    }
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
    // next-window reads the history (and describes a successor) of this state machine's executions only.
    const history = statementsOfFunction(template, 'next-window').find((x) => actionsOf([x]).includes('states:GetExecutionHistory'));
    expect(actionsOf([history])).toContain('states:DescribeExecution');
    expect(JSON.stringify(history.Resource)).toMatch(/:execution:/);
    expect(JSON.stringify(history.Resource)).toContain(sm.id);
    // start-run describes an existing execution of the name it would start (this state machine's only).
    const describe = statementsOfFunction(template, 'start-run').find((x) => actionsOf([x]).includes('states:DescribeExecution'));
    expect(actionsOf([describe])).toEqual(['states:DescribeExecution']);
    expect(JSON.stringify(describe.Resource)).toMatch(/:execution:/);
    expect(JSON.stringify(describe.Resource)).toContain(sm.id);
  });

  test("jobs are created on the routes' models only; on-demand invokes the same models", () => {
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

  test("prepare reads Service Quotas (the model's quotas at run time); no other function does", () => {
    const statements = (name: string) => statementsOfFunction(template, name).filter((x) => String(x.Action).startsWith('servicequotas:'));
    // Applied values, and AWS's defaults for the quotas that have none (a minimum cannot be adjusted).
    expect(statements('prepare')).toEqual([
      expect.objectContaining({ Action: ['servicequotas:ListServiceQuotas', 'servicequotas:ListAWSDefaultServiceQuotas'], Resource: '*' }),
    ]);
    for (const name of ['end-round', 'submit-job', 'finalize', 'acquire-slot']) expect(statements(name)).toEqual([]);
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
