/**
 * An in-process emulator of Amazon Bedrock batch inference, spoken to over HTTP by the
 * unmodified `@aws-sdk/client-bedrock` (the four model-invocation-job operations) and
 * `@aws-sdk/client-bedrock-runtime` (InvokeModel). Faithful to
 * docs/BEDROCK-FACTS.md: validation, ARNs, status sequence, quotas, output
 * layout and manifest, EventBridge events; plus deterministic fault injection.
 *
 * This file routes the API and holds what changes a job (create with its quotas and idempotency,
 * stop, status transitions, the events they send); the rest is beside it: http-transport.ts (one
 * port for HTTP/1.1 and HTTP/2), job-store.ts (the jobs, their indexes and quota counts, Get /
 * List / ListTagsForResource), job-lifecycle.ts (a job's way through its statuses),
 * job-processing.ts (input validation and the output files), fake-model.ts, faults.ts, events.ts.
 *
 * Choices where the facts are UNCONFIRMED (each marked in the code):
 * - Stopping a job that is already terminal is a ValidationException (docs/BEDROCK-FACTS.md §3 leaves
 *   ConflictException or ValidationException open); stopping a `Stopping` job is a no-op.
 * - A reused clientRequestToken with the same request returns the first job's ARN; with a
 *   different request it is a ConflictException (docs/BEDROCK-FACTS.md §1 leaves both open).
 * - The concurrent-jobs quota counts every non-terminal status, per base model (an inference
 *   profile shares its model's quota); a job over it gets ServiceQuotaExceededException.
 * - List defaults: newest first, pages of up to 1000.
 * - An omitted timeoutDurationInHours is 24; `jobExpirationTime` is submitTime + timeout.
 * - A job name is unique in the account and region whatever the job's status: a create with a
 *   name in use (and another clientRequestToken) is a ConflictException (docs/BEDROCK-FACTS.md §1: likely).
 * - The manifest is written for every job whose records began to be processed and was not
 *   failed or abandoned (so also PartiallyCompleted and Stopped while processing).
 * - The records of `processingSlots` (default 1) InProgress jobs are processed at a time; the
 *   others wait, looking for a stop at each step. Bedrock promises no time for InProgress.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { isTerminalStatus } from '../../lambdas/shared/contracts';
import { profileRegionProblem } from './profile-regions';
import { batchModelProblem, catalogModel, onDemandModelProblem, type CatalogModel, type ModelQuotas } from '../../lambdas/shared/model-catalog';
import { KNOWN_FAMILIES_HINT, modelFamily } from '../../lambdas/shared/model-family';
import { BedrockApiError } from './api-error';
import { formatCreationTime, JOB_STATE_DETAIL_TYPE, JOB_STATE_SOURCE, modelArnOf, type BedrockJobStateEvent } from './events';
import { fakeModelOutput, invokeModelLatencyMs } from './fake-model';
import { FaultDecider, hash53, type FaultSpec } from './faults';
import { accountQuotasFor } from './account-quotas';
import { DualProtocolServer, parseJsonBody, readBody, sendApiError, sendJson, type HttpRequest, type HttpResponse } from './http-transport';
import { driveJob, type LifecycleHost } from './job-lifecycle';
import { JobStore, requestKey, type Job } from './job-store';
import { ProcessingSlots } from './processing-slots';
import { isRecord, validateCreateJobRequest, type JobStatus } from './validation';
import { serviceRoleMessage, serviceRoleNeeds } from './service-role';

export { FAULT_NAMES, parseFaultSpec, type FaultName, type FaultSpec } from './faults';
export { INVOKE_FIRST_TOKEN_MS, INVOKE_OUTPUT_TOKENS_PER_SECOND, invokeModelLatencyMs } from './fake-model';
export { accountQuotasFor, parseAccountQuotas, type AccountQuotas } from './account-quotas';
export { JOB_STATE_DETAIL_TYPE, JOB_STATE_SOURCE, type BedrockJobStateDetail, type BedrockJobStateEvent } from './events';
export { JOB_STATUSES, type JobStatus } from './validation';

/** How to build a {@link BedrockEmulator}. */
export interface EmulatorOptions {
  /** Client for the local S3 (s3rver) that holds job inputs and outputs. */
  s3: S3Client;
  /** Region in ARNs and events. @default 'us-east-1' */
  region?: string;
  /** Account in ARNs and events. @default '123456789012' */
  accountId?: string;
  /**
   * The emulated account's quotas: each set field replaces that quota of every model, over the
   * model catalog's documented defaults (lambdas/shared/model-catalog.ts). The pipeline's own
   * settings never set these (`local run --account-quota`).
   */
  accountQuotas?: Partial<ModelQuotas>;
  /** Delay before each status transition, in milliseconds. @default 20 */
  stepDelayMs?: number;
  /**
   * Jobs whose records are processed at once. Other InProgress jobs wait their turn, checking
   * for a stop at each step: Bedrock promises no time for an InProgress job, and the twin's
   * memory then does not grow with the number of jobs running (the fake model runs on the
   * twin's one thread, so more slots would not finish the records sooner). @default 1
   */
  processingSlots?: number;
  /**
   * How long InvokeModel takes to answer, as a share of a real model's time
   * ({@link invokeModelLatencyMs}). The twin sets the scale of its Lambda time limits, so one
   * call takes the same share of a function's timeout as on AWS. 0: answer at once. @default 0
   */
  invokeLatencyScale?: number;
  /** Fault rates; none by default. */
  faults?: FaultSpec;
  /** Seed of every generated id, output and fault decision. @default 1 */
  seed?: number;
  /**
   * Called with each EventBridge event (full envelope, docs/BEDROCK-FACTS.md §6). Awaited, in order per job;
   * errors are caught and counted in `eventErrors`, never crash the emulator.
   */
  onEvent?: (event: BedrockJobStateEvent) => Promise<void> | void;
  /**
   * Whether the service role a job names may do an S3 action (the twin evaluates the role's
   * policies from the template): undefined when the role is not known, and then nothing is
   * checked. A job whose role may not read its input or write its output fails after
   * validation, as on AWS (docs/BEDROCK-FACTS.md §8).
   */
  serviceRoleAllows?: (roleArn: string, action: string, resource: string, context: Record<string, string>) => boolean | undefined;
  /** The KMS key ARN of each SSE-KMS bucket, by name: a job's role must use it through S3. */
  bucketKeys?: Readonly<Record<string, string>>;
}

