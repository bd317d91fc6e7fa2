import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { JobSlotLimiter } from '../shared/job-slots';
import { sweepJobs, type SweepReport } from './sweeper';

/** Runs every few minutes (EventBridge schedule). */
export const handler = async (): Promise<SweepReport> => {
  const clients = awsClients();
  const table = handlerConfig().table;
  return sweepJobs({ bedrock: clients.bedrock, sfn: clients.sfn, jobs: new JobRecords(clients.ddb, table), limiter: new JobSlotLimiter(clients.ddb, table) });
};
