/**
 * Lambda in the twin: every invocation of a template function runs in a sandbox of its own, a
 * worker thread with the function's environment (its template variables, not the twin's), its
 * memory size as the limit of its heap (and of heap plus Buffers, sampled by the sandbox), and
 * its timeout, scaled like the twin's other clocks. As on Lambda, a sandbox runs one invocation
 * at a time and is kept warm for the next; one that timed out, ran out of memory, crashed or
 * exited is thrown away. What Lambda would refuse fails with Lambda's error name
 * (lambda-errors.ts), which the workflow's Retry and Catch match. Limits and error names, with
 * their sources: docs/ARCHITECTURE.md, "Lambda in the twin".
 *
 * Sandboxes are bounded (`maxSandboxes`, `maxSandboxesPerFunction`, running and warm): an
 * invocation waits for one, retiring a warm sandbox of another function, so their number follows
 * the functions running at once, not the input. The time limit starts when a sandbox takes it.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { CrashRecord } from '../crash-injector';
import type { InvocationIdentity } from '../crash-plan';
import type { AccessChecker } from './access-checks';
import { sandboxBootstrap, sandboxEnvironment } from './lambda-code';
import * as errors from './lambda-errors';
import type { InvokeMessage, SandboxData, SandboxMessage } from './lambda-worker';
import { freezeCell, thaw, type FreezeCell } from './sandbox-freeze';

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
  /** Sandboxes alive at once, running and warm (each costs ~60 MiB of this machine). @default 10 */
  readonly maxSandboxes?: number;
  /**
   * Sandboxes of one function alive at once. Lambda would start more for more concurrent
   * invocations; the twin makes them wait instead, because a cold start costs this machine's
   * CPU (loading the SDK into a fresh isolate) and the twin's clocks are fast. @default 2
   */
  readonly maxSandboxesPerFunction?: number;
  /**
   * A sandbox's young generation, MB. V8 gives a worker up to 48 MB by default, most of it
   * committed once the handler allocates; the twin's many warm sandboxes would hold it all. The
   * old generation (the memory size) is unchanged. @default 8
   */
  readonly youngGenerationMb?: number;
  /** Told of every crash of the `handler-crash` fault. */
  readonly onCrash?: (crash: CrashRecord) => void;
  /** The source a sandbox's worker runs (`eval`). @default the pipeline's handlers (lambda-code.ts) */
  readonly bootstrap?: string;
  /**
   * How long a sandbox may take to load its handler (Lambda's 10-second init phase; not scaled,
   * since it is this machine's CPU work). @default 10000
   */
  readonly initTimeoutMs?: number;
}

/** What the runtime did, for reports and the benchmark. */
export interface LambdaRuntimeStats {
  invocations: number;
  /** Invocations by function (`prepare`, `end-round`, ...). */
  invocationsByFunction: Record<string, number>;
  /** Sandboxes started (Lambda's cold starts). */
  coldStarts: number;
  /** Sandboxes alive at once, at most. */
  peakSandboxes: number;
  /** Time spent starting sandboxes, ms (summed). */
  coldStartMs: number;
  timeouts: number;
  outOfMemory: number;
  /** The time limits' scale: a function's limit is its `Timeout` times this. */
  timeScale: number;
}
type Counters = Omit<LambdaRuntimeStats, 'timeScale' | 'invocationsByFunction'>;

interface Sandbox {
  readonly fn: SandboxFunction;
  readonly worker: Worker;
  /** Ends the cold start (set while the handler loads). */
  ready?: (error?: Error) => void;
  /** Settles the running invocation (set while one runs). */
  settle?: (outcome: { result?: unknown; error?: Error; discard?: boolean }) => void;
  /** The running invocation's request id. */
  requestId?: string;
  /** Shared with the sandbox, which freezes on it between invocations. */
  readonly freeze: FreezeCell;
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
  private readonly counters: Counters = { invocations: 0, coldStarts: 0, peakSandboxes: 0, coldStartMs: 0, timeouts: 0, outOfMemory: 0 };
  private readonly byFunction: Record<string, number> = {};

  constructor(private readonly options: LambdaRuntimeOptions) {
    this.max = Math.max(1, options.maxSandboxes ?? 10);
    this.maxPerFunction = Math.max(1, options.maxSandboxesPerFunction ?? 2);
  }

  /**
   * One invocation of `fn` with `event` (JSON in, JSON out); under `handler-crash` it dies after
   * `crash.after` writes. @throws LambdaError as Lambda fails one, or the handler's own error
   */
  async invoke(fn: SandboxFunction, event: unknown, crash?: { readonly after: number; readonly identity: InvocationIdentity }): Promise<unknown> {
    const payload = JSON.stringify(event === undefined ? null : event);
    const bytes = Buffer.byteLength(payload);
    if (bytes > errors.INVOKE_PAYLOAD_LIMIT_BYTES) throw errors.requestTooLarge(fn, bytes);
    this.counters.invocations += 1;
    this.byFunction[fn.name] = (this.byFunction[fn.name] ?? 0) + 1;
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
    sandbox.requestId = requestId;
    const outcome = await new Promise<{ result?: unknown; error?: Error; discard?: boolean }>((resolve) => {
      const timer = setTimeout(() => {
        this.counters.timeouts += 1;
        resolve({ error: errors.timedOut(requestId, fn.timeoutSeconds), discard: true });
      }, timeoutMs);
      sandbox.settle = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
      thaw(sandbox.freeze);
      sandbox.worker.postMessage(message);
    });
    sandbox.settle = undefined;
    sandbox.requestId = undefined;
    const crashed = outcome.error instanceof errors.LambdaError ? outcome.error.crash : undefined;
    if (outcome.discard || crashed) await this.retire(sandbox);
    else this.release(sandbox);
    if (crashed) this.options.onCrash?.(crashed);
    if (outcome.error) throw outcome.error;
    return outcome.result;
  }

