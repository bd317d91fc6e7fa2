/**
 * Chunk planning: how many records go into each job of a round. Pure, so that its invariants
 * are property-tested (test/lambdas/shared/chunk-plan.test.ts).
 */

/** Limits of one job, from the route (and Bedrock's per-model quotas). */
export interface ChunkLimits {
  readonly maxRecordsPerJob: number;
  readonly minRecordsPerJob: number;
}

/** The planned job sizes, in order, and the records left over that no valid job can take. */
export interface ChunkPlan {
  readonly sizes: readonly number[];
  /** Records after the last chunk: fewer than the minimum, handled by the small-remainder policy. */
  readonly remainder: number;
}

/**
 * Plans job sizes for `count` records: as few jobs as the maximum allows, balanced so no job is
 * a sliver (7 records at max 5 give 4 + 3, not 5 + 2), every job inside [min, max]. When no
 * split fits (160 records, min 100, max 150), full jobs are made and the fewest records are left
 * as a remainder.
 */
export function planChunks(count: number, limits: ChunkLimits): ChunkPlan {
  const { maxRecordsPerJob: max, minRecordsPerJob: min } = limits;
  if (!Number.isInteger(count) || count < 0) throw new Error(`record count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(max) || max < 1) throw new Error(`maxRecordsPerJob must be a positive integer, got ${max}`);
  if (!Number.isInteger(min) || min < 1 || min > max) throw new Error(`minRecordsPerJob must be an integer in 1..${max}, got ${min}`);
  if (count < min) return { sizes: [], remainder: count };

  const fewest = Math.ceil(count / max);
  const most = Math.floor(count / min);
  if (fewest <= most) return { sizes: balanced(count, fewest), remainder: 0 };

  const full = Math.floor(count / max);
  return { sizes: Array.from({ length: full }, () => max), remainder: count - full * max };
}

function balanced(count: number, parts: number): number[] {
  const base = Math.floor(count / parts);
  const extra = count % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}
