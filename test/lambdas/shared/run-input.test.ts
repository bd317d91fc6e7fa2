import { InvalidRunInput, resolveRunConfig, runIdFromExecutionName } from '../../../lambdas/shared/run-input';
import { isValidRunId } from '../../../lambdas/shared/contracts';
import { ANTHROPIC_MODEL, TITAN_EMBED_MODEL, pipeline, route } from '../support/fixtures';

const PIPELINE = pipeline(
  {
    default: route(),
    embed: route({ modelId: TITAN_EMBED_MODEL, maxRecordsPerJob: 1000, minRecordsPerJob: 10, maxAttempts: 2, smallRemainder: 'hold', trigger: 'nightly' }),
  },
  { maxConcurrentJobs: 7, jobTimeoutHours: 48 },
);
const CTX = { executionName: 'exec-1', startTime: '2025-02-03T04:05:06.000Z', bucket: 'drop', pipeline: PIPELINE };

function resolve(raw: unknown, ctx: Partial<typeof CTX> = {}) {
  return resolveRunConfig(raw, { ...CTX, ...ctx });
}

function errorOf(raw: unknown, ctx: Partial<typeof CTX> = {}): InvalidRunInput {
  try {
    resolve(raw, ctx);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRunInput);
    expect((err as Error).name).toBe('InvalidRunInput');
    return err as InvalidRunInput;
  }
  throw new Error('expected InvalidRunInput');
}

