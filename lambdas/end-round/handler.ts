import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { roundLabel } from '../shared/contracts';
import { invocationRoundDeps } from '../shared/round-chunk-writer';
import { RunClaims } from '../shared/run-claims';
import { withRunStep } from '../shared/run-steps';
import type { LambdaContext } from '../shared/time-budget';
import { endRound, type EndRoundEvent, type EndRoundResult } from './end-round';

/** Workflow task `EndRound`, a step of the run (refused once the run is stopped; stop-run waits for it). */
export const handler = async (event: EndRoundEvent, context?: LambdaContext): Promise<EndRoundResult> => {
  const clients = awsClients();
  const claims = new RunClaims(clients.ddb, handlerConfig().table);
  const deps = invocationRoundDeps(clients, claims, context);
  return withRunStep(claims, event.run.runId, `end-round:${roundLabel(event.round.number)}`, () => endRound(deps, event), deps.budget);
};
