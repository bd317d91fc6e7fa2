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

export interface SweepReport {
  readonly polled: number;
  readonly completed: number;
  readonly recoveredSlots: number;
}

export async function sweepJobs(deps: SweepDeps, now = new Date()): Promise<SweepReport> {
  const open = await deps.jobs.openJobs();
  let polled = 0;
  let completed = 0;
  for (const item of open) {
    if (!item.jobArn) continue;
    polled += 1;
    const job = await deps.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: item.jobArn }));
    if (!isTerminalStatus(job.status)) continue;
    if (await completeJobTask(deps.sfn, deps.jobs, item, { jobArn: item.jobArn, status: job.status!, ...(job.message ? { message: job.message } : {}) })) {
      completed += 1;
      logger.warn('completed a job whose state event was missed', { runId: item.runId, jobArn: item.jobArn, status: job.status });
    }
  }
  let recoveredSlots = 0;
  for (const modelId of await deps.limiter.models()) {
    recoveredSlots += await deps.limiter.recoverLeaked(modelId, async ({ holder, acquiredAt }) => {
      const job = await deps.jobs.get(holder);
      const olderThan = (at: number, ms: number) => now.getTime() - at > ms;
      // A slot taken before acquire times were kept has none: judged by its job item alone.
      if (!job) return olderThan(acquiredAt?.getTime() ?? 0, SLOT_LEAK_GRACE_MS);
      if (job.tokenCompletedAt !== undefined) return olderThan(Date.parse(job.tokenCompletedAt), SLOT_LEAK_GRACE_MS);
      if (job.jobArn === undefined) return olderThan(Date.parse(job.updatedAt), SUBMIT_STALL_MS);
      return false;
    });
  }
  if (recoveredSlots > 0) logger.warn('freed job slots whose runs never released them', { recoveredSlots });
  return { polled, completed, recoveredSlots };
}
