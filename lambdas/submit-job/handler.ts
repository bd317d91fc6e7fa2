import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { chunkLabel, roundLabel } from '../shared/contracts';
import { JobRecords } from '../shared/job-records';
import { logger } from '../shared/logger';
import { RunClaims, RunStopping, withRunStep } from '../shared/run-claims';
import { submitChunkJob, type SubmitJobEvent } from './submit-job';

/**
 * Workflow task `SubmitJob` (`.waitForTaskToken`). Bedrock errors propagate by name
 * (ThrottlingException, ServiceQuotaExceededException, ...) for the state's Retry to judge.
 * It runs as a step of the run: once the run is stopped it creates no job (its execution is
 * stopped too, so nothing waits for the token).
 */
export const handler = async (event: SubmitJobEvent): Promise<{ jobArn: string } | { stopped: true }> => {
  const clients = awsClients();
  const config = handlerConfig();
  const claims = new RunClaims(clients.ddb, config.table);
  try {
    return await withRunStep(claims, event.run.runId, `submit:${roundLabel(event.round)}-${chunkLabel(event.chunk)}`, async () => ({
      jobArn: await submitChunkJob(
        {
          bedrock: clients.bedrock,
          sfn: clients.sfn,
          jobs: new JobRecords(clients.ddb, config.table),
          bedrockRoleArn: config.bedrockRoleArn,
          stackName: config.stackName,
        },
        event,
      ),
    }));
  } catch (err) {
    if (!(err instanceof RunStopping)) throw err;
    logger.info('run stopped: no job created', { runId: event.run.runId, round: event.round, chunk: event.chunk });
    return { stopped: true };
  }
};