describe('resolveRunConfig', () => {
  it('takes every default from the route and the pipeline', () => {
    expect(resolve({ inputs: ['s3://drop/data/a.jsonl'] })).toEqual({
      inputs: ['s3://drop/data/a.jsonl'],
      run: {
        runId: 'exec-1',
        route: 'default',
        modelId: ANTHROPIC_MODEL,
        bucket: 'drop',
        maxRecordsPerJob: 50000,
        minRecordsPerJob: 100,
        maxAttempts: 3,
        smallRemainder: 'on-demand',
        maxConcurrentJobs: 7,
        jobTimeoutHours: 48,
        startedAt: '2025-02-03T04:05:06.000Z',
      },
    });
  });

  it('takes the route from an inbox/<route>/ path', () => {
    const { run } = resolve({ inputs: ['s3://drop/inbox/embed/2025/a.jsonl'] });
    expect(run).toMatchObject({
      route: 'embed',
      modelId: TITAN_EMBED_MODEL,
      maxRecordsPerJob: 1000,
      minRecordsPerJob: 10,
      maxAttempts: 2,
      smallRemainder: 'hold',
    });
  });

  it('takes the route from a held/<route>/ path', () => {
    expect(resolve({ inputs: ['s3://drop/held/embed/run-r02.jsonl'] }).run.route).toBe('embed');
  });

  it('falls back to default when the path names no configured route', () => {
    expect(resolve({ inputs: ['s3://drop/inbox/nope/a.jsonl'] }).run.route).toBe('default');
  });

  it('uses the only route when there is no default', () => {
    const only = pipeline({ embed: PIPELINE.routes.embed! });
    expect(resolve({ inputs: ['s3://drop/x.jsonl'] }, { pipeline: only }).run.route).toBe('embed');
  });

  it('prefers an explicit route over the path', () => {
    expect(resolve({ inputs: ['s3://drop/inbox/embed/a.jsonl'], route: 'default' }).run.route).toBe('default');
  });

  it('applies every override', () => {
    const { run } = resolve({
      inputs: ['s3://drop/inbox/embed/a.jsonl', 's3://drop/more/'],
      modelId: ANTHROPIC_MODEL,
      runId: 'my-run-2',
      maxRecordsPerJob: 500,
      minRecordsPerJob: 50,
      maxAttempts: 1,
      maxConcurrentJobs: 3,
      smallRemainder: 'fail',
      jobTimeoutHours: 24,
    });
    expect(run).toEqual({
      runId: 'my-run-2',
      route: 'embed',
      modelId: ANTHROPIC_MODEL,
      bucket: 'drop',
      maxRecordsPerJob: 500,
      minRecordsPerJob: 50,
      maxAttempts: 1,
      smallRemainder: 'fail',
      maxConcurrentJobs: 3,
      jobTimeoutHours: 24,
      startedAt: CTX.startTime,
    });
  });

  it('derives a valid, stable run id from a long or odd execution name', () => {
    const name = 'Console Execution: 2025/02/03 with spaces and a very long tail that goes on';
    const a = resolve({ inputs: ['s3://drop/a.jsonl'] }, { executionName: name }).run.runId;
    expect(isValidRunId(a)).toBe(true);
    expect(a).toBe(runIdFromExecutionName(name));
    expect(a).toMatch(/^run-[0-9a-f]{20}$/);
    expect(runIdFromExecutionName(name + 'x')).not.toBe(a);
    expect(runIdFromExecutionName('ok-name')).toBe('ok-name');
  });

  it.each([
    ['a non-object', 'text', 'execution input must be a JSON object'],
    ['null', null, 'execution input must be a JSON object'],
    ['an array', [], 'execution input must be a JSON object'],
    ['no inputs', {}, 'inputs must be a non-empty array of s3:// URIs'],
    ['empty inputs', { inputs: [] }, 'inputs must be a non-empty array of s3:// URIs'],
    ['string inputs', { inputs: 's3://drop/a.jsonl' }, 'inputs must be a non-empty array of s3:// URIs'],
    ['a bad URI', { inputs: ['s3://drop/a.jsonl', 'https://x/y'] }, 'inputs[1] is not an s3://bucket/key URI: "https://x/y"'],
    ['a bucket-only URI', { inputs: ['s3://drop/'] }, 'inputs[0] is not an s3://bucket/key URI: "s3://drop/"'],
    ['a non-string input', { inputs: [5] }, 'inputs[0] is not an s3://bucket/key URI: 5'],
    ['an unknown route', { inputs: ['s3://drop/a.jsonl'], route: 'nope' }, 'route "nope" is not configured (configured: default, embed)'],
    ['a non-string route', { inputs: ['s3://drop/a.jsonl'], route: 3 }, 'route must be a string'],
    ['an empty modelId', { inputs: ['s3://drop/a.jsonl'], modelId: '' }, 'modelId must be a non-empty string'],
    [
      'an unknown family',
      { inputs: ['s3://drop/a.jsonl'], modelId: 'cohere.command-r-v1:0' },
      /^modelId cohere\.command-r-v1:0 is of no known model family \(known: anthropic/,
    ],
    ['a runId with an underscore', { inputs: ['s3://drop/a.jsonl'], runId: 'my_run' }, /^runId must be 1\.\.40 letters/],
    ['a runId with a double hyphen', { inputs: ['s3://drop/a.jsonl'], runId: 'a--b' }, /^runId must be/],
    ['a runId ending in a hyphen', { inputs: ['s3://drop/a.jsonl'], runId: 'ab-' }, /^runId must be/],
    ['a 41-character runId', { inputs: ['s3://drop/a.jsonl'], runId: 'a'.repeat(41) }, /^runId must be/],
    ['a numeric runId', { inputs: ['s3://drop/a.jsonl'], runId: 12 }, /^runId must be/],
    [
      'min > max',
      { inputs: ['s3://drop/a.jsonl'], minRecordsPerJob: 200, maxRecordsPerJob: 150 },
      'minRecordsPerJob (200) must not exceed maxRecordsPerJob (150)',
    ],
    [
      'min > route max',
      { inputs: ['s3://drop/inbox/embed/a.jsonl'], minRecordsPerJob: 2000 },
      'minRecordsPerJob (2000) must not exceed maxRecordsPerJob (1000)',
    ],
    ['a fractional max', { inputs: ['s3://drop/a.jsonl'], maxRecordsPerJob: 1.5 }, 'maxRecordsPerJob must be an integer in 1..50000, got 1.5'],
    ['a string max', { inputs: ['s3://drop/a.jsonl'], maxRecordsPerJob: '100' }, 'maxRecordsPerJob must be an integer in 1..50000, got "100"'],
    ['maxAttempts 0', { inputs: ['s3://drop/a.jsonl'], maxAttempts: 0 }, 'maxAttempts must be an integer in 1..3, got 0'],
    // work/ is kept for the routes' attempts: a run may take fewer, never more.
    ['maxAttempts above the route', { inputs: ['s3://drop/inbox/embed/a.jsonl'], maxAttempts: 3 }, 'maxAttempts must be an integer in 1..2, got 3'],
    // Own properties only: an object's inherited keys are no routes.
    ['route constructor', { inputs: ['s3://drop/a.jsonl'], route: 'constructor' }, 'route "constructor" is not configured (configured: default, embed)'],
    ['route __proto__', { inputs: ['s3://drop/a.jsonl'], route: '__proto__' }, 'route "__proto__" is not configured (configured: default, embed)'],
    ['a newline in an input', { inputs: ['s3://drop/a.jsonl\nb'] }, 'inputs[0] contains a control character (newline, tab, ...): "s3://drop/a.jsonl\\nb"'],
    ['a tab in an input', { inputs: ['s3://drop/a\t.jsonl'] }, 'inputs[0] contains a control character (newline, tab, ...): "s3://drop/a\\t.jsonl"'],
    ...(['jobs-input/', 'jobs-output/', 'work/', 'results/'] as const).map((prefix): [string, unknown, string] => [
      `an input under ${prefix}`,
      { inputs: ['s3://drop/a.jsonl', `s3://drop/${prefix}other-run/x.jsonl`] },
      `inputs[1] is under ${prefix}, the pipeline's own data (jobs-input/, jobs-output/, work/, results/ may not be inputs): s3://drop/${prefix}other-run/x.jsonl`,
    ]),
    ['inputETags not an object', { inputs: ['s3://drop/a.jsonl'], inputETags: 'x' }, 'inputETags must be an object of input URI -> ETag'],
    [
      'inputETags of another file',
      { inputs: ['s3://drop/a.jsonl'], inputETags: { 's3://drop/b.jsonl': 'e' } },
      'inputETags names "s3://drop/b.jsonl", which is not an input file of the run',
    ],
    [
      'inputETags of a prefix',
      { inputs: ['s3://drop/p/'], inputETags: { 's3://drop/p/': 'e' } },
      'inputETags names "s3://drop/p/", which is not an input file of the run',
    ],
    [
      'an empty ETag',
      { inputs: ['s3://drop/a.jsonl'], inputETags: { 's3://drop/a.jsonl': '' } },
      'inputETags["s3://drop/a.jsonl"] must be a non-empty ETag string',
    ],
    // A run may share the model's cap less than configured, never more (the cap is shared).
    [
      'maxConcurrentJobs above the pipeline cap',
      { inputs: ['s3://drop/a.jsonl'], maxConcurrentJobs: 8 },
      'maxConcurrentJobs must be an integer in 1..7, got 8',
    ],
    // IAM lets the functions use only the routes' models.
    [
      'a model no route uses',
      { inputs: ['s3://drop/a.jsonl'], modelId: 'us.anthropic.claude-3-5-sonnet-20240620-v1:0' },
      /^modelId us\.anthropic\.claude-3-5-sonnet-20240620-v1:0 is not the model of a configured route, so the pipeline may not use it \(configured: /,
    ],
    // The functions may read only the drop bucket.
    [
      'an input in another bucket',
      { inputs: ['s3://drop/a.jsonl', 's3://elsewhere/b.jsonl'] },
      "inputs[1] is not in the pipeline's bucket drop (the pipeline may read only its own bucket): s3://elsewhere/b.jsonl",
    ],
    ['jobTimeoutHours 12', { inputs: ['s3://drop/a.jsonl'], jobTimeoutHours: 12 }, 'jobTimeoutHours must be an integer in 24..48, got 12'],
    // The workflow waits the stack's timeout plus a margin: a run may shorten it, not lengthen it.
    ['jobTimeoutHours above the stack', { inputs: ['s3://drop/a.jsonl'], jobTimeoutHours: 72 }, 'jobTimeoutHours must be an integer in 24..48, got 72'],
    // hold needs a sweep: the default route is immediate and not configured to hold.
    [
      'hold on a route without a sweep',
      { inputs: ['s3://drop/a.jsonl'], smallRemainder: 'hold' },
      /^smallRemainder 'hold' needs a nightly sweep of route default/,
    ],
    ['an unknown field', { inputs: ['s3://drop/a.jsonl'], model: 'x', colour: 1 }, 'unknown input field(s): model, colour'],
    ['a bad smallRemainder', { inputs: ['s3://drop/a.jsonl'], smallRemainder: 'drop' }, 'smallRemainder must be one of on-demand, hold, fail, got "drop"'],
  ])('rejects %s', (_name, raw, message) => {
    const err = errorOf(raw);
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
  });

  it('passes the ETags the input files must still have', () => {
    expect(resolve({ inputs: ['s3://drop/a.jsonl', 's3://drop/b/'], inputETags: { 's3://drop/a.jsonl': 'abc123' } }).inputETags).toEqual({
      's3://drop/a.jsonl': 'abc123',
    });
    expect(resolve({ inputs: ['s3://drop/a.jsonl'] })).not.toHaveProperty('inputETags');
  });

  it('does not take a route from an inbox path naming an inherited property', () => {
    expect(resolve({ inputs: ['s3://drop/inbox/constructor/a.jsonl'] }).run.route).toBe('default');
  });

  it('reports an unconfigured route when no route can be chosen', () => {
    const two = pipeline({ a: route(), b: route() });
    expect(errorOf({ inputs: ['s3://drop/x.jsonl'] }, { pipeline: two }).message).toBe('route "" is not configured (configured: a, b)');
  });
});

describe('resolveRunConfig under a key prefix (KEY_PREFIX: a pipeline in a shared bucket)', () => {
  beforeEach(() => (process.env.KEY_PREFIX = 'teams/ml.v2/'));
  afterEach(() => delete process.env.KEY_PREFIX);

  it('takes the route from <prefix>inbox/<route>/, the prefix read literally', () => {
    expect(resolve({ inputs: ['s3://drop/teams/ml.v2/inbox/embed/a.jsonl'] }).run.route).toBe('embed');
    // `.` in the prefix is not a wildcard: teams/mlXv2/ is not under it.
    expect(errorOf({ inputs: ['s3://drop/teams/mlXv2/inbox/special/a.jsonl'] }).message).toBe(
      "inputs[0] is not under the pipeline's key prefix teams/ml.v2/ (the pipeline may read only its own part of the bucket): s3://drop/teams/mlXv2/inbox/special/a.jsonl",
    );
  });

  it("refuses the prefix's own work and results as inputs", () => {
    expect(errorOf({ inputs: ['s3://drop/teams/ml.v2/work/r/x.jsonl'] }).message).toMatch(
      /^inputs\[0\] is under teams\/ml\.v2\/work\/, the pipeline's own data/,
    );
  });
});