/** What the emulator saw; written to `emulator.json` by local runs. */
export interface EmulatorStats {
  /** Jobs created (not counting duplicate, throttled or rejected creates). */
  jobsCreated: number;
  /** Creates answered with an existing job because their clientRequestToken was seen before. */
  duplicateCreates: number;
  /** Highest number of jobs at once in a non-terminal state (Submitted, Validating, Scheduled, InProgress, Stopping), over all models. */
  maxConcurrentJobs: number;
  /** The same, per `modelId` as given to CreateModelInvocationJob. */
  maxConcurrentJobsByModel: Record<string, number>;
  /** Event deliveries made (a duplicated event counts twice). */
  eventsSent: number;
  /** Events not delivered because of the `drop-events` fault. */
  eventsDropped: number;
  /** Extra deliveries made because of the `duplicate-events` fault. */
  eventsDuplicated: number;
  /** Deliveries whose `batchModelId` was an ARN (the `arn-model-id` fault, or a caller that gave one), stale ones of `reorder-events` included. */
  eventsWithModelArn: number;
  /** Stale deliveries (the job's last non-terminal status, after its terminal one) made because of the `reorder-events` fault. */
  eventsReordered: number;
  /** Deliveries whose `onEvent` threw or rejected. */
  eventErrors: number;
  /** Creates refused with ThrottlingException by the `create-throttle` fault. */
  createThrottled: number;
  /** Creates refused with ServiceQuotaExceededException. */
  quotaRejections: number;
  /** Creates refused with ConflictException: a job name in use, or a clientRequestToken reused for another request. */
  conflicts: number;
  /** Records processed by batch jobs (succeeded or failed). */
  recordsProcessed: number;
  /** Highest number of jobs whose records were being processed at once (at most `processingSlots`). */
  maxProcessingJobs: number;
  /** InvokeModel calls received (throttled ones included). */
  invokeModelCalls: number;
  /** The modelled latency of the answered InvokeModel calls, summed, ms (as a real model would take). */
  invokeModelLatencyMs: number;
  /** What the emulator waited before those answers, summed, ms: the latency times `invokeLatencyScale`. */
  invokeModelWaitMs: number;
  /** Current number of jobs in each status. */
  jobsByStatus: Record<string, number>;
}

