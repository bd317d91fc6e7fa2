import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { RunClaims } from '../shared/run-claims';
import { nextWindow, type NextWindowEvent, type WindowResult } from './next-window';

/** The history budget when the configuration predates the setting. */
const DEFAULT_HISTORY_EVENT_BUDGET = 20000;

/** Workflow task `NextWindow`. */
export const handler = async (event: NextWindowEvent): Promise<WindowResult> => {
  const clients = awsClients();
  const config = handlerConfig();
  return nextWindow(
    { sfn: clients.sfn, historyEventBudget: config.pipeline.historyEventBudget ?? DEFAULT_HISTORY_EVENT_BUDGET, claims: new RunClaims(clients.ddb, config.table) },
    event,
  );
};
