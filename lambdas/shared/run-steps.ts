/**
 * The steps of a run (prepare, submit-job, reconcile-chunk, end-round) hold a lease on the run's
 * claim while they run (run-claims.ts), so that stop-run waits for them before it reads what the
 * run left, and they are refused once the run was stopped.
 *
 * A lease ends unless renewed: a running step renews it on a timer, and unlists it when it
 * finishes. Lambda can kill a step before its `finally` runs (its timeout, out of memory, a lost
 * host); such a step never unlists itself, but it renews nothing either, so its lease ends soon
 * after it died, and stop-run stops waiting for it, whenever in its invocation it died.
 */
import { logger } from './logger';
import type { RunClaims } from './run-claims';
import type { TimeBudget } from './time-budget';

/** The longest a step's lease runs without a renewal. */
export const MAX_LEASE_MS = 60_000;

/**
 * How long a step's lease runs and how often it is renewed: a fifteenth of the invocation's
 * time, between 1 s and 60 s (60 s for a 15-minute function; in the twin, whose function times
 * are scaled, a tenth of that), renewed every third of it, so two renewals in a row may fail
 * (a throttle) without the lease ending. Without the invocation's time, 60 s.
 */
export function leaseTiming(budget?: TimeBudget): { leaseMs: number; renewEveryMs: number } {
  const leaseMs = budget ? Math.max(1_000, Math.min(MAX_LEASE_MS, budget.totalMs / 15)) : MAX_LEASE_MS;
  return { leaseMs, renewEveryMs: leaseMs / 3 };
}

/**
 * Runs `work` as a step of the run: refused (RunStopping) once the run was stopped, and holding
 * a lease on the claim while it runs, renewed on a timer, so stop-run can wait for it. A failed
 * renewal or unlisting is only logged: the work's own outcome matters more; a lease whose
 * renewals all failed ends (stop-run may then go on while the step still runs, as it does when
 * its wait runs out) and is not taken back, and one not unlisted ends by itself.
 * @param budget the invocation's time, which sets the lease's length ({@link leaseTiming})
 */
export async function withRunStep<T>(claims: RunClaims, runId: string, step: string, work: () => Promise<T>, budget?: TimeBudget): Promise<T> {
  const { leaseMs, renewEveryMs } = leaseTiming(budget);
  const leaseId = await claims.enterStep(runId, step, claims.now() + leaseMs);
  let finished = false;
  const renewal = setInterval(() => {
    claims.renewStep(runId, leaseId, claims.now() + leaseMs).then(
      (renewed) => {
        // A renewal that lands after the step left finds no lease: nothing was lost.
        if (renewed || finished) return;
        // Its renewals failed until the lease ended: a stop no longer waits for this step.
        logger.error('a running step lost its lease on the run claim: a stop may go on without it', { runId, step, leaseId });
        clearInterval(renewal);
      },
      (err: unknown) => logger.warn("could not renew a running step's lease on the run claim", { runId, step, error: (err as Error).message }),
    );
  }, renewEveryMs);
  try {
    return await work();
  } finally {
    finished = true;
    clearInterval(renewal);
    await claims
      .leaveStep(runId, leaseId)
      .catch((err: unknown) => logger.warn('could not unlist a finished step from the run claim', { runId, step, error: (err as Error).message }));
  }
}
