import fc from 'fast-check';
import { RecordIdIndex } from '../../../lambdas/shared/record-id-index';

describe('RecordIdIndex', () => {
  it('answers like a Map of first sightings for any sequence of ids (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('a', 'b', 'rec-1', 'rec-01', 'ü', '')), { maxLength: 400 }), (ids) => {
        const index = new RecordIdIndex(16);
        const reference = new Map<string, number>();
        ids.forEach((id, ordinal) => {
          const expected = reference.get(id);
          expect(index.firstSeen(id, ordinal)).toBe(expected);
          if (expected === undefined) reference.set(id, ordinal);
        });
        expect(index.size).toBe(reference.size);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps 300,000 distinct ids apart through many resizes and finds every repeat', () => {
    const index = new RecordIdIndex(16);
    // The ids a fresh index claims to have seen already; one expect, not 300,000 matcher calls.
    const seenBefore: number[] = [];
    for (let i = 0; i < 300_000; i++) if (index.firstSeen(`ticket-${i}`, i) !== undefined) seenBefore.push(i);
    expect(seenBefore).toEqual([]);
    expect(index.size).toBe(300_000);
    for (const i of [0, 1, 99_999, 299_999]) expect(index.firstSeen(`ticket-${i}`, 1)).toBe(i);
    expect(index.firstSeen('ticket-300000', 5)).toBeUndefined();
  });

  it('grows to the expected size at once, never more than 128 times in one step', () => {
    const grown = (expected: number | undefined, ids: number) => {
      const index = new RecordIdIndex(16, () => expected);
      for (let i = 0; i < ids; i++) index.firstSeen(`id-${i}`, i);
      const misplaced: number[] = [];
      for (let i = 0; i < ids; i++) if (index.firstSeen(`id-${i}`, 0) !== i) misplaced.push(i);
      expect(misplaced).toEqual([]);
      expect(index.size).toBe(ids);
      return (index as unknown as { capacity: number }).capacity;
    };
    // 12 ids in 16 slots: fuller than 0.7, grows once to fit 300 at 0.6.
    expect(grown(300, 12)).toBe(500);
    expect(grown(undefined, 12)).toBe(32);
    // An estimate of 10 million is capped: 16 slots grow to 2,048 at most.
    expect(grown(10_000_000, 12)).toBe(2048);
    // An estimate that was too low: doubling as before.
    expect(grown(10, 40)).toBe(64);
  });

  it('rejects ordinals it cannot store', () => {
    expect(() => new RecordIdIndex().firstSeen('a', -1)).toThrow(RangeError);
    expect(() => new RecordIdIndex().firstSeen('a', 0xffffffff)).toThrow(RangeError);
  });
});
