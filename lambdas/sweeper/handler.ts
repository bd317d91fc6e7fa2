import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { JobSlotLimiter } from '../shared/job-slots';
import { SweepIncomplete, sweepJobs, type SweepReport } from './sweeper';

/**
 * Runs every few minutes (EventBridge schedule). Fails with {@link SweepIncomplete} after a
 * cycle that could not handle every item, so the failure reaches the alarms.
 */
export const handler = async (): Promise<SweepReport> => {
  const clients = awsClients();
  const table = handlerConfig().table;
  const report = await sweepJobs({
    bedrock: clients.bedrock,
    sfn: clients.sfn,
    jobs: new JobRecords(clients.ddb, table),
    limiter: new JobSlotLimiter(clients.ddb, table),
  });
  if (report.failed.length > 0) throw new SweepIncomplete(report);
  return report;
};
