/**
 * An in-process emulator of Amazon Bedrock batch inference, spoken to over HTTP by the
 * unmodified `@aws-sdk/client-bedrock` (the four model-invocation-job operations) and
 * `@aws-sdk/client-bedrock-runtime` (InvokeModel). Faithful to
 * docs/BEDROCK-FACTS.md: validation, ARNs, status sequence, quotas, output
 * layout and manifest, EventBridge events; plus deterministic fault injection.
 *
 * Choices where the facts are UNCONFIRMED (each marked in the code):
 * - Stopping a job that is already terminal is a ValidationException (facts §3 leaves
 *   ConflictException or ValidationException open); stopping a `Stopping` job is a no-op.
 * - A reused clientRequestToken with the same request returns the first job's ARN; with a
 *   different request it is a ConflictException (facts §1 leaves both open).
 * - The concurrent-jobs quota counts every non-terminal status, per base model (an inference
 *   profile shares its model's quota); a job over it gets ServiceQuotaExceededException.
 * - List defaults: newest first, pages of up to 1000.
 * - An omitted timeoutDurationInHours is 24; `jobExpirationTime` is submitTime + timeout.
 * - A job name is unique in the account and region whatever the job's status: a create with a
 *   name in use (and another clientRequestToken) is a ConflictException (facts §1: likely).
 * - The manifest is written for every job that reached InProgress and was not failed or
 *   abandoned (so also PartiallyCompleted and Stopped-while-running).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer as createHttp1Server, type Server as Http1Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { dirname } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { isTerminalStatus } from '../../lambdas/shared/contracts';
import { batchModelProblem, catalogModel, parseModelId, type CatalogModel, type ModelQuotas } from '../../lambdas/shared/model-catalog';
import { KNOWN_FAMILIES_HINT, modelFamily, type ModelFamily } from '../../lambdas/shared/model-family';
import { BedrockApiError } from './api-error';
import { formatCreationTime, JOB_STATE_DETAIL_TYPE, JOB_STATE_SOURCE, type BedrockJobStateEvent } from './events';
import { fakeModelOutput, type InvocationType } from './fake-model';
import { FaultDecider, hash53, seededRandom, type FaultSpec } from './faults';
import { accountQuotasFor } from './account-quotas';
import { processJobRecords, validateJobInput, type RecordCounts } from './job-processing';
import { isRecord, validateCreateJobRequest, validateJobIdentifier, validateListQuery, type CreateJobRequest, type JobStatus } from './validation';

export { FAULT_NAMES, parseFaultSpec, type FaultName, type FaultSpec } from './faults';
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
  /** Fault rates; none by default. */
  faults?: FaultSpec;
  /** Seed of every generated id, output and fault decision. @default 1 */
  seed?: number;
  /**
   * Called with each EventBridge event (full envelope, facts §6). Awaited, in order per job;
   * errors are caught and counted in `eventErrors`, never crash the emulator.
   */
  onEvent?: (event: BedrockJobStateEvent) => Promise<void> | void;
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
  /** InvokeModel calls received (throttled ones included). */
  invokeModelCalls: number;
  /** Current number of jobs in each status. */
  jobsByStatus: Record<string, number>;
}

interface Job {
  seq: number;
  jobId: string;
  jobArn: string;
  request: CreateJobRequest;
  clientRequestToken: string;
  family: ModelFamily;
  /** The model's catalog id: jobs on one model share its concurrency quota, whatever profile they name. */
  quotaKey: string;
  quotas: ModelQuotas;
  invocationType: InvocationType;
  timeoutHours: number;
  status: JobStatus;
  message?: string;
  submitTime: Date;
  lastModifiedTime: Date;
  endTime?: Date;
  jobExpirationTime: Date;
  counts: { total: number; processed: number; success: number; error: number };
  stopRequested: boolean;
  faults: { fail: boolean; partial: boolean; expire: boolean };
  eventChain: Promise<void>;
  /** The last non-terminal event sent, which the `reorder-events` fault sends again after the terminal one. */
  lastNonTerminalEvent?: BedrockJobStateEvent;
}

