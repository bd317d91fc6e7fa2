/**
 * The nightly sweep: one run over a route's accumulated files (a nightly route's inbox and held
 * files, an immediate route's held files), named after the scheduled event's time so that a
 * redelivery is the same sweep. Each file taken is marked (`SWEPT#`) so that no later sweep
 * takes it again; the marks are removed if the run cannot be started.
 */
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { RouteEnvConfig } from '../shared/config';
import { S3_PREFIXES } from '../shared/contracts';
import { logger } from '../shared/logger';
import { listObjects, type ListedObject } from '../shared/s3-jsonl';
import { claimAndStart, RunIdTaken, runIdPrefix, shortHash, type StartDeps, type StartOutcome } from './claim-and-start';

/**
 * What a nightly rule sends (lib/triggers.ts `nightlySweepInput`): the route, and the scheduled
 * event's own `time`, the same on every redelivery of one tick. Without `time` (an input typed
 * by hand) the sweep is named after the clock, and a redelivery would be a second sweep.
 */
export interface SweepEvent {
  readonly sweep: { readonly route: string; readonly time?: string };
}

/** A sweep event whose `time` is not an ISO 8601 UTC timestamp: refused, nothing is touched. */
export class InvalidSweepEvent extends Error {
  override readonly name = 'InvalidSweepEvent';
}

/**
 * Days a sweep mark (`SWEPT#`) is kept (table TTL `expiresAt`), counted from its sweep's time:
 * far beyond any run's life (work files expire after `workRetentionDays`, 14 by default), so a
 * mark outlives every run that could still be reading its file.
 */
export const SWEEP_MARK_RETENTION_DAYS = 180;

/**
 * Oldest file (by `LastModified`) a sweep takes. Younger than {@link SWEEP_MARK_RETENTION_DAYS}
 * by a day: a file whose mark may have expired is older than the retention, so it is never
 * taken a second time; it is left and reported (docs/OPERATIONS.md says how to run it).
 */
export const SWEEP_MAX_FILE_AGE_DAYS = SWEEP_MARK_RETENTION_DAYS - 1;

const DAY_MS = 24 * 60 * 60 * 1000;

/** EventBridge's event time: `2026-12-03T02:00:00Z`, optionally with milliseconds. */
const EVENT_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?Z$/;

/**
 * The time a sweep is named after: the scheduled event's `time`, validated strictly (an ISO 8601
 * UTC timestamp that is a real instant); without one, the clock, said in the log.
 *
 * @throws InvalidSweepEvent when `time` is present but not such a timestamp
 */
export function sweepTime(event: SweepEvent, now: Date): { readonly at: Date; readonly fromEvent: boolean } {
  const time: unknown = event.sweep.time;
  if (time === undefined) {
    logger.warn("sweep event without the scheduled event's time: the run id comes from the clock, so a redelivery of this event would start a second sweep", {
      route: event.sweep.route,
    });
    return { at: now, fromEvent: false };
  }
  const m = typeof time === 'string' ? EVENT_TIME.exec(time) : null;
  const at = m ? new Date(time as string) : undefined;
  // Date accepts 2026-02-30 as March 2nd: the parsed instant must print back as the same fields.
  if (!m || !at || Number.isNaN(at.getTime()) || at.toISOString().slice(0, 19) !== `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}`) {
    throw new InvalidSweepEvent(
      `sweep.time must be the scheduled event's time, an ISO 8601 UTC timestamp such as 2026-12-03T02:00:00Z (got ${JSON.stringify(time)}); leave it out to name the sweep after the clock`,
    );
  }
  return { at, fromEvent: true };
}

/** Most files one sweep run takes; the rest wait for the next sweep (keeps the input small). */
export const MAX_FILES_PER_SWEEP = 1000;

/**
 * Most bytes (UTF-8, as Step Functions counts) of a sweep run's execution input. Step Functions
 * refuses an input over 256 KiB, and Prepare's task input is the run input plus a few hundred
 * bytes: 192 KiB leaves room. With long keys (S3 allows 1,024 bytes) 1,000 URIs would not fit,
 * and a sweep refused at every start would take the same files, and fail, every night.
 */
export const MAX_SWEEP_INPUT_BYTES = 192 * 1024;

/** The sort key of a sweep mark: the object's ETag (its size only if S3 gave no ETag). */
function markVersion(o: { size: number; etag?: string }): string {
  return o.etag ?? `size:${o.size}`;
}

/**
 * The prefixes a route's sweep takes files from: a nightly route's `inbox/<route>/` (its drops
 * wait for the sweep) and `held/<route>/`; an immediate route's `held/<route>/` only (each of
 * its inbox files already ran when it was dropped: sweeping them would run them twice).
 */
export function sweepPrefixes(route: string, trigger: RouteEnvConfig['trigger']): string[] {
  const held = `${S3_PREFIXES.held}${route}/`;
  return trigger === 'nightly' ? [`${S3_PREFIXES.inbox}${route}/`, held] : [held];
}

/**
 * The run id (and execution name) of a route's sweep at `at`: the same for every delivery of one
 * scheduled event, different for two routes swept by the same schedule, and for two pipelines
 * (their bucket, or their key prefix in a shared one) sweeping routes of the same name at the
 * same tick: job names are made of the run id, and Bedrock's are unique per account and region.
 */
