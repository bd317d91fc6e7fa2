/**
 * The command line as a user runs it: a separate process, exit codes 0 / 1 / 2, one-line
 * reasons, outputs where the docs say.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { claudeLines, CLAUDE, expectConservation, readOutputs, tempDir, writeLines } from './helpers';

const ROOT = join(__dirname, '..', '..');

function cli(args: string[], cwd = ROOT) {
  const res = spawnSync(process.execPath, [join(ROOT, 'bin', 'bedrock-batch.js'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('bedrock-batch local run (CLI)', () => {
  test.each([
    [['local', 'run', 'x.jsonl'], /^bedrock-batch: --model <modelId> is required$/],
    [['local', 'run', '--model', CLAUDE], /^bedrock-batch: no input file given$/],
    [['local', 'run', 'missing.jsonl', '--model', CLAUDE], /^bedrock-batch: file not found: missing.jsonl$/],
    [['local', 'run', 'x.jsonl', '--model', 'cohere.command-r-v1:0'], /^bedrock-batch: unknown model family for 'cohere.command-r-v1:0'/],
    [
      ['local', 'run', 'x.jsonl', '--model', CLAUDE, '--max-records-per-job', 'ten'],
      /^bedrock-batch: --max-records-per-job must be an integer in 1..50000, got 'ten'$/,
    ],
    [['local', 'run', 'x.jsonl', '--model', CLAUDE, '--faults', 'record-eror=0.1'], /^bedrock-batch: --faults: .*record-eror/],
    [['local', 'run', 'x.jsonl', '--model', CLAUDE, '--bogus'], /^bedrock-batch: unknown option --bogus$/],
    [['remote', 'run'], /^bedrock-batch: unknown command 'remote'/],
    [
      ['local', 'run', 'a.jsonl', 'b.jsonl', '--model', CLAUDE, '--run-id', 'r1'],
      /^bedrock-batch: --run-id needs exactly one input file, got 2 \(for several runs, use --input-json/,
    ],
    [
      ['local', 'run', 'a.jsonl', '--model', CLAUDE, '--run-id', 'bad--id'],
      /^bedrock-batch: --run-id must be 1..40 letters, digits and single hyphens.*got 'bad--id'$/,
    ],
    [
      ['local', 'run', 'a.jsonl', '--model', CLAUDE, '--run-id', 'r1', '--one-run-per-file'],
      /^bedrock-batch: --run-id cannot be combined with --one-run-per-file/,
    ],
    [['local', 'run', '--model', CLAUDE, '--run-id', 'r1', '--input-json', 'x.json'], /^bedrock-batch: --run-id cannot be combined with --input-json/],
    [['local', 'run', 'a/x.jsonl', 'b/x.jsonl', '--model', CLAUDE, '--input-json', 'i.json'], /^bedrock-batch: two input files are named x.jsonl/],
    [['local', 'run', '--model', CLAUDE, '--input-json', 'missing.json'], /^bedrock-batch: --input-json missing.json: cannot read it \(no such file\)$/],
  ])('bad usage %j exits 2 with one line', (args, message) => {
    const res = cli(args);
    expect(res.code).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(res.stdout).toBe('');
  });

  test.each([
    ['not JSON', '{"inputs": [', /^bedrock-batch: --input-json .*bad.json: not JSON \(.+\)$/],
    ['an array', '[{"inputs": []}]', /^bedrock-batch: --input-json .*bad.json: not a JSON object .*got an array$/],
    ['null', 'null', /^bedrock-batch: --input-json .*bad.json: not a JSON object .*got null$/],
  ])('an --input-json file holding %s exits 2 naming the file and why, before any twin starts', (_what, content, message) => {
    const dir = tempDir();
    const good = join(dir, 'good.json');
    writeFileSync(good, '{"inputs": ["s3://bedrock-batch-local/uploads/in.jsonl"]}');
    writeFileSync(join(dir, 'bad.json'), content);
    const res = cli(['local', 'run', '--model', CLAUDE, '--input-json', good, '--input-json', join(dir, 'bad.json')], dir);
    expect(res.code).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(res.stdout).toBe('');
  });

  test('--run-id: the run takes that id, its outputs say so', () => {
    const dir = tempDir();
    const file = writeLines(dir, 'in.jsonl', claudeLines(12));
    const out = join(dir, 'out');
    const res = cli(['local', 'run', file, '--model', CLAUDE, '--out', out, '--run-id', 'tickets-2025-06', '--quiet'], dir);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^tickets-2025-06: Succeeded: 12 input/m);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.runId).toBe('tickets-2025-06');
    expectConservation(readOutputs({ runId: summary.runId, executionName: 'x', executionStatus: 'SUCCEEDED', summary, outDir: out, executions: 1 }), 12);
  });

  test('--input-json twice: both runs start together in one twin, finish, and land in their own folders', () => {
    const dir = tempDir();
    const a = writeLines(dir, 'a.jsonl', claudeLines(40, 'a'));
    const b = writeLines(dir, 'b.jsonl', [...claudeLines(30, 'b'), 'not json']);
    const first = join(dir, 'first.json');
    const second = join(dir, 'second.json');
    // As pasted in the console: one with a runId and an override, one without a runId.
    writeFileSync(first, JSON.stringify({ inputs: ['s3://bedrock-batch-local/uploads/a.jsonl'], runId: 'run-a', maxRecordsPerJob: 10 }, null, 2));
    writeFileSync(second, JSON.stringify({ inputs: ['s3://bedrock-batch-local/uploads/b.jsonl'] }));
    const out = join(dir, 'out');
    const res = cli(
      [
        'local',
        'run',
        a,
        b,
        '--model',
        CLAUDE,
        '--input-json',
        first,
        '--input-json',
        second,
        '--out',
        out,
        '--min-records-per-job',
        '5',
        '--account-quota',
        'min-records=5',
        '--max-records-per-job',
        '15',
        '--max-concurrent-jobs',
        '2',
        '--quiet',
      ],
      dir,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const runLines = res.stdout.split('\n').filter((l) => /^[\w-]+: (Succeeded|CompletedWithFailures|Failed)/.test(l));
    expect(runLines).toHaveLength(2);
    expect(res.stdout).toMatch(/^run-a: Succeeded: 40 input, 40 succeeded, 0 failed, 0 rejected; 4 job\(s\)/m);
    const otherId = /^(local-[\w-]+-2): CompletedWithFailures: 31 input, 30 succeeded, 0 failed, 1 rejected; 2 job\(s\)/m.exec(res.stdout)?.[1];
    expect(otherId).toBeDefined();
    const emulators = [];
    for (const [runId, lines] of [
      ['run-a', 40],
      [otherId!, 31],
    ] as const) {
      const outDir = join(out, runId);
      const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8'));
      expect(summary.runId).toBe(runId);
      const outputs = readOutputs({ runId, executionName: runId, executionStatus: 'SUCCEEDED', summary, outDir, executions: 1 });
      expectConservation(outputs, lines);
      emulators.push(outputs.emulator);
    }
    // One emulator for both: 4 + 2 jobs, under the one cap.
    expect(emulators[0]).toEqual(emulators[1]);
    expect(emulators[0]!.jobsCreated).toBe(6);
    expect(emulators[0]!.maxConcurrentJobs).toBeLessThanOrEqual(2);
  });

  test('--input-json: two inputs asking for one runId give one run (conservation) and one refused execution that changed nothing', () => {
    const dir = tempDir();
    const a = writeLines(dir, 'a.jsonl', claudeLines(30, 'a'));
    const b = writeLines(dir, 'b.jsonl', claudeLines(20, 'b'));
    const first = join(dir, 'first.json');
    const second = join(dir, 'second.json');
    writeFileSync(first, JSON.stringify({ inputs: ['s3://bedrock-batch-local/uploads/a.jsonl'], runId: 'shared' }));
    writeFileSync(second, JSON.stringify({ inputs: ['s3://bedrock-batch-local/uploads/b.jsonl'], runId: 'shared' }));
    const out = join(dir, 'out');
    const res = cli(
      [
        'local',
        'run',
        a,
        b,
        '--model',
        CLAUDE,
        '--max-records-per-job',
        '10',
        '--account-quota',
        'min-records=5',
        '--input-json',
        first,
        '--input-json',
        second,
        '--out',
        out,
        '--quiet',
      ],
      dir,
    );
    expect(res.code).toBe(1);
    // The refused one says why, in one line; the owner's run is whole.
    expect(res.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^bedrock-batch: run shared (\(execution [\w-]+\) )?failed: RunFailed: runId shared is already used by execution [\w-]+; choose another runId/,
      ),
    ]);
    const summary = JSON.parse(readFileSync(join(out, 'shared', 'summary.json'), 'utf8'));
    const winner = summary.inputs[0] === 's3://bedrock-batch-local/uploads/a.jsonl' ? { lines: 30, prefix: 'a' } : { lines: 20, prefix: 'b' };
    const outputs = readOutputs({ runId: 'shared', executionName: 'x', executionStatus: 'SUCCEEDED', summary, outDir: join(out, 'shared'), executions: 2 });
    expectConservation(outputs, winner.lines);
    for (const r of [...outputs.results, ...outputs.failed]) expect(r.recordId.startsWith(`${winner.prefix}-`)).toBe(true);
    // Only the owner's jobs were ever created.
    expect(outputs.emulator.jobsCreated).toBe(Math.ceil(winner.lines / 10));
  });

  test('--input-json: a run the pipeline refuses makes the exit 1, its reason one line on stderr; the other run finishes', () => {
    const dir = tempDir();
    const a = writeLines(dir, 'a.jsonl', claudeLines(8, 'a'));
    const good = join(dir, 'good.json');
    const bad = join(dir, 'bad.json');
    writeFileSync(good, JSON.stringify({ inputs: ['s3://bedrock-batch-local/uploads/a.jsonl'], runId: 'good-run' }));
    writeFileSync(bad, JSON.stringify({ inputs: ['s3://bedrock-batch-local/uploads/a.jsonl'], runId: 'bad-run', maxAttempts: 'lots' }));
    const out = join(dir, 'out');
    const res = cli(['local', 'run', a, '--model', CLAUDE, '--input-json', good, '--input-json', bad, '--out', out, '--quiet'], dir);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^bedrock-batch: run bad-run failed: .*maxAttempts must be an integer in 1..3, got "lots"/),
    ]);
    expect(res.stdout).toMatch(/^good-run: Succeeded: 8 input/m);
    expect(existsSync(join(out, 'good-run', 'results.jsonl'))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'good-run', 'summary.json'), 'utf8'));
    const outputs = readOutputs({
      runId: 'good-run',
      executionName: 'good-run',
      executionStatus: 'SUCCEEDED',
      summary,
      outDir: join(out, 'good-run'),
      executions: 1,
    });
    expectConservation(
      outputs,
      8,
      claudeLines(8, 'a').map((l) => (JSON.parse(l) as { recordId: string }).recordId),
    );
  });

  test('a run exits 0, reports progress and writes every output under --out', () => {
    const dir = tempDir();
    const file = writeLines(dir, 'in.jsonl', [...claudeLines(120), 'not json']);
    const out = join(dir, 'out');
    const res = cli(
      [
        'local',
        'run',
        file,
        '--model',
        CLAUDE,
        '--out',
        out,
        '--max-records-per-job',
        '50',
        '--account-quota',
        'min-records=25',
        '--max-concurrent-jobs',
        '2',
        '--lambda-time-scale',
        '0.5',
      ],
      dir,
    );
    expect(res.stderr).toMatch(/round 1, 3 job\(s\) to run/);
    expect(res.stderr).toMatch(/3\/3 job\(s\) reconciled/);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/CompletedWithFailures: 121 input, 120 succeeded, 0 failed, 1 rejected; 3 job\(s\) in 1 round\(s\)/);
    for (const name of ['results.jsonl', 'failed.jsonl', 'rejected.jsonl', 'summary.json', 'emulator.json']) expect(existsSync(join(out, name))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    const outputs = readOutputs({ runId: summary.runId, executionName: summary.runId, executionStatus: 'SUCCEEDED', summary, outDir: out, executions: 1 });
    expectConservation(outputs, 121);
    expect(outputs.emulator.maxConcurrentJobs).toBeLessThanOrEqual(2);
    // The sandboxes' time limits were half of each function's Timeout, as asked.
    expect(JSON.parse(readFileSync(join(out, 'emulator.json'), 'utf8')).lambda).toMatchObject({ timeScale: 0.5, timeouts: 0 });
  });

  test('without --out the outputs go to ./bedrock-batch-out/<runId>/', () => {
    const dir = tempDir();
    const file = writeLines(dir, 'in.jsonl', claudeLines(10));
    const res = cli(['local', 'run', file, '--model', 'us.anthropic.claude-3-5-haiku-20241022-v1:0', '--quiet'], dir);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    const runId = /^(local-[\w-]+): Succeeded/m.exec(res.stdout)?.[1];
    expect(runId).toBeDefined();
    const outDir = join(dir, 'bedrock-batch-out', runId!);
    const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8'));
    expectConservation(readOutputs({ runId: runId!, executionName: runId!, executionStatus: 'SUCCEEDED', summary, outDir, executions: 1 }), 10);
    // 10 records are fewer than Bedrock's minimum of 100 per job: the default policy runs them on demand.
    expect(summary).toMatchObject({ status: 'Succeeded', records: { input: 10, succeeded: 10, failed: 0, rejected: 0 }, onDemandRecords: 10, jobs: {} });
  });
});
