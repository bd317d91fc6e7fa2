/**
 * Where a run stands, read the way an operator would from the deployed pieces: the run's claim
 * in the job table (its execution, round, stop mark), the execution's status, prepare's counters
 * and every reconciled chunk's `stats.json` under `work/<runId>/`, the run's job items, Bedrock's
 * record counters of each job still running, and `summary.json` once the run has ended.
 */
import { GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { runKeys, S3_PREFIXES, type RunConfig } from '../lambdas/shared/contracts';
import type { ChunkStats, PrepareStats, RemainderStats } from '../lambdas/shared/outcomes';
import { runCost, type RunCost } from '../lambdas/shared/prices';
import type { RunSummary } from '../lambdas/finalize/run-summary';
import type { Target } from './target';

/** Bedrock job statuses after which a job changes no more. */
const TERMINAL_JOB_STATUSES = new Set(['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired']);

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

interface Claim {
  readonly owner?: string;
  readonly claimedAt?: string;
  readonly stopRequestedAt?: string;
  readonly round?: { number?: number };
}

/** Reads where `runId` stands. `now` is injected for tests. */
export async function readRunView(target: Target, runId: string, now: () => Date = () => new Date()): Promise<RunView> {
  const [claim, summary] = await Promise.all([readClaim(target, runId), readJson<RunSummary>(target, runKeys.results(runId, 'summary.json'))]);
  if (!claim && !summary) throw new RunNotFound(`no run '${runId}' in ${target.description}`);
  if (summary) return summaryView(runId, summary, claim);

  const execution = claim?.owner ? await target.sfn.send(new DescribeExecutionCommand({ executionArn: claim.owner })).catch(() => undefined) : undefined;
  const [config, prepared, chunks, jobs] = await Promise.all([
    readJson<RunConfig>(target, runKeys.runConfig(runId)),
    readJson<PrepareStats>(target, runKeys.runStats(runId)),
    readChunkStats(target, runId),
    readJobs(target, runId),
  ]);
  let succeeded = 0;
  let failed = 0;
  const batch = { input: 0, output: 0 };
  const estimated = { input: 0, output: 0 };
  for (const s of chunks) {
    succeeded += s.succeeded;
    failed += s.failed;
    batch.input += s.tokens.input;
    batch.output += s.tokens.output;
    estimated.input += s.tokens.estimated?.input ?? 0;
    estimated.output += s.tokens.estimated?.output ?? 0;
  }
  const executionStatus = execution?.status;
  const running = executionStatus === 'RUNNING' || executionStatus === undefined;
  const status = !running ? executionStatus! : claim?.stopRequestedAt ? 'Stopping' : prepared ? 'Running' : 'Preparing';
  const jobsByStatus: Record<string, number> = {};
  for (const j of jobs) jobsByStatus[j.status] = (jobsByStatus[j.status] ?? 0) + 1;
  const startedAt = config?.startedAt ?? claim?.claimedAt ?? execution?.startDate?.toISOString();
  const elapsedSeconds = startedAt ? Math.max(0, (now().getTime() - Date.parse(startedAt)) / 1000) : undefined;
  const inFlight = jobs.reduce((n, j) => n + (j.processed ?? 0), 0);
  const done = succeeded + failed + inFlight;
  const left = prepared ? prepared.valid - succeeded - failed - inFlight : undefined;
  const etaSeconds = elapsedSeconds && done > 0 && left !== undefined && left >= 0 ? Math.round((left * elapsedSeconds) / done) : undefined;
  const modelId = config?.modelId;
  return {
    runId,
    status,
    final: !running,
    ...(claim?.owner ? { executionArn: claim.owner } : {}),
    ...(executionStatus ? { executionStatus } : {}),
    ...(modelId ? { modelId } : {}),
    ...(config?.route ? { route: config.route } : {}),
    ...(claim?.round?.number !== undefined ? { round: claim.round.number } : chunks.length > 0 ? { round: Math.max(...chunks.map((c) => c.round)) } : {}),
    records: {
      ...(prepared ? { input: prepared.inputLines, prepared: prepared.valid } : {}),
      succeeded,
      failed,
      rejected: prepared?.rejected ?? 0,
    },
    jobs,
    jobsByStatus,
    ...(config ? { slots: { held: jobs.filter((j) => !TERMINAL_JOB_STATUSES.has(j.status)).length, cap: config.maxConcurrentJobs } } : {}),
    ...(modelId ? { cost: runCost(modelId, { batch, onDemand: { input: 0, output: 0 }, estimated }).cost } : {}),
    ...(startedAt ? { startedAt } : {}),
    ...(elapsedSeconds !== undefined ? { elapsedSeconds: Math.round(elapsedSeconds) } : {}),
    ...(etaSeconds !== undefined && running ? { etaSeconds } : {}),
    ...(!running && execution?.error ? { error: { error: execution.error, cause: execution.cause ?? '' } } : {}),
  };
}

/** A run that ended: everything comes from its summary. */
function summaryView(runId: string, s: RunSummary, claim: Claim | undefined): RunView {
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

async function readClaim(target: Target, runId: string): Promise<Claim | undefined> {
  const res = await target.ddb.send(new GetCommand({ TableName: target.tableName, Key: { pk: `RUN#${runId}`, sk: 'RUN' }, ConsistentRead: true }));
  return res.Item as Claim | undefined;
}

/** Reads a JSON object, or undefined when there is none (yet). */
export async function readJson<T>(target: Target, key: string): Promise<T | undefined> {
  try {
    const res = await target.s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString()) as T;
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

/** Every committed chunk's and remainder's counters under `work/<runId>/`, read 16 at a time. */
async function readChunkStats(target: Target, runId: string): Promise<Array<Pick<ChunkStats, 'round' | 'succeeded' | 'failed' | 'tokens'>>> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await target.s3.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: `${S3_PREFIXES.work}${runId}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key && /\/r\d{2,}\/(c\d{5,}\/stats|remainder-stats)\.json$/.test(o.Key)) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const out: Array<Pick<ChunkStats, 'round' | 'succeeded' | 'failed' | 'tokens'>> = [];
  for (let i = 0; i < keys.length; i += 16) {
    const batch = await Promise.all(keys.slice(i, i + 16).map((k) => readJson<ChunkStats | RemainderStats>(target, k)));
    for (const s of batch) if (s) out.push(s);
  }
  return out;
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
  return Promise.all(
    items.map(async (item): Promise<JobView> => {
      const base = { name: item.jobName, round: item.round, chunk: item.chunk, status: item.status };
      if (!item.jobArn || TERMINAL_JOB_STATUSES.has(item.status)) return base;
      const job = await target.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: item.jobArn })).catch(() => undefined);
      if (!job) return base;
      return {
        ...base,
        status: job.status ?? item.status,
        ...(job.processedRecordCount !== undefined ? { processed: job.processedRecordCount } : {}),
        ...(job.totalRecordCount !== undefined ? { total: job.totalRecordCount } : {}),
      };
    }),
  );
}
