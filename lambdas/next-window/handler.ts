import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { DEFAULT_HISTORY_EVENT_BUDGET } from '../shared/contracts';
import { RunClaims } from '../shared/run-claims';
import { nextWindow, type NextWindowEvent, type WindowResult } from './next-window';

/** Workflow task `NextWindow`. */
export const handler = async (event: NextWindowEvent): Promise<WindowResult> => {
  const clients = awsClients();
  const config = handlerConfig();
  return nextWindow(
    {
      sfn: clients.sfn,
      historyEventBudget: config.pipeline.historyEventBudget ?? DEFAULT_HISTORY_EVENT_BUDGET,
      claims: new RunClaims(clients.ddb, config.table),
    },
    event,
  );
};
