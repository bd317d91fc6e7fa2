/**
 * The validation of the pipeline's settings (their types, defaults and limits are in
 * lib/pipeline-settings.ts, re-exported here): the props of
 * `BedrockBatchPipeline` ({@link validatePipelineSettings}) and the `bedrockBatch` object of
 * cdk.json context ({@link loadPipelineConfig}, called once in bin/app.ts). Nothing else reads
 * the raw context. Both report every bad value by its path (`props.routes.default.maxAttempts`,
 * `bedrockBatch.routes.default.maxAttempts`).
 */
import type { SmallRemainderPolicy } from '../lambdas/shared/contracts';
import { KNOWN_FAMILIES_HINT, modelFamily } from '../lambdas/shared/model-family';
import { collectPriceOverrides } from '../lambdas/shared/prices';
import {
  longestRunHours,
  MAX_CONCURRENT_JOBS_LIMIT,
  MAX_RECORDS_PER_JOB_LIMIT,
  PIPELINE_DEFAULTS,
  ROUTE_DEFAULTS,
  RUN_MARGIN_HOURS,
  type PipelineConfig,
  type PipelineSettings,
  type RouteConfig,
  type RouteTrigger,
} from './pipeline-settings';

export * from './pipeline-settings';

/** Why {@link MAX_CONCURRENT_JOBS_LIMIT}, for the validation message. */
const MAX_CONCURRENT_JOBS_WHY =
  `it is also the MaxConcurrency of the workflow's inline Map, and Step Functions runs at most ${MAX_CONCURRENT_JOBS_LIMIT} inline Map iterations at once ` +
  "(Bedrock's own default quota is 20 concurrent batch jobs per model: raise that quota before going above 20)";

const SMALL_REMAINDER_POLICIES: readonly SmallRemainderPolicy[] = ['on-demand', 'hold', 'fail'];
const TRIGGERS: readonly RouteTrigger[] = ['immediate', 'nightly'];
const ROUTE_NAME = /^[a-z0-9-]+$/;
const SCHEDULE_EXPRESSION = /^(cron|rate)\(.+\)$/;
/** A standard SNS topic ARN: partition, region, 12-digit account, topic name (1-256 of [A-Za-z0-9_-]). */
const SNS_TOPIC_ARN = /^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$/;

/** The keys of {@link PipelineSettingsProps}. */
export const PIPELINE_SETTING_KEYS: readonly string[] = [
  'maxConcurrentJobs',
  'jobTimeoutHours',
  'workRetentionDays',
  'nightlySchedule',
  'historyEventBudget',
  'routes',
  'prices',
];
const ROUTE_KEYS = ['modelId', 'maxRecordsPerJob', 'minRecordsPerJob', 'maxAttempts', 'smallRemainder', 'trigger'];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects every problem so one synth reports them all. */
export class SettingProblems {
  readonly messages: string[] = [];

  add(message: string): void {
    this.messages.push(message);
  }

  unknownKeys(path: string, value: Record<string, unknown>, known: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.add(`${path}.${key} is not a known setting (known: ${known.join(', ')})`);
    }
  }

  /** Paths whose value was rejected (their fallback was used instead). */
  readonly invalid = new Set<string>();

  /** @param why appended to the message, e.g. where the upper limit comes from */
  integer(path: string, value: unknown, fallback: number, min: number, max: number, why?: string): number {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(`${path} must be an integer ${min}..${max} (got ${JSON.stringify(value)})${why ? `: ${why}` : ''}`);
      this.invalid.add(path);
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(path: string, value: unknown, fallback: T, allowed: readonly T[]): T {
    const v = value ?? fallback;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.add(`${path} must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${JSON.stringify(value)})`);
      this.invalid.add(path);
      return fallback;
    }
    return v as T;
  }
}

