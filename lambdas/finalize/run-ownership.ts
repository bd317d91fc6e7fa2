/**
 * Who may finalize a run: only the execution that owns it (its claim), and not once a stop was
 * asked for (stop-run writes that summary). A failed execution whose run nobody claimed yet
 * claims it, and takes back a run it handed to a successor that was never started.
 */
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { isValidRunId, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import { executionNameOf, RunIdInUse, type RunClaim, type RunClaims } from '../shared/run-claims';
import type { FinalizeDeps, FinalizeEvent } from './finalize';
import { notWrittenSummary, type RunSummary } from './run-summary';

/**
 * Why this execution may not write the run's results, as the summary it returns instead; or
 * undefined when it owns the run and no stop was asked for.
 *
 * @throws Error when a finished execution does not own its run (a bug or a forged input: the
 *   workflow fails rather than write another execution's run)
 */
export async function refusalToFinalize(deps: Pick<FinalizeDeps, 'claims' | 'sfn'>, event: FinalizeEvent, runId: string): Promise<RunSummary | undefined> {
  if (event.outcome === 'Finished') {
    const claim = await deps.claims.get(runId);
    if (claim?.owner !== event.executionArn) {
      throw new Error(`run ${runId} is not owned by execution ${executionNameOf(event.executionArn)}: it may not finalize it`);
    }
    if (claim.stopRequestedAt) return notWrittenSummary(runId, `run ${runId} was stopped: stop-run writes its summary`, undefined);
  }
  if (event.outcome === 'Failed') {
    const failure = event.state.error ?? {};
    const claim = await takeBackFromUnstartedSuccessor(deps, await claimForFailure(deps.claims, runId, event.executionArn), event.executionArn);
    if (claim.owner !== event.executionArn) {
      logger.warn('failed execution does not own its run; nothing written', { owner: claim.owner, executionName: event.executionName });
      return notWrittenSummary(
        runId,
        `run ${runId} is owned by execution ${executionNameOf(claim.owner)}: this execution (${event.executionName}) wrote nothing of it`,
        failure,
      );
    }
    // A stopped run (a stop while a step outlived it, a redriven stopped execution): stop-run's summary stands.
    if (claim.stopRequestedAt) return notWrittenSummary(runId, `run ${runId} was stopped: stop-run writes its summary`, failure);
  }
  return undefined;
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
async function takeBackFromUnstartedSuccessor(deps: Pick<FinalizeDeps, 'claims' | 'sfn'>, claim: RunClaim, executionArn: string): Promise<RunClaim> {
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
export function trustedRunOfFailure(event: Extract<FinalizeEvent, { outcome: 'Failed' }>, bucket: string): RunConfig | undefined {
  const candidate = (event.state.run ?? event.state.resume?.run) as Partial<RunConfig> | undefined;
  if (!candidate || typeof candidate !== 'object') return undefined;
  if (typeof candidate.runId !== 'string' || !isValidRunId(candidate.runId) || candidate.bucket !== bucket) return undefined;
  return candidate as RunConfig;
}
