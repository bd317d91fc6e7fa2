import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { JobSlotLimiter } from '../shared/job-slots';
import { reconcileChunk, type ReconcileEvent } from './reconcile-chunk';

/** Workflow task `ReconcileChunk`; its result is discarded by the workflow. */
export const handler = async (event: ReconcileEvent): Promise<{ succeeded: number; failed: number; retry: number }> => {
  const clients = awsClients();
  const table = handlerConfig().table;
  const stats = await reconcileChunk(
    { s3: clients.s3, bedrock: clients.bedrock, limiter: new JobSlotLimiter(clients.ddb, table), jobs: new JobRecords(clients.ddb, table) },
    event,
  );
  return { succeeded: stats.succeeded, failed: stats.failed, retry: stats.retry };
};
