/**
 * The time of one Lambda invocation, for work that must stop before the function is stopped:
 * the on-demand small remainder (small-remainder.ts) writes what it finished and leaves the
 * rest to the step's retry, instead of being killed with nothing written.
 */

/** The time of one function invocation. */
export interface TimeBudget {
  /** Milliseconds before the function is stopped (Lambda's `getRemainingTimeInMillis`). */
  remainingMs(): number;
  /** The invocation's whole time, ms: what remained when its handler started. */
  readonly totalMs: number;
}

/** What the handlers use of Lambda's context object. */
export interface LambdaContext {
  getRemainingTimeInMillis?: () => number;
}

/** The {@link TimeBudget} of a Lambda invocation, from its context; undefined without one. */
export function lambdaTimeBudget(context?: LambdaContext): TimeBudget | undefined {
  const remaining = context?.getRemainingTimeInMillis;
  if (typeof remaining !== 'function') return undefined;
  return { remainingMs: () => remaining.call(context), totalMs: remaining.call(context) };
}

/**
 * When slow calls (on-demand InvokeModel) may start, from the invocation's time: a call starts
 * only while twice the slowest call so far fits before the reserve (the time kept to write
 * what the calls produced), and the calls still running when the reserve is reached are aborted.
 */
export class CallClock {
  /** Kept to write the outcomes: a tenth of the invocation, at most 30 s. */
  private readonly reserveMs: number;
  /** The time calls had when the clock was made, ms: from then to the reserve. */
  private readonly windowMs: number;
  private slowestMs = 0;

  constructor(private readonly budget: TimeBudget) {
    this.reserveMs = Math.min(30_000, budget.totalMs / 10);
    this.windowMs = this.untilAbortMs();
  }

  /** Whether a call started now is expected to end before the reserve. */
  mayStart(): boolean {
    const left = this.untilAbortMs();
    return left > 0 && left >= 2 * this.slowestMs;
  }

  /** Milliseconds since the invocation began, on the budget's clock (calls are timed with it). */
  now(): number {
    return this.budget.totalMs - this.budget.remainingMs();
  }

  /** Records how long a finished call took. */
  observe(ms: number): void {
    this.slowestMs = Math.max(this.slowestMs, ms);
  }

  /** Milliseconds until the calls still running must be aborted. */
  untilAbortMs(): number {
    return Math.max(0, this.budget.remainingMs() - this.reserveMs);
  }

  /**
   * Whether an aborted call had (nearly) the whole window, and the window was most of the
   * invocation, and still gave no answer: a retry would give it no more time, so its record
   * fails instead of holding the step up. A call cut short by a window that the step's other
   * work made small is left for the retry, which goes straight to its calls
   * (`resumeRound`). Every attempt with most of the invocation thus settles its first calls.
   */
  neverFits(ms: number): boolean {
    return this.windowMs >= this.budget.totalMs / 2 && ms >= 0.9 * this.windowMs;
  }
}
