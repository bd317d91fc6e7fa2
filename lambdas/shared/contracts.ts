/**
 * The contracts shared by the state machine, the handlers and the local twin:
 * the run configuration carried in the execution state, the S3 layout of a run,
 * and the names given to Bedrock jobs. Everything here is plain data and pure functions.
 */

import type { RunQuotas } from './model-quotas';

/** What to do with retryable records too few to fill a job of the model's minimum size. */
export type SmallRemainderPolicy = 'on-demand' | 'hold' | 'fail';

/** A route's settings, as configured in cdk.json context (see lib/pipeline-config.ts). */
export interface RouteSettings {
  /** Model id, inference profile id or ARN the route's jobs run on. */
  readonly modelId: string;
  /** Largest number of records in one job. @default 50000 (Bedrock's default quota) */
  readonly maxRecordsPerJob: number;
  /** The route's smallest job; planning uses the model's own minimum (Service Quotas) when that is larger. @default 100 */
  readonly minRecordsPerJob: number;
  /** How many rounds a record may take part in before it is failed. @default 3 */
  readonly maxAttempts: number;
  /** Policy for retryable records below the minimum job size. @default 'on-demand' */
  readonly smallRemainder: SmallRemainderPolicy;
}

/**
 * The run's configuration as it travels in the execution state. Small and bounded:
 * lists that grow with the data (chunks, record ids) live in S3, never here.
 */
export interface RunConfig extends RouteSettings {
  readonly runId: string;
  readonly route: string;
  /** The bucket that holds the run's workspace and results. */
  readonly bucket: string;
  /** Shared cap on submitted + in-progress jobs for this model, across all runs. */
  readonly maxConcurrentJobs: number;
  /** Bedrock job timeout, 24..168 hours. */
  readonly jobTimeoutHours: number;
  readonly startedAt: string;
  /**
   * The model's quotas as Prepare read them, and which of them bound the run: `minRecordsPerJob`,
   * `maxRecordsPerJob` and `maxConcurrentJobs` above already hold the stricter values, so every
   * later round plans with the values read once (lambdas/shared/model-quotas.ts).
   */
  readonly quotas?: RunQuotas;
}

/** Where a run is in its rounds; carried in the execution state. */
export interface RoundState {
  /** 1-based round number; a record's attempts equal the round it finished in. */
  readonly number: number;
  readonly chunkCount: number;
  /** The first chunk index not yet handed to the Map. */
  readonly nextChunk: number;
  /** `nextChunk < chunkCount`, precomputed for the workflow's Choice state. */
  readonly hasMoreChunks: boolean;
}

/** The Map item every per-chunk task receives. */
export interface ChunkTask {
  readonly run: RunConfig;
  readonly round: number;
  readonly chunk: number;
}

/** What the job-state handler (or the sweeper) completes a SubmitJob task token with. */
export interface JobOutcome {
  readonly jobArn: string;
  readonly status: string;
  readonly message?: string;
}

/**
 * How many times AcquireSlot is tried while the model's cap is full (10 s doubling to at most
 * 5 minutes apart: about 3 hours) before the chunk gives up its turn and its records go to the
 * next round. Bounded so that waiting cannot eat the execution's history (3 events a try).
 */
export const SLOT_WAIT_ATTEMPTS = 40;

/** Terminal Bedrock job statuses. */
export const TERMINAL_JOB_STATUSES = ['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'] as const;
export type TerminalJobStatus = (typeof TERMINAL_JOB_STATUSES)[number];

export function isTerminalStatus(status: string | undefined): status is TerminalJobStatus {
  return (TERMINAL_JOB_STATUSES as readonly string[]).includes(status ?? '');
}

/**
 * CloudFormation metadata key on every function of the stack: its value is the handler's folder
 * name under `lambdas/`. The stack writes it (lib/batch-function.ts); the local twin binds the
 * template's functions to handler code by it (local/services/template.ts).
 */
export const HANDLER_METADATA_KEY = 'bedrock-batch:handler';

/**
 * Metadata key, on the Bedrock service role, holding the KMS key ARN the drop bucket's objects
 * are encrypted with (`encryptionKey`): the one place a template says so for a bucket of the
 * user's, which it does not define. The local twin checks the key's use through S3 by it.
 */
export const BUCKET_KEY_METADATA_KEY = 'bedrock-batch:bucket-key';

/**
 * The error AcquireSlot throws while the model's job cap is full (the `name` of
 * `SlotUnavailable`, lambdas/shared/job-slots.ts); the workflow retries, then catches, it by this name.
 */
export const SLOT_UNAVAILABLE_ERROR = 'SlotUnavailable';

