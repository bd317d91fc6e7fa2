/**
 * The command line as a user runs it: a separate process, exit codes 0 / 1 / 2, one-line
 * reasons, outputs where the docs say.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
    [['local', 'run', 'x.jsonl', '--model', CLAUDE, '--max-records-per-job', 'ten'], /^bedrock-batch: --max-records-per-job must be an integer in 1..50000, got 'ten'$/],
    [['local', 'run', 'x.jsonl', '--model', CLAUDE, '--faults', 'record-eror=0.1'], /^bedrock-batch: --faults: .*record-eror/],
    [['local', 'run', 'x.jsonl', '--model', CLAUDE, '--bogus'], /^bedrock-batch: unknown option --bogus$/],
    [['remote', 'run'], /^bedrock-batch: unknown command 'remote run'/],
  ])('bad usage %j exits 2 with one line', (args, message) => {
    const res = cli(args);
    expect(res.code).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(res.stdout).toBe('');
  });

  test('a run exits 0, reports progress and writes every output under --out', () => {
    const dir = tempDir();
    const file = writeLines(dir, 'in.jsonl', [...claudeLines(120), 'not json']);
    const out = join(dir, 'out');
    const res = cli(['local', 'run', file, '--model', CLAUDE, '--out', out, '--max-records-per-job', '50', '--max-concurrent-jobs', '2'], dir);
    expect(res.stderr).toMatch(/round 1, 3 job\(s\) to run/);
    expect(res.stderr).toMatch(/3\/3 job\(s\) reconciled/);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/CompletedWithFailures: 121 input, 120 succeeded, 0 failed, 1 rejected; 3 job\(s\) in 1 round\(s\)/);
    for (const name of ['results.jsonl', 'failed.jsonl', 'rejected.jsonl', 'summary.json', 'emulator.json']) expect(existsSync(join(out, name))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    const outputs = readOutputs({ runId: summary.runId, executionName: summary.runId, executionStatus: 'SUCCEEDED', summary, outDir: out, executions: 1 });
    expectConservation(outputs, 121);
    expect(outputs.emulator.maxConcurrentJobs).toBeLessThanOrEqual(2);
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
