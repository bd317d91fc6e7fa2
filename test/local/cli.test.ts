/**
 * The CLI's argument handling without a twin: repeatable --input-json, --run-id, and the
 * stderr lines for failed runs (two executions may share a runId).
 */
import { failureLines, parseArgs } from '../../local/cli';
import type { LocalRunOutcome, LocalRunReport } from '../../local/run-local';

const CLAUDE = 'anthropic.claude-3-haiku-20240307-v1:0';

test('--input-json may be given more than once; the files are kept in order', () => {
  const parsed = parseArgs(['local', 'run', 'a.jsonl', '--model', CLAUDE, '--input-json', 'one.json', '--input-json=two.json', '--input-json', 'one.json']);
  expect(parsed.inputJson).toEqual(['one.json', 'two.json', 'one.json']);
  expect(parsed.request.files).toEqual(['a.jsonl']);
});

test('--input-json alone (no local file) is a run; --run-id reaches the request', () => {
  expect(parseArgs(['local', 'run', '--model', CLAUDE, '--input-json', 'one.json']).request.files).toEqual([]);
  expect(parseArgs(['local', 'run', 'a.jsonl', '--model', CLAUDE, '--run-id', 'my-run-7']).request.runId).toBe('my-run-7');
});

test('one stderr line per failed run; two executions of one runId are told apart by execution', () => {
  const run = (runId: string, executionName: string, error?: string): LocalRunReport => ({
    runId,
    executionName,
    executionStatus: error ? 'FAILED' : 'SUCCEEDED',
    outDir: `/out/${runId}`,
    executions: 1,
    ...(error ? { error } : {}),
  });
  const outcome = (runs: LocalRunReport[]): LocalRunOutcome => ({
    runs,
    emulator: {} as LocalRunOutcome['emulator'],
    faults: { handlerCrash: 0, duplicateInvocation: 0, crashPoints: {}, crashes: [] },
    lambda: { invocations: 0, invocationsByFunction: {}, coldStarts: 0, peakSandboxes: 0, coldStartMs: 0, timeouts: 0, outOfMemory: 0, timeScale: 0.1 },
    exitCode: runs.some((r) => r.error) || runs.length === 0 ? 1 : 0,
  });
  expect(failureLines(outcome([run('a', 'e1')]))).toEqual([]);
  expect(failureLines(outcome([]))).toEqual(['bedrock-batch: run failed: no run finished']);
  expect(failureLines(outcome([run('a', 'e1'), run('b', 'e2', 'States.TaskFailed: boom\n  at x')]))).toEqual([
    'bedrock-batch: run b failed: States.TaskFailed: boom at x',
  ]);
  expect(failureLines(outcome([run('same', 'e1'), run('same', 'e2', 'RunIdInUse: taken')]))).toEqual([
    'bedrock-batch: run same (execution e2) failed: RunIdInUse: taken',
  ]);
});

test('--account-quota sets the emulated account, and only it: --min-records-per-job stays the route setting', () => {
  const parsed = parseArgs([
    'local',
    'run',
    'a.jsonl',
    '--model',
    CLAUDE,
    '--account-quota',
    'min-records=20,concurrent-jobs=3',
    '--min-records-per-job',
    '40',
  ]);
  expect(parsed.request.accountQuotas).toEqual({ minRecordsPerJob: 20, maxConcurrentJobs: 3 });
  expect(parsed.request.minRecordsPerJob).toBe(40);
  expect(parseArgs(['local', 'run', 'a.jsonl', '--model', CLAUDE, '--min-records-per-job', '40']).request.accountQuotas).toBeUndefined();
});

test.each([
  ['min-records', /not name=integer/],
  ['min-records=0', /positive integer/],
  ['records=5', /unknown quota 'records'/],
  ['min-records=5,min-records=6', /given twice/],
])('--account-quota %s is bad usage', (value, message) => {
  expect(() => parseArgs(['local', 'run', 'a.jsonl', '--model', CLAUDE, '--account-quota', value])).toThrow(message);
});

test('--app takes the pipeline and route to run, and no --model: the app names its models', () => {
  const parsed = parseArgs(['local', 'run', 'a.jsonl', '--app', 'npx ts-node bin/app.ts', '--pipeline', 'Stack/Tickets', '--route', 'tickets']);
  expect(parsed.request.app).toEqual({ command: 'npx ts-node bin/app.ts', pipeline: 'Stack/Tickets', route: 'tickets' });
  expect(parsed.request.modelId).toBeUndefined();
});

test.each([
  [['--app', 'x', '--model', CLAUDE], "--model cannot be combined with --app: the app's own routes set them"],
  [
    ['--app', 'x', '--max-records-per-job', '10', '--small-remainder', 'hold'],
    "--max-records-per-job, --small-remainder cannot be combined with --app: the app's own routes set them",
  ],
  [['--model', CLAUDE, '--pipeline', 'A'], "--pipeline needs --app (this package's own stack has one pipeline and one route, default)"],
  [['--model', CLAUDE, '--route', 'r'], "--route needs --app (this package's own stack has one pipeline and one route, default)"],
])('%j is bad usage', (extra, message) => {
  expect(() => parseArgs(['local', 'run', 'a.jsonl', ...extra])).toThrow(message);
});

test("--lambda-time-scale sets the sandboxes' time limits as a fraction of each function's Timeout; outside 0.001..1 it is refused", () => {
  const base = ['local', 'run', 'a.jsonl', '--model', CLAUDE];
  expect(parseArgs([...base, '--lambda-time-scale', '0.5']).request.lambdaTimeScale).toBe(0.5);
  expect(parseArgs([...base, '--lambda-time-scale=1']).request.lambdaTimeScale).toBe(1);
  expect(parseArgs([...base, '--lambda-time-scale', '.001']).request.lambdaTimeScale).toBe(0.001);
  expect(parseArgs(base).request.lambdaTimeScale).toBeUndefined();
  for (const bad of ['0', '1.5', '2', 'abc', '0.0001', '1e-2', '0x1', 'Infinity', ' 0.5']) {
    expect(() => parseArgs([...base, '--lambda-time-scale', bad])).toThrow(`--lambda-time-scale must be a number in 0.001..1, got '${bad}'`);
  }
});
