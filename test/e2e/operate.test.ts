/**
 * The operator commands end to end, through the command line only, as a user runs them against
 * a twin kept running by `local up`: submit, status --json while it runs, stop mid-run (jobs
 * finished, running and queued), results, list, submit --wait, status --watch in a
 * pseudo-terminal, and a clean shutdown on SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunView } from '../../cli/run-view';
import type { RunSummary } from '../../lambdas/finalize/run-summary';
import { until } from '../support/until';
import { claudeLines, CLAUDE, readJsonl, tempDir, writeLines } from './helpers';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'bedrock-batch.js');
const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
// The relaunch with MALLOC_ARENA_MAX (bin/relaunch.js) as users get it, whatever the caller's shell sets.
delete env.MALLOC_ARENA_MAX;
delete env.BEDROCK_BATCH_NO_RELAUNCH;

function cli(args: string[]) {
  const res = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((done) => (child.exitCode !== null ? done(child.exitCode) : child.once('exit', (code) => done(code))));
}

describe('operator commands against `local up`', () => {
  const state = tempDir('bb-up-');
  const work = tempDir('bb-op-');
  let twin: ChildProcess;
  let twinLog = '';
  const local = ['--local', state];

  beforeAll(async () => {
    twin = spawn(
      process.execPath,
      [BIN, 'local', 'up', '--state-dir', state, '--model', CLAUDE, '--max-records-per-job', '50', '--min-records-per-job', '10'].concat([
        '--max-concurrent-jobs',
        '2',
        '--account-quota',
        'min-records=10',
        '--step-delay-ms',
        '300',
      ]),
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    twin.stderr!.on('data', (d: Buffer) => (twinLog += d.toString()));
    twin.stdout!.on('data', (d: Buffer) => (twinLog += d.toString()));
    await until(
      'endpoints.json',
      () => (existsSync(join(state, 'endpoints.json')) ? true : twin.exitCode !== null ? Promise.reject(new Error(twinLog)) : undefined),
      1200,
    );
  });

  afterAll(async () => {
    if (twin.exitCode === null) {
      twin.kill('SIGKILL');
      await exited(twin);
    }
  });

  test('submit, watch, stop mid-run, fetch and list: every record comes back once', async () => {
    // 20 chunks of 50 behind a cap of 2: once the stop is seen with fewer than 6 jobs, at least
    // 7 more rounds of jobs (seconds each at a 300 ms step delay) stand between it and the queue
    // draining, so the separate stop process cannot arrive after every record has finished.
    const file = writeLines(work, 'stop-me.jsonl', claudeLines(1000));
    const submitted = cli(['submit', file, '--run-id', 'op-stop', ...local]);
    expect(submitted).toMatchObject({ code: 0, stdout: 'op-stop\n' });

    // Stop once a chunk is reconciled, a job is running and some chunks have no job yet (queued behind the cap of 2).
    const seen = await until('a run with finished, running and queued jobs', () => {
      const res = cli(['status', 'op-stop', '--json', ...local]);
      expect(res.code).toBe(0);
      const view = JSON.parse(res.stdout) as RunView;
      expect(view.status).toMatch(/^(Preparing|Running)$/);
      const running = view.jobs.filter((j) => j.total !== undefined);
      return view.records.succeeded > 0 && running.length > 0 && view.jobs.length < 6 ? view : undefined;
    });
    expect(seen.slots!.cap).toBe(2);
    expect(seen.slots!.held).toBeLessThanOrEqual(2);
    expect(seen.records.prepared).toBe(1000);

    const stopped = cli(['stop', 'op-stop', '--json', ...local]);
    expect(stopped.code).toBe(0);
    const view = JSON.parse(stopped.stdout) as RunView;
    expect(view).toMatchObject({ status: 'Stopped', final: true });

    const out = join(work, 'out-stop');
    const fetched = cli(['results', 'op-stop', '--out', out, ...local]);
    expect(fetched.code).toBe(0);
    expect(fetched.stdout.trim().split('\n')).toEqual(
      expect.arrayContaining([join(out, 'summary.json'), join(out, 'results.jsonl'), join(out, 'failed.jsonl')]),
    );
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    const results = readJsonl<{ recordId: string }>(join(out, 'results.jsonl'));
    const failed = readJsonl<{ recordId: string; error: { code: string } }>(join(out, 'failed.jsonl'));
    // Conservation: 1,000 lines = succeeded + failed + rejected, each record exactly once.
    expect(summary.records).toEqual({ input: 1000, succeeded: results.length, failed: failed.length, rejected: 0 });
    expect(new Set([...results, ...failed].map((r) => r.recordId)).size).toBe(1000);
    // What had finished before the stop came back succeeded; only unfinished records failed, as RunStopped.
    expect(results.length).toBeGreaterThanOrEqual(seen.records.succeeded);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f.error.code).toBe('RunStopped');

    const listed = cli(['list', '--json', ...local]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ runId: 'op-stop', status: 'Stopped', records: summary.records })]),
    );
  });

  test('submit --wait follows a run to its end; status --watch on a terminal draws progress bars', async () => {
    const small = writeLines(work, 'small.jsonl', claudeLines(60, 'small'));
    const waited = cli(['submit', small, '--run-id', 'op-wait', '--wait', '--json', ...local]);
    expect(waited.code).toBe(0);
    const [started, ...changes] = waited.stdout.trim().split('\n');
    expect(JSON.parse(started!)).toMatchObject({ runId: 'op-wait' });
    const last = JSON.parse(changes.at(-1)!) as RunView;
    expect(last).toMatchObject({ status: 'Succeeded', records: { input: 60, succeeded: 60, failed: 0, rejected: 0 } });

    const big = writeLines(work, 'watched.jsonl', claudeLines(200, 'w'));
    expect(cli(['submit', big, '--run-id', 'op-watch', ...local]).code).toBe(0);
    // `script` runs the command in a pseudo-terminal: stdout is a TTY, as in a user's shell.
    const command = [process.execPath, BIN, 'status', 'op-watch', '--watch', '--interval', '1', ...local].map((a) => `'${a}'`).join(' ');
    const watched = spawnSync('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, encoding: 'utf8', env });
    expect(watched.status).toBe(0);
    expect(watched.stdout).toContain('records finished');
    expect(watched.stdout).toMatch(/\u2588/); // a filled bar cell
    expect(watched.stdout).toContain('op-watch: Succeeded');
    const final = JSON.parse(cli(['status', 'op-watch', '--json', ...local]).stdout) as RunView;
    expect(final.records).toEqual({ input: 200, prepared: 200, succeeded: 200, failed: 0, rejected: 0 });

    // Conservation, record by record: every input line of both runs came back exactly once.
    for (const [runId, count] of [
      ['op-wait', 60],
      ['op-watch', 200],
    ] as const) {
      const out = join(work, `out-${runId}`);
      expect(cli(['results', runId, '--out', out, ...local]).code).toBe(0);
      const ids = readJsonl<{ recordId: string }>(join(out, 'results.jsonl')).map((r) => r.recordId);
      expect({ runId, lines: ids.length, unique: new Set(ids).size, failed: readJsonl(join(out, 'failed.jsonl')).length }).toEqual({
        runId,
        lines: count,
        unique: count,
        failed: 0,
      });
    }
  });

  test('unknown run ids and a missing twin each get one line', () => {
    const unknown = cli(['status', 'no-such-run', ...local]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe(`bedrock-batch: no run 'no-such-run' in the local twin in ${state}`);
    const none = cli(['list', '--local', work]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/^bedrock-batch: no twin is running in /);
  });

  test('SIGTERM stops the twin cleanly: endpoints.json is removed and access.json shows no denied call', async () => {
    // On Linux the command line runs the twin as its child with MALLOC_ARENA_MAX=2 (bin/relaunch.js).
    const { pid } = JSON.parse(readFileSync(join(state, 'endpoints.json'), 'utf8')) as { pid: number };
    if (process.platform === 'linux') {
      expect(pid).not.toBe(twin.pid);
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
    }
    twin.kill('SIGTERM');
    expect(await exited(twin)).toBe(0);
    // The signal reached the twin through the parent: it is gone too.
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(existsSync(join(state, 'endpoints.json'))).toBe(false);
    const access = JSON.parse(readFileSync(join(state, 'access.json'), 'utf8')) as { denied: number; calls: unknown[] };
    expect(access.denied).toBe(0);
    expect(access.calls.length).toBeGreaterThan(0);
  });
});