function loadRoute(problems: SettingProblems, root: string, name: string, raw: unknown): RouteConfig | undefined {
  const path = `${root}.routes.${name}`;
  if (!ROUTE_NAME.test(name)) {
    problems.add(`${path}: route names must match [a-z0-9-]+ (they are the first path segment under inbox/)`);
  }
  if (!isPlainObject(raw)) {
    problems.add(`${path} must be an object with at least a modelId`);
    return undefined;
  }
  problems.unknownKeys(path, raw, ROUTE_KEYS);

  let modelId = '';
  if (typeof raw.modelId !== 'string' || raw.modelId.trim() === '') {
    problems.add(`${path}.modelId is required: a Bedrock model id, inference profile id or ARN`);
  } else if (!modelFamily(raw.modelId)) {
    problems.add(`${path}.modelId '${raw.modelId}' is not a model family this pipeline knows (${KNOWN_FAMILIES_HINT})`);
  } else {
    modelId = raw.modelId;
  }

  const limit = MAX_RECORDS_PER_JOB_LIMIT;
  const maxRecordsPerJob = problems.integer(`${path}.maxRecordsPerJob`, raw.maxRecordsPerJob, ROUTE_DEFAULTS.maxRecordsPerJob, 1, limit);
  const minRecordsPerJob = problems.integer(`${path}.minRecordsPerJob`, raw.minRecordsPerJob, ROUTE_DEFAULTS.minRecordsPerJob, 1, limit);
  if (minRecordsPerJob > maxRecordsPerJob) {
    problems.add(`${path}.minRecordsPerJob (${minRecordsPerJob}) must not exceed maxRecordsPerJob (${maxRecordsPerJob})`);
  }
  const maxAttempts = problems.integer(`${path}.maxAttempts`, raw.maxAttempts, ROUTE_DEFAULTS.maxAttempts, 1, 10);
  const smallRemainder = problems.oneOf(`${path}.smallRemainder`, raw.smallRemainder, ROUTE_DEFAULTS.smallRemainder, SMALL_REMAINDER_POLICIES);
  const trigger = problems.oneOf(`${path}.trigger`, raw.trigger, ROUTE_DEFAULTS.trigger, TRIGGERS);
  return { modelId, maxRecordsPerJob, minRecordsPerJob, maxAttempts, smallRemainder, trigger };
}

/**
 * Checks the settings part of `value` (the keys of {@link PipelineSettingsProps}) into `problems`,
 * each problem named by its path under `root`, and returns them with the defaults applied
 * (a rejected value's default stands in, so that every other problem is still found).
 */
export function collectPipelineSettings(problems: SettingProblems, root: string, value: Record<string, unknown>): PipelineSettings {
  const maxConcurrentJobs = problems.integer(
    `${root}.maxConcurrentJobs`,
    value.maxConcurrentJobs,
    PIPELINE_DEFAULTS.maxConcurrentJobs,
    1,
    MAX_CONCURRENT_JOBS_LIMIT,
    MAX_CONCURRENT_JOBS_WHY,
  );
  const jobTimeoutHours = problems.integer(`${root}.jobTimeoutHours`, value.jobTimeoutHours, PIPELINE_DEFAULTS.jobTimeoutHours, 24, 168);
  const workRetentionDays = problems.integer(`${root}.workRetentionDays`, value.workRetentionDays, PIPELINE_DEFAULTS.workRetentionDays, 1, 3650);
  const historyEventBudget = problems.integer(`${root}.historyEventBudget`, value.historyEventBudget, PIPELINE_DEFAULTS.historyEventBudget, 100, 24000);

  let nightlySchedule: string = PIPELINE_DEFAULTS.nightlySchedule;
  if (value.nightlySchedule !== undefined) {
    if (typeof value.nightlySchedule !== 'string' || !SCHEDULE_EXPRESSION.test(value.nightlySchedule.trim())) {
      problems.add(`${root}.nightlySchedule must be an EventBridge schedule expression, cron(...) or rate(...) (got ${JSON.stringify(value.nightlySchedule)})`);
    } else {
      nightlySchedule = value.nightlySchedule.trim();
    }
  }

  const routes: Record<string, RouteConfig> = {};
  if (!isPlainObject(value.routes) || Object.keys(value.routes).length === 0) {
    problems.add(`${root}.routes must define at least one route, e.g. {"default": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0"}}`);
  } else {
    for (const [name, rawRoute] of Object.entries(value.routes)) {
      const route = loadRoute(problems, root, name, rawRoute);
      if (route) routes[name] = route;
    }
  }

  // Checked only when every value it depends on is valid (a fallback would give a wrong figure).
  const dependsOn = [`${root}.jobTimeoutHours`, `${root}.workRetentionDays`, ...Object.keys(routes).map((r) => `${root}.routes.${r}.maxAttempts`)];
  if (Object.keys(routes).length > 0 && !dependsOn.some((p) => problems.invalid.has(p))) {
    const longest = longestRunHours(jobTimeoutHours, routes);
    if (workRetentionDays * 24 < longest) {
      const [slowest, slowestRoute] = Object.entries(routes).reduce((a, b) => (b[1].maxAttempts > a[1].maxAttempts ? b : a));
      problems.add(
        `${root}.workRetentionDays (${workRetentionDays} days) is shorter than the longest possible run ` +
          `(jobTimeoutHours ${jobTimeoutHours} × maxAttempts ${slowestRoute.maxAttempts} of route ${slowest} + ${RUN_MARGIN_HOURS} h = ${longest} h): ` +
          `intermediate files must outlive the run that reads them; set it to at least ${Math.ceil(longest / 24)}`,
      );
    }
  }
  const prices = collectPriceOverrides(problems, `${root}.prices`, value.prices);
  return {
    maxConcurrentJobs,
    jobTimeoutHours,
    workRetentionDays,
    nightlySchedule,
    historyEventBudget,
    routes,
    ...(value.prices !== undefined ? { prices } : {}),
  };
}

