/**
 * Inside one of the twin's Lambda sandboxes (a worker thread, lambda-runtime.ts): loads one
 * function's handler, then runs the invocations the parent sends, one at a time, as the Lambda
 * runtime does. The function's AWS calls are checked here against its role's policies (the
 * check must refuse a call before it is sent, so it runs where the call is made) and every
 * decision is posted to the parent, which keeps the twin's report. Under the `handler-crash`
 * fault the parent says after which write the invocation dies; the worker is then discarded.
 */
import { types } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { CrashInjector, type CrashRecord } from '../crash-injector';
import type { InvocationIdentity } from '../crash-plan';
import { AccessChecker, runAsFunction, type AccessRecord } from './access-checks';
import type { CallEnvironment } from './iam-calls';
import type { PolicyStatement } from './iam-policies';
import { postAndFreeze, type FreezeCell } from './sandbox-freeze';

/** A handler as a sandbox calls it: the event and Lambda's context object. */
export type SandboxHandler = (event: unknown, context: LambdaContext) => Promise<unknown>;

/** The handler of a function, by its handler name (`lambdas/<name>/handler`). */
export type HandlerLoader = (name: string) => SandboxHandler;

/** The part of Lambda's context object the twin gives. */
export interface LambdaContext {
  readonly functionName: string;
  readonly functionVersion: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly awsRequestId: string;
  readonly callbackWaitsForEmptyEventLoop: boolean;
  getRemainingTimeInMillis(): number;
}

/** What a sandbox is started with (`workerData`). */
export interface SandboxData {
  /** The function's handler name. */
  readonly name: string;
  readonly arn: string;
  readonly memoryMb: number;
  /** The function's role's statements. Absent: calls are not checked. */
  readonly statements?: readonly PolicyStatement[];
  readonly callEnvironment: CallEnvironment;
  /** Shared with the runtime: the sandbox freezes on it between invocations (sandbox-freeze.ts). */
  readonly freeze: FreezeCell;
}

/** Parent -> sandbox: run one invocation. */
export interface InvokeMessage {
  readonly id: number;
  readonly requestId: string;
  /** The event as JSON text (Lambda's boundary is JSON). */
  readonly payload: string;
  /** When the invocation times out, in `Date.now()` ms. */
  readonly deadline: number;
  /** Under `handler-crash`: die after this write. */
  readonly crashAfter?: number;
  readonly identity?: InvocationIdentity;
}

/** Sandbox -> parent. */
export type SandboxMessage =
  | { readonly kind: 'ready' }
  | { readonly kind: 'init-error'; readonly name: string; readonly message: string }
  | { readonly kind: 'result'; readonly id: number; readonly payload: string }
  | { readonly kind: 'error'; readonly id: number; readonly name: string; readonly message: string; readonly crashed?: CrashRecord }
  | { readonly kind: 'access'; readonly record: AccessRecord }
  /** The sandbox uses more than its memory size (heap and Buffers): Lambda would kill it. */
  | { readonly kind: 'memory'; readonly usedMb: number };

/** How often a sandbox compares its memory with its memory size, ms. */
const MEMORY_SAMPLE_MS = 50;

/** Runs the sandbox: call from the worker's entry with how handlers are loaded. */
export function runSandbox(load: HandlerLoader): void {
  const port = parentPort;
  if (!port) throw new Error('lambda-worker runs only in a worker thread');
  const data = workerData as SandboxData;
  const post = (message: SandboxMessage) => port.postMessage(message);
  // An invocation's outcome, after which the sandbox is frozen until its next invocation.
  const answer = (message: SandboxMessage) => postAndFreeze(data.freeze, () => post(message));
  let handler: SandboxHandler;
  try {
    handler = load(data.name);
  } catch (err) {
    post({ kind: 'init-error', name: (err as Error).name ?? 'Error', message: (err as Error).message ?? String(err) });
    return;
  }
  // V8's heap limit (the parent's resourceLimits) does not cover Buffers, which Lambda counts
  // all the same: sample this isolate's heap and external memory while it lives. A burst of
  // allocations between two samples can pass; code that awaits between them (streams) cannot.
  let overMemory = false;
  let running = 0;
  const limitBytes = data.memoryMb * 1024 * 1024;
  setInterval(() => {
    if (overMemory || running === 0) return;
    const heap = getHeapStatistics();
    const used = heap.used_heap_size + heap.external_memory;
    if (used <= limitBytes) return;
    overMemory = true;
    post({ kind: 'memory', usedMb: Math.round(used / (1024 * 1024)) });
  }, MEMORY_SAMPLE_MS).unref();

  const checker = data.statements
    ? new AccessChecker(new Map([[data.name, data.statements]]), data.callEnvironment, (record) => post({ kind: 'access', record }))
    : undefined;

  port.on('message', (message: InvokeMessage) => {
    const context: LambdaContext = {
      functionName: data.name,
      functionVersion: '$LATEST',
      invokedFunctionArn: data.arn,
      memoryLimitInMB: String(data.memoryMb),
      awsRequestId: message.requestId,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    };
    let crash: CrashRecord | undefined;
    const run = () => runAsFunction(checker, data.name, async () => handler(JSON.parse(message.payload), context));
    let injector: CrashInjector | undefined;
    if (message.crashAfter !== undefined && message.identity) {
      injector = new CrashInjector(
        () => message.crashAfter,
        (record) => (crash = record),
      );
    }
    running += 1;
    const invocation = injector && message.identity ? injector.run(message.identity, run) : run();
    invocation
      .finally(() => {
        running -= 1;
        injector?.uninstall();
      })
      .then(
        (result) => {
          // Lambda answers with the result as JSON: undefined (or a function) is null; a value
          // JSON cannot write (a BigInt, a cycle) fails the invocation with JSON's own error.
          let payload: string;
          try {
            payload = JSON.stringify(result === undefined ? null : result) ?? 'null';
          } catch (err) {
            answer({ kind: 'error', id: message.id, ...reportedError(err) });
            return;
          }
          answer({ kind: 'result', id: message.id, payload });
        },
        (err: unknown) => {
          answer({ kind: 'error', id: message.id, ...reportedError(err), ...(crash ? { crashed: crash } : {}) });
        },
      );
  });
  post({ kind: 'ready' });
}

/**
 * The error type and message Lambda's Node.js runtime reports for what a handler threw (its
 * runtime interface client, aws/aws-lambda-nodejs-runtime-interface-client, `src/Errors.js`,
 * `toRapidResponse`): an Error (or a value with string `name`, `message` and `stack`) by its
 * name and message; any other value by its `typeof` and its `toString()`; a value whose
 * `toString()` fails (null, undefined) as `handled`.
 */
export function reportedError(err: unknown): { name: string; message: string } {
  try {
    if (types.isNativeError(err) || isErrorLike(err)) return { name: String(err.name), message: String(err.message) };
    return { name: typeof err, message: String((err as { toString(): unknown }).toString()) };
  } catch {
    return {
      name: 'handled',
      message: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function isErrorLike(value: unknown): value is { name: string; message: string; stack: string } {
  const v = value as { name?: unknown; message?: unknown; stack?: unknown } | null | undefined;
  return Boolean(v && v.name && v.message && v.stack && typeof v.name === 'string' && typeof v.message === 'string' && typeof v.stack === 'string');
}