const THROTTLE_MESSAGE = 'Too many requests, please wait before trying again.';

/**
 * The Bedrock batch inference emulator. `start()` listens on 127.0.0.1 (a free port) and gives
 * the endpoint to hand to `BedrockClient` and `BedrockRuntimeClient`.
 */
export class BedrockEmulator {
  private readonly s3: S3Client;
  private readonly region: string;
  private readonly accountId: string;
  private readonly accountQuotas: Partial<ModelQuotas>;
  private readonly stepDelayMs: number;
  private readonly invokeLatencyScale: number;
  private readonly slots: ProcessingSlots;
  private readonly faults: FaultDecider;
  private readonly onEvent?: (event: BedrockJobStateEvent) => Promise<void> | void;
  private readonly serviceRoleAllows?: EmulatorOptions['serviceRoleAllows'];
  private readonly bucketKeys?: EmulatorOptions['bucketKeys'];

  private readonly transport = new DualProtocolServer();
  private closed = false;
  private readonly store: JobStore;
  /** What the job drivers (job-lifecycle.ts) use of the emulator. */
  private readonly lifecycle: LifecycleHost;
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly drivers = new Set<Promise<void>>();
  private pendingDeliveries = 0;
  private idleWaiters: (() => void)[] = [];
  /** Every stat but `maxProcessingJobs`, which the processing slots keep. */
  private readonly counters: Omit<EmulatorStats, 'maxProcessingJobs'> = {
    jobsCreated: 0,
    duplicateCreates: 0,
    maxConcurrentJobs: 0,
    maxConcurrentJobsByModel: {},
    eventsSent: 0,
    eventsDropped: 0,
    eventsDuplicated: 0,
    eventsReordered: 0,
    eventsWithModelArn: 0,
    eventErrors: 0,
    createThrottled: 0,
    quotaRejections: 0,
    conflicts: 0,
    recordsProcessed: 0,
    invokeModelCalls: 0,
    invokeModelLatencyMs: 0,
    invokeModelWaitMs: 0,
    jobsByStatus: {},
  };

  constructor(opts: EmulatorOptions) {
    this.s3 = opts.s3;
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '123456789012';
    this.accountQuotas = { ...opts.accountQuotas };
    this.stepDelayMs = opts.stepDelayMs ?? 20;
    this.invokeLatencyScale = opts.invokeLatencyScale ?? 0;
    this.slots = new ProcessingSlots(Math.max(1, Math.floor(opts.processingSlots ?? 1) || 1));
    this.faults = new FaultDecider(opts.faults ?? {}, opts.seed ?? 1);
    this.store = new JobStore(this.faults.seed);
    this.onEvent = opts.onEvent;
    this.serviceRoleAllows = opts.serviceRoleAllows;
    this.bucketKeys = opts.bucketKeys;
    this.lifecycle = {
      serviceRoleProblem: (job) => this.serviceRoleProblem(job),
      s3: this.s3,
      faults: this.faults,
      closed: () => this.closed,
      step: () => this.step(),
      transition: (job, to, message) => this.transition(job, to, message),
      countProcessed: (records) => void (this.counters.recordsProcessed += records),
      slots: this.slots,
    };
  }

