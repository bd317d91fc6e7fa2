import { awsClients } from '../shared/clients';
import { endRound, type EndRoundEvent, type EndRoundResult } from './end-round';

/** Workflow task `EndRound`. */
export const handler = async (event: EndRoundEvent): Promise<EndRoundResult> => endRound(awsClients(), event);
