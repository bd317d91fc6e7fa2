import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import fc from 'fast-check';
import { runKeys } from '../../../lambdas/shared/contracts';
import type { FailedRecord } from '../../../lambdas/shared/outcomes';
import { planChunks } from '../../../lambdas/shared/chunk-plan';
import { ESTIMATE_SLACK, RecordsToCome, RoundChunkWriter } from '../../../lambdas/shared/round-chunk-writer';
import { anthropicInput, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => s3.stop());

const line = (id: string) => JSON.stringify({ recordId: id, modelInput: anthropicInput(id) });
let runNo = 0;

/**
 * Writes `count` records through a RoundChunkWriter; returns the chunk sizes, the records that
 * went to the remainder policy and how many tail re-splits were needed. `estimate` maps the true
 * number of records still to come (after the one being added) to what the writer is told.
 */
async function writeRound(
  count: number,
  maxRecordsPerJob: number,
  minRecordsPerJob: number,
  opts: { maxFileBytes?: number; estimate?: (toCome: number) => number | undefined } = {},
) {
  const runId = `rcw-${++runNo}`;
  const run = runConfig({ runId, bucket: s3.bucket, maxRecordsPerJob, minRecordsPerJob, smallRemainder: 'fail' });
  let added = 0;
  const writer = new RoundChunkWriter({ s3: s3.client, bedrockRuntime: new BedrockRuntimeClient({ region: 'us-east-1' }) }, run, 1, {
    ...(opts.maxFileBytes !== undefined ? { maxFileBytes: opts.maxFileBytes } : {}),
    ...(opts.estimate ? { recordsToCome: () => opts.estimate!(count - added) } : {}),
  });
  for (let i = 0; i < count; i++) {
    added += 1;
    await writer.add(line(`r${i}`));
  }
  const round = await writer.finish();
  const chunks: string[][] = [];
  for (let c = 0; c < round.chunkCount; c++) chunks.push((await s3.jsonl<{ recordId: string }>(runKeys.chunkInput(runId, 1, c))).map((r) => r.recordId));
  const remainder = (await s3.jsonl<FailedRecord>(runKeys.roundPart(runId, 1, 'failed'))).map((r) => r.recordId);
  expect(await s3.json(runKeys.roundPlan(runId, 1))).toEqual({ chunkCount: round.chunkCount, remainder: remainder.length });
  return { round, chunks, remainder, tailRewrites: writer.tailRewrites };
}

