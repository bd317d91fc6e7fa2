/**
 * Finalize: gather every part a run wrote into `results/<runId>/` (results, failed, rejected,
 * summary), check conservation, and announce the run on the event bus.
 */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { RUN_COMPLETED_DETAIL_TYPE, RUN_COMPLETED_SOURCE, isValidRunId, runKeys, s3Uri, S3_PREFIXES, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import type { RunQuotas } from '../shared/model-quotas';
import { estimateCostUsd, modelFamily } from '../shared/model-family';
import { partsOf, readCommittedRounds } from '../shared/committed-parts';
import type { ChunkStats, PartFile, PrepareStats, RemainderStats, StoppedManifest } from '../shared/outcomes';
import { executionNameOf, RunIdInUse, type RunClaim, type RunClaims } from '../shared/run-claims';
import { runIdFromExecutionName } from '../shared/run-input';
import { concatJsonl, concatJsonlParts, JsonlWriter, listObjects, readJsonObject, writeJsonObject } from '../shared/s3-jsonl';

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
  readonly tokens: { input: number; output: number };
  /** Estimates from the price table in lambdas/shared/model-family.ts. */
  readonly cost: { batchUsd: number; onDemandUsd: number; allOnDemandUsd: number };
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
  readonly error?: { readonly error: string; readonly cause: string };
}

export type FinalizeEvent =
  | { readonly outcome: 'Finished'; readonly run: RunConfig; readonly executionName?: string; readonly executionArn: string }
  | {
      readonly outcome: 'Failed';
      readonly executionName: string;
      /** `$$.Execution.Id`: only the execution that owns the run (its claim) may write its results. */
      readonly executionArn: string;
      /** The state when the failure was caught: `run` if prepare got that far, `error` always. */
      readonly state: { run?: RunConfig; runId?: string; resume?: { run?: RunConfig }; error?: { Error?: string; Cause?: string } };
    }
  | {
      /** A user stopped the execution; stop-run stopped its jobs and failed what was unfinished. */
      readonly outcome: 'Stopped';
      readonly runId: string;
      readonly run?: RunConfig;
      readonly executionName: string;
    };

/**
 * Input files listed in the summary at most: the summary is the workflow's output and the
 * event's detail, both capped at 256 KB, and a sweep or a prefix can take thousands of files.
 */
export const MAX_LISTED_INPUTS = 100;

/** Results larger than this are split into `results-00001.jsonl`, ... parts of at most this size. */
export const RESULTS_PART_MAX_BYTES = 512 * 1024 * 1024;

export interface FinalizeDeps {
  readonly s3: S3Client;
  /** @default RESULTS_PART_MAX_BYTES */
  readonly resultsPartMaxBytes?: number;
  readonly events: EventBridgeClient;
  readonly bucket: string;
  readonly eventBusName: string;
  /** The run claims: `Finished` and `Failed` write a run's results only for the execution that owns it. */
  readonly claims: RunClaims;
  /**
   * Looks up the successor a failed execution handed its run to (`DescribeExecution`): a
   * successor that was never started leaves the run to the failed execution.
   * @default no look-up: a handed-over run is the successor's
   */
  readonly sfn?: SFNClient;
}

/**
 * What the run's steps committed: the stats of every reconciled chunk and handled remainder of
 * its opened rounds, and the parts their manifests list (never a part found by listing, which
 * can be a leftover of a failed attempt), plus each round's `exhausted.jsonl` (one object,
 * rewritten whole by a retry) and what stop-run's `stopped.json` lists.
 */
