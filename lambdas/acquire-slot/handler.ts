import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { jobNameFor, type ChunkTask } from '../shared/contracts';
import { JobSlotLimiter } from '../shared/job-slots';

/** Workflow task `AcquireSlot`: takes a slot of the model's cap or throws `SlotUnavailable`. */
export const handler = async (event: ChunkTask): Promise<void> => {
  const limiter = new JobSlotLimiter(awsClients().ddb, handlerConfig().table);
  await limiter.acquire(event.run.modelId, jobNameFor(event.run.runId, event.round, event.chunk), event.run.maxConcurrentJobs);
};
