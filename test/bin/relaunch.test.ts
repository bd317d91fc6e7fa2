/**
 * Which command lines start the twin again as a child with MALLOC_ARENA_MAX set
 * (bin/relaunch.js): `local run` and `local up` on Linux with glibc, unless the caller set the
 * variable, the process is already that child, a debugger flag is given, or the caller opted
 * out; and how the parent ends as its child ended.
 */
import { endAs, shouldRelaunch } from '../../bin/relaunch';

const RUN = ['local', 'run', 'in.jsonl', '--model', 'm'];
const glibc = () => true;

describe('shouldRelaunch', () => {
  test.each([
    ['local run', RUN, {}, 'linux', [], true],
    ['local up', ['local', 'up', '--state-dir', 's'], {}, 'linux', [], true],
    ['node flags are kept, not a reason to stay', RUN, {}, 'linux', ['--max-old-space-size=4096'], true],
    ['another platform', RUN, {}, 'darwin', [], false],
    ['another command', ['status', 'r1', '--local', 's'], {}, 'linux', [], false],
    ['local alone', ['local'], {}, 'linux', [], false],
    ['local run --help', [...RUN, '--help'], {}, 'linux', [], false],
    ['local up -h', ['local', 'up', '-h'], {}, 'linux', [], false],
    ['the caller set MALLOC_ARENA_MAX', RUN, { MALLOC_ARENA_MAX: '4' }, 'linux', [], false],
    ['already the relaunched child', RUN, { MALLOC_ARENA_MAX: '2', BEDROCK_BATCH_RELAUNCHED: '1' }, 'linux', [], false],
    ['the marker alone', RUN, { BEDROCK_BATCH_RELAUNCHED: '1' }, 'linux', [], false],
    ['opted out with 1', RUN, { BEDROCK_BATCH_NO_RELAUNCH: '1' }, 'linux', [], false],
    ['opted out with true', RUN, { BEDROCK_BATCH_NO_RELAUNCH: 'true' }, 'linux', [], false],
    ['an opt-out of 0 is none', RUN, { BEDROCK_BATCH_NO_RELAUNCH: '0' }, 'linux', [], true],
    ['--inspect', RUN, {}, 'linux', ['--inspect'], false],
    ['--inspect-brk=9230', RUN, {}, 'linux', ['--inspect-brk=9230'], false],
    ['--inspect-wait', RUN, {}, 'linux', ['--inspect-wait'], false],
    ['--inspect in NODE_OPTIONS', RUN, { NODE_OPTIONS: '--max-old-space-size=4096 --inspect' }, 'linux', [], false],
    ['--inspect-brk=0 in NODE_OPTIONS', RUN, { NODE_OPTIONS: '--inspect-brk=0' }, 'linux', [], false],
    ['other NODE_OPTIONS', RUN, { NODE_OPTIONS: '--enable-source-maps' }, 'linux', [], true],
    ['--inspect-port alone is no debugger', RUN, {}, 'linux', ['--inspect-port=0'], true],
  ])('%s', (_name, argv, env, platform, execArgv, expected) => {
    expect(shouldRelaunch(argv, env, platform, execArgv, glibc)).toBe(expected);
  });

  test('a C library other than glibc (musl): not relaunched, and only asked when all else says yes', () => {
    const asked: string[] = [];
    expect(shouldRelaunch(RUN, {}, 'linux', [], () => (asked.push('asked'), false))).toBe(false);
    expect(shouldRelaunch(['status'], {}, 'linux', [], () => (asked.push('asked'), true))).toBe(false);
    expect(asked).toEqual(['asked']);
  });
});

describe('endAs', () => {
  function fakeProcess() {
    const killed: string[] = [];
    const proc = {
      pid: 4321,
      exitCode: undefined as number | string | null | undefined,
      kill: (pid: number, signal: string) => killed.push(`${pid} ${signal}`),
    };
    return { proc, killed };
  }

  test('an exit code is passed on', () => {
    const { proc, killed } = fakeProcess();
    endAs(3, null, proc);
    expect(proc.exitCode).toBe(3);
    expect(killed).toEqual([]);
  });

  test('a signal is raised again, with 128 + its number as the code where it cannot end the process (PID 1)', () => {
    const { proc, killed } = fakeProcess();
    endAs(null, 'SIGTERM', proc);
    expect(killed).toEqual(['4321 SIGTERM']);
    expect(proc.exitCode).toBe(143);
    endAs(null, 'SIGINT', proc);
    expect(proc.exitCode).toBe(130);
  });
});