async function committedOutputs(
  s3: S3Client,
  bucket: string,
  runId: string,
): Promise<{
  chunkStats: ChunkStats[];
  remainderStats: RemainderStats[];
  rounds: number;
  resultSources: PartFile[];
  failedSources: string[];
  rejectedSources: string[];
}> {
  const keys = new Set((await listObjects(s3, bucket, `${S3_PREFIXES.work}${runId}/`)).map((o) => o.key));
  // A stopped run: what stop-run failed is not also taken from a step that committed later.
  const stopped = keys.has(runKeys.stoppedManifest(runId)) ? await readJsonObject<StoppedManifest>(s3, bucket, runKeys.stoppedManifest(runId)) : undefined;
  const committed = await readCommittedRounds(s3, bucket, runId, keys, stopped?.round);
  const failedByStop = (round: number, chunk?: number) =>
    stopped !== undefined && round === stopped.round && (chunk === undefined ? stopped.unfinishedRemainder : stopped.unfinishedChunks.includes(chunk));
  const chunkStats: ChunkStats[] = [];
  const remainderStats: RemainderStats[] = [];
  const resultSources: PartFile[] = [];
  const failedSources: string[] = [];
  const take = (manifest: ChunkStats | RemainderStats, where: string) => {
    resultSources.push(...partsOf(manifest, 'succeeded', where));
    failedSources.push(...partsOf(manifest, 'failed', where).map((p) => p.key));
  };
  for (const { round, chunks, remainder } of committed) {
    for (const [chunk, stats] of chunks.entries()) {
      if (!stats || failedByStop(round, chunk)) continue;
      chunkStats.push(stats);
      take(stats, runKeys.chunkStats(runId, round, chunk));
    }
    if (remainder && !failedByStop(round)) {
      remainderStats.push(remainder);
      take(remainder, runKeys.remainderStats(runId, round));
    }
    if (keys.has(runKeys.exhausted(runId, round))) failedSources.push(runKeys.exhausted(runId, round));
  }
  if (stopped) failedSources.push(...partsOf(stopped, 'failed', runKeys.stoppedManifest(runId)).map((p) => p.key));
  const rejectedSources = keys.has(runKeys.workRejected(runId)) ? [runKeys.workRejected(runId)] : [];
  return { chunkStats, remainderStats, rounds: committed.length, resultSources, failedSources, rejectedSources };
}

/** The results files under `results/<runId>/` now: `results.jsonl` and `results-NNNNN.jsonl`. */
async function resultFiles(s3: S3Client, bucket: string, runId: string): Promise<string[]> {
  const prefix = `${S3_PREFIXES.results}${runId}/`;
  return (await listObjects(s3, bucket, prefix)).map((o) => o.key).filter((k) => /^results(-\d{5})?\.jsonl$/.test(k.slice(prefix.length)));
}

