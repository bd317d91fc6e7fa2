/**
 * One measured phase of the benchmark, in its own process (started by ./phases.ts): reads the
 * request from argv[2], builds the SDK clients exactly as the handlers do (`awsClients()`, with
 * endpoints from `AWS_ENDPOINT_URL_<SERVICE>`), times the call, and sends back the outcome with
 * the process's peak RSS over IPC.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { awsClients } from '../../lambdas/shared/clients';
import type { RunClaims } from '../../lambdas/shared/run-claims';
import { runKeys } from '../../lambdas/shared/contracts';
import type { JobRecords } from '../../lambdas/shared/job-records';
import type { JobSlotLimiter } from '../../lambdas/shared/job-slots';
import type { PrepareStats } from '../../lambdas/shared/outcomes';
import { prepareRun } from '../../lambdas/prepare/prepare';
import { reconcileChunk } from '../../lambdas/reconcile-chunk/reconcile-chunk';
import { listObjects, readJsonObject, UPLOAD_PART_BYTES, UPLOAD_QUEUE_SIZE } from '../../lambdas/shared/s3-jsonl';
import { benchJobArn } from './job-output';
import type { MemoryPeaks, PhaseMeasurement, PhaseOutcome, PhaseRequest } from './phases';

const MiB = 1024 * 1024;

/** The slot limiter reconcile frees a slot with; slots are not what this benchmark measures. */
const freeSlots = { release: async () => true } as unknown as JobSlotLimiter;

/** The job table reconcile would read a job from when no outcome is given; here it always is, so it is never read. */
const noJobTable = { get: async () => undefined } as unknown as JobRecords;

/** The run claim prepare takes: the bench's runs are alone, so every claim and step lease is granted (table writes on AWS). */
const grantedClaims = {
  now: Date.now,
  claim: async () => undefined,
  enterStep: async () => 'prepare#bench',
  renewStep: async () => true,
  leaveStep: async () => undefined,
} as unknown as RunClaims;

/** Stops the phase's clock; what runs after it (reading counters back) is not measured. */
interface PhaseClock {
  stop(): void;
}

async function runRequest(request: PhaseRequest, clock: PhaseClock): Promise<PhaseOutcome> {
  const clients = awsClients();
  switch (request.phase) {
    case 'raw-copy': {
      // The baseline: the same bytes through the same client and the same multipart settings as
      // the pipeline's JsonlWriter, with no parsing at all.
      const res = await clients.s3.send(new GetObjectCommand({ Bucket: request.bucket, Key: request.sourceKey }));
      await new Upload({
        client: clients.s3,
        params: { Bucket: request.bucket, Key: request.targetKey, Body: res.Body as Readable, ContentType: 'application/x-ndjson' },
        partSize: UPLOAD_PART_BYTES,
        queueSize: UPLOAD_QUEUE_SIZE,
      }).done();
      clock.stop();
      return { phase: 'raw-copy', bytes: res.ContentLength ?? 0 };
    }
    case 'prepare': {
      const { run, round } = await prepareRun(
        { s3: clients.s3, bedrockRuntime: clients.bedrockRuntime },
        { bucket: request.bucket, pipeline: request.pipeline, claims: grantedClaims },
        {
          input: { inputs: [request.inputUri], runId: request.runId, maxRecordsPerJob: request.maxRecordsPerJob, minRecordsPerJob: request.minRecordsPerJob },
          executionName: request.runId,
          executionArn: `arn:aws:states:us-east-1:123456789012:execution:Bench:${request.runId}`,
          startTime: new Date().toISOString(),
        },
      );
      clock.stop();
      // The counters prepare left for finalize: the benchmark checks them against the input.
      const stats = await readJsonObject<PrepareStats>(clients.s3, run.bucket, runKeys.runStats(run.runId));
      if (!stats) throw new Error('prepare wrote no run-stats.json');
      // A re-split tail (the estimate of the records to come was wrong) leaves tail-N.jsonl files.
      const tailFiles = (await listObjects(clients.s3, run.bucket, runKeys.roundTail(run.runId, 1, 0).replace(/0\.jsonl$/, ''))).length;
      return { phase: 'prepare', run, chunkCount: round.chunkCount, stats, tailFiles };
    }
    case 'reconcile': {
      const totals = { records: 0, succeeded: 0, failed: 0, retry: 0, unknownOutputRecords: 0, duplicateOutputRecords: 0 };
      for (const [chunk, jobId] of request.jobIds.entries()) {
        const stats = await reconcileChunk(
          { s3: clients.s3, bedrock: clients.bedrock, limiter: freeSlots, jobs: noJobTable },
          { run: request.run, round: 1, chunk, job: { jobArn: benchJobArn(jobId), status: 'Completed' } },
        );
        totals.records += stats.records;
        totals.succeeded += stats.succeeded;
        totals.failed += stats.failed;
        totals.retry += stats.retry;
        totals.unknownOutputRecords += stats.unknownOutputRecords;
        totals.duplicateOutputRecords += stats.duplicateOutputRecords;
      }
      clock.stop();
      return { phase: 'reconcile', ...totals };
    }
  }
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '') as PhaseRequest;
  awsClients();
  const startRssMB = process.resourceUsage().maxRSS / 1024;
  const peaks = { heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    for (const k of Object.keys(peaks) as Array<keyof MemoryPeaks>) peaks[k] = Math.max(peaks[k], m[k] / MiB);
  };
  const sampler = setInterval(sample, 20);
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  let seconds = NaN;
  let peakRssMB = NaN;
  let cpuSeconds = NaN;
  const outcome = await runRequest(request, {
    stop() {
      seconds = Number(process.hrtime.bigint() - started) / 1e9;
      peakRssMB = process.resourceUsage().maxRSS / 1024;
      const cpu = process.cpuUsage(cpuStarted);
      cpuSeconds = (cpu.user + cpu.system) / 1e6;
      clearInterval(sampler);
      sample();
    },
  });
  const { user, system } = process.cpuUsage();
  const report: PhaseOutcome & PhaseMeasurement = {
    ...outcome,
    seconds,
    startRssMB,
    peakRssMB,
    sampledPeaksMB: peaks,
    cpuSeconds,
    processCpuSeconds: (user + system) / 1e6,
  };
  await send({ ok: true, report });
}

function send(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => process.send!(message, (err: Error | null) => (err ? reject(err) : resolve())));
}

function finish(): void {
  for (const client of Object.values(awsClients())) (client as { destroy(): void }).destroy();
  process.disconnect?.();
  // Open sockets must not keep a finished phase alive; unref'd, so a clean exit is not delayed.
  setTimeout(() => process.exit(0), 10_000).unref();
}

main().then(finish, async (err: Error) => {
  process.exitCode = 1;
  await send({ ok: false, error: err.stack ?? String(err) }).catch(() => undefined);
  finish();
});
