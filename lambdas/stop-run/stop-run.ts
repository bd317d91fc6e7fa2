/**
 * Stop-run: when a user stops (aborts) a run's execution, nothing in the workflow runs again,
 * so this handler, fed by the `Step Functions Execution Status Change` rule, winds the run up:
 * it stops the run's Bedrock jobs still open (you are only charged for tokens already
 * processed), frees their job slots, fails every record the run had not finished with
 * `RunStopped`, and finalizes the run as `Stopped` so that every record is still accounted for.
 */
import type { BedrockClient } from '@aws-sdk/client-bedrock';
import { isValidRunId, parseJobName, runKeys, S3_PREFIXES, type RunConfig } from '../shared/contracts';
import { stopJob } from '../shared/job-completion';
import type { JobRecords } from '../shared/job-records';
import type { JobSlotLimiter } from '../shared/job-slots';
import { logger } from '../shared/logger';
import type { FailedRecord, RetryRecord } from '../shared/outcomes';
import { leadingRecordId } from '../shared/reconcile';
import { runIdFromExecutionName } from '../shared/run-input';
import { JsonlWriter, listObjects, readJsonl, readJsonObject, readObjectLines } from '../shared/s3-jsonl';
import { finalizeRun, type FinalizeDeps, type RunSummary } from '../finalize/finalize';

/** EventBridge's `Step Functions Execution Status Change` event (the fields used). */
export interface ExecutionStatusChangeEvent {
  readonly 'detail-type': string;
  readonly detail: {
    readonly executionArn: string;
    readonly name: string;
    readonly status: string;
    /** The execution input as JSON text (may be absent or null). */
    readonly input?: string | null;
  };
}

