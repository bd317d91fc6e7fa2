/**
 * Lambda in the twin: every invocation of a template function runs in a sandbox of its own, a
 * worker thread started with the function's environment (its template variables, not the
 * twin's), its memory size as the V8 heap limit, and a time limit of the function's timeout
 * scaled like the twin's other clocks. As on Lambda, a sandbox runs one invocation at a time and
 * is kept warm for the next; one that timed out, ran out of memory, crashed or exited is thrown
 * away. What Lambda would refuse fails here with Lambda's error name, which is what the
 * workflow's Retry and Catch match (Step Functions passes a function's `errorType` on as the
 * error), so a handler that would be killed on Lambda is killed here too:
 *
 * - over its time: `Sandbox.Timedout`, "Task timed out after N.NN seconds";
 * - over its memory: `Runtime.OutOfMemory`, "Runtime exited with error: signal: killed";
 * - the process exited (an uncaught error outside the invocation): `Runtime.ExitError`;
 * - an event over the 6 MB invocation payload: `Lambda.RequestTooLargeException`;
 * - a result over 6 MB: `Function.ResponseSizeTooLarge`.
 *
 * Limits and error names, with their sources: docs/ARCHITECTURE.md, "Lambda in the twin".
 *
 * Sandboxes are bounded (`maxSandboxes` in all and `maxSandboxesPerFunction`, running and warm
 * together): an invocation waits for a free one, and a warm sandbox of another function is
 * retired to make room, so the twin's memory depends on how many functions run at once, not on
 * the input's size. The time limit starts when the sandbox takes the invocation.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { CrashRecord } from '../crash-injector';
import type { InvocationIdentity } from '../crash-plan';
import type { AccessChecker } from './access-checks';
import { sandboxBootstrap, sandboxEnvironment } from './lambda-code';
import type { InvokeMessage, SandboxData, SandboxMessage } from './lambda-worker';

/** Lambda's synchronous invocation payload limit, request and response (6 MB). */
export const INVOKE_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;

/** A template function as the runtime runs it. */
export interface SandboxFunction {
  /** The handler name (`lambdas/<name>/handler`), also the function's name in reports. */
  readonly name: string;
  readonly arn: string;
  /** The function's environment variables (template `Environment.Variables`). */
  readonly environment: Readonly<Record<string, string>>;
  /** `MemorySize`, MB: the sandbox's heap limit. */
  readonly memoryMb: number;
  /** `Timeout`, seconds (before scaling). */
  readonly timeoutSeconds: number;
}

export interface LambdaRuntimeOptions {
  /** Variables every sandbox gets over its function's (region, credentials, endpoints, log level). */
  readonly environment: Readonly<Record<string, string>>;
  /** A function's time limit in the twin is `timeoutSeconds * 1000 * timeScale` ms. */
  readonly timeScale: number;
  /** Checks each function's AWS calls against its role (absent: not checked). */
  readonly access?: AccessChecker;
  /** Sandboxes alive at once, running and warm. @default 16 */
  readonly maxSandboxes?: number;
  /**
   * Sandboxes of one function alive at once. Lambda would start more for more concurrent
   * invocations; the twin makes them wait instead, because a cold start costs this machine's
   * CPU (loading the SDK into a fresh isolate) and the twin's clocks are fast. @default 2
   */
  readonly maxSandboxesPerFunction?: number;
  /** Told of every crash of the `handler-crash` fault. */
  readonly onCrash?: (crash: CrashRecord) => void;
  /** The source a sandbox's worker runs (`eval`). @default the pipeline's handlers (lambda-code.ts) */
  readonly bootstrap?: string;
}

/** An invocation's failure as Lambda reports it: `name` is the `errorType`. */
export class LambdaError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** What the runtime did, for reports and the benchmark. */
export interface LambdaRuntimeStats {
  invocations: number;
  /** Sandboxes started (Lambda's cold starts). */
  coldStarts: number;
  /** Sandboxes alive at once, at most. */
  peakSandboxes: number;
  /** Time spent starting sandboxes, ms (summed). */
  coldStartMs: number;
  timeouts: number;
  outOfMemory: number;
}

interface Sandbox {
  readonly fn: SandboxFunction;
  readonly worker: Worker;
  /** Settles the running invocation (set while one runs). */
  settle?: (outcome: { result?: unknown; error?: Error }) => void;
  lastUsed: number;
}

