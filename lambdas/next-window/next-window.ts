/**
 * NextWindow: hands the Map the next bounded window of chunk indices, so the state payload
 * stays small however many chunks a round has.
 */
import type { RoundState, RunConfig } from '../shared/contracts';

/** Chunks handed to one Map state at most. Bounds the payload and the Map's history. */
export const WINDOW_SIZE = 100;

export interface WindowState {
  readonly run: RunConfig;
  readonly round: RoundState;
}

export interface WindowResult extends WindowState {
  readonly window: { readonly items: ReadonlyArray<{ readonly chunk: number }> };
}

/** The next window of a round and the round advanced past it. */
export function nextWindow(state: WindowState, windowSize = WINDOW_SIZE): WindowResult {
  const { round } = state;
  const end = Math.min(round.nextChunk + windowSize, round.chunkCount);
  const items = [];
  for (let chunk = round.nextChunk; chunk < end; chunk++) items.push({ chunk });
  return {
    run: state.run,
    round: { ...round, nextChunk: end, hasMoreChunks: end < round.chunkCount },
    window: { items },
  };
}
