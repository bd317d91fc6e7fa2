// @ts-check
/**
 * The local twin (`bedrock-batch local run` and `local up`) runs up to ten Lambda sandboxes as
 * worker threads of one process. On Linux, glibc gives each thread a malloc arena of its own (up
 * to eight per core) and keeps in it what the thread frees, so the twin's memory grew with the
 * input by that fragmentation alone (docs/PERFORMANCE.md, "The whole twin's memory").
 * `MALLOC_ARENA_MAX=2` bounds it, but glibc reads it only when a process starts, and Node cannot
 * call `mallopt`. So these commands start the twin again as a child process with it set, and the
 * first process stays a thin parent (no TypeScript loader, no twin):
 *
 * - The child stays in the parent's process group, so whatever a terminal sends the foreground
 *   job (Ctrl-C, Ctrl-Z, a hangup) reaches it as before, and so do the processes it starts.
 * - The parent passes SIGINT, SIGTERM and SIGHUP on, so a signal sent to the parent alone (`kill
 *   PID`, a test harness, a supervisor) reaches the child too. A signal sent to the whole group
 *   therefore reaches the child twice: its handlers must take a repeat as a no-op (`local up`
 *   does; `local run` has none and ends on the first).
 * - The parent exits with the child's exit code; a child ended by a signal ends the parent by
 *   the same signal, with 128 + its number as the exit code where the signal cannot end it (a
 *   PID 1 in a container ignores it).
 * - The child stops itself with SIGTERM (which `local up` takes as a clean shutdown) once the
 *   parent is gone, even killed with SIGKILL: the IPC channel between them closes.
 *
 * Not relaunched: other commands and platforms, a C library other than glibc (the variable is
 * glibc's), a `MALLOC_ARENA_MAX` the caller set (glibc has read it already), a debugger flag
 * (`--inspect*`, in node's arguments or `NODE_OPTIONS`: the child would want the same port), or
 * `BEDROCK_BATCH_NO_RELAUNCH` set to anything but `0`.
 *
 * Plain JavaScript, so that the parent loads nothing but Node's own modules.
 */
'use strict';
const { spawn } = require('node:child_process');
const { constants } = require('node:os');

/** Set in the child: it was relaunched, and watches its parent through the IPC channel. */
const RELAUNCHED = 'BEDROCK_BATCH_RELAUNCHED';
/** The arenas the child gets (glibc's default is eight per core). */
const ARENAS = '2';
/** The signals the parent passes on to the child. */
const FORWARDED = /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP']);
const DEBUGGER = /(^|\s)--inspect(-brk|-wait)?(=|\s|$)/;

/**
 * Whether this process should start the twin again as a child with `MALLOC_ARENA_MAX` set.
 * @param {readonly string[]} argv the command line's arguments (without node and the script)
 * @param {NodeJS.ProcessEnv} env
 * @param {string} platform
 * @param {readonly string[]} execArgv node's own flags
 * @param {() => boolean} glibc whether the C library is glibc (asked last: it takes a report)
 * @returns {boolean}
 */
function shouldRelaunch(argv, env, platform, execArgv, glibc = runsOnGlibc) {
  if (platform !== 'linux') return false;
  if (argv[0] !== 'local' || (argv[1] !== 'run' && argv[1] !== 'up')) return false;
  if (argv.includes('--help') || argv.includes('-h')) return false;
  if (env.MALLOC_ARENA_MAX !== undefined || env[RELAUNCHED] !== undefined) return false;
  if (env.BEDROCK_BATCH_NO_RELAUNCH !== undefined && env.BEDROCK_BATCH_NO_RELAUNCH !== '0') return false;
  if (execArgv.some((flag) => DEBUGGER.test(flag)) || DEBUGGER.test(env.NODE_OPTIONS ?? '')) return false;
  return glibc();
}

/** Whether Node runs on glibc (its diagnostic report names glibc's version, musl has none). */
function runsOnGlibc() {
  const header = /** @type {{ header?: { glibcVersionRuntime?: string } }} */ (process.report?.getReport() ?? {}).header;
  return typeof header?.glibcVersionRuntime === 'string';
}

/**
 * Starts `script` again as a child process with `MALLOC_ARENA_MAX` set and stands between it and
 * the caller until it exits; then ends this process as the child ended.
 * @param {string} script the command line's entry point
 * @param {readonly string[]} argv its arguments
 */
function relaunch(script, argv) {
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MALLOC_ARENA_MAX: ARENAS, [RELAUNCHED]: '1' },
  });
  /** @type {Array<[NodeJS.Signals, () => void]>} */
  const handlers = FORWARDED.map((signal) => [
    signal,
    () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  ]);
  for (const [signal, pass] of handlers) process.on(signal, pass);
  const release = () => {
    for (const [signal, pass] of handlers) process.off(signal, pass);
  };
  child.on('error', (err) => {
    // 'error' also reports a kill() that failed; only a child that never started ends the parent.
    if (child.pid !== undefined) return;
    release();
    process.stderr.write(`bedrock-batch: could not start the twin: ${err.message}\n`);
    process.exitCode = 1;
  });
  child.once('exit', (code, signal) => {
    release();
    endAs(code, signal, process);
  });
}

/**
 * Ends `proc` as a child ended: with its exit code, or by its signal (and 128 + the signal's
 * number as the exit code, for a process the signal cannot end).
 * @param {number | null} code
 * @param {NodeJS.Signals | null} signal
 * @param {{ exitCode?: number | string | null | undefined, pid: number, kill(pid: number, signal: NodeJS.Signals): unknown }} proc
 */
function endAs(code, signal, proc) {
  if (signal) {
    proc.exitCode = 128 + (constants.signals[signal] ?? 0);
    proc.kill(proc.pid, signal);
  } else {
    proc.exitCode = code ?? 1;
  }
}

/**
 * In a relaunched child: stops this process with SIGTERM once its parent is gone (the IPC
 * channel closes when the parent exits, however it ends), and keeps the two variables the
 * relaunch set from the processes this one starts (glibc has read them). The channel itself
 * keeps nothing alive. Returns whether this process is such a child.
 * @returns {boolean}
 */
function watchParent() {
  if (process.env[RELAUNCHED] !== '1' || !process.channel) return false;
  delete process.env[RELAUNCHED];
  delete process.env.MALLOC_ARENA_MAX;
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.channel.unref();
  return true;
}

module.exports = { shouldRelaunch, relaunch, endAs, watchParent };
