/**
 * Where a run stands, read the way an operator would from the deployed pieces: the run's claim
 * in the job table (its execution, round, stop mark), the execution's status, prepare's counters
 * and every reconciled chunk's `stats.json` under `work/<runId>/`, the run's job items, Bedrock's
 * record counters of each job still running, and `summary.json` once the run has ended.
 */
import { GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { DescribeExecutionCommand, type DescribeExecutionCommandOutput } from '@aws-sdk/client-sfn';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { isTerminalStatus, runKeys, S3_PREFIXES, type RunConfig } from '../lambdas/shared/contracts';
import type { ChunkStats, PrepareStats, RemainderStats } from '../lambdas/shared/outcomes';
import { runCost, type RunCost } from '../lambdas/shared/prices';
import { RunClaims, type RunClaim } from '../lambdas/shared/run-claims';
import { listObjects, readJsonObject } from '../lambdas/shared/s3-jsonl';
import type { RunSummary } from '../lambdas/finalize/run-summary';
import type { Target } from './target';

/** One job of the run, with Bedrock's record counters while it runs. */
export interface JobView {
  readonly name: string;
  readonly round: number;
  readonly chunk: number;
  readonly status: string;
  readonly processed?: number;
  readonly total?: number;
}

/** `status --json`: where a run stands. */
export interface RunView {
  readonly runId: string;
  /** `Preparing`, `Running`, `Stopping`, then the summary's status (`Succeeded`, `CompletedWithFailures`, `Stopped`, `Failed`) or the execution's when it ended without one. */
  readonly status: string;
  readonly final: boolean;
  readonly executionArn?: string;
  readonly executionStatus?: string;
  readonly modelId?: string;
  readonly route?: string;
  readonly round?: number;
  readonly records: { input?: number; prepared?: number; succeeded: number; failed: number; rejected: number };
  readonly jobs: readonly JobView[];
  readonly jobsByStatus: Readonly<Record<string, number>>;
  /** Jobs of the run holding a slot of the model's cap (submitted or running), of the run's cap. */
  readonly slots?: { readonly held: number; readonly cap: number };
  /** Cost so far (from reconciled chunks, default prices) or the summary's; null when the model has no price. */
  readonly cost?: RunCost | null;
  readonly startedAt?: string;
  readonly elapsedSeconds?: number;
  /** Seconds left at the rate records finished so far; absent until some finished. */
  readonly etaSeconds?: number;
  readonly error?: { readonly error: string; readonly cause: string };
}

/** The run id is not known to this pipeline. */
export class RunNotFound extends Error {
  override readonly name = 'RunNotFound';
}

/** The ARN of the execution `submit` starts for `runId` (it names the execution after the run). */
export function submittedExecutionArn(stateMachineArn: string, runId: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${runId}`;
}

/** DescribeExecution, or undefined when there is no such execution (yet). Other errors are thrown. */
export async function describeExecution(target: Target, executionArn: string): Promise<DescribeExecutionCommandOutput | undefined> {
  try {
    return await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  } catch (err) {
    if ((err as Error).name === 'ExecutionDoesNotExist') return undefined;
    throw err;
  }
}

/** What a view keeps between looks: `stats.json` files are written once, so each is read once. */
export type ViewCache = Map<string, ChunkCounters>;

/** Reads where `runId` stands. `now` is injected for tests; `cache` spares re-reading chunk counters. */
export async function readRunView(target: Target, runId: string, now: () => Date = () => new Date(), cache: ViewCache = new Map()): Promise<RunView> {
  const [claim, summary] = await Promise.all([readClaim(target, runId), readJson<RunSummary>(target, runKeys.results(runId, 'summary.json'))]);
  if (summary) return summaryView(runId, summary, claim);
  // Before prepare has claimed the run there is no claim: `submit` names its execution after the run.
  const executionArn = claim?.owner ?? submittedExecutionArn(target.stateMachineArn, runId);
  const execution = await describeExecution(target, executionArn);
  if (!claim && !execution) throw new RunNotFound(`no run '${runId}' in ${target.description}`);

  const [config, prepared, chunks, jobs] = await Promise.all([
    readJson<RunConfig>(target, runKeys.runConfig(runId)),
    readJson<PrepareStats>(target, runKeys.runStats(runId)),
    readChunkStats(target, runId, cache),
    readJobs(target, runId),
  ]);
  let succeeded = 0;
  let failed = 0;
  const batch = { input: 0, output: 0 };
  const onDemand = { input: 0, output: 0 };
  const estimated = { input: 0, output: 0 };
  for (const s of chunks) {
    succeeded += s.succeeded;
    failed += s.failed;
    // A round's small remainder ran on demand (finalize prices it so too).
    const bucket = s.remainder ? onDemand : batch;
    bucket.input += s.tokens.input;
    bucket.output += s.tokens.output;
    estimated.input += s.tokens.estimated?.input ?? 0;
    estimated.output += s.tokens.estimated?.output ?? 0;
  }
  const executionStatus = execution?.status;
  // A stopped execution is ABORTED at once; the run has ended only once stop-run wrote its summary.
  const stopping = executionStatus === 'ABORTED' || claim?.stopRequestedAt !== undefined;
  const running = executionStatus === 'RUNNING' || executionStatus === undefined || executionStatus === 'PENDING_REDRIVE';
  const final = !running && !stopping;
  const status = stopping ? 'Stopping' : !running ? executionStatus! : prepared ? 'Running' : 'Preparing';
  const jobsByStatus: Record<string, number> = {};
  for (const j of jobs) jobsByStatus[j.status] = (jobsByStatus[j.status] ?? 0) + 1;
  const startedAt = config?.startedAt ?? claim?.claimedAt ?? execution?.startDate?.toISOString();
  const elapsedSeconds = startedAt ? Math.max(0, (now().getTime() - Date.parse(startedAt)) / 1000) : undefined;
  const inFlight = jobs.reduce((n, j) => n + (j.processed ?? 0), 0);
  const done = succeeded + failed + inFlight;
  const left = prepared ? prepared.valid - succeeded - failed - inFlight : undefined;
  const etaSeconds = elapsedSeconds && done > 0 && left !== undefined && left >= 0 ? Math.round((left * elapsedSeconds) / done) : undefined;
  const modelId = config?.modelId;
  // The claim's round is written at a hand-over only: the chunks say how far the run has gone since.
  const rounds = [claim?.round?.number, ...chunks.map((c) => c.round)].filter((r): r is number => r !== undefined);
  return {
    runId,
    status,
    final,
    executionArn,
    ...(executionStatus ? { executionStatus } : {}),
    ...(modelId ? { modelId } : {}),
    ...(config?.route ? { route: config.route } : {}),
    ...(rounds.length > 0 ? { round: Math.max(...rounds) } : {}),
    records: {
      ...(prepared ? { input: prepared.inputLines, prepared: prepared.valid } : {}),
      succeeded,
      failed,
      rejected: prepared?.rejected ?? 0,
    },
    jobs,
    jobsByStatus,
    ...(config ? { slots: { held: jobs.filter((j) => !isTerminalStatus(j.status)).length, cap: config.maxConcurrentJobs } } : {}),
    ...(modelId ? { cost: runCost(modelId, { batch, onDemand, estimated }).cost } : {}),
    ...(startedAt ? { startedAt } : {}),
    ...(elapsedSeconds !== undefined ? { elapsedSeconds: Math.round(elapsedSeconds) } : {}),
    ...(etaSeconds !== undefined && running && !stopping ? { etaSeconds } : {}),
    ...(final && execution?.error ? { error: { error: execution.error, cause: execution.cause ?? '' } } : {}),
  };
}

/** A run that ended: everything comes from its summary. */
function summaryView(runId: string, s: RunSummary, claim: RunClaim | undefined): RunView {
  const elapsed = s.startedAt ? (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000 : undefined;
  return {
    runId,
    status: s.status,
    final: true,
    ...(claim?.owner ? { executionArn: claim.owner } : {}),
    ...(s.modelId ? { modelId: s.modelId } : {}),
    ...(s.route ? { route: s.route } : {}),
    round: s.rounds,
    records: { ...s.records, prepared: s.records.input - s.records.rejected },
    jobs: [],
    jobsByStatus: s.jobs,
    cost: s.cost,
    ...(s.startedAt ? { startedAt: s.startedAt } : {}),
    ...(elapsed !== undefined ? { elapsedSeconds: Math.round(elapsed) } : {}),
    ...(s.error ? { error: s.error } : {}),
  };
}

/** The run's claim in the job table (lambdas/shared/run-claims.ts), or undefined before prepare claimed it. */
export function readClaim(target: Target, runId: string): Promise<RunClaim | undefined> {
  return new RunClaims(target.ddb, target.tableName).get(runId);
}

/** Reads a JSON object of the pipeline's bucket, or undefined when there is none (yet). */
export function readJson<T>(target: Target, key: string): Promise<T | undefined> {
  return readJsonObject<T>(target.s3, target.bucket, key);
}

/** A committed chunk's or remainder's counters (`remainder`: a small remainder, run on demand). */
export type ChunkCounters = Pick<ChunkStats, 'round' | 'succeeded' | 'failed' | 'tokens'> & { readonly remainder: boolean };

/** Every committed chunk's and remainder's counters under `work/<runId>/`, read 16 at a time, each once per `cache`. */
async function readChunkStats(target: Target, runId: string, cache: ViewCache): Promise<ChunkCounters[]> {
  const keys = (await listObjects(target.s3, target.bucket, `${S3_PREFIXES.work}${runId}/`))
    .map((o) => o.key)
    .filter((k) => /\/r\d{2,}\/(c\d{5,}\/stats|remainder-stats)\.json$/.test(k));
  const missing = keys.filter((k) => !cache.has(k));
  for (let i = 0; i < missing.length; i += 16) {
    const part = missing.slice(i, i + 16);
    const read = await Promise.all(part.map((k) => readJson<ChunkStats | RemainderStats>(target, k)));
    read.forEach((s, j) => {
      if (s)
        cache.set(part[j]!, {
          round: s.round,
          succeeded: s.succeeded,
          failed: s.failed,
          tokens: s.tokens,
          remainder: part[j]!.endsWith('remainder-stats.json'),
        });
    });
  }
  return keys.map((k) => cache.get(k)).filter((c): c is ChunkCounters => c !== undefined);
}

/** The run's job items, with Bedrock's record counters for each job not yet ended. */
async function readJobs(target: Target, runId: string): Promise<JobView[]> {
  const items: Array<{ jobName: string; round: number; chunk: number; status: string; jobArn?: string }> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await target.ddb.send(
      new ScanCommand({
        TableName: target.tableName,
        FilterExpression: 'begins_with(pk, :job) AND runId = :run',
        ExpressionAttributeValues: { ':job': 'JOB#', ':run': runId },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) items.push(item as (typeof items)[number]);
    start = page.LastEvaluatedKey;
  } while (start);
  items.sort((a, b) => a.round - b.round || a.chunk - b.chunk);
  const look = async (item: (typeof items)[number]): Promise<JobView> => {
    const base = { name: item.jobName, round: item.round, chunk: item.chunk, status: item.status };
    if (!item.jobArn || isTerminalStatus(item.status)) return base;
    // Progress is extra: a job Bedrock cannot describe (throttled, gone) keeps its item's status.
    const job = await target.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: item.jobArn })).catch(() => undefined);
    if (!job) return base;
    return {
      ...base,
      status: job.status ?? item.status,
      ...(job.processedRecordCount !== undefined ? { processed: job.processedRecordCount } : {}),
      ...(job.totalRecordCount !== undefined ? { total: job.totalRecordCount } : {}),
    };
  };
  // A few at a time: a run can have many open jobs, and GetModelInvocationJob is rate limited.
  const views: JobView[] = [];
  for (let i = 0; i < items.length; i += 8) views.push(...(await Promise.all(items.slice(i, i + 8).map(look))));
  return views;
}
