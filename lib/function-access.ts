/**
 * What each of the pipeline's functions may do (S3 by prefix, the job table by item kind,
 * Bedrock jobs and models, the service role, the event bus): the one place to read the
 * pipeline's IAM. lib/function-grants.ts turns it into policy statements; PipelineFunctions
 * (lib/pipeline-functions.ts) applies them.
 */
import type { s3PrefixesUnder } from '../lambdas/shared/contracts';

/** The pipeline's functions; each name is its folder under `lambdas/`. */
export const PIPELINE_FUNCTION_NAMES = [
  'start-run',
  'prepare',
  'next-window',
  'acquire-slot',
  'submit-job',
  'reconcile-chunk',
  'end-round',
  'finalize',
  'job-state',
  'sweeper',
  'stop-run',
] as const;

/** One of {@link PIPELINE_FUNCTION_NAMES}. */
export type PipelineFunctionName = (typeof PIPELINE_FUNCTION_NAMES)[number];

/**
 * Bedrock batch job operations a function may call. (ListModelInvocationJobs is left out on
 * purpose: it cannot be scoped to resources and no handler needs it; jobs are tracked in the table.)
 */
export type JobAction = 'Create' | 'Get' | 'Stop';

/** A prefix of the drop bucket, by its name in `s3PrefixesUnder` (lambdas/shared/contracts.ts). */
export type Prefix = keyof ReturnType<typeof s3PrefixesUnder>;

/**
 * What a function may do in the drop bucket, by prefix. `read` is GetObject (also what HeadObject
 * and the source of a CopyObject need); `write` is PutObject and AbortMultipartUpload (a streamed
 * upload's parts and the abort of a failed one; also the destination of a CopyObject); `list` is
 * ListBucket limited by `s3:prefix`. No function may delete.
 */
export interface S3Access {
  /** Prefixes read, or `'run-inputs'`: any object but {@link NOT_RUN_INPUTS} (prepare's inputs). */
  readonly read?: readonly Prefix[] | 'run-inputs';
  readonly write?: readonly Prefix[];
  /** Prefixes listed, or `'run-inputs'`: the whole bucket (an input prefix may be anywhere). */
  readonly list?: readonly Prefix[] | 'run-inputs';
  /**
   * Reads keys that may not exist (finalize's `run-stats.json`, stop-run's `run.json` and
   * `plan.json`) and must see `NoSuchKey` for a missing one. S3 answers 404 rather than 403 only
   * to a caller allowed `s3:ListBucket`, and a GetObject carries no `s3:prefix` for a `StringLike`
   * to match: the listing condition is then `StringLikeIfExists` (a listing without a prefix is
   * allowed too; key names only).
   */
  readonly readsMissingKeys?: boolean;
}

/**
 * The items of the job table, by the leading part of their partition key (docs/ARCHITECTURE.md,
 * "DynamoDB"): jobs (`lambdas/shared/job-records.ts`), job caps (`job-slots.ts`), sweep marks
 * (start-run) and run claims.
 */
export const ITEM_KEYS = { job: 'JOB#', cap: 'CAP#', swept: 'SWEPT#', run: 'RUN#' } as const;
export type ItemKind = keyof typeof ITEM_KEYS;
export type ItemAction = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';

/** What a function may do in the job table. */
export interface TableAccess {
  /** Single-item actions by item kind, limited with `dynamodb:LeadingKeys` to that kind's keys. */
  readonly items: Partial<Record<ItemKind, readonly ItemAction[]>>;
  /** `dynamodb:Scan` of the table (no key condition can limit a Scan). */
  readonly scan?: boolean;
}

/** What each function may do besides writing its logs. The one place to read the pipeline's IAM. */
export interface FunctionAccess {
  readonly description: string;
  readonly s3?: S3Access;
  readonly table?: TableAccess;
  readonly bedrockJobs?: readonly JobAction[];
  /** `bedrock:InvokeModel` on the routes' models (on-demand small remainders). */
  readonly invokeModel?: boolean;
  /** `iam:PassRole` of the Bedrock service role, to Bedrock only. */
  readonly passServiceRole?: boolean;
  /** `events:PutEvents` on the default bus. */
  readonly putEvents?: boolean;
  /**
   * `servicequotas:ListServiceQuotas` and `ListAWSDefaultServiceQuotas`: the model's quotas, read
   * at run time (applied values, and AWS's defaults of the quotas without one).
   */
  readonly readQuotas?: boolean;
}

/**
 * The pipeline's prefixes a run input may never be under and that prepare never reads: its
 * GetObject on the whole bucket comes with an explicit Deny of these, so the run-input check's
 * refusal is enforced by IAM as well. (`jobs-input/` and `work/` are refused as inputs too, but
 * prepare reads its own chunk and tail files there.)
 */
export const NOT_RUN_INPUTS: readonly Prefix[] = ['jobsOutput', 'results'];