/**
 * The error Prepare and EndRound throw when their on-demand remainder did not fit the
 * invocation (lambdas/shared/small-remainder.ts): the workflow retries them, and each attempt
 * goes on from what the last one wrote.
 */
export const REMAINDER_INCOMPLETE_ERROR = 'RemainderIncomplete';

/**
 * History events one execution may use before the run continues in a successor execution
 * (Step Functions' hard limit is 25,000): the configuration's default, and next-window's when the
 * configuration predates the setting.
 */
export const DEFAULT_HISTORY_EVENT_BUDGET = 20000;

/** The EventBridge detail-type of the run-finished event. */
export const RUN_COMPLETED_DETAIL_TYPE = 'Batch Run Completed';
/** The EventBridge source of the run-finished event. */
export const RUN_COMPLETED_SOURCE = 'bedrock-batch';

const RUN_ID_PATTERN = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,38}[a-zA-Z0-9])?$/;

/** True when `runId` can be embedded in Bedrock job names and client request tokens. */
export function isValidRunId(runId: string): boolean {
  return RUN_ID_PATTERN.test(runId) && !runId.includes('--');
}

/** Zero-padded round and chunk labels used in keys and job names. */
export function roundLabel(round: number): string {
  return `r${String(round).padStart(2, '0')}`;
}
export function chunkLabel(chunk: number): string {
  return `c${String(chunk).padStart(5, '0')}`;
}

/**
 * The Bedrock job name of a chunk: `bb-<runId>-r01-c00001`. Matches Bedrock's jobName pattern
 * (alphanumerics and hyphens, at most 63 characters) for every valid run id.
 */
export function jobNameFor(runId: string, round: number, chunk: number): string {
  return `${jobNamePrefixFor(runId)}${roundLabel(round).slice(1)}-${chunkLabel(chunk)}`;
}

/**
 * The idempotency token of a chunk's CreateModelInvocationJob: stable across retries of the
 * same submit, so a retried call never creates a second billed job.
 */
export function clientRequestTokenFor(runId: string, round: number, chunk: number): string {
  return `${runId}-${roundLabel(round)}-${chunkLabel(chunk)}`;
}

/** The prefix every job name of a run starts with (`bb-<runId>-r`). */
export function jobNamePrefixFor(runId: string): string {
  return `bb-${runId}-r`;
}

/** Parses a job name made by {@link jobNameFor}; undefined for any other name. */
export function parseJobName(jobName: string): { runId: string; round: number; chunk: number } | undefined {
  const m = /^bb-(.+)-r(\d{2,})-c(\d{5,})$/.exec(jobName);
  if (!m) return undefined;
  return { runId: m[1]!, round: Number(m[2]), chunk: Number(m[3]) };
}

/**
 * The environment variable holding the pipeline's key prefix in its bucket (`teams/ml/`), set on
 * every function when the pipeline is given one (a bucket of the user's, shared with other data):
 * every key the pipeline reads or writes is under it. Absent: the bucket is the pipeline's own.
 */
export const KEY_PREFIX_VARIABLE = 'KEY_PREFIX';

/** The pipeline's key prefix in this process (`''` when it has none). */
export function keyPrefix(): string {
  return process.env[KEY_PREFIX_VARIABLE] ?? '';
}

/** The pipeline's prefixes under `root` (its key prefix): what the CDK grants and scopes. */
export function s3PrefixesUnder(root: string) {
  return {
    inbox: `${root}inbox/`,
    jobsInput: `${root}jobs-input/`,
    jobsOutput: `${root}jobs-output/`,
    work: `${root}work/`,
    results: `${root}results/`,
    held: `${root}held/`,
  } as const;
}

/**
 * Where `bedrock-batch submit` and `local run --input-json` upload local files for a run's
 * inputs: a prefix no rule watches (the S3 rule starts runs only under `inbox/`), so an upload
 * starts nothing by itself. Not one of the pipeline's own prefixes: inputs may be read there.
 */
export const UPLOADS_PREFIX = 'uploads/';

/** A string matched literally inside a RegExp (a key prefix may hold `.`, `(`, `*`...). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The S3 layout of a run, under the pipeline's key prefix ({@link keyPrefix}, read when a key is
 * made, so a process's prefix is the one its environment has). Bedrock reads only `jobs-input/`
 * and writes only `jobs-output/` (the service role is scoped to exactly these); the pipeline's
 * own scratch data is in `work/` and what users read is in `results/`. None of them is under
 * `inbox/`, so a run never triggers itself.
 */
