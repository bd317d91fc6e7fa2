import { CallClock, lambdaTimeBudget } from '../../../lambdas/shared/time-budget';

/** A budget on an injected clock: `left` is what the invocation has. */
const budgetOf = (totalMs: number, left = totalMs) => {
  const budget = { totalMs, left, remainingMs: () => budget.left };
  return budget;
};

describe('CallClock', () => {
  it('keeps a tenth of the invocation (at most 30 s) to write what the calls produced', () => {
    expect(new CallClock(budgetOf(900_000)).untilAbortMs()).toBe(870_000);
    expect(new CallClock(budgetOf(9_000)).untilAbortMs()).toBe(8_100);
    expect(new CallClock(budgetOf(9_000, 500)).untilAbortMs()).toBe(0);
  });

  it('starts a call only while twice the slowest call so far fits before the reserve', () => {
    const budget = budgetOf(100_000);
    const clock = new CallClock(budget);
    expect(clock.mayStart()).toBe(true);
    clock.observe(20_000);
    budget.left = 10_000 + 40_000; // 40 s before the reserve of 10 s: twice 20 s fits.
    expect(clock.mayStart()).toBe(true);
    budget.left -= 1;
    expect(clock.mayStart()).toBe(false);
    clock.observe(5_000); // The slowest call is what counts.
    expect(clock.mayStart()).toBe(false);
  });

  it('times calls on the budget clock', () => {
    const budget = budgetOf(60_000);
    const clock = new CallClock(budget);
    expect(clock.now()).toBe(0);
    budget.left -= 1_234;
    expect(clock.now()).toBe(1_234);
  });

  it('gives up on a call only when it had nearly all of a window that was most of the invocation', () => {
    // Window 90 s of 100 s (10 s reserve).
    const full = new CallClock(budgetOf(100_000));
    expect(full.neverFits(81_000)).toBe(true);
    expect(full.neverFits(80_000)).toBe(false);
    // The step's other work left 20 s of 100 s: a retry, which goes straight to its calls, has more.
    const short = new CallClock(budgetOf(100_000, 30_000));
    expect(short.untilAbortMs()).toBe(20_000);
    expect(short.neverFits(20_000)).toBe(false);
  });
});

describe('lambdaTimeBudget', () => {
  it("reads Lambda's context, and is absent without one", () => {
    let left = 900_000;
    const budget = lambdaTimeBudget({ getRemainingTimeInMillis: () => left })!;
    expect(budget.totalMs).toBe(900_000);
    left = 1_000;
    expect(budget.remainingMs()).toBe(1_000);
    expect(budget.totalMs).toBe(900_000);
    expect(lambdaTimeBudget(undefined)).toBeUndefined();
    expect(lambdaTimeBudget({})).toBeUndefined();
  });
});
