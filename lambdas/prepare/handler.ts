import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { readModelQuotas } from '../shared/model-quotas';
import { RunClaims } from '../shared/run-claims';
import { prepareRun, type PrepareEvent, type PrepareResult } from './prepare';

/** Workflow task `Prepare`. */
export const handler = async (event: PrepareEvent): Promise<PrepareResult> => {
  const config = handlerConfig();
  const clients = awsClients();
  return prepareRun(
    clients,
    {
      bucket: config.bucket,
      pipeline: config.pipeline,
      claims: new RunClaims(clients.ddb, config.table),
      readQuotas: (modelId) => readModelQuotas(clients.serviceQuotas, modelId),
    },
    event,
  );
};