/** Runs template functions in sandboxes. */
export class LambdaRuntime {
  private readonly warm = new Map<string, Sandbox[]>();
  private readonly alive = new Set<Sandbox>();
  private readonly waiting: Array<() => void> = [];
  private readonly max: number;
  private readonly maxPerFunction: number;
  /** Sandboxes alive by function name. */
  private readonly perFunction = new Map<string, number>();
  private stopped = false;
  private readonly counters: LambdaRuntimeStats = { invocations: 0, coldStarts: 0, peakSandboxes: 0, coldStartMs: 0, timeouts: 0, outOfMemory: 0 };

  constructor(private readonly options: LambdaRuntimeOptions) {
    this.max = Math.max(1, options.maxSandboxes ?? 16);
    this.maxPerFunction = Math.max(1, options.maxSandboxesPerFunction ?? 2);
  }

  /**
   * One invocation of `fn` with `event` (JSON in, JSON out). `crash`: under `handler-crash`,
   * the invocation dies after this many writes.
   * @throws LambdaError as Lambda fails an invocation, or the handler's own error (its name kept)
   */
  async invoke(fn: SandboxFunction, event: unknown, crash?: { readonly after: number; readonly identity: InvocationIdentity }): Promise<unknown> {
    const payload = JSON.stringify(event === undefined ? null : event);
    const bytes = Buffer.byteLength(payload);
    if (bytes > INVOKE_PAYLOAD_LIMIT_BYTES) {
      throw new LambdaError(
        'Lambda.RequestTooLargeException',
        `${fn.name}: Request must be smaller than ${INVOKE_PAYLOAD_LIMIT_BYTES} bytes for the InvokeFunction operation (${bytes} bytes)`,
      );
    }
    this.counters.invocations += 1;
    const sandbox = await this.acquire(fn);
    const requestId = randomUUID();
    const timeoutMs = Math.max(1, fn.timeoutSeconds * 1000 * this.options.timeScale);
    const message: InvokeMessage = {
      id: this.counters.invocations,
      requestId,
      payload,
      deadline: Date.now() + timeoutMs,
      ...(crash ? { crashAfter: crash.after, identity: crash.identity } : {}),
    };
    const outcome = await new Promise<{ result?: unknown; error?: Error; discard?: boolean }>((resolve) => {
      const timer = setTimeout(() => {
        this.counters.timeouts += 1;
        resolve({
          error: new LambdaError('Sandbox.Timedout', `RequestId: ${requestId} Error: Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`),
          discard: true,
        });
      }, timeoutMs);
      sandbox.settle = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
      sandbox.worker.postMessage(message);
    });
    sandbox.settle = undefined;
    const discard = outcome.discard || (outcome.error as { crashed?: boolean } | undefined)?.crashed === true;
    if (discard) await this.retire(sandbox);
    else this.release(sandbox);
    if (outcome.error) {
      if (crash && (outcome.error as { crashed?: boolean }).crashed) {
        const post = (outcome.error as unknown as { post: { afterWrite: number; operation: string } }).post;
        this.options.onCrash?.({
          functionName: fn.name,
          attempt: crash.identity.attempt,
          afterWrite: post.afterWrite,
          operation: post.operation,
          ...(crash.identity.subject !== undefined ? { subject: crash.identity.subject } : {}),
        });
      }
      throw outcome.error;
    }
    return outcome.result;
  }

  /** What the runtime did so far. */
  stats(): LambdaRuntimeStats {
    return { ...this.counters };
  }

  /** Ends every sandbox; invocations still waiting for one fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.waiting.splice(0)) wake();
    await Promise.all([...this.alive].map((s) => this.retire(s)));
  }

  /** A warm sandbox of `fn`, or a new one once there is room. */
  private async acquire(fn: SandboxFunction): Promise<Sandbox> {
    for (;;) {
      if (this.stopped) throw new LambdaError('Lambda.ServiceException', `${fn.name}: the twin is stopping`);
      const warm = this.warm.get(fn.name)?.pop();
      if (warm) return warm;
      const room = (this.perFunction.get(fn.name) ?? 0) < this.maxPerFunction;
      if (room && this.alive.size >= this.max) {
        const idle = this.oldestIdle();
        if (idle) await this.retire(idle);
      }
      if (room && this.alive.size < this.max) return this.start(fn);
      await new Promise<void>((wake) => this.waiting.push(wake));
    }
  }

