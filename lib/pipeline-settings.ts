/**
 * The pipeline's settings: their types (construct props, cdk.json context, validated), their
 * defaults and limits. Validated by lib/pipeline-config.ts, which re-exports all of this.
 */
import { DEFAULT_HISTORY_EVENT_BUDGET, type RouteSettings, type SmallRemainderPolicy } from '../lambdas/shared/contracts';
import type { PriceOverrideProps } from '../lambdas/shared/prices';

/** How a route's files are started: one run per dropped file, or one nightly sweep. */
export type RouteTrigger = 'immediate' | 'nightly';

/** A route: the model and job options for the files dropped under `inbox/<route>/`. */
export type RouteConfig = RouteSettings & {
  /** `immediate`: each dropped file starts a run; `nightly`: files wait for the nightly sweep. @default 'immediate' */
  readonly trigger: RouteTrigger;
};

/** A route as given in props or context: the model, and job options that default to {@link ROUTE_DEFAULTS}. */
export interface RouteProps {
  /** Model id, inference profile id or ARN the route's jobs run on (a model family this pipeline knows). */
  readonly modelId: string;
  /** Largest number of records in one job, 1..50000. @default 50000 (Bedrock's default quota) */
  readonly maxRecordsPerJob?: number;
  /** The route's smallest job, 1..maxRecordsPerJob; jobs are planned at the model's own minimum (read from Service Quotas at run time) when that is larger. @default 100 */
  readonly minRecordsPerJob?: number;
  /** How many rounds a record may take part in before it is failed, 1..10. @default 3 */
  readonly maxAttempts?: number;
  /** Policy for retryable records below the minimum job size. @default 'on-demand' */
  readonly smallRemainder?: SmallRemainderPolicy;
  /** `immediate`: each dropped file starts a run; `nightly`: files wait for the nightly sweep. @default 'immediate' */
  readonly trigger?: RouteTrigger;
}

/** The pipeline's settings as given (construct props or cdk.json context); defaults in {@link PIPELINE_DEFAULTS}. */
export interface PipelineSettingsProps {
  /**
   * Cap on submitted + in-progress Bedrock jobs per model, shared by all runs of this pipeline
   * (enforced in its DynamoDB table) and the Map's MaxConcurrency of one run; 1..40 (an inline
   * Map runs at most 40 iterations at once). @default 10
   */
  readonly maxConcurrentJobs?: number;
  /** Bedrock job timeout (`timeoutDurationInHours`), 24..168. @default 72 */
  readonly jobTimeoutHours?: number;
  /**
   * Days before intermediate files (`jobs-input/`, `jobs-output/`, `work/`) expire, 1..3650; at
   * least the longest possible run ({@link longestRunHours}). @default 14
   */
  readonly workRetentionDays?: number;
  /** EventBridge schedule expression of the nightly sweeps. @default 'cron(0 2 * * ? *)' */
  readonly nightlySchedule?: string;
  /**
   * History events one execution may use before the run continues in a successor execution,
   * 100..24000 (Step Functions' hard limit is 25,000). @default 20000
   */
  readonly historyEventBudget?: number;
  /** Routes by name (the first path segment under `inbox/`, `[a-z0-9-]+`); at least one. */
  readonly routes: Readonly<Record<string, RouteProps>>;
  /**
   * Prices by model id (USD per million tokens) replacing or adding rows of the shipped price
   * table (lambdas/shared/price-table.ts) in the summaries' cost estimates.
   * @default the shipped table only
   */
  readonly prices?: Readonly<Record<string, PriceOverrideProps>>;
}

/** The validated settings, defaults applied (what `validatePipelineSettings` (lib/pipeline-config.ts) returns). */
export interface PipelineSettings {
  /**
   * Cap on submitted + in-progress Bedrock jobs per model, shared by all runs (enforced in
   * DynamoDB) and the Map's MaxConcurrency of one run; 1..40 (an inline Map runs at most 40
   * iterations at once). @default 10
   */
  readonly maxConcurrentJobs: number;
  /** Bedrock job timeout (`timeoutDurationInHours`), 24..168. @default 72 */
  readonly jobTimeoutHours: number;
  /**
   * Days before intermediate files (`jobs-input/`, `jobs-output/`, `work/`) expire; at least the
   * longest possible run ({@link longestRunHours}). @default 14
   */
  readonly workRetentionDays: number;
  /** EventBridge schedule expression of the nightly sweeps. @default 'cron(0 2 * * ? *)' */
  readonly nightlySchedule: string;
  /**
   * History events one execution may use before the run continues in a successor execution
   * (Step Functions' hard limit is 25,000). @default 20000
   */
  readonly historyEventBudget: number;
  /** Routes by name (the first path segment under `inbox/`); at least one. */
  readonly routes: Record<string, RouteConfig>;
  /** Price overrides by bare foundation-model id, when any were given. */
  readonly prices?: Readonly<Record<string, PriceOverrideProps>>;
}

/** The validated `bedrockBatch` context: the settings, and the stack's existing alarm topic if any. */
export interface PipelineConfig extends PipelineSettings {
  /**
   * ARN of an existing SNS topic every alarm notifies, e.g. the team's paging topic
   * (`arn:aws:sns:<region>:<account>:<name>`, standard topic in the stack's region).
   * @default - the stack creates an encrypted, TLS-only topic (stack output `AlarmTopicArn`)
   */
  readonly alarmTopicArn?: string;
}

/** Pipeline-wide defaults applied by `loadPipelineConfig` (lib/pipeline-config.ts). */
export const PIPELINE_DEFAULTS = {
  maxConcurrentJobs: 10,
  jobTimeoutHours: 72,
  workRetentionDays: 14,
  nightlySchedule: 'cron(0 2 * * ? *)',
  historyEventBudget: DEFAULT_HISTORY_EVENT_BUDGET,
} as const;

/** Per-route defaults applied by `loadPipelineConfig` (lib/pipeline-config.ts). */
export const ROUTE_DEFAULTS = {
  maxRecordsPerJob: 50000,
  minRecordsPerJob: 100,
  maxAttempts: 3,
  smallRemainder: 'on-demand' as SmallRemainderPolicy,
  trigger: 'immediate' as RouteTrigger,
} as const;

/** Bedrock's default (and our upper) limit of records per job. */
export const MAX_RECORDS_PER_JOB_LIMIT = 50000;

/**
 * Upper limit of `maxConcurrentJobs`: it is also the chunk Map's MaxConcurrency, and an inline
 * Map runs at most 40 iterations at once on AWS (a higher value would not be honoured).
 */
export const MAX_CONCURRENT_JOBS_LIMIT = 40;

/** Hours a run may take beyond its rounds' job timeouts (validation, queueing, slot waits, finalizing). */
export const RUN_MARGIN_HOURS = 24;

/**
 * The longest a run can take, in hours: each of its rounds (at most the highest `maxAttempts`
 * of the routes) may wait a full job timeout, plus {@link RUN_MARGIN_HOURS}. Intermediate files
 * (`jobs-input/`, `jobs-output/`, `work/`) must outlive it: `workRetentionDays` is checked against it.
 */
export function longestRunHours(jobTimeoutHours: number, routes: Readonly<Record<string, Pick<RouteConfig, 'maxAttempts'>>>): number {
  const maxAttempts = Math.max(1, ...Object.values(routes).map((r) => r.maxAttempts));
  return jobTimeoutHours * maxAttempts + RUN_MARGIN_HOURS;
}
