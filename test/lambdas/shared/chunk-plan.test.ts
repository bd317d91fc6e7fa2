import fc from 'fast-check';
import { planChunks } from '../../../lambdas/shared/chunk-plan';

/** Limits with 1 <= min <= max, and a count that covers small, boundary and large values. */
const limitsAndCount = fc.tuple(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 300 })).chain(([min, extra]) =>
  fc.record({
    min: fc.constant(min),
    max: fc.constant(min + extra),
    count: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 3 * (min + extra) + 5 })),
  }),
);

/** True when some number of jobs k (0 for no records) can take all `count` records inside [min, max] each. */
function validSplitExists(count: number, min: number, max: number): boolean {
  for (let k = 0; k * min <= count; k++) if (count <= k * max) return true;
  return false;
}

describe('planChunks', () => {
  it('conserves records: sum(sizes) + remainder == count', () => {
    fc.assert(
      fc.property(limitsAndCount, ({ min, max, count }) => {
        const plan = planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max });
        expect(plan.sizes.reduce((a, b) => a + b, 0) + plan.remainder).toBe(count);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps every job inside [min, max] and the remainder below min', () => {
    fc.assert(
      fc.property(limitsAndCount, ({ min, max, count }) => {
        const plan = planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max });
        // One expect for all sizes (up to 5,000 of them): a matcher call per size was most of the run time.
        expect(plan.sizes.filter((s) => s < min || s > max)).toEqual([]);
        expect(plan.remainder).toBeGreaterThanOrEqual(0);
        expect(plan.remainder).toBeLessThan(min);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves no remainder whenever a valid split exists, and otherwise the fewest records possible', () => {
    fc.assert(
      fc.property(limitsAndCount, ({ min, max, count }) => {
        const plan = planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max });
        if (validSplitExists(count, min, max)) {
          expect(plan.remainder).toBe(0);
        } else {
          expect(plan.remainder).toBeGreaterThan(0);
          // No number of valid jobs can carry more records than the plan does.
          const carried = count - plan.remainder;
          const better: number[] = [];
          for (let k = 0; k * min <= count; k++) if (Math.min(k * max, count) > carried) better.push(k);
          expect(better).toEqual([]);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('uses the fewest jobs that can carry the planned records', () => {
    fc.assert(
      fc.property(limitsAndCount, ({ min, max, count }) => {
        const plan = planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max });
        const carried = count - plan.remainder;
        expect(plan.sizes.length).toBe(Math.ceil(carried / max));
      }),
      { numRuns: 2000 },
    );
  });

  it('balances jobs (sizes differ by at most 1) when nothing is left over', () => {
    fc.assert(
      fc.property(limitsAndCount, ({ min, max, count }) => {
        const plan = planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max });
        if (plan.remainder === 0 && plan.sizes.length > 0) {
          expect(Math.max(...plan.sizes) - Math.min(...plan.sizes)).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    [7, 1, 5, [4, 3], 0],
    [10, 1, 5, [5, 5], 0],
    [160, 100, 150, [150], 10],
    [250, 100, 150, [125, 125], 0],
    [99, 100, 50000, [], 99],
    [0, 100, 50000, [], 0],
    [100, 100, 100, [100], 0],
    [199, 100, 100, [100], 99],
  ])('plans %i records with min %i max %i as %j + remainder %i', (count, min, max, sizes, remainder) => {
    expect(planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max })).toEqual({ sizes, remainder });
  });

  it.each([
    [-1, 1, 5, /record count/],
    [1.5, 1, 5, /record count/],
    [10, 1, 0, /maxRecordsPerJob/],
    [10, 0, 5, /minRecordsPerJob/],
    [10, 6, 5, /minRecordsPerJob/],
    [10, 1.5, 5, /minRecordsPerJob/],
  ])('rejects count %p with min %p max %p', (count, min, max, message) => {
    expect(() => planChunks(count, { minRecordsPerJob: min, maxRecordsPerJob: max })).toThrow(message);
  });
});
