import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { readModelQuotas } from '../shared/model-quotas';
import { invocationRoundDeps } from '../shared/round-chunk-writer';
import { RunClaims } from '../shared/run-claims';
import type { LambdaContext } from '../shared/time-budget';
import { prepareRun, type PrepareEvent, type PrepareResult } from './prepare';

/** Workflow task `Prepare`. */
export const handler = async (event: PrepareEvent, context?: LambdaContext): Promise<PrepareResult> => {
  const config = handlerConfig();
  const clients = awsClients();
  const claims = new RunClaims(clients.ddb, config.table);
  return prepareRun(
    invocationRoundDeps(clients, claims, context),
    {
      bucket: config.bucket,
      pipeline: config.pipeline,
      claims,
      readQuotas: (modelId) => readModelQuotas(clients.serviceQuotas, modelId),
    },
    event,
  );
};
