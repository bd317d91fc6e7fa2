/**
 * A job's way through its statuses (docs/BEDROCK-FACTS.md §4), one step per `stepDelayMs`: Submitted,
 * Validating (the input files checked against the model's quotas), Scheduled, InProgress (the
 * fake model answers every record and the output files are written), then Completed,
 * PartiallyCompleted, Failed, Expired or, after a stop, Stopping and Stopped; with the job
 * faults applied.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { isTerminalStatus } from '../../lambdas/shared/contracts';
import type { FaultDecider } from './faults';
import { processJobRecords, validateJobInput, type RecordCounts } from './job-processing';
import type { Job } from './job-store';
import type { ProcessingSlots } from './processing-slots';
import type { JobStatus } from './validation';

/** What a job's driver needs of the emulator. */
export interface LifecycleHost {
  readonly s3: S3Client;
  readonly faults: FaultDecider;
  /** True once the emulator is stopped: the driver leaves the job where it is. */
  closed(): boolean;
  /** Waits one step; false when the emulator was stopped meanwhile. */
  step(): Promise<boolean>;
  transition(job: Job, to: JobStatus, message?: string): void;
  /** Records processed by batch jobs, for the stats. */
  countProcessed(records: number): void;
  /** The slots for processing jobs' records (a few jobs at a time). */
  readonly slots: ProcessingSlots;
  /** Why the job's service role may not read its input or write its output, if so. */
  serviceRoleProblem(job: Job): string | undefined;
}

/** Moves a job through its statuses, one step per `stepDelayMs` (docs/BEDROCK-FACTS.md §4). */
export async function driveJob(host: LifecycleHost, job: Job): Promise<void> {
  try {
    if (!(await host.step())) return;
    if (job.stopRequested) return await finishStop(host, job);
    host.transition(job, 'Validating');
    const input = await validateJobInput(
      host.s3,
      {
        inputS3Uri: job.request.inputDataConfig.s3InputDataConfig.s3Uri,
        outputS3Uri: job.request.outputDataConfig.s3OutputDataConfig.s3Uri,
        modelId: job.request.modelId,
      },
      job.quotas,
      () => job.stopRequested || host.closed(),
    );
    if (!(await host.step())) return;
    if (job.stopRequested) return await finishStop(host, job);
    if ('problem' in input) return host.transition(job, 'Failed', input.problem);
    // Accepted, then failed once Bedrock tries the role (docs/BEDROCK-FACTS.md §8): not at create.
    const denied = host.serviceRoleProblem(job);
    if (denied) return host.transition(job, 'Failed', denied);

    host.transition(job, 'Scheduled');
    if (!(await host.step())) return;
    if (job.stopRequested) return await finishStop(host, job);
    if (job.faults.expire) {
      // Expired: scheduled but did not start before the timeout; no output (docs/BEDROCK-FACTS.md §4).
      return host.transition(
        job,
        'Expired',
        `The batch inference job expired: it was scheduled but did not begin before its timeout of ${job.timeoutHours} hours.`,
      );
    }

    job.counts.total = input.recordCount;
    host.transition(job, 'InProgress');
    if (job.faults.fail) {
      if (!(await host.step())) return;
      if (job.stopRequested) return await finishStop(host, job);
      return host.transition(job, 'Failed', 'The batch inference job failed because of an internal error (emulated job-fail fault).');
    }

    // The records of a few jobs are processed at a time; the others wait their turn in order,
    // woken when a slot is given back and at each step to look for a stop.
    while (!host.slots.tryTake(job)) {
      const open = await Promise.race([host.step(), host.slots.changed().then(() => !host.closed())]);
      if (!open || job.stopRequested) {
        host.slots.leave(job);
        return open ? await finishStop(host, job) : undefined;
      }
    }
    let limit: number | undefined;
    let reported = 0;
    const onProgress = (c: RecordCounts) => {
      job.counts.processed = c.processed;
      job.counts.success = c.success;
      job.counts.error = c.error;
      host.countProcessed(c.processed - reported);
      reported = c.processed;
    };
    let counts: RecordCounts;
    try {
      limit = job.faults.partial ? partialCount(host, job, input.recordCount) : undefined;
      counts = await processJobRecords({
        s3: host.s3,
        files: input.files,
        totalRecords: input.recordCount,
        jobArn: job.jobArn,
        jobId: job.jobId,
        modelId: job.request.modelId,
        family: job.family,
        invocationType: job.invocationType,
        outputS3Uri: job.request.outputDataConfig.s3OutputDataConfig.s3Uri,
        faults: host.faults,
        limit,
        shouldStop: () => job.stopRequested || host.closed(),
        shouldAbandon: () => host.closed(),
        onProgress,
      });
    } finally {
      host.slots.give();
    }
    onProgress(counts);
    if (!(await host.step())) return;
    if (job.stopRequested) return await finishStop(host, job);
    if (limit !== undefined && counts.processed < input.recordCount) {
      // The doc's meaning of PartiallyCompleted: the timeout hit after processing began (docs/BEDROCK-FACTS.md §4).
      return host.transition(job, 'PartiallyCompleted', 'Not all of your records could be processed in time.');
    }
    host.transition(job, 'Completed');
  } catch (err) {
    if (host.closed() || isTerminalStatus(job.status)) return;
    host.transition(job, 'Failed', `The batch inference job failed: ${(err as Error)?.message ?? String(err)}`);
  }
}

async function finishStop(host: LifecycleHost, job: Job): Promise<void> {
  if (!(await host.step())) return;
  host.transition(job, 'Stopped');
}

/** How many records a `job-partial` job gets through: 30-80% of them, never all. */
function partialCount(host: LifecycleHost, job: Job, total: number): number {
  if (total <= 1) return 0;
  const fraction = 0.3 + 0.5 * host.faults.uniform('job-partial-fraction', job.jobArn);
  return Math.min(total - 1, Math.max(1, Math.floor(total * fraction)));
}