  /** What the runtime did so far. */
  stats(): LambdaRuntimeStats {
    return { ...this.counters, invocationsByFunction: { ...this.byFunction }, timeScale: this.options.timeScale };
  }

  /** Ends every sandbox; invocations waiting for one, starting one or running in one fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.waiting.splice(0)) wake();
    await Promise.all([...this.alive].map((s) => this.retire(s, errors.stopping(s.fn))));
  }

  /** A warm sandbox of `fn`, or a new one once there is room. */
  private async acquire(fn: SandboxFunction): Promise<Sandbox> {
    for (;;) {
      if (this.stopped) throw errors.stopping(fn);
      const warm = this.warm.get(fn.name)?.pop();
      if (warm) return warm;
      const room = (this.perFunction.get(fn.name) ?? 0) < this.maxPerFunction;
      if (room && this.alive.size >= this.max) {
        const idle = this.oldestIdle();
        if (idle) {
          await this.retire(idle);
          continue; // Look again: the room may have gone while the sandbox ended.
        }
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

  /** Ends a sandbox; a cold start or an invocation still in it fails with `error`. */
  private async retire(sandbox: Sandbox, error?: Error): Promise<void> {
    if (!this.alive.delete(sandbox)) return;
    if (error) {
      sandbox.ready?.(error);
      sandbox.settle?.({ error, discard: true });
    }
    this.perFunction.set(sandbox.fn.name, (this.perFunction.get(sandbox.fn.name) ?? 1) - 1);
    const list = this.warm.get(sandbox.fn.name);
    if (list?.includes(sandbox)) list.splice(list.indexOf(sandbox), 1);
    this.wakeAll(); // The room is free now, however long the thread takes to end.
    // Not thawed first: what a frozen sandbox left running never runs again, as on Lambda.
    await sandbox.worker.terminate();
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
    const freeze = freezeCell();
    const data: SandboxData = {
      name: fn.name,
      arn: fn.arn,
      memoryMb: fn.memoryMb,
      ...(this.options.access ? { statements: statements ?? [] } : {}),
      callEnvironment: this.options.access?.environment ?? { region: '', account: '', stateMachineArn: '', partitionKey: '' },
      freeze,
    };
    const worker = new Worker(this.options.bootstrap ?? sandboxBootstrap(), {
      eval: true,
      env,
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: fn.memoryMb, maxYoungGenerationSizeMb: this.options.youngGenerationMb ?? 8 },
    });
    const sandbox: Sandbox = { fn, worker, lastUsed: began, freeze };
    const initTimeoutMs = this.options.initTimeoutMs ?? 10_000;
    this.alive.add(sandbox);
    this.perFunction.set(fn.name, (this.perFunction.get(fn.name) ?? 0) + 1);
    this.counters.coldStarts += 1;
    this.counters.peakSandboxes = Math.max(this.counters.peakSandboxes, this.alive.size);
    const started = new Promise<Error | undefined>((resolve) => {
      const timer = setTimeout(() => sandbox.ready?.(errors.initTimedOut(fn, initTimeoutMs)), initTimeoutMs);
      sandbox.ready = (error) => {
        clearTimeout(timer);
        sandbox.ready = undefined;
        resolve(error);
      };
    });
    const oom = (used: string) => {
      if (!this.alive.has(sandbox)) return;
      this.counters.outOfMemory += 1;
      died(errors.outOfMemory(sandbox.requestId, fn.memoryMb, used));
    };
    worker.on('message', (m: SandboxMessage) => {
      if (m.kind === 'ready') sandbox.ready?.();
      else if (m.kind === 'init-error') sandbox.ready?.(new errors.LambdaError(m.name, `${fn.name}: ${m.message}`));
      else if (m.kind === 'access') this.options.access?.absorb(m.record);
      else if (m.kind === 'memory') oom(`${m.usedMb} MB in use`);
      else if (m.kind === 'result') {
        const tooLarge = errors.responseTooLarge(fn, m.payload);
        sandbox.settle?.(tooLarge ? { error: tooLarge } : { result: JSON.parse(m.payload) as unknown });
      } else if (m.kind === 'error') {
        sandbox.settle?.({ error: new errors.LambdaError(m.name, m.message, m.crashed) });
      }
    });
    const died = (error: errors.LambdaError) => {
      sandbox.ready?.(error);
      sandbox.settle?.({ error, discard: true });
      void this.retire(sandbox);
    };
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') oom('its heap full');
      else died(errors.exited(fn, `${err.name}: ${err.message}`));
    });
    worker.on('exit', (code) => {
      if (this.alive.has(sandbox)) died(errors.exited(fn, `exit status ${code}`));
    });
    const failure = await started;
    this.counters.coldStartMs += Date.now() - began;
    if (failure) {
      await this.retire(sandbox);
      throw failure;
    }
    if (!this.alive.has(sandbox)) throw errors.stopping(fn);
    return sandbox;
  }
}
