/**
 * The twin's `handler-crash` fault: a handler invocation dies after one of its writes, as a
 * Lambda killed mid-invocation would (out of memory, a timeout, a lost host), so that the
 * workflow's retriers and EventBridge's retries run it again over whatever it had written.
 *
 * How: every invocation runs in an AsyncLocalStorage context. The handlers' SDK clients send
 * every write over node:http (`NodeHttpHandler`, one `http.Agent` per client); every request
 * passes `Agent.prototype.addRequest` synchronously in the caller's async context, before a
 * byte is sent, so that is where a request is tied to its invocation (and, once the invocation
 * has crashed, destroyed unsent). The `http.client.response.finish` diagnostics channel says
 * when a write's response arrived, i.e. the service applied it: if that was the write chosen
 * for the crash, the invocation's promise rejects with {@link HandlerCrash} and its requests
 * still open are destroyed. The handler's code may go on for a while (nothing stops a promise
 * chain), but nothing it sends reaches a service any more.
 *
 * Not seen: requests over HTTP/2. Only `BedrockRuntimeClient` uses HTTP/2 (`InvokeModel`, a
 * read); a crashed invocation's `InvokeModel` calls may still reach the emulator, but whatever
 * the invocation would write with their results is destroyed.
 *
 * Which invocations crash, and after which write, is the plan's (crash-plan.ts); which requests
 * are writes, write-classifier.ts says.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import type { CrashPlan, InvocationIdentity } from './crash-plan';
import { classifyWrite } from './write-classifier';

/** One crash that happened. */
export interface CrashRecord {
  readonly functionName: string;
  readonly attempt: number;
  /** The ordinal of the write after which it crashed (1-based). */
  readonly afterWrite: number;
  /** That write, e.g. `DynamoDB UpdateItem`, `S3 PutObject`. */
  readonly operation: string;
  /** The invocation's {@link InvocationIdentity.subject}. */
  readonly subject?: string;
}

/** The error a crashed invocation fails with (what the workflow's Retry and Catch see). */
export class HandlerCrash extends Error {
  override readonly name = 'HandlerCrash';
}

interface Invocation {
  readonly identity: InvocationIdentity;
  readonly crashAfter: number;
  writes: number;
  lastWrite?: string;
  crashed?: HandlerCrash;
  readonly open: Set<ClientRequest>;
  readonly crash: (error: HandlerCrash) => void;
  readonly onCrash?: (record: CrashRecord) => void;
}

const context = new AsyncLocalStorage<Invocation>();
/** Requests of tracked invocations: which invocation, and what write (undefined: not a write). */
const requests = new WeakMap<ClientRequest, { invocation: Invocation; write: string | undefined }>();

/**
 * Runs handler invocations under a {@link CrashPlan}. Patches `http.Agent.prototype.addRequest`
 * while at least one injector is installed (and only acts on requests made inside {@link run}).
 */
export class CrashInjector {
  private installed = false;

  /**
   * @param plan decides, per invocation, after which write it crashes
   * @param onCrash told of every crash, e.g. to count them
   */
  constructor(
    private readonly plan: CrashPlan,
    private readonly onCrash?: (record: CrashRecord) => void,
  ) {}

  /** Starts watching HTTP requests; {@link run} calls it on first use. */
  install(): void {
    if (this.installed) return;
    this.installed = true;
    retain();
  }

  /** Stops watching (after the last installed injector, the patch is removed). */
  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    release();
  }

  /**
   * Runs one invocation: resolves with its result, or rejects with {@link HandlerCrash} when
   * the plan crashes it (an invocation that writes nothing is never crashed).
   */
  run<T>(identity: InvocationIdentity, invoke: () => Promise<T>): Promise<T> {
    const crashAfter = this.plan(identity);
    if (crashAfter === undefined) return invoke();
    this.install();
    let crash!: (error: HandlerCrash) => void;
    const crashed = new Promise<never>((_, reject) => {
      crash = reject;
    });
    const invocation: Invocation = {
      identity,
      crashAfter: Math.max(1, Math.floor(crashAfter)),
      writes: 0,
      open: new Set(),
      crash,
      ...(this.onCrash ? { onCrash: this.onCrash } : {}),
    };
    const finished = context.run(invocation, invoke).then((result) => {
      // Fewer writes than planned: it dies after its last one, before it can return.
      if (!invocation.crashed && invocation.writes > 0) crashInvocation(invocation);
      if (invocation.crashed) throw invocation.crashed;
      return result;
    });
    return Promise.race([finished, crashed]);
  }
}

function crashInvocation(invocation: Invocation): void {
  const { identity } = invocation;
  const operation = invocation.lastWrite ?? 'write';
  const error = new HandlerCrash(`${identity.functionName} (attempt ${identity.attempt}) crashed after write ${invocation.writes} (${operation})`);
  invocation.crashed = error;
  for (const request of invocation.open) request.destroy(error);
  invocation.open.clear();
  invocation.onCrash?.({
    functionName: identity.functionName,
    attempt: identity.attempt,
    afterWrite: invocation.writes,
    operation,
    ...(identity.subject !== undefined ? { subject: identity.subject } : {}),
  });
  invocation.crash(error);
}

// --- the process-wide hooks, shared by every installed injector ---------------------------

type AddRequest = (this: Agent, request: ClientRequest, options: unknown) => void;
const agentPrototype = Agent.prototype as unknown as { addRequest: AddRequest };
let users = 0;
let originalAddRequest: AddRequest | undefined;

function trackedAddRequest(this: Agent, request: ClientRequest, options: unknown): void {
  const invocation = context.getStore();
  if (invocation) {
    if (invocation.crashed) {
      // A dead process sends nothing. Destroyed before it has a socket, the request is never
      // written: when the agent hands it one, it fails with the crash (and frees the socket).
      request.destroy(invocation.crashed);
    } else {
      requests.set(request, { invocation, write: classifyWrite(request) });
      invocation.open.add(request);
      request.once('close', () => invocation.open.delete(request));
    }
  }
  originalAddRequest!.call(this, request, options);
}

function onResponse(message: unknown): void {
  const { request } = message as { request: ClientRequest; response: IncomingMessage };
  const tracked = requests.get(request);
  if (!tracked) return;
  const { invocation, write } = tracked;
  invocation.open.delete(request);
  if (invocation.crashed || write === undefined) return;
  // The response came: the service has applied the write, whatever the caller does next.
  invocation.writes += 1;
  invocation.lastWrite = write;
  if (invocation.writes === invocation.crashAfter) crashInvocation(invocation);
}

function retain(): void {
  users += 1;
  if (users > 1) return;
  originalAddRequest = agentPrototype.addRequest;
  agentPrototype.addRequest = trackedAddRequest;
  subscribe('http.client.response.finish', onResponse);
}

function release(): void {
  users -= 1;
  if (users > 0) return;
  agentPrototype.addRequest = originalAddRequest!;
  originalAddRequest = undefined;
  unsubscribe('http.client.response.finish', onResponse);
}