  /**
   * Starts listening on 127.0.0.1 with a free port. One port speaks HTTP/1.1 (what
   * `BedrockClient` uses) and cleartext HTTP/2 (what `BedrockRuntimeClient` uses by default).
   */
  async start(): Promise<{ endpoint: string }> {
    return this.transport.start((req, res) => void this.handle(req, res));
  }

  /** Stops the server and every job timer; jobs stay where they are, no further events are sent. */
  async stop(): Promise<void> {
    this.closed = true;
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve();
    }
    this.sleeps.clear();
    await Promise.allSettled([...this.drivers]);
    await this.transport.stop();
    this.resolveIdleWaiters();
  }

  /** A snapshot of what the emulator saw. */
  stats(): EmulatorStats {
    return structuredClone({ ...this.counters, maxProcessingJobs: this.slots.peak });
  }

  /** Resolves when no job is in a non-terminal state and no event delivery is pending (or the emulator is stopped). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes {@link stats} as JSON to `path` (directories are created). */
  async writeStats(path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${JSON.stringify(this.stats(), null, 2)}\n`);
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: HttpRequest, res: HttpResponse): Promise<void> {
    try {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://localhost');
      // Split before decoding: an ARN in a path label arrives with its '/' as %2F (docs/BEDROCK-FACTS.md §0).
      const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
      const method = req.method ?? 'GET';
      const [first, second, third, fourth] = segments;

      if (first === 'model-invocation-job' && segments.length === 1 && method === 'POST') {
        return sendJson(res, 200, this.createJob(parseJsonBody(body)));
      }
      if (first === 'model-invocation-jobs' && segments.length === 1 && method === 'GET') {
        return sendJson(res, 200, this.store.list(url.searchParams));
      }
      if (first === 'model-invocation-job' && second !== undefined && segments.length === 2 && method === 'GET') {
        return sendJson(res, 200, this.store.describe(this.store.find(second)));
      }
      if (first === 'model-invocation-job' && second !== undefined && third === 'stop' && segments.length === 3 && method === 'POST') {
        this.stopJob(this.store.find(second));
        res.writeHead(200, { 'x-amzn-requestid': randomUUID(), 'content-length': '0' });
        res.end('');
        return;
      }
      if (first === 'listTagsForResource' && segments.length === 1 && method === 'POST') {
        return sendJson(res, 200, this.store.listTags(parseJsonBody(body)));
      }
      if (first === 'model' && second !== undefined && third === 'invoke' && fourth === undefined && method === 'POST') {
        return await this.invokeModel(second, body, res);
      }
      throw new BedrockApiError('UnknownOperationException', `No operation matches ${method} ${url.pathname}`);
    } catch (err) {
      sendApiError(res, err);
    }
  }

  // ---------------------------------------------------------------- control plane

  private createJob(body: unknown): { jobArn: string } {
    const request = validateCreateJobRequest(body);
    // The SDK always fills clientRequestToken (idempotencyToken trait, docs/BEDROCK-FACTS.md §1); a raw caller may not.
    const token = request.clientRequestToken ?? randomUUID();

    const attempt = this.store.createAttemptsByToken.get(token) ?? 0;
    this.store.createAttemptsByToken.set(token, attempt + 1);
    // Decided per (token, attempt) so that the SDK's retries of a throttled create can succeed.
    if (this.faults.fires('create-throttle', token, attempt)) {
      this.counters.createThrottled++;
      throw new BedrockApiError('ThrottlingException', THROTTLE_MESSAGE);
    }

    const existing = this.store.jobIdByToken.get(token);
    if (existing !== undefined) {
      const first = this.store.jobs.get(existing)!;
      // UNCONFIRMED (docs/BEDROCK-FACTS.md §1): a repeat of the same request returns the first job's ARN; the
      // token reused for another request is refused, so that a caller's naming bug shows here.
      if (requestKey(first.request) !== requestKey(request)) {
        this.counters.conflicts++;
        throw new BedrockApiError(
          'ConflictException',
          `The clientRequestToken ${token} was already used to create the batch inference job ${first.jobArn} (${first.request.jobName}) with a different request.`,
        );
      }
      this.counters.duplicateCreates++;
      return { jobArn: first.jobArn };
    }
    const sameName = this.store.jobIdByName.get(request.jobName);
    if (sameName !== undefined) {
      this.counters.conflicts++;
      const other = this.store.jobs.get(sameName)!;
      throw new BedrockApiError('ConflictException', `A batch inference job named ${request.jobName} already exists (${other.jobArn}, ${other.status}).`);
    }

    // Refused at create, as Bedrock refuses them (docs/BEDROCK-FACTS.md §7a): unknown models,
    // models without batch, bare ids of models served only through an inference profile, and a
    // profile called from outside its geography (profile-regions.ts).
    const problem = batchModelProblem(request.modelId) ?? profileRegionProblem(request.modelId, this.region);
    if (problem) throw new BedrockApiError('ValidationException', problem);
    const model = catalogModel(request.modelId) as CatalogModel;
    const quotas = accountQuotasFor(model, this.accountQuotas);
    const quotaKey = model.id;
    const active = this.store.active(quotaKey);
    if (active >= quotas.maxConcurrentJobs) {
      this.counters.quotaRejections++;
      throw new BedrockApiError(
        'ServiceQuotaExceededException',
        `The number of submitted and in-progress batch inference jobs for ${quotaKey} has reached the quota of ${quotas.maxConcurrentJobs}. Wait for a job to finish or request a quota increase.`,
      );
    }

    const jobId = this.store.newJobId();
    const jobArn = `arn:aws:bedrock:${this.region}:${this.accountId}:model-invocation-job/${jobId}`;
    const now = new Date();
    const timeoutHours = request.timeoutDurationInHours ?? 24;
    const job: Job = {
      seq: ++this.store.seq,
      jobId,
      jobArn,
      request,
      clientRequestToken: token,
      family: model.family,
      quotaKey,
      quotas,
      invocationType: request.modelInvocationType ?? 'InvokeModel',
      timeoutHours,
      status: 'Submitted',
      submitTime: now,
      lastModifiedTime: now,
      jobExpirationTime: new Date(now.getTime() + timeoutHours * 3_600_000),
      counts: { total: 0, processed: 0, success: 0, error: 0 },
      stopRequested: false,
      faults: {
        expire: this.faults.fires('job-expire', jobArn),
        fail: this.faults.fires('job-fail', jobArn),
        partial: this.faults.fires('job-partial', jobArn),
      },
      eventChain: Promise.resolve(),
    };
    const byModel = this.store.add(job);
    this.counters.jobsCreated++;
    this.counters.maxConcurrentJobs = Math.max(this.counters.maxConcurrentJobs, this.store.activeTotal);
    this.counters.maxConcurrentJobsByModel[request.modelId] = Math.max(this.counters.maxConcurrentJobsByModel[request.modelId] ?? 0, byModel);
    this.bumpStatus(undefined, 'Submitted');
    this.emit(job);

    const driver = driveJob(this.lifecycle, job).finally(() => this.drivers.delete(driver));
    this.drivers.add(driver);
    return { jobArn };
  }

  private stopJob(job: Job): void {
    if (isTerminalStatus(job.status)) {
      // UNCONFIRMED (docs/BEDROCK-FACTS.md §3): ValidationException chosen over ConflictException for a terminal job.
      throw new BedrockApiError('ValidationException', `The batch inference job ${job.jobArn} is already ${job.status} and cannot be stopped.`);
    }
    if (job.status === 'Stopping') return;
    job.stopRequested = true;
    this.transition(job, 'Stopping');
  }

  // ---------------------------------------------------------------- runtime

  private async invokeModel(modelIdParam: string, body: Buffer, res: HttpResponse): Promise<void> {
    this.counters.invokeModelCalls++;
    // Per call, so the SDK's retries of a throttled call can succeed.
    if (this.faults.fires('record-throttle', 'invoke-model', this.counters.invokeModelCalls)) {
      throw new BedrockApiError('ThrottlingException', THROTTLE_MESSAGE);
    }
    // Refused as on AWS: an unknown model, a profile-only model's bare id, a profile of elsewhere.
    const refused = onDemandModelProblem(modelIdParam) ?? profileRegionProblem(modelIdParam, this.region);
    if (refused) throw new BedrockApiError('ValidationException', refused);
    const family = modelFamily(modelIdParam);
    if (!family) throw new BedrockApiError('ValidationException', `The provided model identifier is invalid: ${modelIdParam} (known: ${KNOWN_FAMILIES_HINT}).`);
    let modelInput: unknown;
    const text = body.toString('utf8');
    try {
      modelInput = JSON.parse(text);
    } catch {
      throw new BedrockApiError('ValidationException', 'Malformed input request: the body is not valid JSON, please reformat your input and try again.');
    }
    if (!isRecord(modelInput)) throw new BedrockApiError('ValidationException', 'Malformed input request: the body must be a JSON object.');
    const result = fakeModelOutput({
      modelId: modelIdParam,
      family,
      modelInput,
      seed: this.faults.seed,
      // By the request's text, so a retried call answers the same way.
      longOutput: this.faults.fires('long-outputs', 'invoke-model', hash53(text)),
    });
    if (!result.ok) throw new BedrockApiError('ValidationException', result.byModel ? result.message : `Malformed input request: ${result.message}`);
    // A real model takes its time, most of it writing the answer; the header reports it.
    const latencyMs = invokeModelLatencyMs(result.usage.output);
    const waitMs = Math.round(latencyMs * this.invokeLatencyScale);
    this.counters.invokeModelLatencyMs += latencyMs;
    this.counters.invokeModelWaitMs += waitMs;
    if (waitMs > 0 && !(await this.sleep(waitMs))) return;
    const payload = JSON.stringify(result.body);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
      'x-amzn-requestid': randomUUID(),
      'x-amzn-bedrock-input-token-count': String(result.usage.input),
      'x-amzn-bedrock-output-token-count': String(result.usage.output),
      'x-amzn-bedrock-invocation-latency': String(latencyMs),
    });
    res.end(payload);
  }

  // ---------------------------------------------------------------- lifecycle

  /** What the job's service role denies of what the job needs (service-role.ts); undefined when nothing, or when the role is not known. */
  private serviceRoleProblem(job: Job): string | undefined {
    if (!this.serviceRoleAllows) return undefined;
    const roleArn = job.request.roleArn;
    const needs = serviceRoleNeeds(
      {
        modelId: job.request.modelId,
        inputUri: job.request.inputDataConfig.s3InputDataConfig.s3Uri,
        outputUri: job.request.outputDataConfig.s3OutputDataConfig.s3Uri,
      },
      job.jobId,
      { region: this.region, accountId: this.accountId, ...(this.bucketKeys ? { bucketKeys: this.bucketKeys } : {}) },
    );
    return serviceRoleMessage(
      roleArn,
      needs.filter((n) => this.serviceRoleAllows!(roleArn, n.action, n.resource, n.context) === false),
    );
  }

  /** Waits one step; false when the emulator was stopped meanwhile. */
  private step(): Promise<boolean> {
    return this.sleep(this.stepDelayMs);
  }

  /** Waits `ms`; false when the emulator was stopped meanwhile. */
  private sleep(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve(!this.closed);
        }, ms),
        resolve: () => resolve(false),
      };
      this.sleeps.add(entry);
    });
  }

  private transition(job: Job, to: JobStatus, message?: string): void {
    const from = job.status;
    const now = new Date();
    job.status = to;
    job.lastModifiedTime = now;
    if (message !== undefined) job.message = message;
    this.bumpStatus(from, to);
    if (isTerminalStatus(to) && !isTerminalStatus(from)) {
      job.endTime = now;
      this.store.ended(job);
    }
    this.emit(job);
    this.checkIdle();
  }

  private bumpStatus(from: JobStatus | undefined, to: JobStatus): void {
    const byStatus = this.counters.jobsByStatus;
    if (from !== undefined) byStatus[from] = (byStatus[from] ?? 1) - 1;
    byStatus[to] = (byStatus[to] ?? 0) + 1;
  }

  // ---------------------------------------------------------------- events

  /** Sends the job's current status as an EventBridge event, with the drop/duplicate/reorder/ARN faults applied. */
  private emit(job: Job): void {
    const now = new Date();
    const event: BedrockJobStateEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': JOB_STATE_DETAIL_TYPE,
      source: JOB_STATE_SOURCE,
      account: this.accountId,
      time: now.toISOString(),
      region: this.region,
      resources: [job.jobArn],
      detail: {
        version: '0.0',
        accountId: this.accountId,
        batchJobName: job.request.jobName,
        batchJobArn: job.jobArn,
        // UNCONFIRMED (docs/BEDROCK-FACTS.md §6) whether Bedrock resolves this to an ARN: the caller's modelId,
        // or its ARN with the arn-model-id fault, so that nothing may rely on either form.
        batchModelId: this.faults.fires('arn-model-id', job.jobArn) ? modelArnOf(job.request.modelId, this.region, this.accountId) : job.request.modelId,
        status: job.status,
        failureMessage: job.status === 'Failed' || job.status === 'Expired' ? (job.message ?? '') : '',
        creationTime: formatCreationTime(job.submitTime),
      },
    };
    // Events are best effort (docs/BEDROCK-FACTS.md §6): the drop-events fault models a lost one.
    if (this.faults.fires('drop-events', job.jobArn, job.status)) {
      this.counters.eventsDropped++;
      return;
    }
    const copies = this.faults.fires('duplicate-events', job.jobArn, job.status) ? 2 : 1;
    const deliveries: BedrockJobStateEvent[] = Array.from({ length: copies }, () => event);
    // Events may arrive out of order (docs/BEDROCK-FACTS.md §6): a stale status after the terminal one.
    if (isTerminalStatus(job.status) && job.lastNonTerminalEvent && this.faults.fires('reorder-events', job.jobArn)) {
      deliveries.push({ ...job.lastNonTerminalEvent, id: randomUUID() });
      this.counters.eventsReordered++;
    }
    if (!isTerminalStatus(job.status)) job.lastNonTerminalEvent = event;
    this.pendingDeliveries++;
    job.eventChain = job.eventChain
      .then(async () => {
        for (const [i, delivery] of deliveries.entries()) {
          if (this.closed) return;
          this.counters.eventsSent++;
          if (i > 0 && i < copies) this.counters.eventsDuplicated++;
          if (delivery.detail.batchModelId.startsWith('arn:')) this.counters.eventsWithModelArn++;
          try {
            await this.onEvent?.(delivery);
          } catch {
            this.counters.eventErrors++;
          }
        }
      })
      .finally(() => {
        this.pendingDeliveries--;
        this.checkIdle();
      });
  }

  private isIdle(): boolean {
    return this.closed || (this.store.activeTotal === 0 && this.pendingDeliveries === 0);
  }

  private checkIdle(): void {
    if (this.isIdle()) this.resolveIdleWaiters();
  }

  private resolveIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
