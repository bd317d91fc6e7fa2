/**
 * `local run --app`: the twin runs a pipeline of the consumer's own CDK app (here a stack with
 * two pipelines), picked with --pipeline, files dropped on one of its routes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunSummary } from '../../lambdas/finalize/run-summary';
import { claudeLines, readJsonl, tempDir, writeLines } from './helpers';

const ROOT = join(__dirname, '..', '..');
const APP = `"${process.execPath}" -r "${require.resolve('tsx/cjs')}" test/e2e/fixtures/consumer-app.ts`;

function cli(args: string[]) {
  const res = spawnSync(process.execPath, [join(ROOT, 'bin', 'bedrock-batch.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('local run --app', () => {
  const dir = tempDir('bb-app-');
  const file = writeLines(dir, 'tickets.jsonl', [...claudeLines(120), 'not json']);

  test("runs the named pipeline of the consumer's app on its route, with its own settings", () => {
    const out = join(dir, 'out');
    const res = cli([
      'local',
      'run',
      file,
      '--app',
      APP,
      '--pipeline',
      'Tickets',
      '--route',
      'tickets',
      '--account-quota',
      'min-records=10',
      '--out',
      out,
      '--quiet',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    const results = readJsonl<{ recordId: string }>(join(out, 'results.jsonl'));
    const failed = readJsonl<{ recordId: string }>(join(out, 'failed.jsonl'));
    const rejected = readJsonl<{ line: number }>(join(out, 'rejected.jsonl'));
    // Conservation: 121 lines = succeeded + failed + rejected, each record once.
    expect(summary.records).toEqual({ input: 121, succeeded: 120, failed: 0, rejected: 1 });
    expect(results.length + failed.length + rejected.length).toBe(121);
    expect(new Set(results.map((r) => r.recordId)).size).toBe(120);
    // The app's route settings, not the package's defaults: 50-record jobs on Claude 3 Haiku, at most 2 at once.
    expect(summary.route).toBe('tickets');
    expect(summary.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(Object.values(summary.jobs).reduce((a, b) => a + b, 0)).toBe(3);
    const emulator = JSON.parse(readFileSync(join(out, 'emulator.json'), 'utf8')) as { maxConcurrentJobs: number };
    expect(emulator.maxConcurrentJobs).toBeLessThanOrEqual(2);
    const access = JSON.parse(readFileSync(join(out, 'access.json'), 'utf8')) as { denied: number };
    expect(access.denied).toBe(0);
  });

  test.each([
    [[], /^bedrock-batch: --app: the app has 2 pipelines \(Consumer\/Tickets, Consumer\/Evals\): name one with --pipeline$/],
    [['--pipeline', 'Nope'], /^bedrock-batch: --pipeline Nope: no such pipeline \(the app has Consumer\/Tickets, Consumer\/Evals\)$/],
    [['--pipeline', 'Consumer/Tickets', '--route', 'nova'], /^bedrock-batch: --route nova: the pipeline Consumer\/Tickets has routes tickets$/],
  ])('%j: exits 2 with one line saying what to choose', (extra, message) => {
    const res = cli(['local', 'run', file, '--app', APP, ...extra, '--quiet']);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr.trim()).toMatch(message);
  });

  test("this repository's own app, whose routes are in cdk.json's context, as `cdk synth` would give it", () => {
    const out = join(dir, 'own');
    const own = `"${process.execPath}" -r "${require.resolve('tsx/cjs')}" bin/app.ts`;
    const res = cli(['local', 'run', file, '--app', own, '--out', out, '--quiet']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    // cdk.json: route default on Claude 3 Haiku, 100..50,000 records per job: one job of 120.
    expect(summary).toMatchObject({
      route: 'default',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      records: { input: 121, succeeded: 120, failed: 0, rejected: 1 },
    });
    expect(summary.jobs).toEqual({ Completed: 1 });
    const ids = readJsonl<{ recordId: string }>(join(out, 'results.jsonl')).map((r) => r.recordId);
    expect({ lines: ids.length, unique: new Set(ids).size, rejected: readJsonl(join(out, 'rejected.jsonl')).length }).toEqual({
      lines: 120,
      unique: 120,
      rejected: 1,
    });
    // IAM in the twin, for a run in another process: the suite's own check sees only this one.
    const access = JSON.parse(readFileSync(join(out, 'access.json'), 'utf8')) as { denied: number; calls: Array<{ allowed: boolean }> };
    expect({ denied: access.denied, refused: access.calls.filter((c) => !c.allowed).length }).toEqual({ denied: 0, refused: 0 });
  });

  test('an app command that fails is named with its last line of output', () => {
    const res = cli(['local', 'run', file, '--app', `"${process.execPath}" -e "console.error('no credentials for lookup'); process.exit(3)"`, '--quiet']);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toMatch(/^bedrock-batch: --app: '.*' exited with code 3: no credentials for lookup$/);
  });
  test('--one-run-per-file on an app whose drop bucket sends no events to EventBridge: refused, as no run would start on AWS', () => {
    const out = join(dir, 'out-no-events');
    const noEvents = `"${process.execPath}" -r "${require.resolve('tsx/cjs')}" test/e2e/fixtures/no-events-app.ts`;
    const res = cli(['local', 'run', file, '--app', noEvents, '--route', 'tickets', '--one-run-per-file', '--out', out, '--quiet']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('does not send its events to EventBridge');
    // Nothing ran, so no record reached an output: no folder was written.
    expect(existsSync(out)).toBe(false);
  });
});
