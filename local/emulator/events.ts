/**
 * The EventBridge events Bedrock sends on every batch job state change (docs/BEDROCK-FACTS.md §6).
 */
import { parseModelId } from '../../lambdas/shared/model-catalog';
import type { JobStatus } from './validation';

/** detail-type of Bedrock's job state events, exactly as Bedrock sends it. */
export const JOB_STATE_DETAIL_TYPE = 'Batch Inference Job State Change';
/** source of Bedrock's job state events. */
export const JOB_STATE_SOURCE = 'aws.bedrock';

/** `detail` of a job state event. The keys are `batchJobArn` / `batchJobName`, not `jobArn` (docs/BEDROCK-FACTS.md §6). */
export interface BedrockJobStateDetail {
  version: string;
  accountId: string;
  batchJobName: string;
  batchJobArn: string;
  batchModelId: string;
  status: JobStatus;
  /**
   * The job's message when the status is `Failed` or `Expired`; empty for every other status,
   * `PartiallyCompleted` included (its message, e.g. the timeout's, is only in GetModelInvocationJob).
   */
  failureMessage: string;
  /** Human-readable, not ISO: `Aug 28, 2024, 10:47:53 PM` (docs/BEDROCK-FACTS.md §6). */
  creationTime: string;
}

/** A full EventBridge envelope of a Bedrock job state change. */
export interface BedrockJobStateEvent {
  version: string;
  id: string;
  'detail-type': typeof JOB_STATE_DETAIL_TYPE;
  source: typeof JOB_STATE_SOURCE;
  account: string;
  /** ISO-8601, as EventBridge envelopes normally carry. */
  time: string;
  region: string;
  resources: string[];
  detail: BedrockJobStateDetail;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Formats a time like Bedrock's `creationTime`: `Aug 28, 2024, 10:47:53 PM` (UTC). */
export function formatCreationTime(date: Date): string {
  const h24 = date.getUTCHours();
  const h12 = h24 % 12 === 0 ? 12 : h24 % 12;
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}, ${date.getUTCFullYear()}, ` +
    `${h12}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} ${h24 < 12 ? 'AM' : 'PM'}`
  );
}

/**
 * The ARN form of a model id as given: a foundation model's ARN for a bare id, an inference
 * profile's for a profile id, the id itself when it is an ARN already.
 */
export function modelArnOf(modelId: string, region: string, accountId: string): string {
  const { form } = parseModelId(modelId);
  if (form === 'profile') return `arn:aws:bedrock:${region}:${accountId}:inference-profile/${modelId}`;
  if (form === 'bare') return `arn:aws:bedrock:${region}::foundation-model/${modelId}`;
  return modelId;
}
