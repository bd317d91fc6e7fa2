import type { CrashRecord } from '../crash-injector';

/**
 * Lambda's limits and the errors the twin's sandboxes (lambda-runtime.ts) fail with, named as
 * Lambda names them: the name is the `errorType` that the workflow's Retry and Catch match.
 * Sources: docs/ARCHITECTURE.md, "Lambda in the twin".
 */

/** Lambda's synchronous invocation payload limit, request and response (6 MB). */
export const INVOKE_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;

/** An invocation's failure as Lambda reports it: `name` is the `errorType`. */
export class LambdaError extends Error {
  /**
   * @param crash set when the invocation died under the twin's `handler-crash` fault (its
   *   sandbox is then thrown away)
   */
  constructor(
    name: string,
    message: string,
    readonly crash?: CrashRecord,
  ) {
    super(message);
    this.name = name;
  }
}

/** The name of a function in messages. */
interface Named {
  readonly name: string;
}

/** Over its (scaled) timeout. */
export function timedOut(requestId: string, timeoutSeconds: number): LambdaError {
  return new LambdaError('Sandbox.Timedout', `RequestId: ${requestId} Error: Task timed out after ${timeoutSeconds.toFixed(2)} seconds`);
}

/** Loading the handler (Lambda's init phase) took longer than `ms`. */
export function initTimedOut(fn: Named, ms: number): LambdaError {
  return new LambdaError('Sandbox.Timedout', `${fn.name}: the function's init did not end within ${(ms / 1000).toFixed(2)} seconds`);
}

/** Over its memory size: `used` says how (e.g. "its heap full", "80 MB in use"). */
export function outOfMemory(requestId: string | undefined, memoryMb: number, used: string): LambdaError {
  return new LambdaError(
    'Runtime.OutOfMemory',
    `RequestId: ${requestId ?? 'init'} Error: Runtime exited with error: signal: killed (${used} over the memory size of ${memoryMb} MB)`,
  );
}

/** The runtime process ended (an uncaught error outside the invocation, `process.exit`). */
export function exited(fn: Named, detail: string): LambdaError {
  return new LambdaError('Runtime.ExitError', `${fn.name}: Runtime exited with error: ${detail}`);
}

/** The twin is stopping: invocations waiting for, starting or running in a sandbox fail. */
export function stopping(fn: Named): LambdaError {
  return new LambdaError('Lambda.ServiceException', `${fn.name}: the twin is stopping`);
}

/** An event over the invocation payload limit (refused before it runs). */
export function requestTooLarge(fn: Named, bytes: number): LambdaError {
  return new LambdaError(
    'Lambda.RequestTooLargeException',
    `${fn.name}: Request must be smaller than ${INVOKE_PAYLOAD_LIMIT_BYTES} bytes for the InvokeFunction operation (${bytes} bytes)`,
  );
}

/** A result (JSON text) over the payload limit, as the error it becomes; undefined when within it. */
export function responseTooLarge(fn: Named, payload: string): LambdaError | undefined {
  const bytes = Buffer.byteLength(payload);
  if (bytes <= INVOKE_PAYLOAD_LIMIT_BYTES) return undefined;
  return new LambdaError(
    'Function.ResponseSizeTooLarge',
    `${fn.name}: Response payload size (${bytes} bytes) exceeded maximum allowed payload size (${INVOKE_PAYLOAD_LIMIT_BYTES} bytes).`,
  );
}
