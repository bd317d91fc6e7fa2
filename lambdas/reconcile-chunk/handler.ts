import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { chunkLabel, roundLabel } from '../shared/contracts';
import { JobRecords } from '../shared/job-records';
import { JobSlotLimiter } from '../shared/job-slots';
import { logger } from '../shared/logger';
import { RunClaims, RunStopping } from '../shared/run-claims';
import { withRunStep } from '../shared/run-steps';
import { lambdaTimeBudget, type LambdaContext } from '../shared/time-budget';
import { reconcileChunk, type ReconcileEvent } from './reconcile-chunk';

/**
 * Workflow task `ReconcileChunk`; its result is discarded by the workflow. It runs as a step of
 * the run: once the run is stopped it writes nothing (stop-run fails the chunk's records and
 * frees its slot), so no record can end both reconciled and `RunStopped`.
 */
export const handler = async (
  event: ReconcileEvent,
  context?: LambdaContext,
): Promise<{ succeeded: number; failed: number; retry: number; stopped?: true }> => {
  const clients = awsClients();
  const table = handlerConfig().table;
  const claims = new RunClaims(clients.ddb, table);
  try {
    const stats = await withRunStep(
      claims,
      event.run.runId,
      `reconcile:${roundLabel(event.round)}-${chunkLabel(event.chunk)}`,
      () =>
        reconcileChunk(
          { s3: clients.s3, bedrock: clients.bedrock, limiter: new JobSlotLimiter(clients.ddb, table), jobs: new JobRecords(clients.ddb, table) },
          event,
        ),
      lambdaTimeBudget(context),
    );
    return { succeeded: stats.succeeded, failed: stats.failed, retry: stats.retry };
  } catch (err) {
    if (!(err instanceof RunStopping)) throw err;
    logger.info('run stopped: chunk not reconciled', { runId: event.run.runId, round: event.round, chunk: event.chunk });
    return { succeeded: 0, failed: 0, retry: 0, stopped: true };
  }
};
