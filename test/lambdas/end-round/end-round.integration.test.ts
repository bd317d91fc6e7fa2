import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { endRound } from '../../../lambdas/end-round/end-round';
import { runKeys, type RoundState, type RunConfig } from '../../../lambdas/shared/contracts';
import type { ChunkStats, PartFile } from '../../../lambdas/shared/outcomes';
import { anthropicInput, anthropicOutputLine, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';

const runtimeMock = mockClient(BedrockRuntimeClient);
let s3: TestS3;
let deps: { s3: TestS3['client']; bedrockRuntime: BedrockRuntimeClient };

beforeAll(async () => {
  s3 = await startTestS3();
  deps = { s3: s3.client, bedrockRuntime: new BedrockRuntimeClient({ region: 'us-east-1' }) };
});
afterAll(async () => {
  runtimeMock.restore();
  await s3.stop();
});

const retryLine = (id: string, code = '429') =>
  JSON.stringify({ recordId: id, modelInput: anthropicInput(`in ${id}`), lastError: { code, message: `error ${code}` } });
const finished = (number: number, chunkCount: number): RoundState => ({ number, chunkCount, nextChunk: chunkCount, hasMoreChunks: false });

/** A reconciled chunk: its `stats.json` listing the parts it has (`retry` of `ids`, and any `others`). */
async function reconciled(run: RunConfig, round: number, chunk: number, ids: string[], code?: string, others: PartFile[] = []) {
  const parts = [...others];
  if (ids.length > 0) {
    const body = ids.map((id) => retryLine(id, code) + '\n').join('');
    const key = runKeys.chunkPart(run.runId, round, chunk, 'retry');
    await s3.put(key, body);
    parts.push({ kind: 'retry', key, lines: ids.length, bytes: Buffer.byteLength(body) });
  }
  const stats: ChunkStats = {
    round,
    chunk,
    jobStatus: 'Completed',
    records: ids.length,
    succeeded: 0,
    failed: 0,
    retry: ids.length,
    tokens: { input: 0, output: 0 },
    unknownOutputRecords: 0,
    duplicateOutputRecords: 0,
    parts,
  };
  await s3.put(runKeys.chunkStats(run.runId, round, chunk), JSON.stringify(stats));
}

describe('endRound', () => {
  it('ends the run when no record of the round needs another try', async () => {
    const run = runConfig({ runId: 'er-0', bucket: s3.bucket });
    await s3.put(runKeys.chunkPart('er-0', 1, 0, 'succeeded'), anthropicOutputLine('a') + '\n');
    await reconciled(run, 1, 0, []);
    const round = finished(1, 1);
    await expect(endRound(deps, { run, round })).resolves.toEqual({ run, round, done: true });
    expect(await s3.keys('work/er-0/r02/')).toEqual([]);
  });

  it('resubmits retryable records as the next round, then fails them with their last error at maxAttempts', async () => {
    const run = runConfig({ runId: 'er-1', bucket: s3.bucket, minRecordsPerJob: 1, maxRecordsPerJob: 2, maxAttempts: 2 });
    await reconciled(run, 1, 0, ['a', 'b']);
    await reconciled(run, 1, 3, ['c'], '500');
    await s3.put(runKeys.chunkPart('er-1', 1, 1, 'failed'), JSON.stringify({ recordId: 'x', error: { code: '400', message: 'no' }, attempts: 1 }) + '\n');
    await reconciled(run, 1, 1, [], undefined, [{ kind: 'failed', key: runKeys.chunkPart('er-1', 1, 1, 'failed'), lines: 1, bytes: 1 }]);
    await reconciled(run, 1, 2, []);

    const r1 = await endRound(deps, { run, round: finished(1, 4) });
    expect(r1).toEqual({ run, round: { number: 2, chunkCount: 2, nextChunk: 0, hasMoreChunks: true }, done: false });
    // The next round's chunk lines are job input lines again (no lastError), written in one pass.
    expect(await s3.jsonl(runKeys.chunkInput('er-1', 2, 0))).toEqual(['a', 'b'].map((id) => ({ recordId: id, modelInput: anthropicInput(`in ${id}`) })));
    expect(await s3.jsonl(runKeys.chunkInput('er-1', 2, 1))).toEqual([{ recordId: 'c', modelInput: anthropicInput('in c') }]);
    expect(await s3.keys('work/er-1/r02/')).toEqual([runKeys.roundPlan('er-1', 2)]);
    expect(await s3.json(runKeys.roundPlan('er-1', 2))).toEqual({ chunkCount: 2, remainder: 0 });

    // Round 2 (the last allowed) leaves b and c retryable again.
    await reconciled(run, 2, 0, ['b'], '429');
    await reconciled(run, 2, 1, ['c'], 'MissingFromOutput');
    const r2 = await endRound(deps, { run, round: r1.round });
    expect(r2).toEqual({ run, round: r1.round, done: true });
    expect(await s3.jsonl(runKeys.exhausted('er-1', 2))).toEqual([
      { recordId: 'b', error: { code: '429', message: 'error 429' }, attempts: 2 },
      { recordId: 'c', error: { code: 'MissingFromOutput', message: 'error MissingFromOutput' }, attempts: 2 },
    ]);
    expect(await s3.keys('work/er-1/r03/')).toEqual([]);
    expect(await s3.keys('jobs-input/er-1/r03/')).toEqual([]);
  });

  it('applies the small-remainder policy to a retry set below the minimum, in the new round', async () => {
    const run = runConfig({ runId: 'er-2', bucket: s3.bucket, minRecordsPerJob: 5, maxRecordsPerJob: 10, maxAttempts: 3, smallRemainder: 'fail' });
    await reconciled(run, 1, 0, ['a', 'b']);
    const r = await endRound(deps, { run, round: finished(1, 1) });
    expect(r).toEqual({ run, round: { number: 2, chunkCount: 0, nextChunk: 0, hasMoreChunks: false }, done: false });
    expect(await s3.jsonl(runKeys.roundPart('er-2', 2, 'failed'))).toEqual([
      { recordId: 'a', error: expect.objectContaining({ code: 'BelowMinimumRecordsPerJob' }), attempts: 2 },
      { recordId: 'b', error: expect.objectContaining({ code: 'BelowMinimumRecordsPerJob' }), attempts: 2 },
    ]);
    // The next EndRound finds nothing to retry and ends the run.
    await expect(endRound(deps, { run, round: r.round })).resolves.toMatchObject({ done: true });
  });

  it("reads only the retry parts the chunks' stats list: a retry part a failed reconcile attempt left is not read", async () => {
    const run = runConfig({ runId: 'er-stale', bucket: s3.bucket, minRecordsPerJob: 1, maxAttempts: 3 });
    await reconciled(run, 1, 0, ['a']);
    // Chunk 1: a first attempt wrote this retry part and failed; the attempt that finished retried nothing.
    await s3.put(runKeys.chunkPart('er-stale', 1, 1, 'retry'), retryLine('b') + '\n');
    await reconciled(run, 1, 1, []);
    const r = await endRound(deps, { run, round: finished(1, 2) });
    expect(r.round).toMatchObject({ number: 2, chunkCount: 1 });
    expect(await s3.jsonl(runKeys.chunkInput('er-stale', 2, 0))).toEqual([{ recordId: 'a', modelInput: anthropicInput('in a') }]);
  });

  it('refuses to end a round with a chunk not reconciled, rather than lose its records', async () => {
    const run = runConfig({ runId: 'er-missing', bucket: s3.bucket });
    await reconciled(run, 1, 0, ['a']);
    await expect(endRound(deps, { run, round: finished(1, 2) })).rejects.toThrow(
      'chunk 1 of round 1 was not reconciled: work/er-missing/r01/c00001/stats.json does not exist',
    );
  });

  it('fails retryable records at once when maxAttempts is 1', async () => {
    const run = runConfig({ runId: 'er-3', bucket: s3.bucket, maxAttempts: 1 });
    await reconciled(run, 1, 0, ['a']);
    await expect(endRound(deps, { run, round: finished(1, 1) })).resolves.toMatchObject({ done: true, round: { number: 1 } });
    expect(await s3.jsonl(runKeys.exhausted('er-3', 1))).toEqual([{ recordId: 'a', error: { code: '429', message: 'error 429' }, attempts: 1 }]);
  });
});
