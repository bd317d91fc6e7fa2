import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { jobNameFor, type ChunkTask } from '../shared/contracts';
import { JobSlotLimiter } from '../shared/job-slots';

/**
 * The cap a chunk's slot is taken under: the pipeline's configured cap for every run of the
 * model, lowered (never raised) by the run's own `maxConcurrentJobs`. The run's value is
 * checked by Prepare; taking the minimum here keeps the model's cap even if it was not.
 */
export function slotLimitFor(run: ChunkTask['run'], pipelineCap: number): number {
  const own = Number.isInteger(run.maxConcurrentJobs) && run.maxConcurrentJobs >= 1 ? run.maxConcurrentJobs : pipelineCap;
  return Math.min(own, pipelineCap);
}

/** Workflow task `AcquireSlot`: takes a slot of the model's cap or throws `SlotUnavailable`. */
export const handler = async (event: ChunkTask): Promise<void> => {
  const config = handlerConfig();
  const limiter = new JobSlotLimiter(awsClients().ddb, config.table);
  await limiter.acquire(event.run.modelId, jobNameFor(event.run.runId, event.round, event.chunk), slotLimitFor(event.run, config.pipeline.maxConcurrentJobs));
};
