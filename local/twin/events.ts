/**
 * The events AWS services put on the default bus, as the twin builds them: EventBridge's
 * envelope, S3's `Object Created`, a rule's `Scheduled Event`, Step Functions' execution status
 * change; and a few words on what an invocation's event is about (for crash reports).
 */
import { randomUUID } from 'node:crypto';
import type { BusEvent } from '../services/event-bus';
import { LOCAL_ACCOUNT, LOCAL_REGION } from '../services/fake-arns';

/** An event in EventBridge's envelope, as an AWS service puts it on the default bus. */
export function busEvent(source: string, detailType: string, resources: string[], detail: unknown): BusEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': detailType,
    source,
    account: LOCAL_ACCOUNT,
    time: new Date().toISOString(),
    region: LOCAL_REGION,
    resources,
    detail,
  };
}

/** The event EventBridge sends a scheduled rule's targets. */
export function scheduledEvent(ruleId: string, at: Date = new Date()): BusEvent {
  const event = busEvent('aws.events', 'Scheduled Event', [`arn:aws:events:${LOCAL_REGION}:${LOCAL_ACCOUNT}:rule/${ruleId}`], {});
  return { ...event, time: at.toISOString() };
}

/** The EventBridge event S3 sends for a new object. */
export function objectCreatedEvent(bucket: string, key: string, size: number, etag: string): BusEvent {
  return busEvent('aws.s3', 'Object Created', [`arn:aws:s3:::${bucket}`], {
    version: '0',
    bucket: { name: bucket },
    // Percent-encoded: S3 URL-encodes keys in its other notifications ('+' for a space); whether
    // its EventBridge events do is not documented, and an encoded key is the case a handler
    // must take care of (docs/ARCHITECTURE.md, "Dropped files").
    object: { key: key.split('/').map(encodeURIComponent).join('/'), size, etag: etag.replace(/"/g, ''), sequencer: Date.now().toString(16) },
    'request-id': 'local',
    requester: LOCAL_ACCOUNT,
    reason: 'PutObject',
  });
}

/** The execution an `Execution Status Change` event is about. */
export interface ExecutionOfEvent {
  readonly arn: string;
  readonly name: string;
  readonly startDate: Date;
}

/** The `Step Functions Execution Status Change` event Step Functions puts on the default bus. */
export function executionStatusEvent(execution: ExecutionOfEvent, stateMachineArn: string, status: string, input: string): BusEvent {
  return busEvent('aws.states', 'Step Functions Execution Status Change', [execution.arn], {
    executionArn: execution.arn,
    stateMachineArn,
    name: execution.name,
    status,
    startDate: execution.startDate.getTime(),
    stopDate: Date.now(),
    input,
    output: null,
  });
}

/** What an invocation's event is about, in a few words (for crash reports). */
export function describeEvent(event: unknown): string {
  const e = (event ?? {}) as {
    run?: { runId?: string };
    round?: number | { number?: number };
    chunk?: number;
    'detail-type'?: string;
    detail?: { status?: string; batchJobArn?: string; object?: { key?: string } };
    sweep?: { route?: string };
  };
  if (e['detail-type'] !== undefined) {
    const d = e.detail ?? {};
    return [e['detail-type'], d.batchJobArn?.split('/').pop(), d.status, d.object?.key].filter((p) => p !== undefined).join(' ');
  }
  const round = typeof e.round === 'number' ? e.round : e.round?.number;
  return [
    e.run?.runId !== undefined ? `run ${e.run.runId}` : undefined,
    round !== undefined ? `round ${round}` : undefined,
    e.chunk !== undefined ? `chunk ${e.chunk}` : undefined,
    e.sweep ? 'sweep' : undefined,
  ]
    .filter((p) => p !== undefined)
    .join(' ');
}
