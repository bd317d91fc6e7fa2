/**
 * EndRound run again after failing at any write: the next round (chunk files, re-split tail,
 * remainder outcomes, plan) ends as one clean attempt leaves it, and an on-demand record whose
 * outcome the first attempt wrote is not invoked (billed) again.
 */
import { BedrockRuntimeClient, InvokeModelCommand, ValidationException, type InvokeModelCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { endRound } from '../../../lambdas/end-round/end-round';
import { runKeys, type RoundState, type RunConfig } from '../../../lambdas/shared/contracts';
import type { ChunkStats, RemainderStats, RoundPlan } from '../../../lambdas/shared/outcomes';
import { RemainderIncomplete } from '../../../lambdas/shared/small-remainder';
import { anthropicResponse, invokeResponse } from '../support/bedrock-runtime';
import { crashingS3, SimulatedCrash } from '../support/crashing-s3';
import { anthropicInput, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';

const runtimeMock = mockClient(BedrockRuntimeClient);
let s3: TestS3;
/** recordIds in the order InvokeModel got them. */
let invoked: string[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  runtimeMock.restore();
  await s3.stop();
});
beforeEach(() => {
  invoked = [];
  runtimeMock.reset();
  // Deterministic per record: `r13` is refused (400), every other one answered.
  runtimeMock.on(InvokeModelCommand).callsFake((input: InvokeModelCommandInput) => {
    const body = JSON.parse(Buffer.from(input.body as Uint8Array).toString('utf8')) as { messages: Array<{ content: string }> };
    const id = body.messages[0]!.content;
    invoked.push(id);
    if (id === 'r13') throw new ValidationException({ message: 'bad input', $metadata: { httpStatusCode: 400 } });
    return invokeResponse(anthropicResponse(`out ${id}`, 3, 4));
  });
});

const ID_COUNT = 15;
const ids = Array.from({ length: ID_COUNT }, (_, i) => `r${String(i).padStart(2, '0')}`);
const ROUND_1: RoundState = { number: 1, chunkCount: 2, nextChunk: 2, hasMoreChunks: false };

/**
 * Round 1 as two reconciled chunks left it: every record retryable, in `retry.jsonl` parts
 * listed by their stats. 15 records at 6 per job: two jobs and a remainder of 3.
 */
async function reconciledRound(runId: string, policy: RunConfig['smallRemainder']): Promise<RunConfig> {
  const run = runConfig({ runId, bucket: s3.bucket, minRecordsPerJob: 6, maxRecordsPerJob: 6, maxAttempts: 3, smallRemainder: policy });
  for (const [chunk, chunkIds] of [ids.slice(0, 8), ids.slice(8)].entries()) {
    const body = chunkIds
      .map((id) => JSON.stringify({ recordId: id, modelInput: anthropicInput(id), lastError: { code: '429', message: 'slow' } }) + '\n')
      .join('');
    const key = runKeys.chunkPart(runId, 1, chunk, 'retry');
    await s3.put(key, body);
    const stats: ChunkStats = {
      round: 1,
      chunk,
      jobStatus: 'PartiallyCompleted',
      records: chunkIds.length,
      succeeded: 0,
      failed: 0,
      retry: chunkIds.length,
      tokens: { input: 0, output: 0 },
      unknownOutputRecords: 0,
      duplicateOutputRecords: 0,
      parts: [{ kind: 'retry', key, lines: chunkIds.length, bytes: Buffer.byteLength(body) }],
    };
    await s3.put(runKeys.chunkStats(runId, 1, chunk), JSON.stringify(stats));
  }
  return run;
}

const recordIds = async (key: string) => (await s3.jsonl<{ recordId: string }>(key)).map((r) => r.recordId).sort();

/** Round 2 as the readers see it (keys with the run id taken out, to compare runs). */
async function round2(run: RunConfig) {
  const plan = await s3.json<RoundPlan>(runKeys.roundPlan(run.runId, 2));
  const chunks: Array<string | undefined> = [];
  for (let chunk = 0; chunk < (plan?.chunkCount ?? 0); chunk++) chunks.push(await s3.text(runKeys.chunkInput(run.runId, 2, chunk)));
  const stats = await s3.json<RemainderStats>(runKeys.remainderStats(run.runId, 2));
  const view = {
    plan,
    chunks,
    // Sizes differ only by the run id's length in the held file's name.
    remainder: stats && { ...stats, parts: stats.parts?.map((p) => ({ ...p, bytes: undefined })) },
    succeeded: await recordIds(runKeys.roundPart(run.runId, 2, 'succeeded')),
    failed: await s3.jsonl<{ recordId: string }>(runKeys.roundPart(run.runId, 2, 'failed')),
    held: await s3.text(runKeys.held(run.route, run.runId, 2)),
  };
  return JSON.parse(JSON.stringify(view).split(run.runId).join('RUN')) as typeof view;
}

const runtime = new BedrockRuntimeClient({ region: 'us-east-1' });

describe.each(['on-demand', 'hold', 'fail'] as const)('endRound (%s remainder) run again after crashing after any write', (policy) => {
  it('ends as one clean attempt, invoking again only what the first attempt did not write', async () => {
    const cleanRun = await reconciledRound(`err-${policy}-clean`, policy);
    const counting = crashingS3(s3.endpoint);
    const cleanResult = await endRound({ s3: counting.client, bedrockRuntime: runtime }, { run: cleanRun, round: ROUND_1 });
    const clean = await round2(cleanRun);
    const writes = counting.writes();
    expect(clean.plan).toEqual({ chunkCount: 2, remainder: 3 });
    if (policy === 'on-demand')
      expect(clean.remainder).toMatchObject({ records: 3, succeeded: 2, failed: 1, onDemandRecords: 3, tokens: { input: 6, output: 8 } });

    for (let k = 1; k <= writes; k++) {
      const run = await reconciledRound(`err-${policy}-${k}`, policy);
      const crashing = crashingS3(s3.endpoint, k);
      await expect(endRound({ s3: crashing.client, bedrockRuntime: runtime }, { run, round: ROUND_1 })).rejects.toBeInstanceOf(SimulatedCrash);
      // The outcomes the first attempt wrote before it crashed.
      const written = [...(await recordIds(runKeys.roundPart(run.runId, 2, 'succeeded'))), ...(await recordIds(runKeys.roundPart(run.runId, 2, 'failed')))];
      invoked = [];
      const result = await endRound({ s3: s3.client, bedrockRuntime: runtime }, { run, round: ROUND_1 });
      expect({ k, result: { ...result, run: undefined } }).toEqual({ k, result: { ...cleanResult, run: undefined } });
      expect({ k, round2: await round2(run) }).toEqual({ k, round2: clean });
      if (policy === 'on-demand') {
        const remainderIds = clean.succeeded.concat(clean.failed.map((r) => r.recordId));
        expect({ k, invoked: invoked.sort() }).toEqual({ k, invoked: remainderIds.filter((id) => !written.includes(id)).sort() });
      }
    }
  });
});

describe('endRound whose on-demand remainder runs out of time', () => {
  it('writes the next round, fails RemainderIncomplete, and its retry goes straight to the remainder', async () => {
    const run = await reconciledRound('err-budget', 'on-demand');
    // Each call takes 1 s of a 10 s invocation; the chunk writing left 2.5 s (1 s reserved).
    const budget = { totalMs: 10_000, left: 2_500, remainingMs: () => budget.left };
    runtimeMock.on(InvokeModelCommand).callsFake((input: InvokeModelCommandInput) => {
      budget.left -= 1_000;
      const body = JSON.parse(Buffer.from(input.body as Uint8Array).toString('utf8')) as { messages: Array<{ content: string }> };
      invoked.push(body.messages[0]!.content);
      return invokeResponse(anthropicResponse('out', 3, 4));
    });
    await expect(endRound({ s3: s3.client, bedrockRuntime: runtime, budget }, { run, round: ROUND_1 })).rejects.toThrow(RemainderIncomplete);
    expect(await s3.text(runKeys.roundPlan(run.runId, 2))).toBeUndefined();
    const first = invoked.length;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(3);

    // Were the retry to gather round 1's retries again, it would fail: they are gone.
    for (const chunk of [0, 1]) await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: runKeys.chunkPart(run.runId, 1, chunk, 'retry') }));
    budget.left = 10_000;
    const result = await endRound({ s3: s3.client, bedrockRuntime: runtime, budget }, { run, round: ROUND_1 });
    expect(result).toMatchObject({ done: false, round: { number: 2, chunkCount: 2, nextChunk: 0, hasMoreChunks: true } });
    expect(await s3.json(runKeys.roundPlan(run.runId, 2))).toEqual({ chunkCount: 2, remainder: 3 });
    expect(invoked).toHaveLength(3);
    expect(new Set(invoked).size).toBe(3);
    expect(await s3.json(runKeys.remainderStats(run.runId, 2))).toMatchObject({ records: 3, succeeded: 3, onDemandRecords: 3 });
  });
});
