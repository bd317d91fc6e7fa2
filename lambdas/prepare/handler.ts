import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { readModelQuotas } from '../shared/model-quotas';
import { RunClaims } from '../shared/run-claims';
import { lambdaTimeBudget } from '../shared/time-budget';
import { prepareRun, type PrepareEvent, type PrepareResult } from './prepare';

/** Workflow task `Prepare`. */
export const handler = async (event: PrepareEvent, context?: { getRemainingTimeInMillis?: () => number }): Promise<PrepareResult> => {
  const config = handlerConfig();
  const clients = awsClients();
  const claims = new RunClaims(clients.ddb, config.table);
  const budget = lambdaTimeBudget(context);
  return prepareRun(
    // The on-demand remainder works within the invocation's time and stops calling once the
    // run is stopped (small-remainder.ts).
    { ...clients, ...(budget ? { budget } : {}), stopRequested: (runId) => claims.isStopped(runId) },
    {
      bucket: config.bucket,
      pipeline: config.pipeline,
      claims,
      readQuotas: (modelId) => readModelQuotas(clients.serviceQuotas, modelId),
    },
    event,
  );
};
