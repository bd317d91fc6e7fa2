/**
 * Stop-run: when a user stops (aborts) a run's execution, nothing in the workflow runs again,
 * so this handler, fed by the `Step Functions Execution Status Change` rule, winds the run up:
 * it stops the run's Bedrock jobs still open (you are only charged for tokens already
 * processed), frees their job slots, keeps what the stopped jobs had processed (Bedrock writes
 * a stopped job's processed records to its output: each job that ends within the wait is
 * reconciled like any other), fails every record the run had not finished with `RunStopped`
 * (or `HeldForNextSweep`, when a hold remainder's held file was written before the stop),
 * and finalizes the run as `Stopped` so that every record is still accounted for.
 */
import type { BedrockClient } from '@aws-sdk/client-bedrock';
import { partsOf, readRemainderReady, readRoundChunkStats, readRoundPlan } from '../shared/committed-parts';
import { chunkLabel, isTerminalStatus, jobNameFor, parseJobName, roundLabel, runKeys, type RunConfig } from '../shared/contracts';
import { stopJob } from '../shared/job-completion';
import type { JobRecords } from '../shared/job-records';
import type { JobSlotLimiter } from '../shared/job-slots';
import { logger } from '../shared/logger';
import type { RoundPlan } from '../shared/outcomes';
import { executionNameOf, type RunClaims } from '../shared/run-claims';
import { runIdOfExecutionInput } from '../shared/run-input';
import { objectExists, readJsonObject, writeJsonObject } from '../shared/s3-jsonl';
import { finalizeRun, type FinalizeDeps, type RunSummary } from '../finalize/finalize';
import { readJob, reconcileChunk } from '../reconcile-chunk/reconcile-chunk';
import { failUnfinished, workFiles } from './unfinished';

/** EventBridge's `Step Functions Execution Status Change` event (the fields used). */
export interface ExecutionStatusChangeEvent {
  readonly 'detail-type': string;
  readonly detail: {
    readonly executionArn: string;
    readonly name: string;
    readonly status: string;
    /** The execution input as JSON text (may be absent or null). */
    readonly input?: string | null;
  };
}

export interface StopRunDeps extends FinalizeDeps {
  readonly bedrock: BedrockClient;
  readonly jobs: JobRecords;
  readonly limiter: JobSlotLimiter;
  /** The run claims: only the execution that owns a run may wind it up; the claim is the run's stop mark. */
  readonly claims: RunClaims;
  /**
   * How long to wait, at most, for a prepare or an end-round that was still running when the
   * execution was stopped (Lambda runs an invocation to its end whatever happens to the
   * execution); 0 to not wait. The handler gives what its own time limit leaves.
   */
  readonly waitMs?: number;
  /** Pauses between two looks (a test's clock). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The run an execution belongs to, from its input (a successor's `resume`, or `runId`) or its name. */
export function runIdOfExecution(name: string, inputText: string | null | undefined): string {
  let input: unknown;
  try {
    input = JSON.parse(inputText ?? '{}');
  } catch {
    // Not JSON: the run id comes from the name, as prepare derives it.
  }
  return runIdOfExecutionInput(name, input);
}

/** How often stop-run looks whether a running prepare or end-round has finished. */
export const POLL_MS = 2000;

/** What is left of stop-run's wait (`deps.waitMs`), shared by every step it waits for. */
interface WaitBudget {
  leftMs: number;
}

/**
 * Waits until `done()` or the budget is spent; returns whether it was done. Every wait of one
 * wind-up draws on one budget, so their sum stays within what the invocation's own time limit
 * leaves (a stop during a long prepare waits for its steps, then its plan, not twice the time).
 * `what` names the step waited for in the logs.
 */
async function waitFor(deps: StopRunDeps, budget: WaitBudget, what: string, done: () => Promise<boolean>): Promise<boolean> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  if (await done()) return true;
  logger.info(`the run was stopped while ${what} was running; waiting for it to finish`, { waitMs: budget.leftMs });
  while (budget.leftMs > 0) {
    await sleep(POLL_MS);
    budget.leftMs -= POLL_MS;
    if (await done()) return true;
  }
  logger.warn(`${what} did not finish in time`, { waitMs: deps.waitMs ?? 0 });
  return false;
}

