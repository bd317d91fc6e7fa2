/**
 * Finalize: gather every part a run wrote into `results/<runId>/` (results, failed, rejected,
 * summary), check conservation, and announce the run on the event bus. Who may finalize is in
 * run-ownership.ts, the output files in run-outputs.ts, the summary's parts in run-summary.ts.
 */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { RUN_COMPLETED_DETAIL_TYPE, RUN_COMPLETED_SOURCE, isValidRunId, runKeys, s3Uri, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import type { PrepareStats } from '../shared/outcomes';
import type { PriceOverrides } from '../shared/prices';
import type { RunClaims } from '../shared/run-claims';
import { runIdFromExecutionName } from '../shared/run-input';
import { readJsonObject, writeJsonObject } from '../shared/s3-jsonl';
import { committedOutputs, RESULTS_PART_MAX_BYTES, writeRunOutputs } from './run-outputs';
import { refusalToFinalize, trustedRunOfFailure } from './run-ownership';
import { costOf, describeCause, MAX_LISTED_INPUTS, runStatus, summaryWarnings, totalsOf, type RunSummary } from './run-summary';

export { MAX_LISTED_INPUTS, RESULTS_PART_MAX_BYTES };
export type { RunStatus, RunSummary } from './run-summary';

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
      /** What stop-run could not do (a stopped job that did not end within its wait). */
      readonly warnings?: readonly string[];
    };

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
  /**
   * Prices replacing or adding rows of the shipped table (cdk.json's `bedrockBatch.prices`, in `PIPELINE_CONFIG`).
   * @default the shipped table only
   */
  readonly prices?: PriceOverrides;
}

/** Writes the run's outputs and summary, and puts `Batch Run Completed`. */
export async function finalizeRun(deps: FinalizeDeps, event: FinalizeEvent): Promise<RunSummary> {
  const run = event.outcome === 'Failed' ? trustedRunOfFailure(event, deps.bucket) : event.run;
  const runId = runIdOf(event, run);
  const bucket = run?.bucket ?? deps.bucket;
  logger.appendKeys({ runId });
  const refusal = await refusalToFinalize(deps, event, runId);
  if (refusal) return refusal;

  const committed = await committedOutputs(deps.s3, bucket, runId);
  const prepared = await readJsonObject<PrepareStats>(deps.s3, bucket, runKeys.runStats(runId));
  const written = await writeRunOutputs(deps.s3, bucket, runId, committed, deps.resultsPartMaxBytes ?? RESULTS_PART_MAX_BYTES);
  const records = { input: prepared?.inputLines ?? 0, succeeded: written.succeeded, failed: written.failed, rejected: written.rejected };
  const totals = totalsOf(committed.chunkStats, committed.remainderStats);
  const warnings = summaryWarnings(totals, records, { failedRun: event.outcome === 'Failed', prepared: Boolean(prepared) });
  // Bedrock refused every job of the run (the model does not run in batch, a grant is missing):
  // the run could not do its work, though each record is accounted for (failed JobRefused).
  const refusedRun =
    totals.refused !== undefined && event.outcome === 'Finished' && records.succeeded === 0 && Object.keys(totals.jobs).every((s) => s === 'NotSubmitted');
  if (totals.refused && !refusedRun) warnings.push(totals.refused.message);
  const status = refusedRun ? 'Failed' : runStatus(event.outcome, records, warnings);
  const { tokens, cost, warning: costWarning } = costOf(run?.modelId, totals, deps.prices);
  if (costWarning) warnings.push(costWarning);
  const summary: RunSummary = {
    runId,
    ...(run ? { route: run.route, modelId: run.modelId, startedAt: run.startedAt } : {}),
    status,
    records,
    jobs: totals.jobs,
    rounds: committed.rounds,
    onDemandRecords: totals.onDemandRecords,
    truncated: totals.truncated,
    tokens,
    cost,
    finishedAt: new Date().toISOString(),
    inputs: (prepared?.inputs ?? []).slice(0, MAX_LISTED_INPUTS),
    inputFiles: prepared?.inputFiles ?? 0,
    outputs: {
      results: written.resultKeys.map((k) => s3Uri(bucket, k)),
      failed: s3Uri(bucket, written.failedKey),
      rejected: s3Uri(bucket, written.rejectedKey),
    },
    // Quota warnings (Service Quotas unreadable) are reported without making the run's records fail.
    warnings: [...warnings, ...(run?.quotas?.warnings ?? []), ...(event.outcome === 'Stopped' ? (event.warnings ?? []) : [])],
    ...(run?.quotas ? { quotas: run.quotas.values } : {}),
    ...(event.outcome === 'Stopped' ? { savedFromStoppedJobs: totals.savedFromStoppedJobs } : {}),
    ...(event.outcome === 'Failed' ? { error: { error: event.state.error?.Error ?? 'Unknown', cause: describeCause(event.state.error?.Cause) } } : {}),
    ...(refusedRun ? { error: { error: 'JobRefused', cause: totals.refused!.message } } : {}),
  };
  await writeJsonObject(deps.s3, bucket, runKeys.results(runId, 'summary.json'), summary, true);
  await announceRunCompleted(deps, summary);
  logger.info('run finished', { status, records: summary.records });
  return summary;
}

/**
 * The run id finalize writes under: the trusted run's; else a stop's; else a failed state's
 * checked `runId`; else the one in the execution's name.
 */
function runIdOf(event: FinalizeEvent, run: RunConfig | undefined): string {
  if (run) return run.runId;
  if (event.outcome === 'Stopped') return event.runId;
  if (event.outcome === 'Failed' && typeof event.state.runId === 'string' && isValidRunId(event.state.runId)) return event.state.runId;
  return runIdFromExecutionName(event.executionName ?? 'unknown');
}

/** Puts `Batch Run Completed` with the summary as its detail. */
async function announceRunCompleted(deps: Pick<FinalizeDeps, 'events' | 'eventBusName'>, summary: RunSummary): Promise<void> {
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
}