export const S3_PREFIXES = {
  get inbox() {
    return s3PrefixesUnder(keyPrefix()).inbox;
  },
  get jobsInput() {
    return s3PrefixesUnder(keyPrefix()).jobsInput;
  },
  get jobsOutput() {
    return s3PrefixesUnder(keyPrefix()).jobsOutput;
  },
  get work() {
    return s3PrefixesUnder(keyPrefix()).work;
  },
  get results() {
    return s3PrefixesUnder(keyPrefix()).results;
  },
  get held() {
    return s3PrefixesUnder(keyPrefix()).held;
  },
};

export const runKeys = {
  /** The chunk's job input file (what Bedrock reads). */
  chunkInput: (runId: string, round: number, chunk: number) => `${S3_PREFIXES.jobsInput}${runId}/${roundLabel(round)}/${chunkLabel(chunk)}.jsonl`,
  /** The prefix Bedrock writes the chunk's job output under (`<prefix><jobId>/...`). */
  chunkOutputPrefix: (runId: string, round: number, chunk: number) => `${S3_PREFIXES.jobsOutput}${runId}/${roundLabel(round)}/${chunkLabel(chunk)}/`,
  /** Reconciled parts of one chunk: `succeeded`, `failed` (final), `retry` (next round). */
  chunkPart: (runId: string, round: number, chunk: number, part: 'succeeded' | 'failed' | 'retry') =>
    `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/${chunkLabel(chunk)}/${part}.jsonl`,
  /** Per-chunk counters written by reconcile. */
  chunkStats: (runId: string, round: number, chunk: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/${chunkLabel(chunk)}/stats.json`,
  /** Records failed or succeeded outside batch jobs in a round (small remainder). */
  roundPart: (runId: string, round: number, part: 'succeeded' | 'failed') => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/remainder-${part}.jsonl`,
  /** Retryable records of the last allowed round, failed with their last error. */
  exhausted: (runId: string, round: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/exhausted.jsonl`,
  roundPrefix: (runId: string, round: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/`,
  /** The round's chunk count (`{"chunkCount"}`): chunk files at or above it are not part of the round. */
  roundPlan: (runId: string, round: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/plan.json`,
  /** A rebalanced tail chunk, written here first and then copied over the chunk file. */
  roundTail: (runId: string, round: number, n: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/tail-${n}.jsonl`,
  /** The round's records below the minimum job size, before the small-remainder policy. */
  roundRemainder: (runId: string, round: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/remainder.jsonl`,
  /**
   * The round's chunks and remainder are final (`{"chunkCount","remainder"}`, as `plan.json`);
   * written before the small-remainder policy runs, so a retried step can go straight to it.
   */
  remainderReady: (runId: string, round: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/remainder-ready.json`,
  /** Counters of the small-remainder policy's work in a round. */
  remainderStats: (runId: string, round: number) => `${S3_PREFIXES.work}${runId}/${roundLabel(round)}/remainder-stats.json`,
  workRejected: (runId: string) => `${S3_PREFIXES.work}${runId}/rejected.jsonl`,
  /** The run's resolved configuration, written by prepare (read when a stopped run is wound up). */
  runConfig: (runId: string) => `${S3_PREFIXES.work}${runId}/run.json`,
  /** Records a stopped run never finished, failed with `RunStopped`. */
  stopped: (runId: string) => `${S3_PREFIXES.work}${runId}/stopped.jsonl`,
  /** What stop-run failed (its manifest, written after `stopped.jsonl`): see `StoppedManifest`. */
  stoppedManifest: (runId: string) => `${S3_PREFIXES.work}${runId}/stopped.json`,
  runStats: (runId: string) => `${S3_PREFIXES.work}${runId}/run-stats.json`,
  results: (runId: string, name: 'results.jsonl' | 'failed.jsonl' | 'rejected.jsonl' | 'summary.json') => `${S3_PREFIXES.results}${runId}/${name}`,
  /** Part `n` (1-based) of a run's results when they are split (`results-00001.jsonl`, ...). */
  resultsPart: (runId: string, n: number) => `${S3_PREFIXES.results}${runId}/results-${String(n).padStart(5, '0')}.jsonl`,
  /**
   * Where `hold` puts small remainders: picked up by the route's next sweep. Not under
   * `inbox/`, so a held file never starts an immediate run of its own.
   */
  held: (route: string, runId: string, round: number) => `${S3_PREFIXES.held}${route}/${runId}-${roundLabel(round)}.jsonl`,
};

/** Parses `s3://bucket/key`; throws a clear error for anything else. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri);
  if (!m || !m[1]) throw new Error(`not an S3 URI (expected s3://bucket/key): ${uri}`);
  return { bucket: m[1], key: m[2] ?? '' };
}

export function s3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
