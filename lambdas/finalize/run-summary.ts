/**
 * `summary.json`, the run's account: its shape, and the pure steps that make it from what the
 * run committed (job and token totals, warnings, status, cost).
 */
import type { RunQuotas } from '../shared/model-quotas';
import type { ChunkStats, RecordError, RemainderStats } from '../shared/outcomes';
import { NO_COST, runCost, type PriceOverrides, type RunCost } from '../shared/prices';

export type RunStatus = 'Succeeded' | 'CompletedWithFailures' | 'Stopped' | 'Failed';

/** `summary.json`: the contract of DESIGN.md plus where the files are. */
export interface RunSummary {
  readonly runId: string;
  readonly route?: string;
  readonly status: RunStatus;
  readonly modelId?: string;
  readonly records: { input: number; succeeded: number; failed: number; rejected: number };
  /** Jobs by terminal status (`NotSubmitted`: no job could be created for a chunk). */
  readonly jobs: Record<string, number>;
  readonly rounds: number;
  readonly onDemandRecords: number;
  /**
   * Succeeded records whose output stopped at the request's output token limit (`max_tokens`
   * or the family's equivalent): in results.jsonl with `truncated: true`, cut off.
   */
  readonly truncated: number;
  readonly tokens: { input: number; output: number };
  /**
   * USD estimates from the price table (lambdas/shared/price-table.ts, cdk.json's
   * `bedrockBatch.prices` over it); null when the run's model has no price (a warning says so).
   */
  readonly cost: RunCost | null;
  readonly startedAt?: string;
  readonly finishedAt: string;
  /** The input files (the first {@link MAX_LISTED_INPUTS}; `inputFiles` counts them all). */
  readonly inputs: readonly string[];
  readonly inputFiles: number;
  /** S3 URIs of the outputs; `results` has one entry (`results.jsonl`) unless the results were split into parts. */
  readonly outputs: { results: string[]; failed: string; rejected: string };
  /** Things a reader should know: output records with unknown or repeated ids, conservation breaches. */
  readonly warnings: string[];
  /** The limits the run planned with and where each came from (Service Quotas, the route, the documented default). */
  readonly quotas?: RunQuotas['values'];
  /**
   * Stopped runs only: records the run's stopped jobs had processed before they stopped, kept
   * (in results.jsonl, or failed.jsonl with their own error) instead of failed `RunStopped`.
   */
  readonly savedFromStoppedJobs?: number;
  readonly error?: { readonly error: string; readonly cause: string };
}

/**
 * Input files listed in the summary at most: the summary is the workflow's output and the
 * event's detail, both capped at 256 KB, and a sweep or a prefix can take thousands of files.
 */
export const MAX_LISTED_INPUTS = 100;

type Tokens = { input: number; output: number };

/** What the run's committed chunks and remainders add up to. */
export interface RunTotals {
  /** Jobs by terminal status. */
  readonly jobs: Record<string, number>;
  readonly batchTokens: Tokens;
  readonly onDemandTokens: Tokens;
  /** The tokens of the steps whose outputs reported no counts, estimated from the text. */
  readonly estimatedTokens: Tokens;
  readonly onDemandRecords: number;
  /** Job output lines with an unknown (or no) record id. */
  readonly unknownOutputRecords: number;
  /** Job output lines that repeated a record id. */
  readonly duplicateOutputRecords: number;
  /** Records with output in the jobs stop-run reconciled (kept, not failed `RunStopped`). */
  readonly savedFromStoppedJobs: number;
  /** Succeeded records whose output stopped at the output token limit. */
  readonly truncated: number;
  /** The first run-wide refusal of a job by Bedrock (ChunkStats `refused`), if any. */
  readonly refused?: RecordError;
}

/** Adds up the run's committed chunk and remainder stats. */
export function totalsOf(chunkStats: readonly ChunkStats[], remainderStats: readonly RemainderStats[]): RunTotals {
  const jobs: Record<string, number> = {};
  const batchTokens = { input: 0, output: 0 };
  let unknownOutputRecords = 0;
  let duplicateOutputRecords = 0;
  let savedFromStoppedJobs = 0;
  let truncated = 0;
  let refused: RecordError | undefined;
  for (const s of chunkStats) {
    if (s.reconciledAfterStop) savedFromStoppedJobs += s.succeeded + s.failed;
    truncated += s.truncated ?? 0;
    refused ??= s.refused;
    jobs[s.jobStatus] = (jobs[s.jobStatus] ?? 0) + 1;
    batchTokens.input += s.tokens.input;
    batchTokens.output += s.tokens.output;
    unknownOutputRecords += s.unknownOutputRecords;
    duplicateOutputRecords += s.duplicateOutputRecords;
  }
  const onDemandTokens = { input: 0, output: 0 };
  let onDemandRecords = 0;
  for (const s of remainderStats) {
    onDemandRecords += s.onDemandRecords;
    truncated += s.truncated ?? 0;
    onDemandTokens.input += s.tokens.input;
    onDemandTokens.output += s.tokens.output;
  }
  const estimatedTokens = { input: 0, output: 0 };
  for (const s of [...chunkStats, ...remainderStats]) {
    estimatedTokens.input += s.tokens.estimated?.input ?? 0;
    estimatedTokens.output += s.tokens.estimated?.output ?? 0;
  }
  return {
    jobs,
    batchTokens,
    onDemandTokens,
    estimatedTokens,
    onDemandRecords,
    unknownOutputRecords,
    duplicateOutputRecords,
    savedFromStoppedJobs,
    truncated,
    ...(refused ? { refused } : {}),
  };
}

