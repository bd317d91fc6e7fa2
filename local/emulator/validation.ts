/**
 * Synchronous request validation for the emulated Bedrock control plane, with the exact
 * patterns and ranges of the service model (docs/BEDROCK-FACTS.md §1, §3). Messages follow the AWS style
 * ("1 validation error detected: Value 'x' at 'jobName' failed to satisfy constraint: ...").
 */
import { BedrockApiError } from './api-error';

/** Every job status (docs/BEDROCK-FACTS.md §4). */
export const JOB_STATUSES = [
  'Submitted',
  'Validating',
  'Scheduled',
  'InProgress',
  'Completed',
  'PartiallyCompleted',
  'Failed',
  'Stopping',
  'Stopped',
  'Expired',
] as const;
/** A batch job status (docs/BEDROCK-FACTS.md §4). */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** The service model's patterns, as written there (shown in error messages). */
export const PATTERNS = {
  jobName: '[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\\+\\-\\.]){0,63}',
  roleArn: 'arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+',
  clientRequestToken: '[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}',
  s3Uri: "s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?",
  accountId: '[0-9]{12}',
  jobIdentifier: '((arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-invocation-job/)?[a-z0-9]{12})',
  vpcId: '[-0-9a-zA-Z]+',
  tag: '[a-zA-Z0-9\\s._:/=+@-]*',
  nextToken: '\\S*',
} as const;

/**
 * The regular expressions actually run. jobName and clientRequestToken are rewritten into
 * equivalent linear-time forms: the model's `(-*[...-...]){0,63}` nests two quantifiers that
 * both match `-`, which backtracks exponentially on a failing name. Under the separate length
 * limits (≤63, ≤256) the languages are identical.
 */
const RE = {
  jobName: /^[a-zA-Z0-9][a-zA-Z0-9+\-.]*$/,
  roleArn: /^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role\/.+$/s,
  clientRequestToken: /^[a-zA-Z0-9](?:-*[a-zA-Z0-9])*$/,
  s3Uri: /^s3:\/\/[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:\/[-!_*'().a-z0-9A-Z]+(?:\/[-!_*'().a-z0-9A-Z]+)*)?\/?$/,
  accountId: /^[0-9]{12}$/,
  jobIdentifier: /^((arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-invocation-job\/)?[a-z0-9]{12})$/,
  vpcId: /^[-0-9a-zA-Z]+$/,
  tag: /^[a-zA-Z0-9\s._:/=+@-]*$/,
  nextToken: /^\S*$/,
  /**
   * The forms of docs/BEDROCK-FACTS.md §1 (bare and profile ids, foundation-model, inference-profile,
   * application-inference-profile and custom-model ARNs). An approximation of the model's
   * pattern, which the fact sheet does not quote: unknown-but-well-formed ids pass here and
   * fail the job later, as an unsupported model does on Bedrock.
   */
  modelId:
    /^(?:arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:(?:[0-9]{12})?:(?:foundation-model|inference-profile|application-inference-profile|custom-model|imported-model)\/[a-zA-Z0-9.:/_-]+|[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,2}(?:\.[a-z0-9-]{1,63})?(?::[a-z0-9-]{1,63}){0,2})$/,
};

/** `CreateModelInvocationJob` request body, as validated (docs/BEDROCK-FACTS.md §1). */
export interface CreateJobRequest {
  jobName: string;
  roleArn: string;
  clientRequestToken?: string;
  modelId: string;
  inputDataConfig: { s3InputDataConfig: { s3Uri: string; s3InputFormat?: 'JSONL'; s3BucketOwner?: string } };
  outputDataConfig: { s3OutputDataConfig: { s3Uri: string; s3EncryptionKeyId?: string; s3BucketOwner?: string } };
  vpcConfig?: { subnetIds: string[]; securityGroupIds: string[] };
  timeoutDurationInHours?: number;
  tags?: { key: string; value: string }[];
  modelInvocationType?: 'InvokeModel' | 'Converse';
}

/** `ListModelInvocationJobs` query, as validated (docs/BEDROCK-FACTS.md §3). */
export interface ListJobsQuery {
  submitTimeAfter?: Date;
  submitTimeBefore?: Date;
  statusEquals?: JobStatus;
  nameContains?: string;
  maxResults?: number;
  nextToken?: string;
  sortBy?: 'CreationTime';
  sortOrder?: 'Ascending' | 'Descending';
}

/** Collects constraint violations, then throws them as one ValidationException. */
class Violations {
  private readonly messages: string[] = [];

  add(value: unknown, at: string, constraint: string): void {
    this.messages.push(`Value ${show(value)} at '${at}' failed to satisfy constraint: ${constraint}`);
  }

  throwIfAny(): void {
    const n = this.messages.length;
    if (n === 0) return;
    throw new BedrockApiError('ValidationException', `${n} validation error${n > 1 ? 's' : ''} detected: ${this.messages.join('; ')}`);
  }