/**
 * Lets a prepare or end-round that outlived the stop finish, so that the round stop-run fails
 * is complete: prepare writes `run.json` first and round 1's `plan.json` last; end-round runs
 * once every chunk of the round has its `stats.json` and some left retries, and ends by writing
 * the next round's `plan.json` or the round's `exhausted.jsonl`. Both hold leases as running
 * steps of the run (`withRunStep`): once no lease is current, nothing is waited for.
 */
async function waitForRunningSteps(deps: StopRunDeps, budget: WaitBudget, run: RunConfig): Promise<void> {
  // Only a running step can still write: one that ended without its plan (a Prepare or EndRound
  // whose on-demand remainder did not fit its invocation, not retried since the stop) never will.
  const stepRunning = () => deps.claims.hasRunningSteps(run.runId);
  const exists = (key: string) => objectExists(deps.s3, run.bucket, key);
  await waitFor(deps, budget, 'prepare', async () => (await exists(runKeys.roundPlan(run.runId, 1))) || !(await stepRunning()));
  const { keys, lastRound: round } = await workFiles(deps, run);
  if (round === 0 || keys.has(runKeys.exhausted(run.runId, round))) return;
  const plan = await readRoundPlan(deps.s3, run.bucket, run.runId, round);
  const stats = await readRoundChunkStats(deps.s3, run.bucket, run.runId, round, plan?.chunkCount ?? 0, (k) => keys.has(k));
  const reconciled = stats.every((s) => s !== undefined);
  // Retries as the chunks' manifests list them: a retry part a failed attempt left is not one.
  const retries = stats.some((s, chunk) => s !== undefined && partsOf(s, 'retry', runKeys.chunkStats(run.runId, round, chunk)).length > 0);
  if (!reconciled || !retries) return;
  await waitFor(
    deps,
    budget,
    'end-round',
    async () => (await exists(runKeys.roundPlan(run.runId, round + 1))) || (await exists(runKeys.exhausted(run.runId, round))) || !(await stepRunning()),
  );
}

/**
 * The round after the last open one, when its step (Prepare for round 1, EndRound for the next)
 * ended at its on-demand remainder (`RemainderIncomplete`) and was not retried since the stop:
 * its chunks and remainder are final (this execution's `remainder-ready.json`) but it has no
 * `plan.json`. Once no step runs, nothing else will write it: stop-run writes it from the
 * marker, so the round's records are failed `RunStopped` below and the answers its remainder
 * wrote (billed) are kept, instead of the records being in no output (round 1) or the ended
 * round's retries being failed with those answers dropped (a later round).
 */
async function openUnfinishedRound(deps: StopRunDeps, run: RunConfig): Promise<void> {
  if (await deps.claims.hasRunningSteps(run.runId)) return;
  const { keys, lastRound } = await workFiles(deps, run);
  if (lastRound > 0 && keys.has(runKeys.exhausted(run.runId, lastRound))) return;
  const round = lastRound + 1;
  const ready = await readRemainderReady(deps.s3, run, round);
  if (!ready) return;
  logger.info('opening a round from its remainder-ready.json: its step ended at its remainder, and the stop ended its retries', { round });
  await writeJsonObject(deps.s3, run.bucket, runKeys.roundPlan(run.runId, round), ready satisfies RoundPlan);
}

/** Stops the run's open jobs and frees every slot the run holds; returns how many jobs were stopped. */
async function stopJobs(deps: StopRunDeps, runId: string, modelId: string | undefined): Promise<number> {
  let stopped = 0;
  for (const item of await deps.jobs.openJobs(runId)) {
    if (item.jobArn && (await stopJob(deps.bedrock, item.jobArn))) stopped += 1;
    await deps.jobs.markTokenCompleted(item.jobName);
    await deps.limiter.release(item.modelId, item.jobName);
  }
  // Slots taken by chunks that had not created their job yet.
  if (modelId) {
    for (const holder of await deps.limiter.holders(modelId)) {
      if (parseJobName(holder)?.runId === runId) await deps.limiter.release(modelId, holder);
    }
  }
  return stopped;
}

/**
 * Keeps what the stopped jobs of the run's last round had processed: Bedrock writes a stopped
 * job's processed records to its output (and bills them), so once such a job has ended its
 * chunk is reconciled like any other (`reconciledAfterStop`): records with output are settled,
 * and only the rest are failed `RunStopped` by {@link failUnfinished}. A job that does not end
 * within the wait keeps nothing; the returned warnings name it.
 */
