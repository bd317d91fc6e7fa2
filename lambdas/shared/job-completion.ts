/**
 * Completing a SubmitJob task token once its job is terminal. Called by the job-state handler
 * (events), the sweeper (polling) and submit-job itself (a job that finished before its item
 * was updated); any of them may come first, so completion is idempotent.
 */
import { StopModelInvocationJobCommand, type BedrockClient } from '@aws-sdk/client-bedrock';
import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { JobOutcome } from './contracts';
import { tokensOf, type JobItem, type JobRecords } from './job-records';
import { logger } from './logger';

/** Errors meaning the token was completed (or abandoned) already: nothing left to do. */
const ALREADY_CLOSED = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

/**
 * Sends the job's terminal outcome to its waiting task: to every token the item holds, since
 * attempts of SubmitJob can overlap and the last token stored is not always the live one (the
 * others answer TaskTimedOut, which is fine). Returns true when a token took the outcome; false
 * when none did, or when the tokens were completed since the caller read `item`.
 *
 * The item is read again first: the sweeper works from a scan that can be seconds old, and
 * without this it re-sent, and re-marked, every job that job-state completed meanwhile (8 times
 * per job in the twin's 800-chunk run, where overlapping sweeps start every 300 ms).
 */
export async function completeJobTask(sfn: SFNClient, jobs: JobRecords, item: JobItem, outcome: JobOutcome): Promise<boolean> {
  const current = await jobs.get(item.jobName);
  if (current?.tokenCompletedAt !== undefined) {
    logger.info('task tokens completed since read; nothing sent', { jobName: item.jobName, jobArn: outcome.jobArn });
    return false;
  }
  // No item at all: `item` is the only record of the tokens left, so complete them anyway.
  const tokens = tokensOf(current ?? item);
  let sent = false;
  for (const taskToken of tokens) {
    try {
      await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome) }));
      sent = true;
    } catch (err) {
      if (!ALREADY_CLOSED.has((err as Error).name)) throw err;
      logger.info('task token already closed', { jobName: item.jobName, jobArn: outcome.jobArn, error: (err as Error).name });
    }
  }
  if (!current) return sent;
  await jobs.setStatus(item.jobName, outcome.status, outcome.jobArn);
  // Marked only while the item holds no more tokens than were sent to. A retried submit that
  // added its token during the sends leaves the item open: marking it would hide it from the
  // sweeper, and the retry (finding the job over) would then see it completed and send nothing,
  // so the run would wait on that token until the task's timeout.
  if (!(await jobs.markTokenCompleted(item.jobName, { tokenCount: tokens.length }))) {
    logger.info('a retried submit added a task token meanwhile; the item is left open', { jobName: item.jobName, jobArn: outcome.jobArn });
  }
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