  /** A required string with length and pattern checks; returns it when it is a string. */
  string(
    obj: Record<string, unknown>,
    key: string,
    at: string,
    opts: { required?: boolean; min?: number; max: number; re?: RegExp; pattern?: string },
  ): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) {
      if (opts.required) this.add(null, at, 'Member must not be null');
      return undefined;
    }
    if (typeof v !== 'string') {
      this.add(v, at, 'Member must be a string');
      return undefined;
    }
    const min = opts.min ?? 0;
    if (v.length < min) this.add(v, at, `Member must have length greater than or equal to ${min}`);
    else if (v.length > opts.max) this.add(v, at, `Member must have length less than or equal to ${opts.max}`);
    else if (opts.re && !opts.re.test(v)) this.add(v, at, `Member must satisfy regular expression pattern: ${opts.pattern}`);
    return v;
  }

  object(obj: Record<string, unknown>, key: string, at: string, required: boolean): Record<string, unknown> | undefined {
    const v = obj[key];
    if (v === undefined || v === null) {
      if (required) this.add(null, at, 'Member must not be null');
      return undefined;
    }
    if (!isRecord(v)) {
      this.add(v, at, 'Member must be a structure');
      return undefined;
    }
    return v;
  }
}

function show(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `'${text.length > 200 ? `${text.slice(0, 200)}...` : text}'`;
}

/** True for a plain JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a `CreateModelInvocationJob` body; throws a ValidationException listing every violation. */
export function validateCreateJobRequest(body: unknown): CreateJobRequest {
  const v = new Violations();
  if (!isRecord(body)) {
    v.add(body, 'body', 'Member must be a JSON object');
    v.throwIfAny();
  }
  const b = body as Record<string, unknown>;

  v.string(b, 'jobName', 'jobName', { required: true, min: 1, max: 63, re: RE.jobName, pattern: PATTERNS.jobName });
  v.string(b, 'roleArn', 'roleArn', { required: true, min: 0, max: 2048, re: RE.roleArn, pattern: PATTERNS.roleArn });
  v.string(b, 'clientRequestToken', 'clientRequestToken', {
    min: 1,
    max: 256,
    re: RE.clientRequestToken,
    pattern: PATTERNS.clientRequestToken,
  });
  v.string(b, 'modelId', 'modelId', { required: true, min: 1, max: 2048, re: RE.modelId, pattern: 'a model id, inference profile id or ARN' });

  const input = v.object(b, 'inputDataConfig', 'inputDataConfig', true);
  if (input) {
    const s3 = unionMember(v, input, 'inputDataConfig', 's3InputDataConfig');
    if (s3) {
      v.string(s3, 's3Uri', 'inputDataConfig.s3InputDataConfig.s3Uri', { required: true, min: 1, max: 1024, re: RE.s3Uri, pattern: PATTERNS.s3Uri });
      const format = s3.s3InputFormat;
      if (format !== undefined && format !== 'JSONL') {
        v.add(format, 'inputDataConfig.s3InputDataConfig.s3InputFormat', 'Member must satisfy enum value set: [JSONL]');
      }
      v.string(s3, 's3BucketOwner', 'inputDataConfig.s3InputDataConfig.s3BucketOwner', { max: 12, re: RE.accountId, pattern: PATTERNS.accountId });
    }
  }

  const output = v.object(b, 'outputDataConfig', 'outputDataConfig', true);
  if (output) {
    const s3 = unionMember(v, output, 'outputDataConfig', 's3OutputDataConfig');
    if (s3) {
      v.string(s3, 's3Uri', 'outputDataConfig.s3OutputDataConfig.s3Uri', { required: true, min: 1, max: 1024, re: RE.s3Uri, pattern: PATTERNS.s3Uri });
      v.string(s3, 's3EncryptionKeyId', 'outputDataConfig.s3OutputDataConfig.s3EncryptionKeyId', { min: 1, max: 2048 });
      v.string(s3, 's3BucketOwner', 'outputDataConfig.s3OutputDataConfig.s3BucketOwner', { max: 12, re: RE.accountId, pattern: PATTERNS.accountId });
    }
  }

  const vpc = v.object(b, 'vpcConfig', 'vpcConfig', false);
  if (vpc) {
    idList(v, vpc.subnetIds, 'vpcConfig.subnetIds', 16);
    idList(v, vpc.securityGroupIds, 'vpcConfig.securityGroupIds', 5);
  }

  const timeout = b.timeoutDurationInHours;
  if (timeout !== undefined && timeout !== null) {
    if (typeof timeout !== 'number' || !Number.isInteger(timeout)) v.add(timeout, 'timeoutDurationInHours', 'Member must be an integer');
    else if (timeout < 24) v.add(timeout, 'timeoutDurationInHours', 'Member must have value greater than or equal to 24');
    else if (timeout > 168) v.add(timeout, 'timeoutDurationInHours', 'Member must have value less than or equal to 168');
  }

  const tags = b.tags;
  if (tags !== undefined && tags !== null) {
    if (!Array.isArray(tags)) v.add(tags, 'tags', 'Member must be a list');
    else {
      if (tags.length > 200) v.add(`${tags.length} tags`, 'tags', 'Member must have length less than or equal to 200');
      tags.forEach((tag: unknown, i) => {
        if (!isRecord(tag)) return v.add(tag, `tags.${i + 1}.member`, 'Member must be a structure');
        v.string(tag, 'key', `tags.${i + 1}.member.key`, { required: true, min: 1, max: 128, re: RE.tag, pattern: PATTERNS.tag });
        v.string(tag, 'value', `tags.${i + 1}.member.value`, { required: true, min: 0, max: 256, re: RE.tag, pattern: PATTERNS.tag });
      });
    }
  }

  const type = b.modelInvocationType;
  if (type !== undefined && type !== null && type !== 'InvokeModel' && type !== 'Converse') {
    v.add(type, 'modelInvocationType', 'Member must satisfy enum value set: [InvokeModel, Converse]');
  }

  v.throwIfAny();
  return b as unknown as CreateJobRequest;
}

