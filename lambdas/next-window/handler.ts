import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { nextWindow, type NextWindowEvent, type WindowResult } from './next-window';

/** The history budget when the configuration predates the setting. */
const DEFAULT_HISTORY_EVENT_BUDGET = 20000;

/** Workflow task `NextWindow`. */
export const handler = async (event: NextWindowEvent): Promise<WindowResult> =>
  nextWindow({ sfn: awsClients().sfn, historyEventBudget: handlerConfig().pipeline.historyEventBudget ?? DEFAULT_HISTORY_EVENT_BUDGET }, event);
