/**
 * Job-state: Bedrock's `Batch Inference Job State Change` events complete the task token of
 * the job's SubmitJob task when the job is terminal. Events are best effort and may repeat:
 * unknown jobs are ignored, repeats are harmless, lost ones are caught by the sweeper.
 *
 * An event counts only once the item has recorded its job's ARN. Job names are unique within
 * the account only while a job of that name exists, so until submit-job has its own job's ARN
 * an event of that name may be another pipeline's job. Nothing is lost by waiting: submit-job
 * reads its job after recording the ARN and completes the token itself if the job is already
 * over, and the sweeper polls every item that has an ARN.
 */
import type { SFNClient } from '@aws-sdk/client-sfn';
import { isTerminalStatus } from '../shared/contracts';
import { completeJobTask } from '../shared/job-completion';
import type { JobRecords } from '../shared/job-records';
import { logger } from '../shared/logger';

/** The detail of Bedrock's event (docs/BEDROCK-FACTS.md §6). */
export interface BatchJobStateDetail {
  readonly batchJobArn: string;
  readonly batchJobName: string;
  readonly status: string;
  readonly failureMessage?: string;
}

export interface BatchJobStateEvent {
  readonly 'detail-type': string;
  readonly source: string;
  readonly detail: BatchJobStateDetail;
}

export type JobStateOutcome = 'completed' | 'already-closed' | 'not-terminal' | 'unknown-job' | 'awaiting-job-arn';

export async function handleJobStateEvent(deps: { sfn: SFNClient; jobs: JobRecords }, event: BatchJobStateEvent): Promise<JobStateOutcome> {
  const { batchJobArn: jobArn, batchJobName: jobName, status, failureMessage } = event.detail;
  const item = await deps.jobs.get(jobName);
  // An item that knows its job's ARN answers only to that job's events: a job of the same name
  // elsewhere (another pipeline in the account) must not complete this chunk's task.
  if (!item || (item.jobArn !== undefined && item.jobArn !== jobArn)) {
    logger.info('event for a job this pipeline does not track', { jobArn, jobName, status, ...(item?.jobArn ? { trackedJobArn: item.jobArn } : {}) });
    return 'unknown-job';
  }
  if (item.jobArn === undefined) {
    logger.info('event before the job ARN was recorded; submit-job checks the job itself', { jobArn, jobName, status });
    return 'awaiting-job-arn';
  }
  if (!isTerminalStatus(status)) {
    if (!item.tokenCompletedAt) await deps.jobs.setStatus(jobName, status, jobArn);
    return 'not-terminal';
  }
  if (item.tokenCompletedAt) return 'already-closed';
  const sent = await completeJobTask(deps.sfn, deps.jobs, item, { jobArn, status, ...(failureMessage ? { message: failureMessage } : {}) });
  logger.info('job finished', { runId: item.runId, jobArn, status });
  return sent ? 'completed' : 'already-closed';
}