describe('RoundChunkWriter', () => {
  it('cuts full chunks as records arrive and keeps a last chunk that is not a sliver', async () => {
    const { chunks, remainder } = await writeRound(25, 10, 3);
    expect(chunks.map((c) => c.length)).toEqual([10, 10, 5]);
    expect(remainder).toEqual([]);
  });

  it('re-splits a full chunk followed by a sliver into two balanced chunks', async () => {
    const { chunks, remainder } = await writeRound(23, 10, 2);
    expect(chunks.map((c) => c.length)).toEqual([10, 7, 6]);
    expect(chunks.flat()).toEqual(Array.from({ length: 23 }, (_, i) => `r${i}`));
    expect(remainder).toEqual([]);
  });

  it('sends a whole round under the minimum to the small-remainder policy, with no chunk', async () => {
    const { round, chunks, remainder } = await writeRound(4, 10, 5);
    expect(round).toEqual({ number: 1, chunkCount: 0, nextChunk: 0, hasMoreChunks: false });
    expect(chunks).toEqual([]);
    expect(remainder).toEqual(['r0', 'r1', 'r2', 'r3']);
  });

  it('makes full jobs and the smallest remainder when no split fits', async () => {
    // 160 records, jobs of 100..150: one job of 150 and 10 left over.
    const { chunks, remainder } = await writeRound(160, 150, 100);
    expect(chunks.map((c) => c.length)).toEqual([150]);
    expect(remainder).toHaveLength(10);
  });

  it('re-splits the last three when the last is under the minimum and three jobs fit', async () => {
    // 310 records at 100..150: 150 + 150 + 10 as they arrive; three jobs of 103-104, no remainder.
    const { chunks, remainder } = await writeRound(310, 150, 100);
    expect(chunks.map((c) => c.length)).toEqual([104, 103, 103]);
    expect(remainder).toEqual([]);
  });

  it('cuts a chunk at the file size quota, and never re-splits a tail that could outgrow it', async () => {
    const bytes = Buffer.byteLength(line('r0')) + 1;
    // Files of at most 3 lines: cut by size before the 10-record maximum; the sliver of 1 is
    // moved to the remainder, not merged into chunks that would outgrow the quota.
    const bySize = await writeRound(7, 10, 2, { maxFileBytes: bytes * 3 + 1 });
    expect(bySize.chunks.map((c) => c.length)).toEqual([3, 3]);
    expect(bySize.remainder).toEqual(['r6']);
    // Cut by count (5): the last three (11 records) would not fit one file, the last two (6) do.
    const tail = await writeRound(11, 5, 2, { maxFileBytes: bytes * 6 + 10 });
    expect(tail.chunks.map((c) => c.length)).toEqual([5, 3, 3]);
    expect(tail.remainder).toEqual([]);
    // Not even the last two fit: only the sliver moves.
    const tight = await writeRound(11, 5, 2, { maxFileBytes: bytes * 5 });
    expect(tight.chunks.map((c) => c.length)).toEqual([5, 5]);
    expect(tight.remainder).toEqual(['r10']);
  });

  it('takes one job fewer when the estimate is only slightly above a multiple of the maximum', async () => {
    // 400 records at most 25 estimated 1 % high (as growing ids make it): 16 jobs, not 17.
    const high = await writeRound(400, 25, 5, { estimate: (toCome) => toCome * 1.01 });
    expect(high.chunks.map((c) => c.length)).toEqual(Array.from({ length: 16 }, () => 25));
    expect(high.tailRewrites).toBe(0);
    // 204 records at most 100, estimated exactly: the slack shrinks with what is to come, so by
    // the first cut the third job is counted.
    const above = await writeRound(204, 100, 5, { estimate: (toCome) => toCome });
    expect(above.chunks.map((c) => c.length)).toEqual([68, 68, 68]);
    expect(above.tailRewrites).toBe(0);
    // Told 2 % low throughout: the first job is filled, the rest balanced by the next cut.
    const low = await writeRound(204, 100, 5, { estimate: (toCome) => toCome * 0.98 });
    expect(low.chunks.map((c) => c.length)).toEqual([100, 52, 52]);
    expect(low.tailRewrites).toBe(0);
    // Told nothing is to come: jobs are filled (100 + 100 + 4), and the tail under the minimum
    // is re-split at the end.
    const none = await writeRound(204, 100, 5, { estimate: () => 0 });
    expect(none.chunks.map((c) => c.length)).toEqual([68, 68, 68]);
    expect(none.tailRewrites).toBe(1);
  });

  it('balances the whole round in one pass when it knows what is to come', async () => {
    // 23 records at most 10: 8 + 8 + 7 as planChunks would, with no tail re-split.
    const exact = await writeRound(23, 10, 2, { estimate: (toCome) => toCome });
    expect(exact.chunks.map((c) => c.length)).toEqual([8, 8, 7]);
    expect(exact.chunks.flat()).toEqual(Array.from({ length: 23 }, (_, i) => `r${i}`));
    expect(exact.tailRewrites).toBe(0);
    // 310 records at 100..150: three jobs without re-splitting three written chunks.
    const three = await writeRound(310, 150, 100, { estimate: (toCome) => toCome });
    expect(three.chunks.map((c) => c.length)).toEqual([104, 103, 103]);
    expect(three.tailRewrites).toBe(0);
  });

  it('re-plans at each cut, so an estimate that is too high only matters near the end', async () => {
    // Told twice the records to come: the first cut is re-planned on a fresh estimate each
    // time the target is reached, and a wrong estimate near the end is fixed by the tail rule.
    const { chunks, remainder } = await writeRound(95, 10, 3, { estimate: (toCome) => toCome * 2 });
    expect(chunks.flat()).toEqual(Array.from({ length: 95 }, (_, i) => `r${i}`));
    expect(remainder).toEqual([]);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(10);
    expect(chunks.length).toBeGreaterThanOrEqual(10);
  });

  it("with an exact estimate, writes planChunks's plan and never re-splits (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }).chain((max) => fc.tuple(fc.integer({ min: 0, max: 60 }), fc.constant(max), fc.integer({ min: 1, max }))),
        async ([count, max, min]) => {
          const plan = planChunks(count, { maxRecordsPerJob: max, minRecordsPerJob: min });
          fc.pre(plan.remainder === 0);
          // Not within the slack above a multiple of the maximum, where one job fewer is tried.
          fc.pre(Math.ceil((count * (1 - ESTIMATE_SLACK)) / max) === Math.ceil(count / max));
          const { chunks, tailRewrites } = await writeRound(count, max, min, { estimate: (toCome) => toCome });
          expect(chunks.map((c) => c.length)).toEqual(plan.sizes);
          expect(tailRewrites).toBe(0);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('puts every record in exactly one chunk or the remainder, every chunk within the limits, whatever the estimate (property)', async () => {
    const estimates = fc.oneof(
      fc.constant(undefined),
      fc.double({ min: 0, max: 3, noNaN: true }).map((factor) => (toCome: number) => toCome * factor),
      fc.integer({ min: -20, max: 20 }).map((off) => (toCome: number) => Math.max(0, toCome + off)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }).chain((max) => fc.tuple(fc.integer({ min: 0, max: 60 }), fc.constant(max), fc.integer({ min: 1, max }))),
        estimates,
        async ([count, max, min], estimate) => {
          const { chunks, remainder } = await writeRound(count, max, min, estimate ? { estimate } : {});
          const all = [...chunks.flat(), ...remainder].sort();
          expect(all).toEqual(Array.from({ length: count }, (_, i) => `r${i}`).sort());
          for (const c of chunks) {
            expect(c.length).toBeGreaterThanOrEqual(min);
            expect(c.length).toBeLessThanOrEqual(max);
          }
          expect(remainder.length).toBeLessThan(min);
          // No sliver: the last chunk is at least half the one before it.
          const [prev, last] = chunks.slice(-2);
          if (prev && last) expect(last.length * 2).toBeGreaterThanOrEqual(prev.length);
          // A remainder only where no plan of these records fits (up to three chunks re-split).
          if (remainder.length > 0 && chunks.length <= 2)
            expect(planChunks(count, { maxRecordsPerJob: max, minRecordsPerJob: min }).remainder).toBeGreaterThan(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('RecordsToCome', () => {
  it('estimates the records to come from the bytes not yet read', () => {
    const unknown = new RecordsToCome(undefined);
    unknown.read(99, true);
    expect(unknown.estimate()).toBeUndefined();
    const toCome = new RecordsToCome(1000);
    expect(toCome.estimate()).toBeUndefined();
    toCome.read(99, true); // 100 bytes with the newline
    toCome.read(99, false);
    // 1 valid record per 200 bytes, 800 bytes to go.
    expect(toCome.estimate()).toBe(4);
  });
});
