import { BedrockRuntimeClient, InvokeModelCommand, ThrottlingException, ValidationException, InternalServerException } from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { runKeys, type RunConfig } from '../../../lambdas/shared/contracts';
import { resumeRound, RoundChunkWriter, type RoundDeps } from '../../../lambdas/shared/round-chunk-writer';
import { RemainderIncomplete } from '../../../lambdas/shared/small-remainder';
import type { TimeBudget } from '../../../lambdas/shared/time-budget';
import { anthropicResponse, invokeResponse } from '../support/bedrock-runtime';
import { anthropicInput, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';

const runtimeMock = mockClient(BedrockRuntimeClient);
let s3: TestS3;
let deps: { s3: TestS3['client']; bedrockRuntime: BedrockRuntimeClient };
let runSeq = 0;

beforeAll(async () => {
  s3 = await startTestS3();
  deps = { s3: s3.client, bedrockRuntime: new BedrockRuntimeClient({ region: 'us-east-1' }) };
});
afterAll(async () => {
  runtimeMock.restore();
  await s3.stop();
});
beforeEach(() => runtimeMock.reset());

/** The job input lines of `n` records (`id-0` ...). */
const recordLines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ recordId: `id-${i}`, modelInput: anthropicInput(`t${i}`) }));

/** A fresh run. */
const newRun = (overrides: Partial<RunConfig> = {}): RunConfig => runConfig({ runId: `rounds-${++runSeq}`, bucket: s3.bucket, ...overrides });

/** Opens round `round` of `run` with `n` records, as end-round does (the count to come is known exactly). */
async function openRound(run: RunConfig, round: number, n: number, extra: Pick<RoundDeps, 'budget' | 'stopRequested'> = {}) {
  const lines = recordLines(n);
  let added = 0;
  const writer = new RoundChunkWriter({ ...deps, ...extra }, run, round, { recordsToCome: () => n - added });
  for (const line of lines) {
    added += 1;
    await writer.add(line);
  }
  return writer.finish();
}

const ids = (rows: Array<{ recordId?: unknown }>) => rows.map((r) => r.recordId);

