/**
 * ReconcileChunk: settle the chunk's job (stopping one whose wait ended without an outcome),
 * free its job slot, then join the job's output with the chunk's input and write the chunk's
 * succeeded / failed / retry parts and counters.
 */
import { GetModelInvocationJobCommand, type BedrockClient } from '@aws-sdk/client-bedrock';
import type { S3Client } from '@aws-sdk/client-s3';
import { isTerminalStatus, jobNameFor, runKeys, type ChunkTask, type JobOutcome } from '../shared/contracts';
import { stopJob } from '../shared/job-completion';
import type { JobRecords } from '../shared/job-records';
import type { JobSlotLimiter } from '../shared/job-slots';
import { logger } from '../shared/logger';
import { modelFamily } from '../shared/model-family';
import type { ChunkStats, FailedRecord, PartFile, RecordError } from '../shared/outcomes';
import { ChunkReconciler, leadingRecordId } from '../shared/reconcile';
import { JsonlWriter, listObjects, readJsonObject, readObjectLineBatches, readObjectLines, writeJsonObject } from '../shared/s3-jsonl';

export interface ReconcileEvent extends ChunkTask {
  /** Set when the job reached a terminal status. */
  readonly job?: JobOutcome;
  /** Set when no terminal status came: submit failed, or the wait timed out. */
  readonly jobError?: { readonly Error?: string; readonly Cause?: string };
  /** Set by stop-run, which reconciles the jobs it stopped: marks the stats `reconciledAfterStop`. */
  readonly afterStop?: true;
}

export interface ReconcileDeps {
  readonly s3: S3Client;
  readonly bedrock: BedrockClient;
  readonly limiter: JobSlotLimiter;
  readonly jobs: JobRecords;
}

type Outcome = { jobArn?: string; status: string; message?: string };

/** The error the chunk's records fail with when Bedrock refused its job for the whole run, else undefined. */
function refusalOf(event: ReconcileEvent, outcome: Outcome): RecordError | undefined {
  // SubmitJob's JobRefused (submit-job.ts): Bedrock refused the create for a reason every job of
  // the run shares, so another round would be refused alike.
  if (outcome.jobArn || event.jobError?.Error !== 'JobRefused') return undefined;
  let cause = event.jobError?.Cause ?? '';
  try {
    cause = (JSON.parse(cause) as { errorMessage?: string }).errorMessage ?? cause;
  } catch {
    // Not a Lambda error document: the text as it is.
  }
  return { code: 'JobRefused', message: `Bedrock refused to create the job for model ${event.run.modelId}: ${cause.slice(0, 500)}` };
}

/** The job's status and message from Bedrock, or undefined when it cannot be read (stop-run reads its stopped jobs with it too). */
export async function readJob(deps: Pick<ReconcileDeps, 'bedrock'>, jobArn: string): Promise<{ status?: string; message?: string } | undefined> {
  try {
    const job = await deps.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
    return { ...(job.status ? { status: job.status } : {}), ...(job.message ? { message: job.message } : {}) };
  } catch (err) {
    logger.warn('could not read job', { jobArn, error: (err as Error).name });
    return undefined;
  }
}

/**
 * The job's final word: Bedrock's own status when it can be read, else the task's outcome.
 * Without an outcome (the submit failed, or the wait timed out) a job that exists is still
 * read: a finished job is reconciled as usual, one still running is stopped first, so that
 * its output is not lost and it does not run on outside the cap once its slot is freed.
 */
async function jobOutcome(deps: ReconcileDeps, event: ReconcileEvent, jobName: string): Promise<Outcome> {
  if (event.job) {
    const job = await readJob(deps, event.job.jobArn);
    return {
      jobArn: event.job.jobArn,
      status: job?.status ?? event.job.status,
      ...((job?.message ?? event.job.message) ? { message: job?.message ?? event.job.message } : {}),
    };
  }
  const cause = event.jobError?.Cause;
  const why = `${event.jobError?.Error ?? 'no job outcome'}${cause ? `: ${cause.slice(0, 500)}` : ''}`;
  const jobArn = (await deps.jobs.get(jobName))?.jobArn;
  if (!jobArn) return { status: 'NotSubmitted', message: why };
  const job = await readJob(deps, jobArn);
  if (isTerminalStatus(job?.status)) return { jobArn, status: job!.status!, ...(job?.message ? { message: job.message } : {}) };
  await stopJob(deps.bedrock, jobArn);
  logger.warn('stopped a job whose wait ended without its outcome', { jobArn, reason: why });
  return { jobArn, status: 'Stopped', message: `the wait for the job ended (${why}); the job was stopped` };
}

/** The parts a reconcile wrote: each writer that got lines. */
function writtenParts(writers: Record<'succeeded' | 'failed' | 'retry', JsonlWriter>): PartFile[] {
  return (Object.entries(writers) as Array<[PartFile['kind'], JsonlWriter]>)
    .filter(([, w]) => w.lines > 0)
    .map(([kind, w]) => ({ kind, key: w.key, lines: w.lines, bytes: w.bytes }));
}