/** Throws one error listing every problem, under `heading`, if there is any. */
export function throwIfProblems(problems: SettingProblems, heading: string): void {
  if (problems.messages.length > 0) {
    const list = problems.messages.map((m) => `  - ${m}`).join('\n');
    throw new Error(`${heading}:\n${list}`);
  }
}

/**
 * Validates pipeline settings given as props (`BedrockBatchPipeline`) and applies the defaults.
 *
 * @param root the path prefix of the messages, e.g. `props`
 * @param heading the first line of the error, e.g. `Invalid BedrockBatchPipeline props (MyStack/Pipeline)`
 * @param otherKeys keys of `raw` that are not settings but are known to the caller (not reported as unknown)
 * @throws Error listing every bad key by its full path (e.g. `props.routes.default.maxAttempts must be an integer 1..10 (got 0)`)
 */
export function validatePipelineSettings(raw: unknown, root: string, heading: string, otherKeys: readonly string[] = []): PipelineSettings {
  if (!isPlainObject(raw)) throw new Error(`${heading}: ${root} must be an object with at least routes`);
  const problems = new SettingProblems();
  problems.unknownKeys(root, raw, [...PIPELINE_SETTING_KEYS, ...otherKeys]);
  const settings = collectPipelineSettings(problems, root, raw);
  throwIfProblems(problems, heading);
  return settings;
}

/**
 * Validates the `bedrockBatch` context value and applies the defaults.
 *
 * @param raw the context value: an object, or its JSON text (as given by `cdk synth -c bedrockBatch='{...}'`)
 * @throws Error listing every bad key, each by its full path (e.g.
 *   `bedrockBatch.routes.default.maxAttempts must be an integer 1..10 (got 0)`)
 */
export function loadPipelineConfig(raw: unknown): PipelineConfig {
  let value = raw;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch (err) {
      throw new Error(`bedrockBatch context is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  if (!isPlainObject(value)) {
    throw new Error('bedrockBatch must be an object (set it in cdk.json under context.bedrockBatch)');
  }

  const problems = new SettingProblems();
  problems.unknownKeys('bedrockBatch', value, [...PIPELINE_SETTING_KEYS, 'alarmTopicArn']);
  const settings = collectPipelineSettings(problems, 'bedrockBatch', value);
  let alarmTopicArn: string | undefined;
  if (value.alarmTopicArn !== undefined) {
    const arn = value.alarmTopicArn;
    if (typeof arn === 'string' && /^arn:[^:]+:sns:[^:]*:[^:]*:.+\.fifo$/.test(arn.trim())) {
      problems.add(`bedrockBatch.alarmTopicArn must be a standard SNS topic: CloudWatch alarms cannot notify a FIFO topic (got ${JSON.stringify(arn)})`);
    } else if (typeof arn !== 'string' || !SNS_TOPIC_ARN.test(arn.trim())) {
      problems.add(
        `bedrockBatch.alarmTopicArn must be an SNS topic ARN, arn:<partition>:sns:<region>:<12-digit account>:<topic name> (got ${JSON.stringify(arn)}); leave it out to let the stack create the alarm topic`,
      );
    } else {
      alarmTopicArn = arn.trim();
    }
  }

  throwIfProblems(problems, 'Invalid bedrockBatch configuration');
  return { ...settings, ...(alarmTopicArn ? { alarmTopicArn } : {}) };
}