/** Writes the run's outputs and summary, and puts `Batch Run Completed`. */
export async function finalizeRun(deps: FinalizeDeps, event: FinalizeEvent): Promise<RunSummary> {
  const run = event.outcome === 'Failed' ? trustedRunOfFailure(event, deps.bucket) : event.run;
  const runId =
    run?.runId ??
    (event.outcome === 'Stopped'
      ? event.runId
      : event.outcome === 'Failed' && typeof event.state.runId === 'string' && isValidRunId(event.state.runId)
        ? event.state.runId
        : runIdFromExecutionName(event.executionName ?? 'unknown'));
  const bucket = run?.bucket ?? deps.bucket;
  logger.appendKeys({ runId });
  if (event.outcome === 'Finished') {
    const claim = await deps.claims.get(runId);
    if (claim?.owner !== event.executionArn) {
      throw new Error(`run ${runId} is not owned by execution ${executionNameOf(event.executionArn)}: it may not finalize it`);
    }
    if (claim.stopRequestedAt) return notWritten(runId, `run ${runId} was stopped: stop-run writes its summary`, undefined);
  }
  if (event.outcome === 'Failed') {
    const claim = await takeBackFromUnstartedSuccessor(deps, await claimForFailure(deps.claims, runId, event.executionArn), event.executionArn);
    if (claim.owner !== event.executionArn) {
      logger.warn('failed execution does not own its run; nothing written', { owner: claim.owner, executionName: event.executionName });
      return notWritten(
        runId,
        `run ${runId} is owned by execution ${executionNameOf(claim.owner)}: this execution (${event.executionName}) wrote nothing of it`,
        event,
      );
    }
    // A stopped run (a stop while a step outlived it, a redriven stopped execution): stop-run's summary stands.
    if (claim.stopRequestedAt) return notWritten(runId, `run ${runId} was stopped: stop-run writes its summary`, event);
  }

  const { chunkStats, remainderStats, rounds, resultSources, failedSources, rejectedSources } = await committedOutputs(deps.s3, bucket, runId);
  const prepared = await readJsonObject<PrepareStats>(deps.s3, bucket, runKeys.runStats(runId));

  const outputs = {
    failed: runKeys.results(runId, 'failed.jsonl'),
    rejected: runKeys.results(runId, 'rejected.jsonl'),
  };
  const partMax = deps.resultsPartMaxBytes ?? RESULTS_PART_MAX_BYTES;
  const split = resultSources.reduce((sum, p) => sum + p.bytes, 0) > partMax;
  const earlierResults = await resultFiles(deps.s3, bucket, runId);
  const results = await concatJsonlParts(
    deps.s3,
    bucket,
    resultSources.map((p) => p.key),
    (n) => (split ? runKeys.resultsPart(runId, n) : runKeys.results(runId, 'results.jsonl')),
    split ? partMax : Number.POSITIVE_INFINITY,
  );
  // An earlier finalize of the run (a retried attempt, or the workflow's before stop-run's) may
  // have split its results differently; nothing here may delete, so a results file this one did
  // not write is emptied: a reader taking every file under results/ counts no record twice.
  for (const key of earlierResults.filter((k) => !results.keys.includes(k))) await new JsonlWriter(deps.s3, bucket, key).close();
  const succeeded = results.lines;
  const failed = await concatJsonl(deps.s3, bucket, failedSources, outputs.failed);
  const rejected = await concatJsonl(deps.s3, bucket, rejectedSources, outputs.rejected);

  const jobs: Record<string, number> = {};
  const batchTokens = { input: 0, output: 0 };
  let unknown = 0;
  let duplicate = 0;
  for (const s of chunkStats) {
    jobs[s.jobStatus] = (jobs[s.jobStatus] ?? 0) + 1;
    batchTokens.input += s.tokens.input;
    batchTokens.output += s.tokens.output;
    unknown += s.unknownOutputRecords;
    duplicate += s.duplicateOutputRecords;
  }
  const onDemandTokens = { input: 0, output: 0 };
  let onDemandRecords = 0;
  for (const s of remainderStats) {
    onDemandRecords += s.onDemandRecords;
    onDemandTokens.input += s.tokens.input;
    onDemandTokens.output += s.tokens.output;
  }

  const warnings: string[] = [];
  if (unknown > 0) warnings.push(`${unknown} job output line(s) had a recordId not in their job's input, or no recordId; ignored`);
  if (duplicate > 0) warnings.push(`${duplicate} job output line(s) repeated a recordId; counted once`);
  const input = prepared?.inputLines ?? 0;
  const failedRun = event.outcome === 'Failed';
  if (!failedRun && !prepared) {
    warnings.push('prepare did not finish: the number of input lines, and so whether every record is accounted for, is not known');
  } else if (!failedRun && input !== succeeded + failed + rejected) {
    warnings.push(`conservation broken: ${input} input lines but ${succeeded} succeeded + ${failed} failed + ${rejected} rejected`);
  }

  const family = modelFamily(run?.modelId ?? '');
  const batchCost = family ? estimateCostUsd(family, batchTokens, onDemandTokens) : { batchUsd: 0, onDemandUsd: 0 };
  const allTokens = { input: batchTokens.input + onDemandTokens.input, output: batchTokens.output + onDemandTokens.output };
  const allOnDemandUsd = family ? estimateCostUsd(family, { input: 0, output: 0 }, allTokens).onDemandUsd : 0;

  const status: RunStatus = failedRun
    ? 'Failed'
    : event.outcome === 'Stopped'
      ? 'Stopped'
      : failed + rejected === 0 && warnings.length === 0
        ? 'Succeeded'
        : 'CompletedWithFailures';
  const summary: RunSummary = {
    runId,
    ...(run ? { route: run.route, modelId: run.modelId, startedAt: run.startedAt } : {}),
    status,
    records: { input, succeeded, failed, rejected },
    jobs,
    rounds,
    onDemandRecords,
    tokens: allTokens,
    cost: { ...batchCost, allOnDemandUsd },
    finishedAt: new Date().toISOString(),
    inputs: (prepared?.inputs ?? []).slice(0, MAX_LISTED_INPUTS),
    inputFiles: prepared?.inputFiles ?? 0,
    outputs: { results: results.keys.map((k) => s3Uri(bucket, k)), failed: s3Uri(bucket, outputs.failed), rejected: s3Uri(bucket, outputs.rejected) },
    // Quota warnings (Service Quotas unreadable) are reported without making the run's records fail.
    warnings: [...warnings, ...(run?.quotas?.warnings ?? [])],
    ...(run?.quotas ? { quotas: run.quotas.values } : {}),
    ...(event.outcome === 'Failed' ? { error: { error: event.state.error?.Error ?? 'Unknown', cause: describeCause(event.state.error?.Cause) } } : {}),
  };
  await writeJsonObject(deps.s3, bucket, runKeys.results(runId, 'summary.json'), summary, true);
  const put = await deps.events.send(
    new PutEventsCommand({
      Entries: [{ Source: RUN_COMPLETED_SOURCE, DetailType: RUN_COMPLETED_DETAIL_TYPE, Detail: JSON.stringify(summary), EventBusName: deps.eventBusName }],
    }),
  );
  // PutEvents reports a rejected entry in its response, not as an error: make it one, so the
  // workflow's retry tries again (finalize is idempotent).
  if (put.FailedEntryCount) {
    const entry = put.Entries?.[0];
    throw new Error(`could not put the ${RUN_COMPLETED_DETAIL_TYPE} event: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim());
  }
  logger.info('run finished', { status, records: summary.records });
  return summary;
}

/** A Lambda error's Cause is a JSON document; keep just its message. */
function describeCause(cause: string | undefined): string {
  if (!cause) return '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    return parsed.errorMessage ?? cause;
  } catch {
    return cause;
  }
}

/**
 * The claim of a run whose execution failed. A run that no execution has claimed yet (its
 * Prepare failed before claiming, e.g. on an invalid input) is claimed now for the failing
 * execution, so its failure can be written under its id without ever overwriting another run's.
 */
async function claimForFailure(claims: RunClaims, runId: string, executionArn: string): Promise<RunClaim> {
  const claim = await claims.get(runId);
  if (claim) return claim;
  try {
    await claims.claim(runId, executionArn);
    return { runId, owner: executionArn, claimedAt: new Date().toISOString() };
  } catch (err) {
    if (!(err instanceof RunIdInUse)) throw err;
    // Claimed by another execution in the meantime.
    return (await claims.get(runId)) ?? { runId, owner: 'unknown', claimedAt: '' };
  }
}

/**
 * A run this execution handed over to a successor that does not exist (its NextWindow failed
 * after the hand-over: the start and the take-back both failed) would be owned by nobody: no
 * summary, no event, no stop. Such a run is taken back, so FinalizeFailed winds it up. A
 * successor that exists owns the run, whatever state it is in.
 */
async function takeBackFromUnstartedSuccessor(deps: FinalizeDeps, claim: RunClaim, executionArn: string): Promise<RunClaim> {
  if (!deps.sfn || claim.handedOverBy !== executionArn || claim.owner === executionArn) return claim;
  try {
    await deps.sfn.send(new DescribeExecutionCommand({ executionArn: claim.owner }));
    return claim;
  } catch (err) {
    if ((err as Error).name !== 'ExecutionDoesNotExist') throw err;
  }
  logger.warn('the successor this execution handed its run to was never started; taking the run back', { successor: claim.owner });
  await deps.claims.takeBack(claim.runId, executionArn, claim.owner);
  return { ...claim, owner: executionArn };
}

/**
 * The run of a failed execution, when it can be believed. The state's `run` is Prepare's result
 * once Prepare succeeded, but the raw execution input when Prepare failed (it caught the error
 * with the input as the state), and `resume.run` always comes from the input: a run id that is
 * not a valid one, or another bucket, is not used (the run id then comes from the checked
 * `runId` or the execution name, and the summary names no route or model).
 */
function trustedRunOfFailure(event: Extract<FinalizeEvent, { outcome: 'Failed' }>, bucket: string): RunConfig | undefined {
  const candidate = (event.state.run ?? event.state.resume?.run) as Partial<RunConfig> | undefined;
  if (!candidate || typeof candidate !== 'object') return undefined;
  if (typeof candidate.runId !== 'string' || !isValidRunId(candidate.runId) || candidate.bucket !== bucket) return undefined;
  return candidate as RunConfig;
}

/**
 * The summary of a finalize that writes nothing: a failed execution that does not own the run id
 * it named (a reused `runId`, a forged `resume`), or a run that was stopped (stop-run writes its
 * summary). Returned as the execution's output only; nothing of the run is written or announced.
 */
function notWritten(runId: string, warning: string, event: Extract<FinalizeEvent, { outcome: 'Failed' }> | undefined): RunSummary {
  return {
    runId,
    status: 'Failed',
    records: { input: 0, succeeded: 0, failed: 0, rejected: 0 },
    jobs: {},
    rounds: 0,
    onDemandRecords: 0,
    tokens: { input: 0, output: 0 },
    cost: { batchUsd: 0, onDemandUsd: 0, allOnDemandUsd: 0 },
    finishedAt: new Date().toISOString(),
    inputs: [],
    inputFiles: 0,
    outputs: { results: [], failed: '', rejected: '' },
    warnings: [warning],
    error: event ? { error: event.state.error?.Error ?? 'Unknown', cause: describeCause(event.state.error?.Cause) } : { error: 'RunStopped', cause: warning },
  };
}