function unionMember(v: Violations, union: Record<string, unknown>, at: string, member: string): Record<string, unknown> | undefined {
  const set = Object.keys(union).filter((k) => union[k] !== undefined && union[k] !== null);
  if (set.length !== 1 || set[0] !== member) {
    v.add(union, at, `Member must have exactly one member set: ${member}`);
    return undefined;
  }
  return v.object(union, member, `${at}.${member}`, true);
}

function idList(v: Violations, list: unknown, at: string, max: number): void {
  if (!Array.isArray(list)) return v.add(list, at, 'Member must not be null');
  if (list.length < 1) return v.add(list, at, 'Member must have length greater than or equal to 1');
  if (list.length > max) return v.add(list, at, `Member must have length less than or equal to ${max}`);
  list.forEach((id: unknown, i) => {
    if (typeof id !== 'string' || id.length > 32 || !RE.vpcId.test(id)) {
      v.add(id, `${at}.${i + 1}.member`, `Member must satisfy regular expression pattern: ${PATTERNS.vpcId}`);
    }
  });
}

/** Validates a `jobIdentifier` path parameter (already URL-decoded): an ARN or a bare 12-char id. */
export function validateJobIdentifier(id: string): void {
  const v = new Violations();
  if (id.length > 1011) v.add(id, 'jobIdentifier', 'Member must have length less than or equal to 1011');
  else if (!RE.jobIdentifier.test(id)) v.add(id, 'jobIdentifier', `Member must satisfy regular expression pattern: ${PATTERNS.jobIdentifier}`);
  v.throwIfAny();
}

/** Validates the query string of `ListModelInvocationJobs`. */
export function validateListQuery(query: URLSearchParams): ListJobsQuery {
  const v = new Violations();
  const out: ListJobsQuery = {};
  const time = (key: 'submitTimeAfter' | 'submitTimeBefore') => {
    const raw = query.get(key);
    if (raw === null) return;
    const t = /^\d+(\.\d+)?$/.test(raw) ? new Date(Number(raw) * 1000) : new Date(raw);
    if (Number.isNaN(t.getTime())) v.add(raw, key, 'Member must be a timestamp');
    else out[key] = t;
  };
  time('submitTimeAfter');
  time('submitTimeBefore');

  const status = query.get('statusEquals');
  if (status !== null) {
    if ((JOB_STATUSES as readonly string[]).includes(status)) out.statusEquals = status as JobStatus;
    else v.add(status, 'statusEquals', `Member must satisfy enum value set: [${JOB_STATUSES.join(', ')}]`);
  }

  const name = query.get('nameContains');
  if (name !== null) {
    if (name.length < 1 || name.length > 63) v.add(name, 'nameContains', 'Member must have length between 1 and 63');
    else if (!RE.jobName.test(name)) v.add(name, 'nameContains', `Member must satisfy regular expression pattern: ${PATTERNS.jobName}`);
    else out.nameContains = name;
  }

  const max = query.get('maxResults');
  if (max !== null) {
    const n = Number(max);
    if (!Number.isInteger(n)) v.add(max, 'maxResults', 'Member must be an integer');
    else if (n < 1) v.add(max, 'maxResults', 'Member must have value greater than or equal to 1');
    else if (n > 1000) v.add(max, 'maxResults', 'Member must have value less than or equal to 1000');
    else out.maxResults = n;
  }

  const token = query.get('nextToken');
  if (token !== null) {
    if (token.length < 1 || token.length > 2048 || !RE.nextToken.test(token)) {
      v.add(token, 'nextToken', `Member must satisfy regular expression pattern: ${PATTERNS.nextToken}`);
    } else out.nextToken = token;
  }

  const sortBy = query.get('sortBy');
  if (sortBy !== null) {
    if (sortBy === 'CreationTime') out.sortBy = sortBy;
    else v.add(sortBy, 'sortBy', 'Member must satisfy enum value set: [CreationTime]');
  }

  const sortOrder = query.get('sortOrder');
  if (sortOrder !== null) {
    if (sortOrder === 'Ascending' || sortOrder === 'Descending') out.sortOrder = sortOrder;
    else v.add(sortOrder, 'sortOrder', 'Member must satisfy enum value set: [Ascending, Descending]');
  }

  v.throwIfAny();
  return out;
}
