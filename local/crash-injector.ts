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
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { chance, hash53 } from './emulator/faults';

/** What a crash decision is about: the same identity always gets the same decision. */
export interface InvocationIdentity {
  /** The function's handler name, e.g. `reconcile-chunk`. */
  readonly functionName: string;
  /** A stable key of the event ({@link invocationKey}). */
  readonly eventKey: string;
  /** 1 for the first invocation of this function with this event, 2 for the next, ... */
  readonly attempt: number;
  /** What the event is about, for reports (e.g. `run r1 round 1 chunk 3`); not part of the decision. */
  readonly subject?: string;
}

/**
 * Where an invocation crashes: after its n-th completed write (1-based), or after its last
 * write when it makes fewer; `undefined` = it does not crash.
 */
export type CrashPlan = (invocation: InvocationIdentity) => number | undefined;

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

// --- what counts as a write ----------------------------------------------------------------

const TARGET_WRITES = new Set([
  'DynamoDB_20120810.PutItem',
  'DynamoDB_20120810.UpdateItem',
  'DynamoDB_20120810.DeleteItem',
  'DynamoDB_20120810.BatchWriteItem',
  'DynamoDB_20120810.TransactWriteItems',
  'AWSStepFunctions.SendTaskSuccess',
  'AWSStepFunctions.SendTaskFailure',
  'AWSStepFunctions.SendTaskHeartbeat',
  'AWSStepFunctions.StartExecution',
  'AWSStepFunctions.StopExecution',
  'AWSEvents.PutEvents',
]);

/** The parts of a request {@link classifyWrite} reads (a `ClientRequest` has them). */
export interface RequestLike {
  readonly method: string;
  readonly path: string;
  getHeader(name: string): number | string | string[] | undefined;
}

/**
 * The write an SDK request makes, e.g. `S3 PutObject`, `DynamoDB UpdateItem`,
 * `Bedrock CreateModelInvocationJob`; undefined for a read (or a part upload, which nothing
 * sees until the upload completes). The service comes from the SigV4 credential scope.
 */
export function classifyWrite(request: RequestLike): string | undefined {
  const header = (name: string) => {
    const value = request.getHeader(name);
    return Array.isArray(value) ? value.join(',') : value === undefined ? '' : String(value);
  };
  const target = header('x-amz-target');
  if (target !== '') {
    if (!TARGET_WRITES.has(target)) return undefined;
    const [prefix, operation] = target.split('.');
    const service = prefix!.startsWith('DynamoDB') ? 'DynamoDB' : prefix === 'AWSEvents' ? 'EventBridge' : 'SFN';
    return `${service} ${operation}`;
  }
  const service = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(header('authorization'))?.[1];
  const method = request.method.toUpperCase();
  const [path = '', query = ''] = request.path.split('?');
  const params = new Set(query.split('&').map((p) => decodeURIComponent(p.split('=')[0] ?? '')));
  if (service === 's3') {
    if (method === 'PUT' && !params.has('uploadId') && !params.has('partNumber')) return header('x-amz-copy-source') !== '' ? 'S3 CopyObject' : 'S3 PutObject';
    if (method === 'POST' && params.has('uploadId')) return 'S3 CompleteMultipartUpload';
    if (method === 'POST' && params.has('delete')) return 'S3 DeleteObjects';
    if (method === 'DELETE' && !params.has('uploadId')) return 'S3 DeleteObject';
    return undefined;
  }
  if (service === 'bedrock' && method === 'POST') {
    if (/^\/model-invocation-job\/?$/.test(path)) return 'Bedrock CreateModelInvocationJob';
    if (/^\/model-invocation-job\/[^/]+\/stop$/.test(path)) return 'Bedrock StopModelInvocationJob';
  }
  return undefined;
}

// --- decisions -----------------------------------------------------------------------------

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/;
/** Fields that differ between two deliveries of the same thing (tokens, event ids, clocks). */
const VOLATILE_KEYS = new Set(['taskToken', 'sequencer']);

/**
 * A stable key of an event: the same for the same content whatever its key order, task token,
 * EventBridge envelope id and time, or timestamps, so that a decision keyed by it repeats.
 */
export function invocationKey(event: unknown): string {
  const isEnvelope = typeof event === 'object' && event !== null && 'detail-type' in event;
  const normalize = (value: unknown, top: boolean): unknown => {
    if (Array.isArray(value)) return value.map((v) => normalize(v, false));
    if (typeof value === 'string') return ISO_TIME.test(value) ? '<time>' : value;
    if (typeof value !== 'object' || value === null) return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (VOLATILE_KEYS.has(key) || (top && isEnvelope && (key === 'id' || key === 'time'))) continue;
      out[key] = normalize((value as Record<string, unknown>)[key], false);
    }
    return out;
  };
  return hash53(JSON.stringify(normalize(event, true) ?? null)).toString(36);
}

/**
 * Attempts of one invocation (same function, same event) that may crash: later ones never do.
 * The workflow retries a failed task 3 times and the bus a failed delivery twice, so a step
 * always gets through, whatever the rate: the fault tests that a step run again after dying at
 * any write ends right, not that enough crashes in a row fail a run (they would, on Lambda too).
 */
export const MAX_CRASHING_ATTEMPTS = 2;

/**
 * The `handler-crash=RATE` plan: each invocation crashes with probability `rate`, decided by
 * the seed and its identity (attempt included, so a retry gets a fresh decision); it crashes
 * after write k, k = 1, 2, 3, ... with probability 1/2, 1/4, 1/8, ... (after its last write
 * when it makes fewer than k). Attempts after {@link MAX_CRASHING_ATTEMPTS} never crash.
 */
export function seededCrashPlan(rate: number, seed: number): CrashPlan {
  return ({ functionName, eventKey, attempt }) => {
    if (rate <= 0 || attempt > MAX_CRASHING_ATTEMPTS) return undefined;
    if (rate < 1 && chance(seed, 'handler-crash', functionName, eventKey, attempt) >= rate) return undefined;
    const u = chance(seed, 'handler-crash-write', functionName, eventKey, attempt);
    return 1 + Math.floor(-Math.log2(1 - u));
  };
}
