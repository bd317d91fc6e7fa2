import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { endRound } from '../../../lambdas/end-round/end-round';
import { runKeys, type RoundState, type RunConfig } from '../../../lambdas/shared/contracts';
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

const retryLine = (id: string, code = '429') => JSON.stringify({ recordId: id, modelInput: anthropicInput(`in ${id}`), lastError: { code, message: `error ${code}` } });
const finished = (number: number, chunkCount: number): RoundState => ({ number, chunkCount, nextChunk: chunkCount, hasMoreChunks: false });

async function retryPart(run: RunConfig, round: number, chunk: number, ids: string[], code?: string) {
  await s3.put(runKeys.chunkPart(run.runId, round, chunk, 'retry'), ids.map((id) => retryLine(id, code) + '\n').join(''));
}

describe('endRound', () => {
  it('ends the run when no record of the round needs another try', async () => {
    const run = runConfig({ runId: 'er-0', bucket: s3.bucket });
    await s3.put(runKeys.chunkPart('er-0', 1, 0, 'succeeded'), anthropicOutputLine('a') + '\n');
    const round = finished(1, 1);
    await expect(endRound(deps, { run, round })).resolves.toEqual({ run, round, done: true });
    expect(await s3.keys('work/er-0/r02/')).toEqual([]);
  });

  it('resubmits retryable records as the next round, then fails them with their last error at maxAttempts', async () => {
    const run = runConfig({ runId: 'er-1', bucket: s3.bucket, minRecordsPerJob: 1, maxRecordsPerJob: 2, maxAttempts: 2 });
    await retryPart(run, 1, 0, ['a', 'b']);
    await retryPart(run, 1, 3, ['c'], '500');
    await s3.put(runKeys.chunkPart('er-1', 1, 1, 'failed'), JSON.stringify({ recordId: 'x', error: { code: '400', message: 'no' }, attempts: 1 }) + '\n');

    const r1 = await endRound(deps, { run, round: finished(1, 4) });
    expect(r1).toEqual({ run, round: { number: 2, chunkCount: 2, nextChunk: 0, hasMoreChunks: true }, done: false });
    // The next round's chunk lines are job input lines again (no lastError), written in one pass.
    expect(await s3.jsonl(runKeys.chunkInput('er-1', 2, 0))).toEqual(['a', 'b'].map((id) => ({ recordId: id, modelInput: anthropicInput(`in ${id}`) })));
    expect(await s3.jsonl(runKeys.chunkInput('er-1', 2, 1))).toEqual([{ recordId: 'c', modelInput: anthropicInput('in c') }]);
    expect(await s3.keys('work/er-1/r02/')).toEqual([runKeys.roundPlan('er-1', 2)]);

    // Round 2 (the last allowed) leaves b and c retryable again.
    await retryPart(run, 2, 0, ['b'], '429');
    await retryPart(run, 2, 1, ['c'], 'MissingFromOutput');
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
    await retryPart(run, 1, 0, ['a', 'b']);
    const r = await endRound(deps, { run, round: finished(1, 1) });
    expect(r).toEqual({ run, round: { number: 2, chunkCount: 0, nextChunk: 0, hasMoreChunks: false }, done: false });
    expect(await s3.jsonl(runKeys.roundPart('er-2', 2, 'failed'))).toEqual([
      { recordId: 'a', error: expect.objectContaining({ code: 'BelowMinimumRecordsPerJob' }), attempts: 2 },
      { recordId: 'b', error: expect.objectContaining({ code: 'BelowMinimumRecordsPerJob' }), attempts: 2 },
    ]);
    // The next EndRound finds nothing to retry and ends the run.
    await expect(endRound(deps, { run, round: r.round })).resolves.toMatchObject({ done: true });
  });

  it('fails retryable records at once when maxAttempts is 1', async () => {
    const run = runConfig({ runId: 'er-3', bucket: s3.bucket, maxAttempts: 1 });
    await retryPart(run, 1, 0, ['a']);
    await expect(endRound(deps, { run, round: finished(1, 1) })).resolves.toMatchObject({ done: true, round: { number: 1 } });
    expect(await s3.jsonl(runKeys.exhausted('er-3', 1))).toEqual([{ recordId: 'a', error: { code: '429', message: 'error 429' }, attempts: 1 }]);
  });
});
