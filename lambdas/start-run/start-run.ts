/**
 * Start-run: turns an S3 `Object Created` event under `inbox/<route>/` into a run, and a
 * nightly `{"sweep": {"route", "time"}}` into one run over the route's accumulated files (a
 * nightly route's inbox and held files, an immediate route's held files). EventBridge
 * delivers at least once: the execution name is derived from the object's identity (a sweep's:
 * from its route and the scheduled event's time), and Step Functions refuses a second
 * execution of the same name, so a repeat starts nothing.
 *
 * Both names can be computed in advance by anyone, so before starting, start-run claims the run
 * id for the execution it is about to start, and takes an existing execution of that name for a
 * repeat only when it was started with the same input: a run id or execution name taken first by
 * someone else fails the event loudly (retries, dead-letter queue, alarm) instead of losing its
 * files silently.
 *
 * This file starts the run of a dropped file; sweep.ts the nightly sweep; claim-and-start.ts
 * the claim-then-start both use.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { escapeRegExp, S3_PREFIXES } from '../shared/contracts';
import { listedObject } from '../shared/s3-jsonl';
import { claimAndStart, RunIdTaken, runIdPrefix, shortHash, type StartDeps, type StartOutcome } from './claim-and-start';

/** EventBridge's S3 `Object Created` event (the fields used). */
export interface ObjectCreatedEvent {
  readonly 'detail-type': 'Object Created';
  readonly detail: { bucket: { name: string }; object: { key: string; etag?: string; 'version-id'?: string; sequencer?: string } };
}

/**
 * The keys `key` may stand for: itself, then URL-decoded as a form (`+` and `%20` are a space)
 * and as a path (`%20` is a space, `+` is a plus), each when valid and different.
 */
function keyCandidates(key: string): string[] {
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return undefined;
    }
  };
  const candidates = [key, decode(key.replace(/\+/g, ' ')), decode(key)];
  return [...new Set(candidates.filter((k): k is string => k !== undefined))];
}

/**
 * The key of the object an `Object Created` event is about. S3 URL-encodes keys in its event
 * notifications ("red flower.jpg" arrives as "red+flower.jpg"); whether its EventBridge events
 * do is not documented (docs/ARCHITECTURE.md, "Dropped files"). So a key that decodes to
 * another is looked up every way ({@link keyCandidates}): the first that exists with the
 * event's ETag, else the first that exists (the key as sent first); when none exists, the key
 * as sent (prepare then reports the file missing).
 */
async function eventObjectKey(s3: S3Client, bucket: string, key: string, etag: string | undefined): Promise<string> {
  const candidates = keyCandidates(key);
  if (candidates.length === 1) return key;
  const found = await Promise.all(candidates.map(async (k) => ({ key: k, object: await listedObject(s3, bucket, k) })));
  const existing = found.filter((f) => f.object !== undefined);
  return (existing.find((f) => f.object!.etag === etag) ?? existing[0])?.key ?? key;
}

/** Starts the run of a file dropped into `inbox/<route>/`. */
export async function startFromObject(deps: StartDeps, event: ObjectCreatedEvent): Promise<StartOutcome> {
  const { bucket, object } = event.detail;
  const key = await eventObjectKey(deps.s3, bucket.name, object.key, object.etag);
  const m = new RegExp(`^${escapeRegExp(S3_PREFIXES.inbox)}([^/]+)/.+\\.jsonl$`).exec(key);
  if (!m) return { ignored: `not a .jsonl file under ${S3_PREFIXES.inbox}<route>/: ${key}` };
  const route = m[1]!;
  // Own properties only: `inbox/constructor/` names no route.
  const settings = Object.prototype.hasOwnProperty.call(deps.pipeline.routes, route) ? deps.pipeline.routes[route] : undefined;
  if (!settings) return { ignored: `route ${route} is not configured` };
  if (settings.trigger !== 'immediate') return { ignored: `route ${route} runs on the nightly sweep` };

  // The key as sent: the same on every delivery of the event, whatever the bucket holds by then.
  const identity = `${bucket.name}/${object.key}#${object['version-id'] ?? object.etag ?? object.sequencer ?? ''}`;
  const runId = `${runIdPrefix(route, 18)}-${shortHash(identity)}`;
  const uri = `s3://${bucket.name}/${key}`;
  // The run reads the file only while it is still the object of this event (see RunInput.inputETags).
  try {
    return await claimAndStart(deps, runId, { inputs: [uri], route, runId, ...(object.etag ? { inputETags: { [uri]: object.etag } } : {}) }, 1, `for ${uri}`);
  } catch (err) {
    if (!(err instanceof RunIdTaken)) throw err;
    throw new RunIdTaken(`${err.message}; the file was not run: start a run over it by hand (see docs/OPERATIONS.md, "Failures")`, { cause: err.cause });
  }
}
