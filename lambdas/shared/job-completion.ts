/**
 * Completing a SubmitJob task token once its job is terminal. Called by the job-state handler
 * (events), the sweeper (polling) and submit-job itself (a job that finished before its item
 * was updated); any of them may come first, so completion is idempotent.
 */
import { StopModelInvocationJobCommand, type BedrockClient } from '@aws-sdk/client-bedrock';
import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { JobOutcome } from './contracts';
import type { JobItem, JobRecords } from './job-records';
import { logger } from './logger';

/** Errors meaning the token was completed (or abandoned) already: nothing left to do. */
const ALREADY_CLOSED = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

/** Sends the job's terminal outcome to its waiting task. Returns false when the token was already closed. */
export async function completeJobTask(sfn: SFNClient, jobs: JobRecords, item: JobItem, outcome: JobOutcome): Promise<boolean> {
  let sent = true;
  try {
    await sfn.send(new SendTaskSuccessCommand({ taskToken: item.taskToken, output: JSON.stringify(outcome) }));
  } catch (err) {
    if (!ALREADY_CLOSED.has((err as Error).name)) throw err;
    sent = false;
    logger.info('task token already closed', { jobName: item.jobName, jobArn: outcome.jobArn, error: (err as Error).name });
  }
  await jobs.setStatus(item.jobName, outcome.status, outcome.jobArn);
  await jobs.markTokenCompleted(item.jobName);
  return sent;
}

/** Bedrock errors a stop answers for a job that is over already. */
const JOB_ALREADY_OVER = new Set(['ValidationException', 'ConflictException', 'ResourceNotFoundException']);

/** Stops a Bedrock job; returns false when it was over already (nothing to stop). */
export async function stopJob(bedrock: BedrockClient, jobArn: string): Promise<boolean> {
  try {
    await bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: jobArn }));
    return true;
  } catch (err) {
    if (JOB_ALREADY_OVER.has((err as Error).name)) return false;
    throw err;
  }
}