// Matches what the handlers call (lambdas/<name>/ and the shared code they use; the table in
// docs/ARCHITECTURE.md, "Functions", says which call needs which grant); a handler that starts
// calling something new needs its line here, and test/lib says so.
export const ACCESS: Record<PipelineFunctionName, FunctionAccess> = {
  // Lists a route's inbox/ and held/ for sweeps (never reads them); marks swept files and unmarks
  // them when the start fails; claims the run id for the execution it starts (a conditional
  // update, reading the holder when refused); starts executions and describes an existing one of
  // the same name (connectWorkflow).
  'start-run': {
    description: 'Starts (deduplicated) runs for dropped files and nightly sweeps',
    s3: { list: ['inbox', 'held'] },
    table: { items: { swept: ['PutItem', 'DeleteItem'], run: ['UpdateItem', 'GetItem'] } },
  },
  // Reads the run's inputs (HeadObject, listing of prefix inputs); writes run.json, rejections,
  // stats, round 1's chunks, its plan and tail files (copied over chunks), held remainders.
  // Opening a round may apply the small-remainder policy (on-demand InvokeModel) when a file is
  // below the model's minimum job size. Claims the run id (a conditional update), holds a lease
  // on the claim as a running step of the run, and reads the claim to resume a successor (lambdas/shared/run-claims.ts).
  prepare: {
    description: 'Validates a run, rejects bad lines, writes round-1 chunks',
    s3: { read: 'run-inputs', list: 'run-inputs', write: ['jobsInput', 'work', 'held'] },
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
    invokeModel: true,
    readQuotas: true,
  },
  // Reads its execution's history length and may start the run's successor execution
  // (connectWorkflow, which also grants DescribeExecution to check an existing successor); hands
  // the run claim over to the successor, and takes it back when the start fails.
  'next-window': {
    description: 'Hands the next window of chunks to the Map, or continues the run in a successor execution',
    // run: GetItem reads the claim (a run handed over already is not handed over again), UpdateItem hands it over.
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
  },
  'acquire-slot': { description: "Takes a slot of the model's global job cap", table: { items: { cap: ['UpdateItem'] } } },
  // Also completes its own task token when a retried submit finds the job already terminal
  // (connectWorkflow).
  'submit-job': {
    description: "Stores the task token and creates the chunk's Bedrock batch job",
    // run: the stop mark, checked as it takes its lease as a running step of the run.
    table: { items: { job: ['UpdateItem', 'GetItem'], run: ['GetItem', 'UpdateItem'] } },
    bedrockJobs: ['Create', 'Get'],
    passServiceRole: true,
  },
  // Reads the chunk's input and its job's output; writes the chunk's parts and stats. Reads the
  // job item and stops a job whose wait ended without its outcome, before freeing its slot.
  'reconcile-chunk': {
    description: "Joins a job's output with its input; frees the slot",
    // work/: it reads its chunk's stats.json first (a settled chunk is returned as it is), which
    // is missing until it writes it: listing work/ makes that a 404, not an AccessDenied.
    s3: { read: ['jobsInput', 'jobsOutput', 'work'], list: ['jobsOutput', 'work'], write: ['work'], readsMissingKeys: true },
    table: { items: { job: ['GetItem'], cap: ['UpdateItem'], run: ['GetItem', 'UpdateItem'] } },
    bedrockJobs: ['Get', 'Stop'],
  },
  // Lists and reads the round's retry parts; writes the next round's chunks (re-reading them for
  // a tail re-split), exhausted records, remainders and held files.
  'end-round': {
    description: 'Re-chunks retryable records or applies the small-remainder policy',
    // Keys that may be missing (remainder-ready.json, an earlier attempt's remainder parts) are
    // probed by listing them first (objectExists), which the prefix-limited listing allows; so is
    // an earlier attempt's held file, once the run was stopped (held/).
    s3: { read: ['work', 'jobsInput'], list: ['work', 'held'], write: ['work', 'jobsInput', 'held'] },
    // run: the stop mark, checked as it takes its lease as a running step of the run.
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
    invokeModel: true,
  },
  // Reads the run's claim to check it owns the run; FinalizeFailed of an execution that never
  // claimed its run id claims it (a conditional update).
  finalize: {
    description: 'Writes results and the summary; puts Batch Run Completed',
    // Lists results/<runId>/ as well: a rerun empties results parts an earlier attempt left.
    s3: { read: ['work'], list: ['work', 'results'], write: ['results'], readsMissingKeys: true },
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
    putEvents: true,
  },
  // Completes task tokens (connectWorkflow).
  'job-state': {
    description: 'Completes the task token of a job that reached a terminal status',
    table: { items: { job: ['GetItem', 'UpdateItem'] } },
  },
  // Scans for open jobs and capped models; completes task tokens (connectWorkflow).
  sweeper: {
    description: 'Polls tracked jobs whose events were lost; recovers leaked slots',
    table: { items: { job: ['GetItem', 'UpdateItem'], cap: ['GetItem', 'UpdateItem'] }, scan: true },
    bedrockJobs: ['Get'],
  },
  // Stops a stopped run's open jobs (found by a Scan), frees its slots, fails its unfinished
  // records (reading its work files and chunk inputs), finalizes it; reads and winds up the run
  // claim.
  'stop-run': {
    description: 'Winds up a run whose execution a user stopped',
    // jobsOutput and Get: it reconciles the jobs it stopped, keeping what they had processed.
    // list held: whether a hold remainder's held file was written (its records then go to the next sweep).
    s3: { read: ['work', 'jobsInput', 'jobsOutput'], list: ['work', 'results', 'jobsOutput', 'held'], write: ['work', 'results'], readsMissingKeys: true },
    // job GetItem: the job of a chunk whose token was completed after the stop (it ended meanwhile).
    table: { items: { job: ['GetItem', 'UpdateItem'], cap: ['GetItem', 'UpdateItem'], run: ['GetItem', 'UpdateItem'] }, scan: true },
    bedrockJobs: ['Get', 'Stop'],
    putEvents: true,
  },
};

/**
 * The tag keys every batch job is created with (lambdas/submit-job/submit-job.ts): the run, the
 * route and the stack that created it. Bedrock's tag keys allow `[a-zA-Z0-9\s._:/=+@-]`.
 */
export const JOB_TAG_KEYS = ['bedrock-batch:run', 'bedrock-batch:route', 'bedrock-batch:stack'] as const;
