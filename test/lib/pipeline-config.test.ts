import { loadPipelineConfig, longestRunHours, MAX_CONCURRENT_JOBS_LIMIT, PIPELINE_DEFAULTS, ROUTE_DEFAULTS } from '../../lib/pipeline-config';
import { rawConfig } from './helpers';

import cdkJson from '../../cdk.json';

function withRoute(route: Record<string, unknown>, name = 'default') {
  return rawConfig({ [name]: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0', ...route } });
}

describe('loadPipelineConfig', () => {
  test('accepts the cdk.json context as is', () => {
    const config = loadPipelineConfig(cdkJson.context.bedrockBatch);
    expect(config.routes.default).toEqual({
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      maxRecordsPerJob: 50000,
      minRecordsPerJob: 100,
      maxAttempts: 3,
      smallRemainder: 'on-demand',
      trigger: 'immediate',
    });
    expect(config.maxConcurrentJobs).toBe(10);
  });

  test('applies every default', () => {
    const config = loadPipelineConfig({ routes: { default: { modelId: 'amazon.nova-lite-v1:0' } } });
    expect(config).toEqual({
      maxConcurrentJobs: 10,
      jobTimeoutHours: 72,
      workRetentionDays: 14,
      nightlySchedule: PIPELINE_DEFAULTS.nightlySchedule,
      historyEventBudget: 20000,
      routes: { default: { modelId: 'amazon.nova-lite-v1:0', ...ROUTE_DEFAULTS } },
    });
    expect(ROUTE_DEFAULTS).toEqual({
      maxRecordsPerJob: 50000,
      minRecordsPerJob: 100,
      maxAttempts: 3,
      smallRemainder: 'on-demand',
      trigger: 'immediate',
    });
  });

  test('keeps explicit values', () => {
    const config = loadPipelineConfig(withRoute({ maxRecordsPerJob: 1000, minRecordsPerJob: 50, maxAttempts: 4, smallRemainder: 'hold', trigger: 'nightly' }));
    expect(config).toMatchObject({ maxConcurrentJobs: 7, jobTimeoutHours: 48, workRetentionDays: 9, nightlySchedule: 'cron(0 3 * * ? *)' });
    expect(config.routes.default).toMatchObject({ maxRecordsPerJob: 1000, minRecordsPerJob: 50, maxAttempts: 4, smallRemainder: 'hold', trigger: 'nightly' });
  });

  test('accepts the JSON text given by cdk -c', () => {
    expect(loadPipelineConfig(JSON.stringify(rawConfig())).jobTimeoutHours).toBe(48);
  });

  test.each([
    'anthropic.claude-3-haiku-20240307-v1:0',
    'us.anthropic.claude-3-5-haiku-20241022-v1:0',
    'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0',
    'amazon.titan-embed-text-v2:0',
    'mistral.mistral-large-2402-v1:0',
  ])('accepts model id %s', (modelId) => {
    expect(loadPipelineConfig(rawConfig({ r1: { modelId } })).routes.r1!.modelId).toBe(modelId);
  });

  // Each bad key gives a message naming it.
  test.each<[string, unknown, string]>([
    ['not an object', 42, 'bedrockBatch must be an object'],
    ['bad JSON text', '{nope', 'bedrockBatch context is not valid JSON'],
    ['no routes', { ...rawConfig(), routes: {} }, 'bedrockBatch.routes must define at least one route'],
    ['routes not an object', { ...rawConfig(), routes: [] }, 'bedrockBatch.routes must define at least one route'],
    ['maxConcurrentJobs 0', { ...rawConfig(), maxConcurrentJobs: 0 }, 'bedrockBatch.maxConcurrentJobs must be an integer 1..40'],
    ['maxConcurrentJobs fractional', { ...rawConfig(), maxConcurrentJobs: 2.5 }, 'bedrockBatch.maxConcurrentJobs must be an integer 1..40'],
    [
      'maxConcurrentJobs over the inline Map limit',
      { ...rawConfig(), maxConcurrentJobs: 41 },
      'bedrockBatch.maxConcurrentJobs must be an integer 1..40 (got 41)',
    ],
    ['maxConcurrentJobs 1000', { ...rawConfig(), maxConcurrentJobs: 1000 }, 'bedrockBatch.maxConcurrentJobs must be an integer 1..40 (got 1000)'],
    ['jobTimeoutHours 23', { ...rawConfig(), jobTimeoutHours: 23 }, 'bedrockBatch.jobTimeoutHours must be an integer 24..168'],
    ['jobTimeoutHours 169', { ...rawConfig(), jobTimeoutHours: 169 }, 'bedrockBatch.jobTimeoutHours must be an integer 24..168'],
    ['jobTimeoutHours string', { ...rawConfig(), jobTimeoutHours: '72' }, 'bedrockBatch.jobTimeoutHours must be an integer 24..168'],
    ['workRetentionDays 0', { ...rawConfig(), workRetentionDays: 0 }, 'bedrockBatch.workRetentionDays must be an integer 1..3650'],
    ['historyEventBudget over the hard limit', { ...rawConfig(), historyEventBudget: 25000 }, 'bedrockBatch.historyEventBudget must be an integer 100..24000'],
    ['nightlySchedule', { ...rawConfig(), nightlySchedule: '0 2 * * *' }, 'bedrockBatch.nightlySchedule must be an EventBridge schedule expression'],
    ['unknown top-level key', { ...rawConfig(), maxConcurrentJob: 3 }, 'bedrockBatch.maxConcurrentJob is not a known setting'],
    [
      'route name',
      rawConfig({ Default_1: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } }),
      'bedrockBatch.routes.Default_1: route names must match [a-z0-9-]+',
    ],
    ['route not an object', rawConfig({ default: 'anthropic.claude' }), 'bedrockBatch.routes.default must be an object'],
    ['modelId missing', rawConfig({ default: {} }), 'bedrockBatch.routes.default.modelId is required'],
    [
      'modelId unknown family',
      rawConfig({ default: { modelId: 'cohere.command-r-v1:0' } }),
      "bedrockBatch.routes.default.modelId 'cohere.command-r-v1:0' is not a model family this pipeline knows",
    ],
    ['maxAttempts 0', withRoute({ maxAttempts: 0 }), 'bedrockBatch.routes.default.maxAttempts must be an integer 1..10'],
    ['maxAttempts 11', withRoute({ maxAttempts: 11 }), 'bedrockBatch.routes.default.maxAttempts must be an integer 1..10'],
    ['maxRecordsPerJob over 50000', withRoute({ maxRecordsPerJob: 50001 }), 'bedrockBatch.routes.default.maxRecordsPerJob must be an integer 1..50000'],
    ['minRecordsPerJob 0', withRoute({ minRecordsPerJob: 0 }), 'bedrockBatch.routes.default.minRecordsPerJob must be an integer 1..50000'],
    [
      'min above max',
      withRoute({ minRecordsPerJob: 500, maxRecordsPerJob: 400 }),
      'bedrockBatch.routes.default.minRecordsPerJob (500) must not exceed maxRecordsPerJob (400)',
    ],
    ['min above default max', withRoute({ minRecordsPerJob: 50000, maxRecordsPerJob: 1000 }), 'must not exceed maxRecordsPerJob (1000)'],
    ['smallRemainder', withRoute({ smallRemainder: 'drop' }), "bedrockBatch.routes.default.smallRemainder must be one of 'on-demand', 'hold', 'fail'"],
    ['trigger', withRoute({ trigger: 'hourly' }), "bedrockBatch.routes.default.trigger must be one of 'immediate', 'nightly'"],
    ['unknown route key', withRoute({ maxAttemps: 2 }), 'bedrockBatch.routes.default.maxAttemps is not a known setting'],
  ])('rejects %s', (_name, raw, message) => {
    expect(() => loadPipelineConfig(raw)).toThrow(message);
  });

  test('maxConcurrentJobs goes up to the inline Map limit of 40, and the message says why', () => {
    expect(MAX_CONCURRENT_JOBS_LIMIT).toBe(40);
    expect(loadPipelineConfig({ ...rawConfig(), maxConcurrentJobs: 40 }).maxConcurrentJobs).toBe(40);
    expect(loadPipelineConfig({ ...rawConfig(), maxConcurrentJobs: 1 }).maxConcurrentJobs).toBe(1);
    expect(() => loadPipelineConfig({ ...rawConfig(), maxConcurrentJobs: 100 })).toThrow(/inline Map iterations at once.*Bedrock's own default quota is 20/);
  });

  describe('workRetentionDays against the longest possible run (jobTimeoutHours × highest maxAttempts + 24 h)', () => {
    const multi = (retention: number, timeout: number, attempts: number[]) => ({
      ...rawConfig(Object.fromEntries(attempts.map((a, i) => [`r${i}`, { modelId: 'amazon.nova-lite-v1:0', maxAttempts: a }]))),
      workRetentionDays: retention,
      jobTimeoutHours: timeout,
    });

    test('longestRunHours', () => {
      expect(longestRunHours(72, { a: { maxAttempts: 3 } })).toBe(240);
      expect(longestRunHours(48, { a: { maxAttempts: 2 }, b: { maxAttempts: 5 } })).toBe(264);
    });

    test('accepts exactly the longest run, and the defaults', () => {
      // 48 h × 4 + 24 h = 216 h = 9 days.
      expect(loadPipelineConfig(multi(9, 48, [1, 4])).workRetentionDays).toBe(9);
      expect(() => loadPipelineConfig({ routes: { default: { modelId: 'amazon.nova-lite-v1:0' } } })).not.toThrow();
    });

    test('rejects a retention shorter than the longest run, naming the route with the most attempts', () => {
      // 48 h × 5 + 24 h = 264 h = 11 days.
      expect(() => loadPipelineConfig(multi(10, 48, [2, 5, 3]))).toThrow(
        'bedrockBatch.workRetentionDays (10 days) is shorter than the longest possible run (jobTimeoutHours 48 × maxAttempts 5 of route r1 + 24 h = 264 h): ' +
          'intermediate files must outlive the run that reads them; set it to at least 11',
      );
      // 72 h default timeout × 3 default attempts + 24 h = 240 h = 10 days.
      expect(() => loadPipelineConfig({ workRetentionDays: 9, routes: { default: { modelId: 'amazon.nova-lite-v1:0' } } })).toThrow(
        'bedrockBatch.workRetentionDays (9 days) is shorter than the longest possible run (jobTimeoutHours 72 × maxAttempts 3 of route default + 24 h = 240 h)',
      );
    });

    test('is not checked with a value that was itself rejected', () => {
      for (const raw of [multi(1, 200, [3]), multi(0, 48, [3]), multi(2, 48, [11])]) {
        let message = '';
        try {
          loadPipelineConfig(raw);
        } catch (err) {
          message = (err as Error).message;
        }
        expect(message).toContain('must be an integer');
        expect(message).not.toContain('longest possible run');
      }
    });
  });

  test('reports every problem at once', () => {
    let error: Error | undefined;
    try {
      loadPipelineConfig({ ...withRoute({ maxAttempts: 0, trigger: 'x' }), jobTimeoutHours: 1 });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toContain('Invalid bedrockBatch configuration');
    expect(error?.message).toContain('bedrockBatch.jobTimeoutHours');
    expect(error?.message).toContain('bedrockBatch.routes.default.maxAttempts');
    expect(error?.message).toContain('bedrockBatch.routes.default.trigger');
  });
});

describe('alarmTopicArn', () => {
  test('is optional (the stack then creates the topic)', () => {
    expect(loadPipelineConfig(rawConfig())).not.toHaveProperty('alarmTopicArn');
  });

  test.each([
    'arn:aws:sns:us-east-1:123456789012:alarms',
    'arn:aws-us-gov:sns:us-gov-west-1:123456789012:ops_Paging-1',
    'arn:aws-cn:sns:cn-north-1:123456789012:a',
  ])('accepts %s', (arn) => {
    expect(loadPipelineConfig({ ...rawConfig(), alarmTopicArn: arn }).alarmTopicArn).toBe(arn);
  });

  test.each([
    ['', 'empty'],
    ['team-paging', 'a name, not an ARN'],
    ['arn:aws:sqs:us-east-1:123456789012:alarms', 'another service'],
    ['arn:aws:sns:us-east-1:12345:alarms', 'a short account'],
    ['arn:aws:sns::123456789012:alarms', 'no region'],
    ['arn:aws:sns:us-east-1:123456789012:alarms:extra', 'a subscription ARN'],
    ['arn:aws:sns:us-east-1:123456789012:bad name', 'a space in the name'],
    [42, 'not a string'],
  ] as Array<[unknown, string]>)('refuses %j (%s) with a clear error', (arn) => {
    expect(() => loadPipelineConfig({ ...rawConfig(), alarmTopicArn: arn })).toThrow(
      `bedrockBatch.alarmTopicArn must be an SNS topic ARN, arn:<partition>:sns:<region>:<12-digit account>:<topic name> (got ${JSON.stringify(arn)})`,
    );
  });

  test('refuses a FIFO topic, saying why', () => {
    expect(() => loadPipelineConfig({ ...rawConfig(), alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alarms.fifo' })).toThrow(
      'CloudWatch alarms cannot notify a FIFO topic',
    );
  });
});

describe('prices', () => {
  test('are optional: without them the shipped table is used', () => {
    expect(loadPipelineConfig(rawConfig())).not.toHaveProperty('prices');
  });

  test('are validated and keyed by bare foundation-model id', () => {
    const config = loadPipelineConfig({ ...rawConfig(), prices: { 'us.meta.llama3-1-70b-instruct-v1:0': { onDemandInput: 0.72, onDemandOutput: 0.72 } } });
    expect(config.prices).toEqual({ 'meta.llama3-1-70b-instruct-v1:0': { onDemandInput: 0.72, onDemandOutput: 0.72 } });
  });

  test('report bad values by their path, with the other problems', () => {
    expect(() =>
      loadPipelineConfig({ ...rawConfig(), jobTimeoutHours: 1, prices: { 'amazon.nova-lite-v1:0': { onDemandInput: 'cheap', onDemandOutput: 0.24 } } }),
    ).toThrow(
      /bedrockBatch\.jobTimeoutHours must be an integer[\s\S]*bedrockBatch\.prices\.amazon\.nova-lite-v1:0\.onDemandInput must be a number 0\.\.1000, USD per million tokens \(got "cheap"\)/,
    );
    expect(() => loadPipelineConfig({ ...rawConfig(), prices: [] })).toThrow(/bedrockBatch\.prices must be an object of prices by model id/);
  });
});
