import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { handleJobStateEvent, type BatchJobStateEvent, type JobStateOutcome } from './job-state';

/** Target of the `aws.bedrock` / `Batch Inference Job State Change` rule. */
export const handler = async (event: BatchJobStateEvent): Promise<JobStateOutcome> => {
  const clients = awsClients();
  return handleJobStateEvent({ sfn: clients.sfn, jobs: new JobRecords(clients.ddb, handlerConfig().table) }, event);
};