export function sweepRunId(route: string, at: Date, bucket: string): string {
  const iso = at.toISOString();
  return `${runIdPrefix(route, 12)}-sweep-${iso.slice(0, 10).replace(/-/g, '')}-${shortHash(`${bucket}/${S3_PREFIXES.inbox}${route}@${iso}`, 6)}`;
}

/**
 * Starts one run over the route's files not taken by an earlier sweep (see {@link sweepPrefixes}).
 * A redelivered event (same route and `time`) is the same sweep: the same run id, the same
 * files (those written by the event's time; later ones wait for the next sweep), its own marks
 * taken again, and Step Functions refuses the second start. Each file is marked in the table
 * before the run starts; the marks are removed again if the run cannot be started.
 *
 * @throws InvalidSweepEvent when `sweep.time` is present and not an ISO 8601 UTC timestamp
 */
export async function startSweep(deps: StartDeps, event: SweepEvent, now = new Date()): Promise<StartOutcome> {
  const route = event.sweep.route;
  const { at } = sweepTime(event, now);
  // Own properties only, as for a dropped file.
  const settings = typeof route === 'string' && Object.prototype.hasOwnProperty.call(deps.pipeline.routes, route) ? deps.pipeline.routes[route] : undefined;
  if (!settings) return { ignored: `route ${route} is not configured` };
  const objects: ListedObject[] = [];
  for (const prefix of sweepPrefixes(route, settings.trigger)) objects.push(...(await listObjects(deps.s3, deps.bucket, prefix)));
  const oldest = at.getTime() - SWEEP_MAX_FILE_AGE_DAYS * DAY_MS;
  const tooOld: string[] = [];
  const files = objects.filter((o) => {
    if (!o.key.endsWith('.jsonl')) return false;
    const written = o.lastModified?.getTime();
    if (written === undefined) return true;
    if (written > at.getTime()) return false; // after this sweep's tick: the next sweep's
    if (written < oldest) {
      tooOld.push(o.key);
      return false;
    }
    return true;
  });
  if (tooOld.length > 0) {
    logger.warn(
      `files older than ${SWEEP_MAX_FILE_AGE_DAYS} days are not swept (an earlier sweep's mark of them may have expired): start a run over them by hand`,
      {
        route,
        count: tooOld.length,
        keys: tooOld.slice(0, 20),
      },
    );
  }

  const runId = sweepRunId(route, at, deps.bucket);
  const expiresAt = Math.floor(at.getTime() / 1000) + SWEEP_MARK_RETENTION_DAYS * 86400;
  const taken: ListedObject[] = [];
  const uri = (o: ListedObject) => `s3://${deps.bucket}/${o.key}`;
  let inputBytes = Buffer.byteLength(JSON.stringify({ inputs: [], route, runId }));
  let overBudget = 0;
  for (const o of files) {
    if (taken.length >= MAX_FILES_PER_SWEEP) break;
    // Its URI in the input's list: the JSON string and a comma.
    const uriBytes = Buffer.byteLength(JSON.stringify(uri(o))) + (taken.length > 0 ? 1 : 0);
    if (inputBytes + uriBytes > MAX_SWEEP_INPUT_BYTES) {
      overBudget += 1;
      continue;
    }
    try {
      await deps.ddb.send(
        new PutCommand({
          TableName: deps.table,
          // The file's identity is its ETag: a file replaced under the same key is new work.
          Item: { pk: `SWEPT#${deps.bucket}/${o.key}`, sk: markVersion(o), runId, takenAt: at.toISOString(), expiresAt },
          // A mark of this same sweep (a redelivery) is taken again; another sweep's is not.
          ConditionExpression: 'attribute_not_exists(pk) OR runId = :runId',
          ExpressionAttributeValues: { ':runId': runId },
        }),
      );
      taken.push(o);
      inputBytes += uriBytes;
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  }
  if (overBudget > 0) {
    logger.warn(`${overBudget} files did not fit in the run's input (${MAX_SWEEP_INPUT_BYTES} bytes of URIs): they wait for the next sweep`, { route, runId });
  }
  if (taken.length === 0) return { ignored: `no new files for route ${route}` };
  try {
    return await claimAndStart(deps, runId, { inputs: taken.map(uri), route, runId }, taken.length, `for the sweep of route ${route}`);
  } catch (err) {
    // The marks are removed whatever the failure (a squatted run id or execution name too): the
    // files wait for the next sweep instead of being marked for a run that never reads them.
    for (const o of taken) {
      try {
        await deps.ddb.send(
          new DeleteCommand({
            TableName: deps.table,
            Key: { pk: `SWEPT#${deps.bucket}/${o.key}`, sk: markVersion(o) },
            ConditionExpression: 'runId = :runId',
            ExpressionAttributeValues: { ':runId': runId },
          }),
        );
      } catch (deleteErr) {
        if ((deleteErr as Error).name !== 'ConditionalCheckFailedException') throw deleteErr;
      }
    }
    if (err instanceof RunIdTaken) {
      throw new RunIdTaken(`${err.message}; its ${taken.length} files were not taken and wait for the next sweep (see docs/OPERATIONS.md, "Failures")`, {
        cause: err.cause,
      });
    }
    throw err;
  }
}