describe('opening a round (RoundChunkWriter with an exact count, as end-round)', () => {
  it('writes balanced chunk files in order and returns the round state', async () => {
    const run = newRun({ minRecordsPerJob: 1, maxRecordsPerJob: 5 });
    await expect(openRound(run, 1, 7)).resolves.toEqual({ number: 1, chunkCount: 2, nextChunk: 0, hasMoreChunks: true });
    expect(await s3.keys(`jobs-input/${run.runId}/`)).toEqual([runKeys.chunkInput(run.runId, 1, 0), runKeys.chunkInput(run.runId, 1, 1)]);
    expect(ids(await s3.jsonl(runKeys.chunkInput(run.runId, 1, 0)))).toEqual(['id-0', 'id-1', 'id-2', 'id-3']);
    expect(ids(await s3.jsonl(runKeys.chunkInput(run.runId, 1, 1)))).toEqual(['id-4', 'id-5', 'id-6']);
    // Chunk lines are exactly the lines added (what Bedrock reads).
    expect(await s3.text(runKeys.chunkInput(run.runId, 1, 1))).toBe(
      [4, 5, 6].map((i) => JSON.stringify({ recordId: `id-${i}`, modelInput: anthropicInput(`t${i}`) }) + '\n').join(''),
    );
    expect(await s3.text(runKeys.roundRemainder(run.runId, 1))).toBeUndefined();
    expect(await s3.text(runKeys.remainderStats(run.runId, 1))).toBeUndefined();
    expect(runtimeMock.calls()).toHaveLength(0);
  });

  it('opens an empty round without chunks', async () => {
    const run = newRun();
    await expect(openRound(run, 1, 0)).resolves.toEqual({ number: 1, chunkCount: 0, nextChunk: 0, hasMoreChunks: false });
    expect(await s3.keys(`jobs-input/${run.runId}/`)).toEqual([]);
  });

  describe("small remainder 'on-demand'", () => {
    it('runs the records no job can take through InvokeModel and counts them', async () => {
      // 7 records, jobs of exactly 5: one job, 2 left over.
      const run = newRun({ minRecordsPerJob: 5, maxRecordsPerJob: 5, smallRemainder: 'on-demand' });
      runtimeMock.on(InvokeModelCommand).callsFake((input: { body: string }) => {
        const text = (JSON.parse(input.body) as { messages: Array<{ content: string }> }).messages[0]!.content;
        return invokeResponse(anthropicResponse(`re ${text}`, 3, 4));
      });
      await expect(openRound(run, 1, 7)).resolves.toEqual({ number: 1, chunkCount: 1, nextChunk: 0, hasMoreChunks: true });

      expect(ids(await s3.jsonl(runKeys.chunkInput(run.runId, 1, 0)))).toEqual(['id-0', 'id-1', 'id-2', 'id-3', 'id-4']);
      expect(ids(await s3.jsonl(runKeys.roundRemainder(run.runId, 1)))).toEqual(['id-5', 'id-6']);
      const calls = runtimeMock.commandCalls(InvokeModelCommand).map((c) => c.args[0].input);
      expect(calls).toHaveLength(2);
      for (const c of calls) expect(c).toMatchObject({ modelId: run.modelId, contentType: 'application/json', accept: 'application/json' });
      expect(calls.map((c) => JSON.parse(c.body as string)).sort((a, b) => a.messages[0].content.localeCompare(b.messages[0].content))).toEqual([
        anthropicInput('t5'),
        anthropicInput('t6'),
      ]);

      const succeeded = await s3.jsonl(runKeys.roundPart(run.runId, 1, 'succeeded'));
      expect(succeeded.sort((a, b) => String(a.recordId).localeCompare(String(b.recordId)))).toEqual([
        { recordId: 'id-5', modelOutput: anthropicResponse('re t5', 3, 4), usage: { inputTokens: 3, outputTokens: 4 }, onDemand: true },
        { recordId: 'id-6', modelOutput: anthropicResponse('re t6', 3, 4), usage: { inputTokens: 3, outputTokens: 4 }, onDemand: true },
      ]);
      expect(await s3.text(runKeys.roundPart(run.runId, 1, 'failed'))).toBeUndefined();
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toEqual({
        round: 1,
        policy: 'on-demand',
        records: 2,
        succeeded: 2,
        failed: 0,
        held: 0,
        onDemandRecords: 2,
        tokens: { input: 6, output: 8 },
        parts: [
          {
            kind: 'succeeded',
            key: runKeys.roundPart(run.runId, 1, 'succeeded'),
            lines: 2,
            bytes: Buffer.byteLength((await s3.text(runKeys.roundPart(run.runId, 1, 'succeeded')))!),
          },
        ],
      });
    });

    it('fails a record on a client error at once, retries transient errors, and never drops one', async () => {
      const run = newRun({ minRecordsPerJob: 5, maxRecordsPerJob: 10, smallRemainder: 'on-demand' });
      const bodyOf = (i: number) => JSON.stringify(anthropicInput(`t${i}`));
      runtimeMock
        .on(InvokeModelCommand, { body: bodyOf(0) })
        .rejects(new ValidationException({ message: 'messages: bad', $metadata: { httpStatusCode: 400 } }))
        .on(InvokeModelCommand, { body: bodyOf(1) })
        .rejects(new ThrottlingException({ message: 'slow down', $metadata: { httpStatusCode: 429 } }))
        .on(InvokeModelCommand, { body: bodyOf(2) })
        .rejectsOnce(new InternalServerException({ message: 'oops', $metadata: { httpStatusCode: 500 } }))
        .resolves(invokeResponse(anthropicResponse('ok', 1, 1)));

      await expect(openRound(run, 2, 3)).resolves.toEqual({ number: 2, chunkCount: 0, nextChunk: 0, hasMoreChunks: false });

      const perRecord = (i: number) => runtimeMock.commandCalls(InvokeModelCommand).filter((c) => c.args[0].input.body === bodyOf(i)).length;
      expect([perRecord(0), perRecord(1), perRecord(2)]).toEqual([1, 3, 2]);
      const failed = await s3.jsonl(runKeys.roundPart(run.runId, 2, 'failed'));
      expect(failed.sort((a, b) => String(a.recordId).localeCompare(String(b.recordId)))).toEqual([
        { recordId: 'id-0', error: { code: 'ValidationException', message: 'on-demand InvokeModel failed: messages: bad' }, attempts: 2 },
        { recordId: 'id-1', error: { code: 'ThrottlingException', message: 'on-demand InvokeModel failed: slow down' }, attempts: 2 },
      ]);
      expect(ids(await s3.jsonl(runKeys.roundPart(run.runId, 2, 'succeeded')))).toEqual(['id-2']);
      expect(await s3.json(runKeys.remainderStats(run.runId, 2))).toMatchObject({
        records: 3,
        succeeded: 1,
        failed: 2,
        held: 0,
        onDemandRecords: 3,
        tokens: { input: 1, output: 1 },
      });
    });

    it('keeps every record of a larger remainder with bounded concurrency', async () => {
      const run = newRun({ minRecordsPerJob: 50, maxRecordsPerJob: 100, smallRemainder: 'on-demand' });
      let live = 0;
      let peak = 0;
      runtimeMock.on(InvokeModelCommand).callsFake(async () => {
        live += 1;
        peak = Math.max(peak, live);
        // Hold the call open for a fixed number of event-loop turns (not a wall-clock time): long
        // enough for the pool to start every call it would run alongside this one.
        for (let turn = 0; turn < 50 && live <= 4; turn++) await new Promise((r) => setImmediate(r));
        live -= 1;
        return invokeResponse(anthropicResponse('ok', 1, 2));
      });
      await openRound(run, 1, 40);
      expect(peak).toBeGreaterThan(1);
      expect(peak).toBeLessThanOrEqual(4);
      const succeeded = await s3.jsonl(runKeys.roundPart(run.runId, 1, 'succeeded'));
      expect(new Set(ids(succeeded)).size).toBe(40);
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({
        records: 40,
        succeeded: 40,
        onDemandRecords: 40,
        tokens: { input: 40, output: 80 },
      });
    });
  });

  describe("small remainder 'on-demand' within the invocation's time", () => {
    /** A budget on an injected clock: each InvokeModel call uses `perCallMs` of it. */
    const clockedCalls = (totalMs: number, perCallMs: number): TimeBudget & { left: number } => {
      const budget = { totalMs, left: totalMs, remainingMs: () => budget.left };
      runtimeMock.on(InvokeModelCommand).callsFake(() => {
        budget.left -= perCallMs;
        return invokeResponse(anthropicResponse('ok', 1, 2));
      });
      return budget;
    };
    const callsPerBody = () => {
      const counts = new Map<string, number>();
      for (const c of runtimeMock.commandCalls(InvokeModelCommand))
        counts.set(c.args[0].input.body as string, (counts.get(c.args[0].input.body as string) ?? 0) + 1);
      return counts;
    };

    it('writes what it finished and throws RemainderIncomplete; the retried step invokes only the rest, each record once', async () => {
      // 12 records, all below the minimum; each call uses 1 s of an invocation of 10 s (1 s reserved).
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      const first = await openRound(run, 1, 12, { budget: clockedCalls(10_000, 1_000) }).catch((e: unknown) => e);
      expect(first).toBeInstanceOf(RemainderIncomplete);
      expect((first as Error).name).toBe('RemainderIncomplete');
      const done = (await s3.jsonl(runKeys.roundPart(run.runId, 1, 'succeeded'))).length;
      expect(done).toBeGreaterThan(0);
      expect(done).toBeLessThan(12);
      expect((first as Error).message).toBe(
        `${done} of the 12 on-demand records of round 1 have an outcome; ${12 - done} did not fit this invocation's time and run when the step is retried (those done are kept, not invoked again)`,
      );
      expect(runtimeMock.commandCalls(InvokeModelCommand)).toHaveLength(done);
      // No stats: the round is not open, so nothing downstream reads a partial remainder as done.
      expect(await s3.text(runKeys.remainderStats(run.runId, 1))).toBeUndefined();

      // The retry (a fresh invocation) keeps the outcomes and invokes the others.
      await openRound(run, 1, 12, { budget: clockedCalls(10_000, 1_000) });
      expect([...callsPerBody().values()]).toEqual(Array(12).fill(1));
      const succeeded = await s3.jsonl(runKeys.roundPart(run.runId, 1, 'succeeded'));
      expect(new Set(ids(succeeded)).size).toBe(12);
      expect(succeeded).toHaveLength(12);
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({
        records: 12,
        succeeded: 12,
        failed: 0,
        onDemandRecords: 12,
        tokens: { input: 12, output: 24 },
      });
    });

    it('starts nothing when the invocation has no time left for it, and keeps going on the next', async () => {
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      const spent = clockedCalls(10_000, 1_000);
      spent.left = 500; // Less than the reserve: the work before the remainder took the time.
      await expect(openRound(run, 1, 3, { budget: spent })).rejects.toThrow('0 of the 3 on-demand records of round 1 have an outcome');
      expect(runtimeMock.commandCalls(InvokeModelCommand)).toHaveLength(0);
      await openRound(run, 1, 3, { budget: clockedCalls(10_000, 1_000) });
      expect([...callsPerBody().values()]).toEqual([1, 1, 1]);
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({ records: 3, succeeded: 3 });
    });

    /** Calls that answer only by being aborted (as the SDK does: an AbortError), each moving the budget clock by `advanceMs`. */
    const hangingCalls = (budget: { left: number }, advanceMs: number) => {
      runtimeMock.send.callsFake(
        (_command: unknown, options?: { abortSignal?: AbortSignal }) =>
          new Promise((_resolve, reject) => {
            budget.left -= advanceMs;
            options?.abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' })));
          }),
      );
    };

    it('aborts the calls still running at the reserve and leaves their records to the retry, which resumes the round', async () => {
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      // The step's other work left 300 ms of a 1 s invocation (100 ms reserved): a small window,
      // so a call cut short by it is not given up on.
      const budget = { totalMs: 1_000, left: 300, remainingMs: () => budget.left };
      hangingCalls(budget, 0);
      await expect(openRound(run, 1, 5, { budget })).rejects.toThrow('0 of the 5 on-demand records of round 1 have an outcome; 5 did not fit');
      expect(runtimeMock.send.callCount).toBe(4);
      expect(await s3.text(runKeys.roundPart(run.runId, 1, 'failed'))).toBeUndefined();

      // The retry goes straight to the round's remainder and answers all 5.
      runtimeMock.reset();
      const fresh = clockedCalls(10_000, 100);
      await expect(resumeRound({ ...deps, budget: fresh }, run, 1)).resolves.toEqual({ number: 1, chunkCount: 0, nextChunk: 0, hasMoreChunks: false });
      expect([...callsPerBody().values()]).toEqual([1, 1, 1, 1, 1]);
      expect(await s3.json(runKeys.roundPlan(run.runId, 1))).toEqual({ chunkCount: 0, remainder: 5 });
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({ records: 5, succeeded: 5, failed: 0 });
    });

    it('fails with OnDemandTimeout a call that had nearly all of an invocation and still gave no answer', async () => {
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      // 200 ms, 20 reserved: the call runs the whole window of 180 ms (on the budget clock).
      const budget = { totalMs: 200, left: 200, remainingMs: () => budget.left };
      hangingCalls(budget, 180);
      await expect(openRound(run, 1, 1, { budget })).resolves.toMatchObject({ number: 1, chunkCount: 0 });
      const failed = await s3.jsonl(runKeys.roundPart(run.runId, 1, 'failed'));
      expect(failed).toEqual([
        {
          recordId: 'id-0',
          error: {
            code: 'OnDemandTimeout',
            message: "on-demand InvokeModel gave no answer in 0 s, nearly all of its function's time: a retry would have no more",
          },
          attempts: 1,
        },
      ]);
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({ records: 1, succeeded: 0, failed: 1 });
    });

    it('starts no call once the run is stopped: what was answered is written, the rest is left', async () => {
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      clockedCalls(900_000, 1);
      // The stop mark appears once 2 calls were made.
      const stopRequested = async (runId: string) => runId === run.runId && runtimeMock.commandCalls(InvokeModelCommand).length >= 2;
      await expect(openRound(run, 1, 6, { stopRequested })).rejects.toThrow(
        '2 of the 6 on-demand records of round 1 have an outcome; the run was stopped, so the other 4 were not invoked',
      );
      expect(runtimeMock.commandCalls(InvokeModelCommand)).toHaveLength(2);
      expect(await s3.jsonl(runKeys.roundPart(run.runId, 1, 'succeeded'))).toHaveLength(2);
      expect(await s3.text(runKeys.remainderStats(run.runId, 1))).toBeUndefined();
    });

    it('goes on when the stop mark cannot be read: a failed check loses nothing the attempt answered', async () => {
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      clockedCalls(900_000, 1);
      let checks = 0;
      const stopRequested = async () => {
        checks += 1;
        if (checks >= 3) throw Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
        return false;
      };
      await expect(openRound(run, 1, 6, { stopRequested })).resolves.toMatchObject({ number: 1, chunkCount: 0 });
      expect(runtimeMock.commandCalls(InvokeModelCommand)).toHaveLength(6);
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({ records: 6, succeeded: 6 });
    });

    it('runs everything in one invocation that has the time, as without a budget', async () => {
      const run = newRun({ minRecordsPerJob: 20, maxRecordsPerJob: 20, smallRemainder: 'on-demand' });
      await openRound(run, 1, 12, { budget: clockedCalls(900_000, 1_000) });
      expect(runtimeMock.commandCalls(InvokeModelCommand)).toHaveLength(12);
      expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({ records: 12, succeeded: 12 });
    });
  });

  it("holds a small remainder under held/<route>/ for the next sweep ('hold')", async () => {
    const run = newRun({ route: 'tickets', minRecordsPerJob: 5, maxRecordsPerJob: 10, smallRemainder: 'hold' });
    await expect(openRound(run, 2, 3)).resolves.toMatchObject({ chunkCount: 0, hasMoreChunks: false });
    const heldKey = `held/tickets/${run.runId}-r02.jsonl`;
    expect(await s3.text(heldKey)).toBe(
      recordLines(3)
        .map((l) => l + '\n')
        .join(''),
    );
    const failed = await s3.jsonl<{ recordId: string; error: { code: string; message: string }; attempts: number }>(runKeys.roundPart(run.runId, 2, 'failed'));
    expect(ids(failed)).toEqual(['id-0', 'id-1', 'id-2']);
    for (const f of failed) {
      expect(f.error.code).toBe('HeldForNextSweep');
      expect(f.error.message).toContain(`s3://${s3.bucket}/${heldKey}`);
      expect(f.attempts).toBe(2);
    }
    expect(await s3.json(runKeys.remainderStats(run.runId, 2))).toEqual({
      round: 2,
      policy: 'hold',
      records: 3,
      succeeded: 0,
      failed: 3,
      held: 3,
      onDemandRecords: 0,
      tokens: { input: 0, output: 0 },
      parts: [
        { kind: 'failed', key: runKeys.roundPart(run.runId, 2, 'failed'), lines: 3, bytes: expect.any(Number) },
        { kind: 'held', key: heldKey, lines: 3, bytes: Buffer.byteLength(recordLines(3).join('\n') + '\n') },
      ],
    });
    expect(runtimeMock.calls()).toHaveLength(0);
  });

  it("holds nothing once the run was stopped ('hold'): no held file for the next sweep to run, the records fail RunStopped", async () => {
    const run = newRun({ route: 'tickets', minRecordsPerJob: 5, maxRecordsPerJob: 10, smallRemainder: 'hold' });
    await openRound(run, 2, 3, { stopRequested: async () => true });
    expect(await s3.text(`held/tickets/${run.runId}-r02.jsonl`)).toBeUndefined();
    const failed = await s3.jsonl<{ recordId: string; error: { code: string } }>(runKeys.roundPart(run.runId, 2, 'failed'));
    expect(failed.map((f) => [f.recordId, f.error.code])).toEqual([
      ['id-0', 'RunStopped'],
      ['id-1', 'RunStopped'],
      ['id-2', 'RunStopped'],
    ]);
    expect(await s3.json(runKeys.remainderStats(run.runId, 2))).toMatchObject({ records: 3, failed: 3, held: 0 });
  });

  it("still holds, once the run was stopped, what an earlier attempt's held file holds ('hold'): the sweep runs that file anyway", async () => {
    const run = newRun({ route: 'tickets', minRecordsPerJob: 5, maxRecordsPerJob: 10, smallRemainder: 'hold' });
    const heldKey = `held/tickets/${run.runId}-r02.jsonl`;
    // Attempt 1 wrote the held file and died before its stats; the retry sees the stop.
    await s3.put(
      heldKey,
      recordLines(3)
        .map((l) => l + '\n')
        .join(''),
    );
    let checks = 0;
    await openRound(run, 2, 3, { stopRequested: async () => (checks += 1) > 0 });
    expect(checks).toBe(1);
    const failed = await s3.jsonl<{ recordId: string; error: { code: string } }>(runKeys.roundPart(run.runId, 2, 'failed'));
    expect(failed.map((f) => f.error.code)).toEqual(['HeldForNextSweep', 'HeldForNextSweep', 'HeldForNextSweep']);
    expect(await s3.json(runKeys.remainderStats(run.runId, 2))).toMatchObject({ records: 3, failed: 3, held: 3 });
  });

  it("fails a small remainder with the reason ('fail')", async () => {
    const run = newRun({ minRecordsPerJob: 10, maxRecordsPerJob: 10, smallRemainder: 'fail' });
    await expect(openRound(run, 1, 12)).resolves.toMatchObject({ chunkCount: 1 });
    const failed = await s3.jsonl(runKeys.roundPart(run.runId, 1, 'failed'));
    expect(failed).toEqual(
      ['id-10', 'id-11'].map((recordId) => ({
        recordId,
        error: {
          code: 'BelowMinimumRecordsPerJob',
          message: "left in a set of fewer records than the minimum of 10 per job, and the route's small-remainder policy is 'fail'",
        },
        attempts: 1,
      })),
    );
    expect(await s3.json(runKeys.remainderStats(run.runId, 1))).toMatchObject({
      policy: 'fail',
      records: 2,
      failed: 2,
      succeeded: 0,
      held: 0,
      onDemandRecords: 0,
    });
    expect(await s3.keys('held/')).not.toContain(`held/default/${run.runId}-r01.jsonl`);
    expect(runtimeMock.calls()).toHaveLength(0);
  });
});
