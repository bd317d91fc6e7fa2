/**
 * Start-run: turns an S3 `Object Created` event under `inbox/<route>/` into a run, and a
 * nightly `{"sweep": {"route"}}` into one run over the route's accumulated files (a nightly
 * route's inbox and held files, an immediate route's held files). EventBridge
 * delivers at least once: the execution name is derived from the object's identity, and Step
 * Functions refuses a second execution of the same name, so a repeat starts nothing.
 */
import { ExecutionAlreadyExists, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { PipelineEnvConfig, RouteEnvConfig } from '../shared/config';
import { S3_PREFIXES } from '../shared/contracts';
import { logger } from '../shared/logger';
import type { RunInput } from '../shared/run-input';
import { listObjects } from '../shared/s3-jsonl';

/** EventBridge's S3 `Object Created` event (the fields used). */
export interface ObjectCreatedEvent {
  readonly 'detail-type': 'Object Created';
  readonly detail: { bucket: { name: string }; object: { key: string; etag?: string; 'version-id'?: string; sequencer?: string } };
}

export interface SweepEvent {
  readonly sweep: { readonly route: string };
}

export interface StartDeps {
  readonly sfn: SFNClient;
  readonly s3: S3Client;
  readonly ddb: DynamoDBDocumentClient;
  readonly table: string;
  readonly stateMachineArn: string;
  readonly bucket: string;
  readonly pipeline: PipelineEnvConfig;
}

export type StartOutcome =
  | { readonly started: string; readonly runId: string; readonly files: number }
  | { readonly duplicate: string }
  | { readonly ignored: string };

/** Most files one sweep run takes; the rest wait for the next sweep (keeps the input small). */
export const MAX_FILES_PER_SWEEP = 1000;

function shortHash(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * The route as the start of a run id: at most `length` characters, no leading, trailing or
 * doubled hyphen (route names may be `-a` or `a--b`; run ids may not).
 */
function runIdPrefix(route: string, length: number): string {
  return route.replace(/-+/g, '-').replace(/^-/, '').slice(0, length).replace(/-$/, '') || 'run';
}

async function start(deps: StartDeps, name: string, input: RunInput, files: number): Promise<StartOutcome> {
  try {
    await deps.sfn.send(new StartExecutionCommand({ stateMachineArn: deps.stateMachineArn, name, input: JSON.stringify(input) }));
  } catch (err) {
    if (err instanceof ExecutionAlreadyExists || (err as Error).name === 'ExecutionAlreadyExists') {
      logger.info('run already started for this input', { executionName: name });
      return { duplicate: name };
    }
    throw err;
  }
  logger.info('run started', { runId: input.runId, executionName: name, files });
  return { started: name, runId: input.runId!, files };
}

/** Starts the run of a file dropped into `inbox/<route>/`. */
export async function startFromObject(deps: StartDeps, event: ObjectCreatedEvent): Promise<StartOutcome> {
  const { bucket, object } = event.detail;
  const key = object.key;
  const m = new RegExp(`^${S3_PREFIXES.inbox}([^/]+)/.+\\.jsonl$`).exec(key);
  if (!m) return { ignored: `not a .jsonl file under ${S3_PREFIXES.inbox}<route>/: ${key}` };
  const route = m[1]!;
  // Own properties only: `inbox/constructor/` names no route.
  const settings = Object.prototype.hasOwnProperty.call(deps.pipeline.routes, route) ? deps.pipeline.routes[route] : undefined;
  if (!settings) return { ignored: `route ${route} is not configured` };
  if (settings.trigger !== 'immediate') return { ignored: `route ${route} runs on the nightly sweep` };

  const identity = `${bucket.name}/${key}#${object['version-id'] ?? object.etag ?? object.sequencer ?? ''}`;
  const runId = `${runIdPrefix(route, 18)}-${shortHash(identity)}`;
  const uri = `s3://${bucket.name}/${key}`;
  // The run reads the file only while it is still the object of this event (see RunInput.inputETags).
  return start(deps, runId, { inputs: [uri], route, runId, ...(object.etag ? { inputETags: { [uri]: object.etag } } : {}) }, 1);
}

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
 * Starts one run over the route's files not taken by an earlier sweep (see {@link sweepPrefixes}).
 * Each file is marked in the table before the run starts; the marks are removed again if the
 * run cannot be started.
 */
export async function startSweep(deps: StartDeps, event: SweepEvent, now = new Date()): Promise<StartOutcome> {
  const route = event.sweep.route;
  const settings = deps.pipeline.routes[route];
  if (!settings) return { ignored: `route ${route} is not configured` };
  const objects: Array<{ key: string; size: number; etag?: string }> = [];
  for (const prefix of sweepPrefixes(route, settings.trigger)) objects.push(...(await listObjects(deps.s3, deps.bucket, prefix)));
  const files = objects.filter((o) => o.key.endsWith('.jsonl'));

  const runId = `${runIdPrefix(route, 12)}-sweep-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${shortHash(now.toISOString(), 6)}`;
  const taken: string[] = [];
  for (const o of files) {
    if (taken.length >= MAX_FILES_PER_SWEEP) break;
    try {
      await deps.ddb.send(
        new PutCommand({
          TableName: deps.table,
          // The file's identity is its ETag: a file replaced under the same key is new work.
          Item: { pk: `SWEPT#${deps.bucket}/${o.key}`, sk: markVersion(o), runId, takenAt: now.toISOString() },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      taken.push(o.key);
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  }
  if (taken.length === 0) return { ignored: `no new files for route ${route}` };
  try {
    return await start(deps, runId, { inputs: taken.map((k) => `s3://${deps.bucket}/${k}`), route, runId }, taken.length);
  } catch (err) {
    const versions = new Map(files.map((o) => [o.key, markVersion(o)]));
    for (const key of taken) {
      await deps.ddb.send(new DeleteCommand({ TableName: deps.table, Key: { pk: `SWEPT#${deps.bucket}/${key}`, sk: versions.get(key)! } }));
    }
    throw err;
  }
}
