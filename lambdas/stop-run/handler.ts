import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { JobSlotLimiter } from '../shared/job-slots';
import type { RunSummary } from '../finalize/finalize';
import { windUpStoppedRun, type ExecutionStatusChangeEvent } from './stop-run';

/** Target of the rule on the workflow's `Step Functions Execution Status Change` (ABORTED) events. */
export const handler = async (event: ExecutionStatusChangeEvent): Promise<RunSummary | { ignored: string }> => {
  const clients = awsClients();
  const config = handlerConfig();
  return windUpStoppedRun(
    {
      s3: clients.s3,
      events: clients.events,
      bedrock: clients.bedrock,
      jobs: new JobRecords(clients.ddb, config.table),
      limiter: new JobSlotLimiter(clients.ddb, config.table),
      bucket: config.bucket,
      eventBusName: config.eventBusName,
    },
    event,
  );
};