  private oldestIdle(): Sandbox | undefined {
    let oldest: Sandbox | undefined;
    for (const list of this.warm.values()) for (const s of list) if (!oldest || s.lastUsed < oldest.lastUsed) oldest = s;
    return oldest;
  }

  private release(sandbox: Sandbox): void {
    sandbox.lastUsed = Date.now();
    const list = this.warm.get(sandbox.fn.name) ?? [];
    list.push(sandbox);
    this.warm.set(sandbox.fn.name, list);
    this.wakeAll();
  }

  private async retire(sandbox: Sandbox): Promise<void> {
    if (!this.alive.delete(sandbox)) return;
    this.perFunction.set(sandbox.fn.name, (this.perFunction.get(sandbox.fn.name) ?? 1) - 1);
    const list = this.warm.get(sandbox.fn.name);
    if (list?.includes(sandbox)) list.splice(list.indexOf(sandbox), 1);
    await sandbox.worker.terminate();
    this.wakeAll();
  }

  /** Lets every waiting invocation look again (each waits for room of its own function). */
  private wakeAll(): void {
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Starts a sandbox of `fn` (a cold start) and waits until its handler is loaded. */
  private async start(fn: SandboxFunction): Promise<Sandbox> {
    const began = Date.now();
    const env = sandboxEnvironment(fn, this.options.environment);
    const statements = this.options.access?.statementsOf(fn.name);
    const data: SandboxData = {
      name: fn.name,
      arn: fn.arn,
      memoryMb: fn.memoryMb,
      ...(this.options.access ? { statements: statements ?? [] } : {}),
      callEnvironment: this.options.access?.environment ?? { region: '', account: '', stateMachineArn: '', partitionKey: '' },
    };
    const worker = new Worker(this.options.bootstrap ?? sandboxBootstrap(), {
      eval: true,
      env,
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: fn.memoryMb },
    });
    const sandbox: Sandbox = { fn, worker, lastUsed: began };
    this.alive.add(sandbox);
    this.perFunction.set(fn.name, (this.perFunction.get(fn.name) ?? 0) + 1);
    this.counters.coldStarts += 1;
    this.counters.peakSandboxes = Math.max(this.counters.peakSandboxes, this.alive.size);
    let ready!: (error?: Error) => void;
    const started = new Promise<Error | undefined>((resolve) => (ready = resolve));
    worker.on('message', (m: SandboxMessage) => {
      if (m.kind === 'ready') ready();
      else if (m.kind === 'init-error') ready(new LambdaError(m.name, `${fn.name}: ${m.message}`));
      else if (m.kind === 'access') this.options.access?.absorb(m.record);
      else if (m.kind === 'result') sandbox.settle?.({ result: JSON.parse(m.payload), ...this.resultLimit(fn, m.payload) });
      else if (m.kind === 'error') {
        const error = new LambdaError(m.name, m.message);
        if (m.crashed) Object.assign(error, { crashed: true, post: m.crashed });
        sandbox.settle?.({ error });
      }
    });
    const died = (error: LambdaError) => {
      ready(error);
      sandbox.settle?.({ error, discard: true } as { error: Error });
      void this.retire(sandbox);
    };
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.counters.outOfMemory += 1;
        died(new LambdaError('Runtime.OutOfMemory', `RequestId: ${fn.name} Error: Runtime exited with error: signal: killed (heap limit ${fn.memoryMb} MB)`));
      } else died(new LambdaError('Runtime.ExitError', `${fn.name}: Runtime exited with error: ${err.name}: ${err.message}`));
    });
    worker.on('exit', (code) => {
      if (this.alive.has(sandbox)) died(new LambdaError('Runtime.ExitError', `${fn.name}: Runtime exited with error: exit status ${code}`));
    });
    const failure = await started;
    this.counters.coldStartMs += Date.now() - began;
    if (failure) {
      await this.retire(sandbox);
      throw failure;
    }
    return sandbox;
  }

  /** A result over Lambda's response limit, as the error it becomes. */
  private resultLimit(fn: SandboxFunction, payload: string): { error?: Error } {
    const bytes = Buffer.byteLength(payload);
    if (bytes <= INVOKE_PAYLOAD_LIMIT_BYTES) return {};
    return {
      error: new LambdaError(
        'Function.ResponseSizeTooLarge',
        `${fn.name}: Response payload size (${bytes} bytes) exceeded maximum allowed payload size (${INVOKE_PAYLOAD_LIMIT_BYTES} bytes).`,
      ),
    };
  }
}