export interface StopRunDeps extends FinalizeDeps {
  readonly bedrock: BedrockClient;
  readonly jobs: JobRecords;
  readonly limiter: JobSlotLimiter;
  /**
   * How long to wait, at most, for a prepare that was still running when the execution was
   * stopped (Lambda runs an invocation to its end whatever happens to the execution); 0 to not
   * wait. The handler gives what its own time limit leaves.
   */
  readonly prepareWaitMs?: number;
  /** Pauses between two looks for round 1's plan (a test's clock). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** How often stop-run looks whether a running prepare has finished round 1. */
export const PREPARE_POLL_MS = 2000;

/**
 * Waits until round 1's `plan.json` exists, written last by prepare once the round's chunk files
 * and `run-stats.json` are final, or `waitMs` has passed. Returns whether prepare had finished.
 */
async function waitForPrepare(deps: StopRunDeps, run: RunConfig): Promise<boolean> {
  const planKey = runKeys.roundPlan(run.runId, 1);
  const waitMs = deps.prepareWaitMs ?? 0;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  if (await readJsonObject(deps.s3, run.bucket, planKey)) return true;
  logger.info('the run was stopped while prepare was running; waiting for it to finish', { waitMs });
  for (let waited = 0; waited < waitMs; waited += PREPARE_POLL_MS) {
    await sleep(PREPARE_POLL_MS);
    if (await readJsonObject(deps.s3, run.bucket, planKey)) return true;
  }
  logger.warn('prepare did not finish in time: its records are not accounted for', { waitMs });
  return false;
}

/** The run an execution belongs to, from its input (a successor's `resume`, or `runId`) or its name. */
export function runIdOfExecution(name: string, inputText: string | null | undefined): string {
  try {
    const input = JSON.parse(inputText ?? '{}') as { runId?: unknown; resume?: { run?: { runId?: unknown } } };
    const candidate = input.resume?.run?.runId ?? input.runId;
    if (typeof candidate === 'string' && isValidRunId(candidate)) return candidate;
  } catch {
    // Not JSON: the run id comes from the name, as prepare derives it.
  }
  return runIdFromExecutionName(name);
}

/** Stops the run's open jobs and frees every slot the run holds; returns how many jobs were stopped. */
async function stopJobs(deps: StopRunDeps, runId: string, modelId: string | undefined): Promise<number> {
  let stopped = 0;
  for (const item of await deps.jobs.openJobs(runId)) {
    if (item.jobArn && (await stopJob(deps.bedrock, item.jobArn))) stopped += 1;
    await deps.jobs.markTokenCompleted(item.jobName);
    await deps.limiter.release(item.modelId, item.jobName);
  }
  // Slots taken by chunks that had not created their job yet.
  if (modelId) {
    for (const holder of await deps.limiter.holders(modelId)) {
      if (parseJobName(holder)?.runId === runId) await deps.limiter.release(modelId, holder);
    }
  }
  return stopped;
}

/**
 * Writes `work/<runId>/stopped.jsonl`: the records of the run's last round that no step
 * settled. A chunk that was reconciled has settled all but its retries; a chunk that was not
 * has settled nothing; a remainder without its stats was not handled.
 */
async function failUnfinished(deps: StopRunDeps, run: RunConfig): Promise<number> {
  const work = (await listObjects(deps.s3, run.bucket, `${S3_PREFIXES.work}${run.runId}/`)).map((o) => o.key);
  const has = new Set(work);
  const rounds = work.flatMap((k) => (/\/r(\d+)\/plan\.json$/.exec(k) ? [Number(/\/r(\d+)\/plan\.json$/.exec(k)![1])] : []));
  const writer = new JsonlWriter(deps.s3, run.bucket, runKeys.stopped(run.runId));
  if (rounds.length === 0 || has.has(runKeys.exhausted(run.runId, Math.max(...rounds)))) return writer.close();
  const round = Math.max(...rounds);
  const fail = (recordId: string) =>
    writer.write({
      recordId,
      error: { code: 'RunStopped', message: 'the run was stopped before this record finished' },
      attempts: round,
    } satisfies FailedRecord);

  // Only the round's planned chunks: a chunk file past the count was re-split into others.
  const plan = await readJsonObject<{ chunkCount: number }>(deps.s3, run.bucket, runKeys.roundPlan(run.runId, round));
  for (let chunk = 0; chunk < (plan?.chunkCount ?? 0); chunk++) {
    const key = runKeys.chunkInput(run.runId, round, chunk);
    if (has.has(runKeys.chunkStats(run.runId, round, chunk))) {
      if (!has.has(runKeys.chunkPart(run.runId, round, chunk, 'retry'))) continue;
      for await (const r of readJsonl<RetryRecord>(deps.s3, run.bucket, runKeys.chunkPart(run.runId, round, chunk, 'retry'))) await fail(r.recordId);
    } else {
      for await (const raw of readObjectLines(deps.s3, run.bucket, key)) if (raw.length > 0) await fail(leadingRecordId(raw.toString('utf8')));
    }
  }
  if (has.has(runKeys.roundRemainder(run.runId, round)) && !has.has(runKeys.remainderStats(run.runId, round))) {
    for await (const raw of readObjectLines(deps.s3, run.bucket, runKeys.roundRemainder(run.runId, round))) {
      if (raw.length > 0) await fail(leadingRecordId(raw.toString('utf8')));
    }
  }
  return writer.close();
}

/** Winds up a run whose execution was stopped; ignores every other status. */
export async function windUpStoppedRun(deps: StopRunDeps, event: ExecutionStatusChangeEvent): Promise<RunSummary | { ignored: string }> {
  if (event.detail.status !== 'ABORTED') return { ignored: `execution status ${event.detail.status}` };
  const runId = runIdOfExecution(event.detail.name, event.detail.input);
  logger.appendKeys({ runId });
  const run = await readJsonObject<RunConfig>(deps.s3, deps.bucket, runKeys.runConfig(runId));
  // Prepare writes run.json first: a run with one has started preparing, and its round 1 must be
  // complete before the unfinished records can be told (a successor execution has it already).
  if (run) await waitForPrepare(deps, run);
  const stoppedJobs = await stopJobs(deps, runId, run?.modelId);
  const unfinished = run ? await failUnfinished(deps, run) : 0;
  logger.info('run stopped by a user', { stoppedJobs, unfinishedRecords: unfinished });
  return finalizeRun(deps, { outcome: 'Stopped', runId, ...(run ? { run } : {}), executionName: event.detail.name });
}
