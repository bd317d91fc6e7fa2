/**
 * Sweeper: events are best effort, so every few minutes the jobs whose task token is still open
 * are polled and the terminal ones completed; and each model's slot counter is brought back
 * down to its number of leases when a crash left it too high.
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

export interface SweepReport {
  readonly polled: number;
  readonly completed: number;
  readonly recoveredSlots: number;
}

export async function sweepJobs(deps: SweepDeps): Promise<SweepReport> {
  const open = await deps.jobs.openJobs();
  let polled = 0;
  let completed = 0;
  const models = new Set<string>();
  for (const item of open) {
    models.add(item.modelId);
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
  for (const modelId of models) recoveredSlots += await deps.limiter.recoverLeakedCount(modelId);
  return { polled, completed, recoveredSlots };
}
