/**
 * Opening a round: split the round's pending records into job input files by the chunk plan,
 * and apply the route's small-remainder policy to what no job can take. Used by prepare
 * (round 1) and end-round (retries).
 */
import { InvokeModelCommand, type BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { S3Client } from '@aws-sdk/client-s3';
import { planChunks } from './chunk-plan';
import { runKeys, s3Uri, type RoundState, type RunConfig } from './contracts';
import { familyReportsUsage, modelFamily, usageOf } from './model-family';
import type { FailedRecord, RemainderStats, SucceededRecord } from './outcomes';
import { isRetryableRecordError } from './retry-policy';
import { JsonlWriter, readObjectLines, writeJsonObject } from './s3-jsonl';

export interface RoundDeps {
  readonly s3: S3Client;
  readonly bedrockRuntime: BedrockRuntimeClient;
}

/** How many on-demand InvokeModel calls run at once for a small remainder. */
const ON_DEMAND_CONCURRENCY = 4;

/**
 * Bedrock's input file and job size quotas (reference facts §7: 1 GB per file, 5 GB per job),
 * in bytes, kept a little under the limit.
 */
export const MAX_JOB_INPUT_BYTES = 1_000_000_000 - 1_000_000;

/**
 * The records one job may take: the route's maximum, lowered so that a job of the longest
 * records of the round still fits Bedrock's file size quota.
 */
export function jobRecordLimit(maxRecordsPerJob: number, maxRecordBytes: number): number {
  if (maxRecordBytes <= 0) return maxRecordsPerJob;
  return Math.max(1, Math.min(maxRecordsPerJob, Math.floor(MAX_JOB_INPUT_BYTES / maxRecordBytes)));
}

/**
 * Writes the round's chunk files from `runKeys.roundPending` (`count` records, none longer than
 * `maxRecordBytes`) and handles the remainder. Returns the round state the workflow carries.
 */
export async function openRound(deps: RoundDeps, run: RunConfig, round: number, count: number, maxRecordBytes = 0): Promise<RoundState> {
  const maxRecordsPerJob = jobRecordLimit(run.maxRecordsPerJob, maxRecordBytes);
  const plan = planChunks(count, { maxRecordsPerJob, minRecordsPerJob: Math.min(run.minRecordsPerJob, maxRecordsPerJob) });
  const lines = readObjectLines(deps.s3, run.bucket, runKeys.roundPending(run.runId, round));
  // Lines are copied as raw bytes: they were validated and serialized when written.
  const next = async (): Promise<Buffer | undefined> => {
    for (;;) {
      const r = await lines.next();
      if (r.done) return undefined;
      if (r.value.length > 0) return r.value;
    }
  };

  for (const [chunk, size] of plan.sizes.entries()) {
    const writer = new JsonlWriter(deps.s3, run.bucket, runKeys.chunkInput(run.runId, round, chunk));
    for (let i = 0; i < size; i++) {
      const line = await next();
      if (line === undefined) throw new Error(`pending records of round ${round} ended early: ${count} expected`);
      await writer.write(line);
    }
    await writer.close();
  }

  if (plan.remainder > 0) {
    const writer = new JsonlWriter(deps.s3, run.bucket, runKeys.roundRemainder(run.runId, round));
    for (let line = await next(); line !== undefined; line = await next()) await writer.write(line);
    const written = await writer.close();
    if (written !== plan.remainder) throw new Error(`round ${round}: remainder has ${written} records, ${plan.remainder} expected`);
    await applySmallRemainder(deps, run, round);
  } else {
    await lines.return(undefined);
  }

  return { number: round, chunkCount: plan.sizes.length, nextChunk: 0, hasMoreChunks: plan.sizes.length > 0 };
}

/**
 * Applies the route's policy to the round's remainder file:
 * `on-demand` runs each record through InvokeModel (priced on demand), `hold` moves the records
 * to `held/<route>/` for the next sweep, `fail` fails them with the reason. Never drops a record.
 */
export async function applySmallRemainder(deps: RoundDeps, run: RunConfig, round: number): Promise<RemainderStats> {
  const source = readObjectLines(deps.s3, run.bucket, runKeys.roundRemainder(run.runId, round));
  const succeeded = new JsonlWriter(deps.s3, run.bucket, runKeys.roundPart(run.runId, round, 'succeeded'), { lazy: true });
  const failed = new JsonlWriter(deps.s3, run.bucket, runKeys.roundPart(run.runId, round, 'failed'), { lazy: true });
  const heldKey = runKeys.held(run.route, run.runId, round);
  const held = new JsonlWriter(deps.s3, run.bucket, heldKey, { lazy: true });
  const tokens = { input: 0, output: 0 };
  let records = 0;
  let onDemandRecords = 0;

  const fail = (recordId: string, code: string, message: string): Promise<void> =>
    failed.write({ recordId, error: { code, message }, attempts: round } satisfies FailedRecord);

  const inFlight = new Set<Promise<unknown>>();
  const failures: unknown[] = [];
  for await (const raw of source) {
    if (failures.length > 0) break;
    if (raw.length === 0) continue;
    records += 1;
    const line = raw.toString('utf8');
    const record = JSON.parse(line) as { recordId: string; modelInput: unknown };
    switch (run.smallRemainder) {
      case 'fail':
        await fail(
          record.recordId,
          'BelowMinimumRecordsPerJob',
          `left in a set of fewer records than the minimum of ${run.minRecordsPerJob} per job, and the route's small-remainder policy is 'fail'`,
        );
        break;
      case 'hold':
        await held.write(line);
        await fail(record.recordId, 'HeldForNextSweep', `held in ${s3Uri(run.bucket, heldKey)} for the route's next sweep (fewer records than the minimum of ${run.minRecordsPerJob} per job)`);
        break;
      case 'on-demand': {
        onDemandRecords += 1;
        const task = invokeOnDemand(deps.bedrockRuntime, run, record).then(async (outcome) => {
          if ('modelOutput' in outcome) {
            tokens.input += outcome.usage?.inputTokens ?? 0;
            tokens.output += outcome.usage?.outputTokens ?? 0;
            await succeeded.write(outcome);
          } else {
            await fail(record.recordId, outcome.code, outcome.message);
          }
        });
        // A settled-flag wrapper: a failing write must reach Promise.all below, not be unhandled.
        const tracked: Promise<unknown> = task.then(
          () => inFlight.delete(tracked),
          (err: unknown) => {
            inFlight.delete(tracked);
            failures.push(err);
          },
        );
        inFlight.add(tracked);
        if (inFlight.size >= ON_DEMAND_CONCURRENCY) await Promise.race(inFlight);
        if (failures.length > 0) break;
        break;
      }
    }
  }
  await Promise.all(inFlight);
  if (failures.length > 0) throw failures[0];
  const stats: RemainderStats = {
    round,
    policy: run.smallRemainder,
    records,
    succeeded: await succeeded.close(),
    failed: await failed.close(),
    held: await held.close(),
    onDemandRecords,
    tokens,
  };
  await writeJsonObject(deps.s3, run.bucket, runKeys.remainderStats(run.runId, round), stats);
  return stats;
}

/** How many times an on-demand record is tried when the error is transient. */
const ON_DEMAND_ATTEMPTS = 3;

async function invokeOnDemand(
  client: BedrockRuntimeClient,
  run: RunConfig,
  record: { recordId: string; modelInput: unknown },
): Promise<SucceededRecord | { code: string; message: string }> {
  const family = modelFamily(run.modelId)!;
  let last: { code: string; message: string } = { code: 'Unknown', message: 'not attempted' };
  for (let attempt = 1; attempt <= ON_DEMAND_ATTEMPTS; attempt++) {
    try {
      const res = await client.send(
        new InvokeModelCommand({
          modelId: run.modelId,
          body: JSON.stringify(record.modelInput),
          contentType: 'application/json',
          accept: 'application/json',
        }),
      );
      const modelOutput = JSON.parse(Buffer.from(res.body ?? new Uint8Array()).toString('utf8')) as unknown;
      const usage = usageOf(family, modelOutput);
      return familyReportsUsage(family)
        ? { recordId: record.recordId, modelOutput, usage: { inputTokens: usage.input, outputTokens: usage.output }, onDemand: true }
        : { recordId: record.recordId, modelOutput, onDemand: true };
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode;
      last = { code: e.name || String(status ?? 'Error'), message: `on-demand InvokeModel failed: ${e.message}` };
      if (!isRetryableRecordError(status)) break;
    }
  }
  return last;
}
