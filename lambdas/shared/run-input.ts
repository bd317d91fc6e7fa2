/**
 * The execution input (what a user types in the Step Functions console, what start-run sends)
 * and its resolution into a {@link RunConfig}. The schema is documented in the README.
 */
import { createHash } from 'node:crypto';
import type { PipelineEnvConfig } from './config';
import { escapeRegExp, isValidRunId, keyPrefix, parseS3Uri, S3_PREFIXES, type RunConfig, type SmallRemainderPolicy } from './contracts';
import { KNOWN_FAMILIES_HINT, modelFamily } from './model-family';

/** The documented execution input. Only `inputs` is required. */
export interface RunInput {
  /** S3 URIs of `.jsonl` files, or of prefixes ending in `/` (every `.jsonl` under them). */
  readonly inputs: string[];
  /** Route whose settings apply. @default the route in the first input's `inbox/<route>/` path, else `default` */
  readonly route?: string;
  /** Overrides the route's model. */
  readonly modelId?: string;
  /** Run id (letters, digits, hyphens, at most 40). @default derived from the execution name */
  readonly runId?: string;
  readonly maxRecordsPerJob?: number;
  readonly minRecordsPerJob?: number;
  readonly maxAttempts?: number;
  readonly maxConcurrentJobs?: number;
  readonly smallRemainder?: SmallRemainderPolicy;
  readonly jobTimeoutHours?: number;
  /**
   * The ETag each named input file must still have (`{"s3://bucket/key": "etag"}`); a file
   * replaced since is refused rather than read. Start-run sets it for a dropped file, so a file
   * overwritten between its event and Prepare is not run with the new content under the old
   * event's run (the new content's own event starts its own run).
   */
  readonly inputETags?: Record<string, string>;
}

/** Prefixes of the pipeline's own data: never an input (a run must not read another run's work or results). */
export function reservedInputPrefixes(): readonly string[] {
  return [S3_PREFIXES.jobsInput, S3_PREFIXES.jobsOutput, S3_PREFIXES.work, S3_PREFIXES.results];
}

/** Thrown for an execution input that cannot start a run; the run ends `Failed` with this message. */
export class InvalidRunInput extends Error {
  override readonly name = 'InvalidRunInput';
}

const SMALL_REMAINDER_POLICIES: readonly SmallRemainderPolicy[] = ['on-demand', 'hold', 'fail'];

