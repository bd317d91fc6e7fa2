import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { JobRecords } from '../shared/job-records';
import { submitChunkJob, type SubmitJobEvent } from './submit-job';

/**
 * Workflow task `SubmitJob` (`.waitForTaskToken`). Bedrock errors propagate by name
 * (ThrottlingException, ServiceQuotaExceededException, ...) for the state's Retry to judge.
 */
export const handler = async (event: SubmitJobEvent): Promise<{ jobArn: string }> => {
  const clients = awsClients();
  const config = handlerConfig();
  const jobArn = await submitChunkJob(
    { bedrock: clients.bedrock, sfn: clients.sfn, jobs: new JobRecords(clients.ddb, config.table), bedrockRoleArn: config.bedrockRoleArn, stackName: config.stackName },
    event,
  );
  return { jobArn };
};