const JOB_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const DEFAULT_PAGE_SIZE = 1000;
const THROTTLE_MESSAGE = 'Too many requests, please wait before trying again.';
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What the router needs of an HTTP/1 or HTTP/2 (compatibility API) request and response. */
type HttpRequest = Readable & { method?: string; url?: string };
interface HttpResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

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
  private readonly faults: FaultDecider;
  private readonly onEvent?: (event: BedrockJobStateEvent) => Promise<void> | void;

  private server?: NetServer;
  private http1?: Http1Server;
  private http2?: Http2Server;
  private readonly sockets = new Set<Socket>();
  private closed = false;
  private readonly jobs = new Map<string, Job>();
  private readonly jobIdByToken = new Map<string, string>();
  private readonly jobIdByName = new Map<string, string>();
  private readonly createAttemptsByToken = new Map<string, number>();
  private jobSeq = 0;
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly drivers = new Set<Promise<void>>();
  private pendingDeliveries = 0;
  private idleWaiters: (() => void)[] = [];
  private activeTotal = 0;
  private readonly activeByQuotaKey = new Map<string, number>();
  private readonly activeByModelId = new Map<string, number>();
  private readonly counters: EmulatorStats = {
    jobsCreated: 0,
    duplicateCreates: 0,
    maxConcurrentJobs: 0,
    maxConcurrentJobsByModel: {},
    eventsSent: 0,
    eventsDropped: 0,
    eventsDuplicated: 0,
    eventsReordered: 0,
    eventErrors: 0,
    createThrottled: 0,
    quotaRejections: 0,
    conflicts: 0,
    recordsProcessed: 0,
    invokeModelCalls: 0,
    jobsByStatus: {},
  };

  constructor(opts: EmulatorOptions) {
    this.s3 = opts.s3;
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '123456789012';
    this.accountQuotas = { ...opts.accountQuotas };
    this.stepDelayMs = opts.stepDelayMs ?? 20;
    this.faults = new FaultDecider(opts.faults ?? {}, opts.seed ?? 1);
    this.onEvent = opts.onEvent;
  }

  /**
   * Starts listening on 127.0.0.1 with a free port. One port speaks HTTP/1.1 (what
   * `BedrockClient` uses) and cleartext HTTP/2 (what `BedrockRuntimeClient` uses by default).
   */
  async start(): Promise<{ endpoint: string }> {
    if (this.server) throw new Error('BedrockEmulator already started');
    const handler = (req: HttpRequest, res: HttpResponse) => void this.handle(req, res);
    const http1 = createHttp1Server(handler);
    const http2 = createHttp2Server(handler);
    this.http1 = http1;
    this.http2 = http2;
    // Each connection goes to the HTTP/2 server when it opens with the HTTP/2 preface, else to HTTP/1.
    const server = createNetServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.once('readable', () => {
        const head = socket.read() as Buffer | null;
        if (head) socket.unshift(head);
        const n = Math.min(head?.length ?? 0, HTTP2_PREFACE.length);
        const isHttp2 = n > 0 && head!.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
        (isHttp2 ? http2 : http1).emit('connection', socket);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { endpoint: `http://127.0.0.1:${port}` };
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
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      this.http1?.closeAllConnections();
      this.http2?.close();
      await closed;
    }
    this.resolveIdleWaiters();
  }

  /** A snapshot of what the emulator saw. */
  stats(): EmulatorStats {
    return structuredClone(this.counters);
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
      // Split before decoding: an ARN in a path label arrives with its '/' as %2F (facts §0).
      const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
      const method = req.method ?? 'GET';
      const [first, second, third, fourth] = segments;

      if (first === 'model-invocation-job' && segments.length === 1 && method === 'POST') {
        return sendJson(res, 200, this.createJob(parseJsonBody(body)));
      }
      if (first === 'model-invocation-jobs' && segments.length === 1 && method === 'GET') {
        return sendJson(res, 200, this.listJobs(url.searchParams));
      }
      if (first === 'model-invocation-job' && second !== undefined && segments.length === 2 && method === 'GET') {
        return sendJson(res, 200, this.describe(this.findJob(second)));
      }
      if (first === 'model-invocation-job' && second !== undefined && third === 'stop' && segments.length === 3 && method === 'POST') {
        this.stopJob(this.findJob(second));
        res.writeHead(200, { 'x-amzn-requestid': randomUUID(), 'content-length': '0' });
        res.end('');
        return;
      }
      if (first === 'listTagsForResource' && segments.length === 1 && method === 'POST') {
        return sendJson(res, 200, this.listTags(parseJsonBody(body)));
      }
      if (first === 'model' && second !== undefined && third === 'invoke' && fourth === undefined && method === 'POST') {
        return this.invokeModel(second, body, res);
      }
      throw new BedrockApiError('UnknownOperationException', `No operation matches ${method} ${url.pathname}`);
    } catch (err) {
      const apiError =
        err instanceof BedrockApiError ? err : new BedrockApiError('InternalServerException', `Internal error: ${(err as Error)?.message ?? String(err)}`);
      if (res.headersSent) {
        res.end('');
        return;
      }
      res.writeHead(apiError.statusCode, {
        'content-type': 'application/json',
        'x-amzn-errortype': apiError.errorName,
        'x-amzn-requestid': randomUUID(),
      });
      res.end(JSON.stringify({ message: apiError.message }));
    }
  }

  // ---------------------------------------------------------------- control plane

  private createJob(body: unknown): { jobArn: string } {
    const request = validateCreateJobRequest(body);
    // The SDK always fills clientRequestToken (idempotencyToken trait, facts §1); a raw caller may not.
    const token = request.clientRequestToken ?? randomUUID();

    const attempt = this.createAttemptsByToken.get(token) ?? 0;
    this.createAttemptsByToken.set(token, attempt + 1);
    // Decided per (token, attempt) so that the SDK's retries of a throttled create can succeed.
    if (this.faults.fires('create-throttle', token, attempt)) {
      this.counters.createThrottled++;
      throw new BedrockApiError('ThrottlingException', THROTTLE_MESSAGE);
    }

    const existing = this.jobIdByToken.get(token);
    if (existing !== undefined) {
      const first = this.jobs.get(existing)!;
      // UNCONFIRMED (facts §1): a repeat of the same request returns the first job's ARN; the
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
    const sameName = this.jobIdByName.get(request.jobName);
    if (sameName !== undefined) {
      this.counters.conflicts++;
      const other = this.jobs.get(sameName)!;
      throw new BedrockApiError('ConflictException', `A batch inference job named ${request.jobName} already exists (${other.jobArn}, ${other.status}).`);
    }

    // Refused at create, as Bedrock refuses them (facts, "Model catalog"): unknown models, models
    // without batch, bare ids of models served only through an inference profile.
    const problem = batchModelProblem(request.modelId);
    if (problem) throw new BedrockApiError('ValidationException', problem);
    const model = catalogModel(request.modelId) as CatalogModel;
    const quotas = accountQuotasFor(model, this.accountQuotas);
    const quotaKey = model.id;
    const active = this.activeByQuotaKey.get(quotaKey) ?? 0;
    if (active >= quotas.maxConcurrentJobs) {
      this.counters.quotaRejections++;
      throw new BedrockApiError(
        'ServiceQuotaExceededException',
        `The number of submitted and in-progress batch inference jobs for ${quotaKey} has reached the quota of ${quotas.maxConcurrentJobs}. Wait for a job to finish or request a quota increase.`,
      );
    }

    const jobId = this.newJobId();
    const jobArn = `arn:aws:bedrock:${this.region}:${this.accountId}:model-invocation-job/${jobId}`;
    const now = new Date();
    const timeoutHours = request.timeoutDurationInHours ?? 24;
    const job: Job = {
      seq: ++this.jobSeq,
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
    this.jobs.set(jobId, job);
    this.jobIdByToken.set(token, jobId);
    this.jobIdByName.set(request.jobName, jobId);
    this.counters.jobsCreated++;

    this.activeTotal++;
    this.activeByQuotaKey.set(quotaKey, active + 1);
    const byModel = (this.activeByModelId.get(request.modelId) ?? 0) + 1;
    this.activeByModelId.set(request.modelId, byModel);
    this.counters.maxConcurrentJobs = Math.max(this.counters.maxConcurrentJobs, this.activeTotal);
    this.counters.maxConcurrentJobsByModel[request.modelId] = Math.max(this.counters.maxConcurrentJobsByModel[request.modelId] ?? 0, byModel);
    this.bumpStatus(undefined, 'Submitted');
    this.emit(job);

    const driver = this.drive(job).finally(() => this.drivers.delete(driver));
    this.drivers.add(driver);
    return { jobArn };
  }

  private newJobId(): string {
    for (let n = 0; ; n++) {
      const random = seededRandom(hash53(`job-id\u0000${this.jobSeq}\u0000${n}`, this.faults.seed) % 4294967296);
      let id = '';
      for (let i = 0; i < 12; i++) id += JOB_ID_ALPHABET[Math.floor(random() * JOB_ID_ALPHABET.length)];
      if (!this.jobs.has(id)) return id;
    }
  }

  private findJob(identifier: string): Job {
    validateJobIdentifier(identifier);
    const jobId = identifier.slice(-12);
    const job = this.jobs.get(jobId);
    if (!job || (identifier.length > 12 && identifier !== job.jobArn)) {
      throw new BedrockApiError('ResourceNotFoundException', `The batch inference job ${identifier} could not be found.`);
    }
    return job;
  }

  /**
   * ListTagsForResource for a job: the tags it was created with (kept as sent; Get does not
   * return them). Other resource types are not emulated.
   */
  private listTags(body: unknown): { tags: { key: string; value: string }[] } {
    const arn = typeof body === 'object' && body !== null ? (body as { resourceARN?: unknown }).resourceARN : undefined;
    if (typeof arn !== 'string' || arn.length === 0) throw new BedrockApiError('ValidationException', 'resourceARN is required');
    const job = /:model-invocation-job\/[a-z0-9]{12}$/.test(arn) ? this.jobs.get(arn.slice(-12)) : undefined;
    if (!job || job.jobArn !== arn) throw new BedrockApiError('ResourceNotFoundException', `The resource ${arn} could not be found.`);
    return { tags: (job.request.tags ?? []).map((t) => ({ key: t.key, value: t.value })) };
  }

  private describe(job: Job): Record<string, unknown> {
    const r = job.request;
    return {
      jobArn: job.jobArn,
      jobName: r.jobName,
      modelId: r.modelId,
      clientRequestToken: job.clientRequestToken,
      roleArn: r.roleArn,
      status: job.status,
      ...(job.message !== undefined ? { message: job.message } : {}),
      submitTime: job.submitTime.toISOString(),
      lastModifiedTime: job.lastModifiedTime.toISOString(),
      ...(job.endTime ? { endTime: job.endTime.toISOString() } : {}),
      inputDataConfig: r.inputDataConfig,
      outputDataConfig: r.outputDataConfig,
      ...(r.vpcConfig ? { vpcConfig: r.vpcConfig } : {}),
      timeoutDurationInHours: job.timeoutHours,
      jobExpirationTime: job.jobExpirationTime.toISOString(),
      modelInvocationType: job.invocationType,
      // Counters read 0 until the job runs, as AWS returned while Validating (facts §3).
      totalRecordCount: job.counts.total,
      processedRecordCount: job.counts.processed,
      successRecordCount: job.counts.success,
      errorRecordCount: job.counts.error,
    };
  }

  private listJobs(params: URLSearchParams): { invocationJobSummaries: Record<string, unknown>[]; nextToken?: string } {
    const q = validateListQuery(params);
    let offset = 0;
    if (q.nextToken !== undefined) {
      const decoded = decodePageToken(q.nextToken);
      if (decoded === undefined) throw new BedrockApiError('ValidationException', 'Invalid pagination token: nextToken');
      offset = decoded;
    }
    const ascending = q.sortOrder === 'Ascending';
    const matches = [...this.jobs.values()]
      .filter((j) => q.statusEquals === undefined || j.status === q.statusEquals)
      .filter((j) => q.nameContains === undefined || j.request.jobName.includes(q.nameContains))
      .filter((j) => q.submitTimeAfter === undefined || j.submitTime.getTime() > q.submitTimeAfter.getTime())
      .filter((j) => q.submitTimeBefore === undefined || j.submitTime.getTime() < q.submitTimeBefore.getTime())
      .sort((a, b) => (ascending ? 1 : -1) * (a.submitTime.getTime() - b.submitTime.getTime() || a.seq - b.seq));
    const pageSize = q.maxResults ?? DEFAULT_PAGE_SIZE;
    const page = matches.slice(offset, offset + pageSize);
    const next = offset + pageSize < matches.length ? encodePageToken(offset + pageSize) : undefined;
    return { invocationJobSummaries: page.map((j) => this.describe(j)), ...(next ? { nextToken: next } : {}) };
  }

  private stopJob(job: Job): void {
    if (isTerminalStatus(job.status)) {
      // UNCONFIRMED (facts §3): ValidationException chosen over ConflictException for a terminal job.
      throw new BedrockApiError('ValidationException', `The batch inference job ${job.jobArn} is already ${job.status} and cannot be stopped.`);
    }
    if (job.status === 'Stopping') return;
    job.stopRequested = true;
    this.transition(job, 'Stopping');
  }

  // ---------------------------------------------------------------- runtime

  private invokeModel(modelIdParam: string, body: Buffer, res: HttpResponse): void {
    this.counters.invokeModelCalls++;
    // Per call, so the SDK's retries of a throttled call can succeed.
    if (this.faults.fires('record-throttle', 'invoke-model', this.counters.invokeModelCalls)) {
      throw new BedrockApiError('ThrottlingException', THROTTLE_MESSAGE);
    }
    const family = modelFamily(modelIdParam);
    if (!family) throw new BedrockApiError('ValidationException', `The provided model identifier is invalid: ${modelIdParam} (known: ${KNOWN_FAMILIES_HINT}).`);
    let modelInput: unknown;
    try {
      modelInput = JSON.parse(body.toString('utf8'));
    } catch {
      throw new BedrockApiError('ValidationException', 'Malformed input request: the body is not valid JSON, please reformat your input and try again.');
    }
    if (!isRecord(modelInput)) throw new BedrockApiError('ValidationException', 'Malformed input request: the body must be a JSON object.');
    const result = fakeModelOutput({ modelId: modelIdParam, family, modelInput, seed: this.faults.seed });
    if (!result.ok) throw new BedrockApiError('ValidationException', result.byModel ? result.message : `Malformed input request: ${result.message}`);
    const payload = JSON.stringify(result.body);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
      'x-amzn-requestid': randomUUID(),
      'x-amzn-bedrock-input-token-count': String(result.usage.input),
      'x-amzn-bedrock-output-token-count': String(result.usage.output),
      'x-amzn-bedrock-invocation-latency': '250',
    });
    res.end(payload);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Moves a job through its statuses, one step per `stepDelayMs` (facts §4). */
  private async drive(job: Job): Promise<void> {
    try {
      if (!(await this.step())) return;
      if (job.stopRequested) return await this.finishStop(job);
      this.transition(job, 'Validating');
      const input = await validateJobInput(
        this.s3,
        {
          inputS3Uri: job.request.inputDataConfig.s3InputDataConfig.s3Uri,
          outputS3Uri: job.request.outputDataConfig.s3OutputDataConfig.s3Uri,
          modelId: job.request.modelId,
        },
        job.quotas,
        () => job.stopRequested || this.closed,
      );
      if (!(await this.step())) return;
      if (job.stopRequested) return await this.finishStop(job);
      if ('problem' in input) return this.transition(job, 'Failed', input.problem);

      this.transition(job, 'Scheduled');
      if (!(await this.step())) return;
      if (job.stopRequested) return await this.finishStop(job);
      if (job.faults.expire) {
        // Expired: scheduled but did not start before the timeout; no output (facts §4).
        return this.transition(
          job,
          'Expired',
          `The batch inference job expired: it was scheduled but did not begin before its timeout of ${job.timeoutHours} hours.`,
        );
      }

      job.counts.total = input.recordCount;
      this.transition(job, 'InProgress');
      if (job.faults.fail) {
        if (!(await this.step())) return;
        if (job.stopRequested) return await this.finishStop(job);
        return this.transition(job, 'Failed', 'The batch inference job failed because of an internal error (emulated job-fail fault).');
      }

      const limit = job.faults.partial ? this.partialCount(job, input.recordCount) : undefined;
      let reported = 0;
      const onProgress = (c: RecordCounts) => {
        job.counts.processed = c.processed;
        job.counts.success = c.success;
        job.counts.error = c.error;
        this.counters.recordsProcessed += c.processed - reported;
        reported = c.processed;
      };
      const counts = await processJobRecords({
        s3: this.s3,
        files: input.files,
        totalRecords: input.recordCount,
        jobArn: job.jobArn,
        jobId: job.jobId,
        modelId: job.request.modelId,
        family: job.family,
        invocationType: job.invocationType,
        outputS3Uri: job.request.outputDataConfig.s3OutputDataConfig.s3Uri,
        faults: this.faults,
        limit,
        shouldStop: () => job.stopRequested || this.closed,
        shouldAbandon: () => this.closed,
        onProgress,
      });
      onProgress(counts);
      if (!(await this.step())) return;
      if (job.stopRequested) return await this.finishStop(job);
      if (limit !== undefined && counts.processed < input.recordCount) {
        // The doc's meaning of PartiallyCompleted: the timeout hit after processing began (facts §4).
        return this.transition(job, 'PartiallyCompleted', 'Not all of your records could be processed in time.');
      }
      this.transition(job, 'Completed');
    } catch (err) {
      if (this.closed || isTerminalStatus(job.status)) return;
      this.transition(job, 'Failed', `The batch inference job failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private async finishStop(job: Job): Promise<void> {
    if (!(await this.step())) return;
    this.transition(job, 'Stopped');
  }

  /** How many records a `job-partial` job gets through: 30-80% of them, never all. */
  private partialCount(job: Job, total: number): number {
    if (total <= 1) return 0;
    const fraction = 0.3 + 0.5 * this.faults.uniform('job-partial-fraction', job.jobArn);
    return Math.min(total - 1, Math.max(1, Math.floor(total * fraction)));
  }

  /** Waits one step; false when the emulator was stopped meanwhile. */
  private step(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve(!this.closed);
        }, this.stepDelayMs),
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
      this.activeTotal--;
      this.activeByQuotaKey.set(job.quotaKey, (this.activeByQuotaKey.get(job.quotaKey) ?? 1) - 1);
      this.activeByModelId.set(job.request.modelId, (this.activeByModelId.get(job.request.modelId) ?? 1) - 1);
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

  /**
   * The ARN form of a model id as given: a foundation model's ARN for a bare id, an inference
   * profile's for a profile id, the id itself when it is an ARN already.
   */
  private modelArn(modelId: string): string {
    const { form } = parseModelId(modelId);
    if (form === 'profile') return `arn:aws:bedrock:${this.region}:${this.accountId}:inference-profile/${modelId}`;
    if (form === 'bare') return `arn:aws:bedrock:${this.region}::foundation-model/${modelId}`;
    return modelId;
  }

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
        // UNCONFIRMED (facts §6) whether Bedrock resolves this to an ARN: the caller's modelId,
        // or its ARN with the arn-model-id fault, so that nothing may rely on either form.
        batchModelId: this.faults.fires('arn-model-id', job.jobArn) ? this.modelArn(job.request.modelId) : job.request.modelId,
        status: job.status,
        failureMessage: job.status === 'Failed' || job.status === 'Expired' ? (job.message ?? '') : '',
        creationTime: formatCreationTime(job.submitTime),
      },
    };
    // Events are best effort (facts §6): the drop-events fault models a lost one.
    if (this.faults.fires('drop-events', job.jobArn, job.status)) {
      this.counters.eventsDropped++;
      return;
    }
    const copies = this.faults.fires('duplicate-events', job.jobArn, job.status) ? 2 : 1;
    const deliveries: BedrockJobStateEvent[] = Array.from({ length: copies }, () => event);
    // Events may arrive out of order (facts §6): a stale status after the terminal one.
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
    return this.closed || (this.activeTotal === 0 && this.pendingDeliveries === 0);
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

// ------------------------------------------------------------------ helpers

function readBody(req: HttpRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJsonBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new BedrockApiError('ValidationException', 'The request body is not valid JSON.');
  }
}

function sendJson(res: HttpResponse, status: number, value: unknown): void {
  const payload = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(payload)),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(payload);
}

/** A request as compared for idempotency: every field but the token itself, keys sorted. */
function requestKey(request: CreateJobRequest): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : isRecord(v)
        ? Object.fromEntries(
            Object.keys(v)
              .filter((k) => k !== 'clientRequestToken' && v[k] !== undefined && v[k] !== null)
              .sort()
              .map((k) => [k, canonical(v[k])]),
          )
        : v;
  return JSON.stringify(canonical(request));
}

function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

function decodePageToken(token: string): number | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (isRecord(parsed) && typeof parsed.o === 'number' && Number.isInteger(parsed.o) && parsed.o >= 0) return parsed.o;
  } catch {
    // Falls through to undefined.
  }
  return undefined;
}
