import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { roundLabel } from '../shared/contracts';
import { RunClaims, withRunStep } from '../shared/run-claims';
import { lambdaTimeBudget } from '../shared/time-budget';
import { endRound, type EndRoundEvent, type EndRoundResult } from './end-round';

/** Workflow task `EndRound`, a step of the run (refused once the run is stopped; stop-run waits for it). */
export const handler = async (event: EndRoundEvent, context?: { getRemainingTimeInMillis?: () => number }): Promise<EndRoundResult> => {
  const clients = awsClients();
  const budget = lambdaTimeBudget(context);
  const claims = new RunClaims(clients.ddb, handlerConfig().table);
  // The on-demand remainder works within the invocation's time and stops calling once the run
  // is stopped (small-remainder.ts).
  const deps = { ...clients, ...(budget ? { budget } : {}), stopRequested: (runId: string) => claims.isStopped(runId) };
  return withRunStep(claims, event.run.runId, `end-round:${roundLabel(event.round.number)}`, () => endRound(deps, event));
};
