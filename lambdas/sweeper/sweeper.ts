/**
 * Sweeper: events are best effort, so every few minutes the jobs whose task token is still open
 * are polled and the terminal ones completed; and job slots whose run can no longer free them
 * are freed: held long after their job's outcome was delivered (the run died before
 * ReconcileChunk), held long with no job item at all (the run died between AcquireSlot and
 * SubmitJob, or an AcquireSlot finished after its execution was stopped), or held by a job item
 * that stayed `Submitting` far longer than SubmitJob's retries last (the run died while
 * submitting).
 */
import { GetModelInvocationJobCommand, type BedrockClient } from '@aws-sdk/client-bedrock';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { isTerminalStatus } from '../shared/contracts';
import { completeJobTask } from '../shared/job-completion';
import type { JobRecords } from '../shared/job-records';
import type { JobSlotLimiter } from '../shared/job-slots';
import { logger } from '../shared/logger';

export interface SweepDeps {
  readonly bedrock: BedrockClient;
  readonly sfn: SFNClient;
  readonly jobs: JobRecords;
  readonly limiter: JobSlotLimiter;
}

/**
 * How long after its outcome was delivered a job may still hold its slot (ReconcileChunk frees it
 * within seconds), and how long a slot may be held with no job item (SubmitJob writes it within
 * seconds of AcquireSlot).
 */
export const SLOT_LEAK_GRACE_MS = 30 * 60 * 1000;

/**
 * How long a job item may stay `Submitting` (no job ARN) after its last submit attempt before its
 * slot counts as leaked: SubmitJob's own retries of a throttled create wait up to ~43 minutes
 * between two attempts (~85 minutes in all), each attempt rewriting the item.
 */
export const SUBMIT_STALL_MS = 3 * 60 * 60 * 1000;

/** What one sweep did. */
export interface SweepReport {
  /** Open jobs with a job ARN that were polled (successfully or not). */
  readonly polled: number;
  /** Task tokens completed for jobs whose state event was missed. */
  readonly completed: number;
  /** Slots freed whose runs never released them. */
  readonly recoveredSlots: number;
  /**
   * What could not be handled this cycle, each as `job <jobName>`, `slot <model>/<holder>`,
   * `slots of <model>` or `open jobs` (the scan itself); the next cycle tries again.
   */
  readonly failed: readonly string[];
}

/**
 * One sweep: frees leaked slots, then polls the open jobs. Each job, each slot holder and each
 * model is handled on its own: a failure is logged with what it concerned and reported in
 * {@link SweepReport.failed}, and the sweep goes on. Slot recovery runs first, in its own try,
 * so a job whose poll keeps failing (or a poll loop that outlasts the function's timeout) can
 * never stop it: leaked slots would otherwise starve every run.
 */
export async function sweepJobs(deps: SweepDeps, now = new Date()): Promise<SweepReport> {
  const failed: string[] = [];
  const recoveredSlots = await recoverLeakedSlots(deps, now, failed);

  let polled = 0;
  let completed = 0;
  let open: Awaited<ReturnType<JobRecords['openJobs']>> = [];
  try {
    open = await deps.jobs.openJobs();
  } catch (err) {
    failed.push('open jobs');
    logger.error('could not list the open jobs; polling is skipped this cycle', { error: errorText(err) });
  }
  for (const item of open) {
    if (!item.jobArn) continue;
    polled += 1;
    try {
      const job = await deps.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: item.jobArn }));
      if (!isTerminalStatus(job.status)) continue;
      if (await completeJobTask(deps.sfn, deps.jobs, item, { jobArn: item.jobArn, status: job.status!, ...(job.message ? { message: job.message } : {}) })) {
        completed += 1;
        logger.warn('completed a job whose state event was missed', { runId: item.runId, jobArn: item.jobArn, status: job.status });
      }
    } catch (err) {
      failed.push(`job ${item.jobName}`);
      logger.error('could not poll or complete a tracked job; the next sweep tries again', {
        jobName: item.jobName,
        runId: item.runId,
        jobArn: item.jobArn,
        error: errorText(err),
      });
    }
  }
  return { polled, completed, recoveredSlots, failed };
}

/** Frees the slots whose runs can no longer free them (see the module comment); returns how many. */
async function recoverLeakedSlots(deps: SweepDeps, now: Date, failed: string[]): Promise<number> {
  let recovered = 0;
  let models: string[];
  try {
    models = await deps.limiter.models();
  } catch (err) {
    failed.push('slot models');
    logger.error('could not list the slot items; slot recovery is skipped this cycle', { error: errorText(err) });
    return 0;
  }
  const olderThan = (at: number, ms: number) => now.getTime() - at > ms;
  for (const modelId of models) {
    try {
      recovered += await deps.limiter.recoverLeaked(modelId, async ({ holder, acquiredAt }) => {
        try {
          const job = await deps.jobs.get(holder);
          // A slot taken before acquire times were kept has none: judged by its job item alone.
          if (!job) return olderThan(acquiredAt?.getTime() ?? 0, SLOT_LEAK_GRACE_MS);
          if (job.tokenCompletedAt !== undefined) return olderThan(Date.parse(job.tokenCompletedAt), SLOT_LEAK_GRACE_MS);
          if (job.jobArn === undefined) return olderThan(Date.parse(job.updatedAt), SUBMIT_STALL_MS);
          return false;
        } catch (err) {
          // Kept (not freed) when in doubt: freeing a live job's slot could exceed the cap.
          failed.push(`slot ${modelId}/${holder}`);
          logger.error('could not judge a slot holder; its slot is kept this cycle', { modelId, jobName: holder, error: errorText(err) });
          return false;
        }
      });
    } catch (err) {
      failed.push(`slots of ${modelId}`);
      logger.error('slot recovery of a model failed; the other models go on', { modelId, error: errorText(err) });
    }
  }
  if (recovered > 0) logger.warn('freed job slots whose runs never released them', { recoveredSlots: recovered });
  return recovered;
}

/**
 * Thrown by the handler after a sweep that could not handle everything: the whole cycle ran,
 * and the failure is made visible (the function's Errors alarm, its dead-letter queue) instead
 * of being left in the logs alone.
 */
export class SweepIncomplete extends Error {
  override readonly name = 'SweepIncomplete';

  constructor(readonly report: SweepReport) {
    const shown = report.failed.slice(0, 10).join(', ');
    const more = report.failed.length > 10 ? ` and ${report.failed.length - 10} more` : '';
    super(`the sweep could not handle ${report.failed.length} item(s): ${shown}${more} (see the log for each; the next sweep tries again)`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
