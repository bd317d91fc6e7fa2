import { awsClients } from '../shared/clients';
import { handlerConfig } from '../shared/config';
import { chunkLabel, roundLabel } from '../shared/contracts';
import { JobRecords } from '../shared/job-records';
import { logger } from '../shared/logger';
import { RunClaims, RunStopping } from '../shared/run-claims';
import { withRunStep } from '../shared/run-steps';
import { lambdaTimeBudget, type LambdaContext } from '../shared/time-budget';
import { submitChunkJob, type SubmitJobEvent } from './submit-job';

/**
 * Workflow task `SubmitJob` (`.waitForTaskToken`). Bedrock errors propagate by name
 * (ThrottlingException, ServiceQuotaExceededException, ...) for the state's Retry to judge.
 * It runs as a step of the run: once the run is stopped it creates no job (its execution is
 * stopped too, so nothing waits for the token).
 */
export const handler = async (event: SubmitJobEvent, context?: LambdaContext): Promise<{ jobArn: string } | { stopped: true }> => {
  const clients = awsClients();
  const config = handlerConfig();
  const claims = new RunClaims(clients.ddb, config.table);
  try {
    const deps = {
      bedrock: clients.bedrock,
      sfn: clients.sfn,
      jobs: new JobRecords(clients.ddb, config.table),
      bedrockRoleArn: config.bedrockRoleArn,
      stackName: config.stackName,
    };
    const step = `submit:${roundLabel(event.round)}-${chunkLabel(event.chunk)}`;
    return await withRunStep(claims, event.run.runId, step, async () => ({ jobArn: await submitChunkJob(deps, event) }), lambdaTimeBudget(context));
  } catch (err) {
    if (!(err instanceof RunStopping)) throw err;
    logger.info('run stopped: no job created', { runId: event.run.runId, round: event.round, chunk: event.chunk });
    return { stopped: true };
  }
};
