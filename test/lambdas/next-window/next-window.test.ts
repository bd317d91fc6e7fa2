import fc from 'fast-check';
import { WINDOW_SIZE, nextWindow } from '../../../lambdas/next-window/next-window';
import { runConfig } from '../support/fixtures';

const run = runConfig();

describe('nextWindow', () => {
  it('hands out the next window and advances the round', () => {
    const r = nextWindow({ run, round: { number: 2, chunkCount: 5, nextChunk: 1, hasMoreChunks: true } }, 3);
    expect(r).toEqual({
      run,
      round: { number: 2, chunkCount: 5, nextChunk: 4, hasMoreChunks: true },
      window: { items: [{ chunk: 1 }, { chunk: 2 }, { chunk: 3 }] },
    });
    expect(nextWindow(r, 3)).toEqual({
      run,
      round: { number: 2, chunkCount: 5, nextChunk: 5, hasMoreChunks: false },
      window: { items: [{ chunk: 4 }] },
    });
  });

  it(`defaults to windows of ${WINDOW_SIZE}`, () => {
    const r = nextWindow({ run, round: { number: 1, chunkCount: 250, nextChunk: 0, hasMoreChunks: true } });
    expect(r.window.items).toHaveLength(WINDOW_SIZE);
    expect(r.round).toMatchObject({ nextChunk: WINDOW_SIZE, hasMoreChunks: true });
  });

  it('gives an empty window for a finished round', () => {
    expect(nextWindow({ run, round: { number: 1, chunkCount: 2, nextChunk: 2, hasMoreChunks: false } }).window.items).toEqual([]);
  });

  it('visits every chunk exactly once, in order, in bounded windows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 150 }), (chunkCount, size) => {
        let state = { run, round: { number: 1, chunkCount, nextChunk: 0, hasMoreChunks: chunkCount > 0 } };
        const seen: number[] = [];
        while (state.round.hasMoreChunks) {
          const r = nextWindow(state, size);
          expect(r.window.items.length).toBeGreaterThan(0);
          expect(r.window.items.length).toBeLessThanOrEqual(size);
          seen.push(...r.window.items.map((i) => i.chunk));
          state = r;
        }
        expect(seen).toEqual(Array.from({ length: chunkCount }, (_, i) => i));
      }),
    );
  });
});
