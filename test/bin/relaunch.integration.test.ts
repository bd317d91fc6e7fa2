/**
 * The command line's relaunch (bin/relaunch.js) with a stand-in for the twin
 * (fixtures/relaunched-child.js): the child gets MALLOC_ARENA_MAX=2 and the caller's stdout and
 * passes neither variable on, the parent exits as the child does, the child stays in the
 * caller's process group (a terminal's signals reach it as before), a signal to the parent alone
 * reaches it too, and a parent killed with SIGKILL leaves no child behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until as untilEvery } from '../support/until';

/** Polls every 50 ms, up to 600 looks. */
const until = <T>(what: string, check: () => T | undefined) => untilEvery(what, check, 600, 50);

const PARENT = join(__dirname, 'fixtures', 'relaunching-parent.js');

interface Report {
  pid: number;
  arenas: string | null;
  watching: boolean;
  passedOn: { arenas: string | null; relaunched: string | null };
  execArgv: string[];
  signals: string[];
}

interface Started {
  parent: ChildProcess;
  report: string;
  /** The parent's stdout, once it is closed (the child holds it too). */
  stdout: Promise<string>;
  /** How the parent ended. */
  ended: Promise<{ code: number | null; signal: string | null }>;
}

let dir: string;
/** Processes a failed test may leave behind. */
const started: number[] = [];
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'bb-relaunch-'))));
afterEach(() => {
  const child = readReport(join(dir, 'report.json'))?.pid;
  for (const pid of [...started.splice(0), ...(child ? [child] : [])]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function start(...args: string[]): Started {
  return startWith([], args);
}

/** Starts the parent with node's own flags `nodeFlags`. */
function startWith(nodeFlags: string[], args: string[]): Started {
  const report = join(dir, 'report.json');
  const env = { ...process.env };
  delete env.MALLOC_ARENA_MAX;
  delete env.BEDROCK_BATCH_RELAUNCHED;
  // A process group of its own, as a shell gives a command: the test can signal the group as a terminal does.
  const parent = spawn(process.execPath, [...nodeFlags, PARENT, report, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  started.push(parent.pid!);
  let out = '';
  parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const stdout = new Promise<string>((done) => parent.stdout!.once('close', () => done(out)));
  const ended = new Promise<{ code: number | null; signal: string | null }>((done) => parent.once('exit', (code, signal) => done({ code, signal })));
  return { parent, report, stdout, ended };
}

function readReport(file: string): Report | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Report) : undefined;
}

/** A process's group and state (ps, on Linux and macOS alike), or undefined once it is gone. */
function ps(pid: number): { pgid: number; state: string } | undefined {
  const res = spawnSync('ps', ['-o', 'pgid=,stat=', '-p', String(pid)], { encoding: 'utf8' });
  const [pgid, state] = res.stdout.trim().split(/\s+/);
  return res.status === 0 && pgid && state ? { pgid: Number(pgid), state } : undefined;
}

describe('relaunch', () => {
  test('the child gets MALLOC_ARENA_MAX=2 and the caller stdout, passes neither variable on; the parent exits with its code', async () => {
    const { parent, report, stdout, ended } = start('exit', '7');
    expect(await ended).toEqual({ code: 7, signal: null });
    const seen = readReport(report)!;
    expect(seen).toMatchObject({ arenas: '2', watching: true, passedOn: { arenas: null, relaunched: null } });
    expect(seen.pid).not.toBe(parent.pid);
    expect(await stdout).toBe(`child ${seen.pid} here\n`);
  });

  test("node's own flags reach the child", async () => {
    const { report, ended } = startWith(['--max-old-space-size=321', '--no-warnings'], ['exit', '0']);
    expect(await ended).toEqual({ code: 0, signal: null });
    expect(readReport(report)!.execArgv).toEqual(['--max-old-space-size=321', '--no-warnings']);
  });

  test('a child ended by a signal ends the parent by the same signal', async () => {
    const { ended } = start('die');
    expect(await ended).toEqual({ code: null, signal: 'SIGTERM' });
  });

  test.each(['SIGINT', 'SIGHUP'] as const)('the child stays in the caller group; %s to the parent alone reaches it, through the parent', async (signal) => {
    const { parent, report, ended } = start('wait');
    const child = (await until('the child', () => readReport(report))).pid;
    // In the same group: a terminal's Ctrl-C or Ctrl-Z reaches the child (and what it starts) directly.
    expect(ps(child)!.pgid).toBe(ps(parent.pid!)!.pgid);
    parent.kill(signal);
    await until(`the ${signal} in the child`, () => (readReport(report)!.signals.includes(signal) ? true : undefined));
    parent.kill('SIGTERM');
    expect(await ended).toEqual({ code: 0, signal: null });
    expect(readReport(report)!.signals).toEqual([signal, 'SIGTERM']);
  });

  test('a SIGINT to the whole group reaches the child, directly and through the parent (once or twice: the kernel may merge the two)', async () => {
    const { parent, report, ended } = start('wait');
    await until('the child', () => readReport(report));
    process.kill(-parent.pid!, 'SIGINT');
    await until('the SIGINT in the child', () => (readReport(report)!.signals.includes('SIGINT') ? true : undefined));
    parent.kill('SIGTERM');
    expect(await ended).toEqual({ code: 0, signal: null });
    // A repeat its handlers must bear (local up's do: cli/local-up.ts, stopSignals).
    expect(readReport(report)!.signals.join(' ')).toMatch(/^SIGINT (SIGINT )?SIGTERM$/);
  });

  test('a parent killed with SIGKILL takes the child with it (SIGTERM, so it can stop cleanly)', async () => {
    const { parent, report, ended } = start('wait');
    const child = (await until('the child', () => readReport(report))).pid;
    parent.kill('SIGKILL');
    expect(await ended).toEqual({ code: null, signal: 'SIGKILL' });
    await until('the child to end', () => {
      const seen = ps(child);
      return seen === undefined || seen.state.startsWith('Z') ? true : undefined;
    });
    expect(readReport(report)!.signals).toEqual(['SIGTERM']);
  });
});
