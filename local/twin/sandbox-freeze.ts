/**
 * Lambda freezes an execution environment between invocations: once the handler has answered,
 * nothing in it runs until the environment is invoked again, and then what a handler left
 * running (a timer, a promise it did not await, a socket's callback) resumes
 * (<https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>, "Invoke
 * phase" and "Function code": "Background processes or callbacks that were initiated by your
 * Lambda function and did not complete when the function ended resume if Lambda reuses the
 * execution environment"). A sandbox does the same: right after it posts an invocation's
 * outcome it blocks its thread on a cell shared with the runtime (`Atomics.wait`), in the same
 * synchronous step, so nothing of the handler's runs in between (promise reactions already
 * queued when it answered run after the thaw, before the next invocation's handler). The
 * runtime thaws it before the next invocation, and ends a sandbox it retires without thawing it
 * (`worker.terminate()` ends a waiting thread), so what was left running never runs again, and
 * neither do log lines the handler wrote just before answering that the worker had not yet
 * passed on. A handler that relies on work finishing after it answered fails here as it would
 * on Lambda.
 */

const THAWED = 0;
const FROZEN = 1;

/** The cell a sandbox and its runtime share (shared memory, handed over in `workerData`). */
export type FreezeCell = Int32Array;

export function freezeCell(): FreezeCell {
  return new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
}

/**
 * In the sandbox: posts an invocation's outcome with `post` and stays frozen until thawed. The
 * cell is marked first, so a thaw that comes before the wait is not lost.
 */
export function postAndFreeze(cell: FreezeCell, post: () => void): void {
  Atomics.store(cell, 0, FROZEN);
  post();
  Atomics.wait(cell, 0, FROZEN);
}

/** In the runtime: lets a frozen sandbox run again, before its next invocation. */
export function thaw(cell: FreezeCell): void {
  Atomics.store(cell, 0, THAWED);
  Atomics.notify(cell, 0);
}
