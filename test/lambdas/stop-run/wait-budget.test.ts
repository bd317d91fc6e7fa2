import { waitBudgetMs } from '../../../lambdas/stop-run/handler';

describe('stop-run: how long it waits for prepare or end-round', () => {
  it('keeps 5 minutes of a 15-minute invocation for the rest of its work', () => {
    expect(waitBudgetMs(15 * 60_000)).toBe(10 * 60_000);
  });

  it('keeps a third of a shorter time limit instead of leaving nothing to wait (a short Timeout, the twin)', () => {
    expect(waitBudgetMs(90_000)).toBe(60_000);
    expect(waitBudgetMs(6 * 60_000)).toBe(4 * 60_000);
    expect(waitBudgetMs(0)).toBe(0);
  });
});