/**
 * Reconciles one chunk. Safe to run again after failing anywhere: `stats.json` is written last
 * and lists the parts written; once it exists the chunk is settled and a later attempt returns
 * it untouched (its job outcome may read differently by then, and its parts must not change
 * under a reader). Before it exists, an attempt rewrites what it needs, and a part an earlier
 * attempt left (a `retry.jsonl` of an outcome that has changed since) is in no manifest, so
 * nothing reads it.
 */
export async function reconcileChunk(deps: ReconcileDeps, event: ReconcileEvent): Promise<ChunkStats> {
  const { run, round, chunk } = event;
  const statsKey = runKeys.chunkStats(run.runId, round, chunk);
  const committed = await readJsonObject<ChunkStats>(deps.s3, run.bucket, statsKey);
  if (committed) {
    logger.info('chunk already reconciled', { runId: run.runId, round, chunk, jobArn: committed.jobArn });
    return committed;
  }
  const jobName = jobNameFor(run.runId, round, chunk);
  const outcome = await jobOutcome(deps, event, jobName);
  await deps.limiter.release(run.modelId, jobName);

  // Only the chunk's ids are held; its records are read again (pass 2) only if some are unsettled.
  const inputKey = runKeys.chunkInput(run.runId, round, chunk);
  const ids: string[] = [];
  for await (const batch of readObjectLineBatches(deps.s3, run.bucket, inputKey)) {
    for (const raw of batch) if (raw.length > 0) ids.push(leadingRecordId(raw.toString('utf8')));
  }
  const records = ids.length;
  const reconciler = new ChunkReconciler(ids, round, modelFamily(run.modelId)!);
  ids.length = 0;
  const writers = {
    succeeded: new JsonlWriter(deps.s3, run.bucket, runKeys.chunkPart(run.runId, round, chunk, 'succeeded'), { lazy: true }),
    failed: new JsonlWriter(deps.s3, run.bucket, runKeys.chunkPart(run.runId, round, chunk, 'failed'), { lazy: true }),
    retry: new JsonlWriter(deps.s3, run.bucket, runKeys.chunkPart(run.runId, round, chunk, 'retry'), { lazy: true }),
  };

  if (outcome.jobArn) {
    const jobId = outcome.jobArn.slice(outcome.jobArn.lastIndexOf('/') + 1);
    const prefix = `${runKeys.chunkOutputPrefix(run.runId, round, chunk)}${jobId}/`;
    const outputs = (await listObjects(deps.s3, run.bucket, prefix)).filter((o) => o.key.endsWith('.out') && !o.key.endsWith('manifest.json.out'));
    for (const { key } of outputs) {
      for await (const batch of readObjectLineBatches(deps.s3, run.bucket, key)) {
        for (const raw of batch) {
          if (raw.length === 0) continue;
          const verdict = reconciler.accept(raw.toString('utf8'));
          if (verdict.kind === 'succeeded' || verdict.kind === 'failed') await writers[verdict.kind].write(verdict.record);
        }
      }
    }
  }
  const refused = refusalOf(event, outcome);
  if (reconciler.unsettledCount > 0) {
    for await (const raw of readObjectLines(deps.s3, run.bucket, inputKey)) {
      if (raw.length === 0) continue;
      const retry = reconciler.retryFor(raw.toString('utf8'), outcome.status, outcome.message);
      if (retry && refused) await writers.failed.write({ recordId: retry.recordId, error: refused, attempts: round } satisfies FailedRecord);
      else if (retry) await writers.retry.write(retry);
    }
  }

  const stats: ChunkStats = {
    round,
    chunk,
    ...(outcome.jobArn ? { jobArn: outcome.jobArn } : {}),
    jobStatus: outcome.status,
    records,
    succeeded: await writers.succeeded.close(),
    failed: await writers.failed.close(),
    retry: await writers.retry.close(),
    tokens: reconciler.tokenUsage,
    unknownOutputRecords: reconciler.unknownOutputRecords,
    duplicateOutputRecords: reconciler.duplicateOutputRecords,
    parts: writtenParts(writers),
    ...(reconciler.truncatedRecords > 0 ? { truncated: reconciler.truncatedRecords } : {}),
    ...(event.afterStop ? { reconciledAfterStop: true as const } : {}),
    ...(refused ? { refused } : {}),
  };
  if (refused) logger.error('Bedrock refused the job for the whole run: its records are failed, not retried', { runId: run.runId, ...refused });
  await writeJsonObject(deps.s3, run.bucket, statsKey, stats);
  logger.info('chunk reconciled', { runId: run.runId, jobArn: outcome.jobArn, ...stats, tokens: undefined, parts: undefined });
  return stats;
}