async function keepProcessed(deps: StopRunDeps, budget: WaitBudget, run: RunConfig): Promise<string[]> {
  const { keys, lastRound: round } = await workFiles(deps, run);
  const chunkCount = round > 0 ? ((await readRoundPlan(deps.s3, run.bucket, run.runId, round))?.chunkCount ?? 0) : 0;
  // A reconcile that outlived the wait is still writing its chunk: the chunk is left to it (its
  // records fail RunStopped below and what it commits later is not read), never written twice.
  const running = new Set(await deps.claims.runningSteps(run.runId));
  const warnings: string[] = [];
  for (let chunk = 0; chunk < chunkCount; chunk++) {
    if (keys.has(runKeys.chunkStats(run.runId, round, chunk))) continue;
    const jobName = jobNameFor(run.runId, round, chunk);
    if (running.has(`reconcile:${roundLabel(round)}-${chunkLabel(chunk)}`)) {
      warnings.push(`the reconcile of job ${jobName} was still running after stop-run's wait: its records were failed RunStopped`);
      continue;
    }
    // By its item: a job stopped above, or one that ended (its token completed) between the stop and this look.
    const jobArn = (await deps.jobs.get(jobName))?.jobArn;
    if (!jobArn) continue;
    let status: string | undefined;
    const ended = await waitFor(deps, budget, `job ${jobName}`, async () => isTerminalStatus((status = (await readJob(deps, jobArn))?.status)));
    if (!ended || !status) {
      warnings.push(
        `job ${jobName} did not end within stop-run's wait after it was stopped: its records were failed RunStopped, including any it had processed (Bedrock bills those)`,
      );
      continue;
    }
    // Reconciling draws on the same budget as waiting, so the whole wind-up stays within the invocation's time.
    const started = Date.now();
    const stats = await reconcileChunk(deps, { run, round, chunk, job: { jobArn, status }, afterStop: true });
    budget.leftMs -= Date.now() - started;
    logger.info('kept what a stopped job processed', { jobName, status, succeeded: stats.succeeded, failed: stats.failed, retry: stats.retry });
  }
  return warnings;
}

/** Winds up a run whose execution was stopped; ignores every other status. */
export async function windUpStoppedRun(deps: StopRunDeps, event: ExecutionStatusChangeEvent): Promise<RunSummary | { ignored: string }> {
  if (event.detail.status !== 'ABORTED') return { ignored: `execution status ${event.detail.status}` };
  const runId = runIdOfExecution(event.detail.name, event.detail.input);
  logger.appendKeys({ runId });
  // The stop mark: from here no step of the run may create a job or reconcile a chunk. Only the
  // execution that owns the run may stop it (a reused runId's or a forged resume's execution
  // touches nothing of the run it named).
  const { owned, owner } = await deps.claims.requestStop(runId, event.detail.executionArn);
  if (!owned) {
    logger.warn('stopped execution does not own its run; nothing done', { owner, executionName: event.detail.name });
    return { ignored: `run ${runId} is owned by execution ${executionNameOf(owner)}, not by the stopped execution ${event.detail.name}` };
  }
  // Steps that were running when the mark was set (a submit creating its job, a reconcile
  // writing its parts) finish first, so what is failed below is what they left.
  const budget: WaitBudget = { leftMs: deps.waitMs ?? 0 };
  await waitFor(deps, budget, 'a running step', async () => !(await deps.claims.hasRunningSteps(runId)));
  const run = await readJsonObject<RunConfig>(deps.s3, deps.bucket, runKeys.runConfig(runId));
  // A run with run.json has started preparing; the round to fail must be complete first.
  if (run) await waitForRunningSteps(deps, budget, run);
  if (run) await openUnfinishedRound(deps, run);
  const stoppedJobs = await stopJobs(deps, runId, run?.modelId);
  const warnings = run ? await keepProcessed(deps, budget, run) : [];
  const unfinished = run ? await failUnfinished(deps, run) : 0;
  logger.info('run stopped by a user', { stoppedJobs, unfinishedRecords: unfinished });
  return finalizeRun(deps, { outcome: 'Stopped', runId, ...(run ? { run } : {}), executionName: event.detail.name, warnings });
}