/** What the summary warns of: ignored or repeated output lines, and (unless the run failed) conservation. */
export function summaryWarnings(
  totals: RunTotals,
  records: RunSummary['records'],
  opts: { readonly failedRun: boolean; readonly prepared: boolean },
): string[] {
  const warnings: string[] = [];
  const { unknownOutputRecords: unknown, duplicateOutputRecords: duplicate } = totals;
  if (unknown > 0) warnings.push(`${unknown} job output line(s) had a recordId not in their job's input, or no recordId; ignored`);
  if (duplicate > 0) warnings.push(`${duplicate} job output line(s) repeated a recordId; counted once`);
  const { input, succeeded, failed, rejected } = records;
  if (opts.failedRun) {
    // A failed run ends where its step failed: say what it did not account for.
    const missing = input - succeeded - failed - rejected;
    if (opts.prepared && missing > 0)
      warnings.push(`the run failed before ${missing} of its ${input} input records reached an output: they are in none of results, failed or rejected`);
    return warnings;
  }
  if (!opts.prepared) {
    warnings.push('prepare did not finish: the number of input lines, and so whether every record is accounted for, is not known');
  } else if (input !== succeeded + failed + rejected) {
    warnings.push(`conservation broken: ${input} input lines but ${succeeded} succeeded + ${failed} failed + ${rejected} rejected`);
  }
  return warnings;
}

/**
 * The run's status: `Failed` or `Stopped` by how it ended; otherwise `Succeeded` only when no
 * record failed or was rejected and there is nothing to warn of.
 */
export function runStatus(outcome: 'Finished' | 'Failed' | 'Stopped', records: RunSummary['records'], warnings: readonly string[]): RunStatus {
  if (outcome === 'Failed') return 'Failed';
  if (outcome === 'Stopped') return 'Stopped';
  return records.failed + records.rejected === 0 && warnings.length === 0 ? 'Succeeded' : 'CompletedWithFailures';
}

/**
 * All tokens, and the cost estimates for the model from the price table (with the deployment's
 * overrides); a model without a price gets `cost: null` and a warning: a gap in the report, not
 * a failure of the run (so the caller adds the warning after deciding the status).
 */
export function costOf(
  modelId: string | undefined,
  totals: RunTotals,
  prices?: PriceOverrides,
): { tokens: Tokens; cost: RunSummary['cost']; warning?: string } {
  const { batchTokens, onDemandTokens, estimatedTokens } = totals;
  const tokens = { input: batchTokens.input + onDemandTokens.input, output: batchTokens.output + onDemandTokens.output };
  const { cost, warning } = runCost(modelId, { batch: batchTokens, onDemand: onDemandTokens, estimated: estimatedTokens }, prices);
  return { tokens, cost, ...(warning ? { warning } : {}) };
}

/** A Lambda error's Cause is a JSON document; keep just its message. */
export function describeCause(cause: string | undefined): string {
  if (!cause) return '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    return parsed.errorMessage ?? cause;
  } catch {
    return cause;
  }
}

/**
 * The summary of a finalize that writes nothing: a failed execution that does not own the run id
 * it named (a reused `runId`, a forged `resume`), or a run that was stopped (stop-run writes its
 * summary). Returned as the execution's output only; nothing of the run is written or announced.
 *
 * @param failure - the failed execution's error; undefined for a stopped run
 */
export function notWrittenSummary(runId: string, warning: string, failure: { Error?: string; Cause?: string } | undefined): RunSummary {
  return {
    runId,
    status: 'Failed',
    records: { input: 0, succeeded: 0, failed: 0, rejected: 0 },
    jobs: {},
    rounds: 0,
    onDemandRecords: 0,
    truncated: 0,
    tokens: { input: 0, output: 0 },
    cost: NO_COST,
    finishedAt: new Date().toISOString(),
    inputs: [],
    inputFiles: 0,
    outputs: { results: [], failed: '', rejected: '' },
    warnings: [warning],
    error: failure ? { error: failure.Error ?? 'Unknown', cause: describeCause(failure.Cause) } : { error: 'RunStopped', cause: warning },
  };
}
