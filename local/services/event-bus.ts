/**
 * The twin's default event bus: a `PutEvents` endpoint (awsJson1_1, `AWSEvents.PutEvents`) for
 * the unmodified `@aws-sdk/client-eventbridge`, reached through `AWS_ENDPOINT_URL_EVENTBRIDGE`,
 * and a router that delivers events to the template's rule targets whose pattern matches.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { matchesEventPattern } from './event-pattern';

/** An event in EventBridge's envelope. */
export interface BusEvent {
  readonly version: string;
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: unknown;
}

/** A rule as the router sees it: a pattern and the function targets it invokes. */
export interface BusRule {
  readonly name: string;
  readonly eventPattern: object;
  readonly deliver: (event: BusEvent) => Promise<void>;
}

/** How many times a failed delivery is tried, like EventBridge's own retries (much shortened). */
const DELIVERY_ATTEMPTS = 3;

/** Options of {@link LocalEventBus}. */
export interface LocalEventBusOptions {
  /**
   * How many times a rule's target gets an event (EventBridge delivers at least once): each
   * copy is a delivery of its own, with its own retries. @default 1
   */
  readonly copies?: (rule: string, event: BusEvent) => number;
}

export class LocalEventBus {
  private server?: Server;
  private readonly rules: BusRule[] = [];
  /** Every event put on the bus, in order. */
  readonly events: BusEvent[] = [];
  /** Deliveries that failed every attempt. */
  readonly failedDeliveries: Array<{ rule: string; error: string }> = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly account = '123456789012',
    private readonly region = 'us-east-1',
    private readonly options: LocalEventBusOptions = {},
  ) {}

  addRule(rule: BusRule): void {
    this.rules.push(rule);
  }

  async start(): Promise<{ endpoint: string }> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Puts an event on the bus and routes it; resolves once it is routed (not delivered). */
  publish(event: BusEvent): void {
    this.events.push(event);
    for (const rule of this.rules) {
      if (!matchesEventPattern(rule.eventPattern, event)) continue;
      const copies = this.options.copies?.(rule.name, event) ?? 1;
      for (let copy = 0; copy < copies; copy++) {
        const delivery = this.deliver(rule, event);
        this.inFlight.add(delivery);
        // Delivery runs in the background, as EventBridge's does (publish resolves once routed);
        // drain() waits for it through inFlight, and deliver() records failures instead of rejecting.
        void delivery.finally(() => this.inFlight.delete(delivery));
      }
    }
  }

  /** Resolves when every delivery started so far has finished. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async deliver(rule: BusRule, event: BusEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await rule.deliver(event);
        return;
      } catch (err) {
        if (attempt >= DELIVERY_ATTEMPTS) {
          this.failedDeliveries.push({ rule: rule.name, error: `${(err as Error).name}: ${(err as Error).message}` });
          return;
        }
        await new Promise((r) => setTimeout(r, 20 * attempt));
      }
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const reply = (status: number, body: unknown, errorType?: string) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
      res.end(JSON.stringify(body));
    };
    if (target !== 'AWSEvents.PutEvents') {
      reply(400, { __type: 'UnknownOperationException', message: `unsupported operation ${target}` }, 'UnknownOperationException');
      return;
    }
    let body: { Entries?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      reply(400, { __type: 'ValidationException', message: 'request body is not JSON' }, 'ValidationException');
      return;
    }
    const entries = (Array.isArray(body.Entries) ? body.Entries : []) as PutEventsEntry[];
    const refusal = putEventsRefusal(entries);
    if (refusal) {
      reply(400, { __type: 'ValidationException', message: refusal }, 'ValidationException');
      return;
    }
    const results = entries.map((entry) => {
      const checked = checkEntry(entry);
      if ('ErrorCode' in checked) return checked;
      const id = randomUUID();
      this.publish({
        version: '0',
        id,
        'detail-type': entry.DetailType as string,
        source: entry.Source as string,
        account: this.account,
        time: new Date().toISOString(),
        region: this.region,
        resources: entry.Resources ?? [],
        detail: checked.detail,
      });
      return { EventId: id };
    });
    reply(200, { FailedEntryCount: results.filter((r) => 'ErrorCode' in r).length, Entries: results });
  }
}

/** One entry of a PutEvents request, as sent. */
interface PutEventsEntry {
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  Resources?: string[];
  Time?: unknown;
}

/** Most bytes of a PutEvents request's entries (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html). */
const MAX_PUT_EVENTS_BYTES = 256 * 1024;

/** An entry's size as EventBridge counts it: 14 for a Time, then the UTF-8 bytes of Source, DetailType, Detail and each Resource. */
function entrySize(entry: PutEventsEntry): number {
  const bytes = (v: unknown) => (typeof v === 'string' ? Buffer.byteLength(v) : 0);
  return (
    (entry.Time !== undefined ? 14 : 0) +
    bytes(entry.Source) +
    bytes(entry.DetailType) +
    bytes(entry.Detail) +
    (entry.Resources ?? []).reduce((a, r) => a + bytes(r), 0)
  );
}

/** Why EventBridge refuses the whole request (1 to 10 entries, 256 KB in all), or undefined. */
function putEventsRefusal(entries: PutEventsEntry[]): string | undefined {
  if (entries.length < 1 || entries.length > 10) {
    return `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10`;
  }
  if (entries.reduce((a, e) => a + entrySize(e), 0) > MAX_PUT_EVENTS_BYTES) return 'Total size of the entries in the request is over the limit.';
  return undefined;
}

/** Why EventBridge fails this one entry (its result in the response), or its parsed Detail. */
function checkEntry(entry: PutEventsEntry): { ErrorCode: string; ErrorMessage: string } | { detail: object } {
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    const value = entry[field];
    if (typeof value !== 'string' || value === '') {
      return { ErrorCode: 'InvalidArgument', ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
    }
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail as string);
  } catch {
    detail = undefined;
  }
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
  // Only AWS services send events with an `aws.` source.
  if ((entry.Source as string).startsWith('aws.')) return { ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: 'Not authorized for the source.' };
  return { detail };
}