function int(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidRunInput(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A run id from an execution name: the name itself when it fits, else a stable hash of it. */
export function runIdFromExecutionName(executionName: string): string {
  if (isValidRunId(executionName)) return executionName;
  return `run-${createHash('sha256').update(executionName).digest('hex').slice(0, 20)}`;
}

/**
 * The run an execution belongs to, from its input (a successor's `resume.run.runId`, else
 * `runId`, when valid) or else its name, as Prepare derives it. Used where only the execution is
 * known (stop-run, the twin's report); the run's claim says whether the execution owns it.
 */
export function runIdOfExecutionInput(executionName: string, input: unknown): string {
  const i = (typeof input === 'object' && input !== null ? input : {}) as { runId?: unknown; resume?: { run?: { runId?: unknown } } | null };
  const candidate = i.resume?.run?.runId ?? i.runId;
  return typeof candidate === 'string' && isValidRunId(candidate) ? candidate : runIdFromExecutionName(executionName);
}

function routeOfInput(uri: string): string | undefined {
  try {
    const { key } = parseS3Uri(uri);
    const m = new RegExp(`^(?:${escapeRegExp(S3_PREFIXES.inbox)}|${escapeRegExp(S3_PREFIXES.held)})([^/]+)/`).exec(key);
    return m?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Checks the execution input and merges it with the route's settings.
 * @throws InvalidRunInput naming the field and the problem
 */
export function resolveRunConfig(
  raw: unknown,
  ctx: { executionName: string; startTime: string; bucket: string; pipeline: PipelineEnvConfig },
): { run: RunConfig; inputs: string[]; inputETags?: Readonly<Record<string, string>> } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidRunInput('execution input must be a JSON object');
  const input = raw as Partial<RunInput> & Record<string, unknown>;
  if (!Array.isArray(input.inputs) || input.inputs.length === 0) {
    throw new InvalidRunInput('inputs must be a non-empty array of s3:// URIs');
  }
  for (const [i, uri] of input.inputs.entries()) {
    if (typeof uri !== 'string' || !/^s3:\/\/[^/]+\/.+/.test(uri))
      throw new InvalidRunInput(`inputs[${i}] is not an s3://bucket/key URI: ${JSON.stringify(uri)}`);
    // S3 keys may hold control characters; an input URI the pipeline accepts may not.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(uri)) throw new InvalidRunInput(`inputs[${i}] contains a control character (newline, tab, ...): ${JSON.stringify(uri)}`);
    const { key } = parseS3Uri(uri);
    const reservedPrefixes = reservedInputPrefixes();
    const reserved = reservedPrefixes.find((prefix) => key.startsWith(prefix));
    if (reserved) {
      throw new InvalidRunInput(`inputs[${i}] is under ${reserved}, the pipeline's own data (${reservedPrefixes.join(', ')} may not be inputs): ${uri}`);
    }
  }
  const inputs = input.inputs as string[];
  const inputETags = checkInputETags(input.inputETags, inputs);

  const routes = ctx.pipeline.routes;
  const routeNames = Object.keys(routes);
  let route: string | undefined = input.route;
  if (route !== undefined && typeof route !== 'string') throw new InvalidRunInput('route must be a string');
  // Own properties only: `constructor` or `__proto__` is no route.
  const isRoute = (name: string | undefined): name is string => name !== undefined && Object.prototype.hasOwnProperty.call(routes, name);
  route ??= [routeOfInput(inputs[0]!)].find(isRoute) ?? (isRoute('default') ? 'default' : routeNames.length === 1 ? routeNames[0] : undefined);
  if (!isRoute(route)) {
    throw new InvalidRunInput(`route ${JSON.stringify(route ?? '')} is not configured (configured: ${routeNames.join(', ') || 'none'})`);
  }
  const settings = routes[route]!;

  const modelId = input.modelId ?? settings.modelId;
  if (typeof modelId !== 'string' || modelId.length === 0) throw new InvalidRunInput('modelId must be a non-empty string');
  if (!modelFamily(modelId)) throw new InvalidRunInput(`modelId ${modelId} is of no known model family (known: ${KNOWN_FAMILIES_HINT})`);
  // The functions may create jobs and invoke models only for the configured routes' models (IAM).
  const configuredModels = new Set(Object.values(routes).map((r) => r.modelId));
  if (!configuredModels.has(modelId)) {
    throw new InvalidRunInput(
      `modelId ${modelId} is not the model of a configured route, so the pipeline may not use it (configured: ${[...configuredModels].join(', ')})`,
    );
  }
  for (const [i, uri] of inputs.entries()) {
    const { bucket, key } = parseS3Uri(uri);
    if (bucket !== ctx.bucket) {
      throw new InvalidRunInput(`inputs[${i}] is not in the pipeline's bucket ${ctx.bucket} (the pipeline may read only its own bucket): ${uri}`);
    }
    // A pipeline with a key prefix shares its bucket: its roles may read only under the prefix.
    if (!key.startsWith(keyPrefix())) {
      throw new InvalidRunInput(
        `inputs[${i}] is not under the pipeline's key prefix ${keyPrefix()} (the pipeline may read only its own part of the bucket): ${uri}`,
      );
    }
  }

  if (input.runId !== undefined && (typeof input.runId !== 'string' || !isValidRunId(input.runId))) {
    throw new InvalidRunInput('runId must be 1..40 letters, digits and single hyphens, starting and ending with a letter or digit');
  }
  const runId = input.runId ?? runIdFromExecutionName(ctx.executionName);

  const smallRemainder = input.smallRemainder ?? settings.smallRemainder;
  if (!SMALL_REMAINDER_POLICIES.includes(smallRemainder)) {
    throw new InvalidRunInput(`smallRemainder must be one of ${SMALL_REMAINDER_POLICIES.join(', ')}, got ${JSON.stringify(smallRemainder)}`);
  }
  // Held records are picked up by the route's nightly sweep, which only some routes have.
  if (smallRemainder === 'hold' && settings.smallRemainder !== 'hold' && settings.trigger !== 'nightly') {
    throw new InvalidRunInput(
      `smallRemainder 'hold' needs a nightly sweep of route ${route}, which it does not have: configure the route with smallRemainder 'hold' or trigger 'nightly'`,
    );
  }
  const maxRecordsPerJob = int(input.maxRecordsPerJob, 'maxRecordsPerJob', 1, 50000) ?? settings.maxRecordsPerJob;
  const minRecordsPerJob = int(input.minRecordsPerJob, 'minRecordsPerJob', 1, 50000) ?? settings.minRecordsPerJob;
  if (minRecordsPerJob > maxRecordsPerJob) {
    throw new InvalidRunInput(`minRecordsPerJob (${minRecordsPerJob}) must not exceed maxRecordsPerJob (${maxRecordsPerJob})`);
  }
  const known = new Set([
    'inputs',
    'route',
    'modelId',
    'runId',
    'maxRecordsPerJob',
    'minRecordsPerJob',
    'maxAttempts',
    'maxConcurrentJobs',
    'smallRemainder',
    'jobTimeoutHours',
    'inputETags',
  ]);
  const unknown = Object.keys(input).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new InvalidRunInput(`unknown input field(s): ${unknown.join(', ')}`);

  return {
    inputs,
    ...(inputETags ? { inputETags } : {}),
    run: {
      runId,
      route,
      modelId,
      bucket: ctx.bucket,
      maxRecordsPerJob,
      minRecordsPerJob,
      // The stack keeps work/ long enough for the routes' attempts (lib/pipeline-config.ts): a run may
      // take fewer attempts than its route, never more, or its files could expire under it.
      maxAttempts: int(input.maxAttempts, 'maxAttempts', 1, settings.maxAttempts) ?? settings.maxAttempts,
      smallRemainder,
      // A run may share the cap less, never more: the cap item is shared by every run of the model.
      maxConcurrentJobs: int(input.maxConcurrentJobs, 'maxConcurrentJobs', 1, ctx.pipeline.maxConcurrentJobs) ?? ctx.pipeline.maxConcurrentJobs,
      // The workflow waits for a job the stack's timeout plus a margin: a run may only shorten it.
      jobTimeoutHours: int(input.jobTimeoutHours, 'jobTimeoutHours', 24, ctx.pipeline.jobTimeoutHours) ?? ctx.pipeline.jobTimeoutHours,
      startedAt: ctx.startTime,
    },
  };
}

/** Checks `inputETags`: an object whose keys are input files of the run and whose values are ETags. */
function checkInputETags(raw: unknown, inputs: readonly string[]): Readonly<Record<string, string>> | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidRunInput('inputETags must be an object of input URI -> ETag');
  const out: Record<string, string> = {};
  for (const [uri, etag] of Object.entries(raw)) {
    if (!inputs.includes(uri) || uri.endsWith('/')) throw new InvalidRunInput(`inputETags names ${JSON.stringify(uri)}, which is not an input file of the run`);
    if (typeof etag !== 'string' || etag.length === 0 || etag.length > 200)
      throw new InvalidRunInput(`inputETags[${JSON.stringify(uri)}] must be a non-empty ETag string`);
    out[uri] = etag;
  }
  return out;
}
