import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { RunClaims } from '../shared/run-claims';
import { finalizeRun, type FinalizeEvent, type RunSummary } from './finalize';

/** Workflow tasks `Finalize` and `FinalizeFailed`. */
export const handler = async (event: FinalizeEvent): Promise<RunSummary> => {
  const clients = awsClients();
  const config = handlerConfig();
  return finalizeRun(
    {
      s3: clients.s3,
      events: clients.events,
      bucket: config.bucket,
      eventBusName: config.eventBusName,
      prices: config.pipeline.prices,
      claims: new RunClaims(clients.ddb, config.table),
      sfn: clients.sfn,
    },
    event,
  );
};
