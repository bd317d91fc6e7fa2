/**
 * SubmitJob: store the task token under the job name, then create the chunk's Bedrock job with
 * a stable client request token. The task then waits until the job is terminal (job-state or
 * sweeper completes the token).
 */
import { CreateModelInvocationJobCommand, GetModelInvocationJobCommand, type BedrockClient } from '@aws-sdk/client-bedrock';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { clientRequestTokenFor, isTerminalStatus, jobNameFor, runKeys, s3Uri, type ChunkTask } from '../shared/contracts';
import { completeJobTask } from '../shared/job-completion';
import { JobRecords, tokensOf } from '../shared/job-records';
import { logger } from '../shared/logger';

export interface SubmitJobEvent extends ChunkTask {
  readonly taskToken: string;
}

export interface SubmitDeps {
  readonly bedrock: BedrockClient;
  readonly sfn: SFNClient;
  readonly jobs: JobRecords;
  readonly bedrockRoleArn: string;
  /** The stack's name, for the job's `bedrock-batch:stack` tag (left out when unknown). */
  readonly stackName?: string;
}

/**
 * CreateModelInvocationJob's answers about the request itself (the model, the role, a grant),
 * the same for every job of the run; a name in use (ConflictException) is the chunk's own.
 */
const RUN_WIDE_REFUSALS = new Set(['ValidationException', 'AccessDeniedException', 'ResourceNotFoundException']);

/** The error SubmitJob fails with when Bedrock refuses the job for a reason every job of the run shares. */
export class JobRefused extends Error {
  override readonly name = 'JobRefused';
}

/** Sends the create; a run-wide refusal becomes {@link JobRefused} (only Bedrock's: a DynamoDB error of the same name is not one). */
async function createJob(deps: SubmitDeps, modelId: string, command: CreateModelInvocationJobCommand) {
  try {
    return await deps.bedrock.send(command);
  } catch (err) {
    const name = (err as Error).name;
    if (RUN_WIDE_REFUSALS.has(name)) throw new JobRefused(`${name}: ${(err as Error).message}`);
    throw err;
  }
}

/** Creates the chunk's job (once, however often it is retried) and returns its ARN. */
export async function submitChunkJob(deps: SubmitDeps, event: SubmitJobEvent): Promise<string> {
  const { run, round, chunk } = event;
  const jobName = jobNameFor(run.runId, round, chunk);
  // The token must be findable before the job exists: its first event can arrive at once.
  await deps.jobs.putSubmitting({ jobName, runId: run.runId, round, chunk, modelId: run.modelId, taskToken: event.taskToken });

  const res = await createJob(
    deps,
    run.modelId,
    new CreateModelInvocationJobCommand({
      jobName,
      roleArn: deps.bedrockRoleArn,
      modelId: run.modelId,
      clientRequestToken: clientRequestTokenFor(run.runId, round, chunk),
      inputDataConfig: { s3InputDataConfig: { s3Uri: s3Uri(run.bucket, runKeys.chunkInput(run.runId, round, chunk)), s3InputFormat: 'JSONL' } },
      outputDataConfig: { s3OutputDataConfig: { s3Uri: s3Uri(run.bucket, runKeys.chunkOutputPrefix(run.runId, round, chunk)) } },
      timeoutDurationInHours: run.jobTimeoutHours,
      // Tagged at creation with what the job belongs to (cost allocation, and operators telling
      // jobs apart); the role may add these keys only (lib/pipeline-functions.ts).
      tags: [
        { key: 'bedrock-batch:run', value: run.runId },
        { key: 'bedrock-batch:route', value: run.route },
        ...(deps.stackName ? [{ key: 'bedrock-batch:stack', value: deps.stackName }] : []),
      ],
    }),
  );
  const jobArn = res.jobArn!;
  logger.info('job submitted', { runId: run.runId, jobArn, jobName });
  await deps.jobs.setCreated(jobName, jobArn);

  // A retried submit gets the existing job back (same client request token); if that job is
  // already over, no further event will come for the new task token: complete it here (with
  // every token the item holds, this one among them).
  const job = await deps.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
  if (isTerminalStatus(job.status)) {
    const item = await deps.jobs.get(jobName);
    if (item && tokensOf(item).includes(event.taskToken)) {
      await completeJobTask(deps.sfn, deps.jobs, item, { jobArn, status: job.status!, ...(job.message ? { message: job.message } : {}) });
    }
  }
  return jobArn;
}
