import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { JobSlotLimiter } from '../shared/job-slots';
import { RunClaims } from '../shared/run-claims';
import type { LambdaContext } from '../shared/time-budget';
import type { RunSummary } from '../finalize/finalize';
import { windUpStoppedRun, type ExecutionStatusChangeEvent } from './stop-run';

/**
 * What stop-run keeps of its own time limit for the rest of its work after waiting for prepare
 * or end-round: 5 minutes, or a third of what it has when that is less (a shorter timeout).
 */
const AFTER_WAIT_MS = 5 * 60 * 1000;

/** How long stop-run may wait, out of the `remainingMs` its invocation has. */
export function waitBudgetMs(remainingMs: number): number {
  return Math.max(0, remainingMs - Math.min(AFTER_WAIT_MS, remainingMs / 3));
}

/** Target of the rule on the workflow's `Step Functions Execution Status Change` (ABORTED) events. */
export const handler = async (event: ExecutionStatusChangeEvent, context?: LambdaContext): Promise<RunSummary | { ignored: string }> => {
  const clients = awsClients();
  const config = handlerConfig();
  return windUpStoppedRun(
    {
      s3: clients.s3,
      events: clients.events,
      bedrock: clients.bedrock,
      jobs: new JobRecords(clients.ddb, config.table),
      limiter: new JobSlotLimiter(clients.ddb, config.table),
      claims: new RunClaims(clients.ddb, config.table),
      bucket: config.bucket,
      eventBusName: config.eventBusName,
      prices: config.pipeline.prices,
      // A prepare or end-round still running ends within its own 15 minutes; wait what this
      // invocation can spare.
      waitMs: waitBudgetMs(context?.getRemainingTimeInMillis?.() ?? 15 * 60 * 1000),
    },
    event,
  );
};
