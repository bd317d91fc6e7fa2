/**
 * The emulator's jobs: each job's state, its indexes (by id, client request token and name),
 * how many jobs hold each model's concurrency quota, and the read side of the API (Get, List,
 * ListTagsForResource) with its page tokens.
 */
import type { ModelQuotas } from '../../lambdas/shared/model-catalog';
import type { ModelFamily } from '../../lambdas/shared/model-family';
import { BedrockApiError } from './api-error';
import type { BedrockJobStateEvent } from './events';
import type { InvocationType } from './fake-model';
import { hash53, seededRandom } from './faults';
import { isRecord, validateJobIdentifier, validateListQuery, type CreateJobRequest, type JobStatus } from './validation';

/** One job of the emulated account. */
export interface Job {
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

/** The jobs, their indexes and the quota counts. */
export class JobStore {
  readonly jobs = new Map<string, Job>();
  readonly jobIdByToken = new Map<string, string>();
  readonly jobIdByName = new Map<string, string>();
  readonly createAttemptsByToken = new Map<string, number>();
  seq = 0;
  /** Jobs in a non-terminal status: in all, per model quota key, per model id as given. */
  activeTotal = 0;
  readonly activeByQuotaKey = new Map<string, number>();
  readonly activeByModelId = new Map<string, number>();

  constructor(private readonly seed: number) {}

  /** Jobs of `quotaKey` holding its concurrency quota now. */
  active(quotaKey: string): number {
    return this.activeByQuotaKey.get(quotaKey) ?? 0;
  }

  /** Adds a new job (Submitted: it holds its quota); returns how many of its model id are active now. */
  add(job: Job): number {
    this.jobs.set(job.jobId, job);
    this.jobIdByToken.set(job.clientRequestToken, job.jobId);
    this.jobIdByName.set(job.request.jobName, job.jobId);
    this.activeTotal++;
    this.activeByQuotaKey.set(job.quotaKey, this.active(job.quotaKey) + 1);
    const byModel = (this.activeByModelId.get(job.request.modelId) ?? 0) + 1;
    this.activeByModelId.set(job.request.modelId, byModel);
    return byModel;
  }

  /** A job reached a terminal status: it no longer holds its quota. */
  ended(job: Job): void {
    this.activeTotal--;
    this.activeByQuotaKey.set(job.quotaKey, (this.activeByQuotaKey.get(job.quotaKey) ?? 1) - 1);
    this.activeByModelId.set(job.request.modelId, (this.activeByModelId.get(job.request.modelId) ?? 1) - 1);
  }

  /** A new job id: 12 characters, seeded, unused. */
  newJobId(): string {
    for (let n = 0; ; n++) {
      const random = seededRandom(hash53(`job-id\u0000${this.seq}\u0000${n}`, this.seed) % 4294967296);
      let id = '';
      for (let i = 0; i < 12; i++) id += JOB_ID_ALPHABET[Math.floor(random() * JOB_ID_ALPHABET.length)];
      if (!this.jobs.has(id)) return id;
    }
  }

  /** The job an identifier (id or ARN) names. */
  find(identifier: string): Job {
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
  listTags(body: unknown): { tags: { key: string; value: string }[] } {
    const arn = typeof body === 'object' && body !== null ? (body as { resourceARN?: unknown }).resourceARN : undefined;
    if (typeof arn !== 'string' || arn.length === 0) throw new BedrockApiError('ValidationException', 'resourceARN is required');
    const job = /:model-invocation-job\/[a-z0-9]{12}$/.test(arn) ? this.jobs.get(arn.slice(-12)) : undefined;
    if (!job || job.jobArn !== arn) throw new BedrockApiError('ResourceNotFoundException', `The resource ${arn} could not be found.`);
    return { tags: (job.request.tags ?? []).map((t) => ({ key: t.key, value: t.value })) };
  }

  /** GetModelInvocationJob's answer for a job. */
  describe(job: Job): Record<string, unknown> {
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
      // Counters read 0 until the job runs, as AWS returned while Validating (docs/BEDROCK-FACTS.md §3).
      totalRecordCount: job.counts.total,
      processedRecordCount: job.counts.processed,
      successRecordCount: job.counts.success,
      errorRecordCount: job.counts.error,
    };
  }

  /** ListModelInvocationJobs: filtered, sorted, paged. */
  list(params: URLSearchParams): { invocationJobSummaries: Record<string, unknown>[]; nextToken?: string } {
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
}

/** A request as compared for idempotency: every field but the token itself, keys sorted. */
export function requestKey(request: CreateJobRequest): string {
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
