import { BedrockClient, GetModelInvocationJobCommand, StopModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { localS3ClientConfig } from '../../../local/services/s3';
import { runKeys } from '../../../lambdas/shared/contracts';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { JobSlotLimiter } from '../../../lambdas/shared/job-slots';
import { POLL_MS, runIdOfExecution, windUpStoppedRun, type ExecutionStatusChangeEvent } from '../../../lambdas/stop-run/stop-run';
import { RunClaims, RunStopping } from '../../../lambdas/shared/run-claims';
import { anthropicOutputLine, errorOutputLine, runConfig } from '../support/fixtures';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';
import { startTestS3, type TestS3 } from '../support/local-s3';

const bedrockMock = mockClient(BedrockClient);
const eventsMock = mockClient(EventBridgeClient);
/** A lease that outlasts the test: a step that is still running. */
const LIVE = Date.now() + 3_600_000;
const arn = (id: string) => `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/${id}`;
const line = (recordId: string) =>
  JSON.stringify({ recordId, modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] } });
const jsonl = (rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r)) + '\n').join('');
const retryRow = (recordId: string) => ({ recordId, modelInput: {}, lastError: { code: '429', message: 't' } });

describe('runIdOfExecution', () => {
  it('reads the run id from the input, a successor resume, or the execution name', () => {
    expect(runIdOfExecution('exec', JSON.stringify({ inputs: [], runId: 'my-run' }))).toBe('my-run');
    expect(runIdOfExecution('my-run-r2-c100', JSON.stringify({ resume: { run: { runId: 'my-run' } } }))).toBe('my-run');
    expect(runIdOfExecution('console-start', JSON.stringify({ inputs: [] }))).toBe('console-start');
    expect(runIdOfExecution('console-start', null)).toBe('console-start');
    expect(runIdOfExecution('bad_name!', 'not json')).toMatch(/^run-[0-9a-f]{20}$/);
    expect(runIdOfExecution('x', JSON.stringify({ runId: 'not valid!' }))).toBe('x');
  });
});

describe('windUpStoppedRun', () => {
  let s3: TestS3;
  let db: TestDynamo;
  beforeAll(async () => {
    s3 = await startTestS3();
    db = await startTestDynamo();
  });
  afterAll(async () => {
    await s3.stop();
    await db.stop();
    bedrockMock.restore();
    eventsMock.restore();
  });
  beforeEach(() => {
    bedrockMock.reset();
    eventsMock.reset();
    eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
  });
  /** An opened round's plan.json. */
  const planned = (runId: string, round: number, chunkCount: number) => s3.put(runKeys.roundPlan(runId, round), JSON.stringify({ chunkCount, remainder: 0 }));
  /** A reconciled chunk: its parts and the stats.json listing them. */
  const reconciled = async (runId: string, round: number, chunk: number, rows: { succeeded?: unknown[]; retry?: unknown[] }) => {
    const parts = [];
    for (const kind of ['succeeded', 'retry'] as const) {
      const these = rows[kind];
      if (!these) continue;
      const key = runKeys.chunkPart(runId, round, chunk, kind);
      await s3.put(key, jsonl(these));
      parts.push({ kind, key, lines: these.length, bytes: Buffer.byteLength(jsonl(these)) });
    }
    const stats = {
      round,
      chunk,
      jobStatus: 'Completed',
      records: 0,
      succeeded: rows.succeeded?.length ?? 0,
      failed: 0,
      retry: rows.retry?.length ?? 0,
      tokens: { input: 0, output: 0 },
      unknownOutputRecords: 0,
      duplicateOutputRecords: 0,
      parts,
    };
    await s3.put(runKeys.chunkStats(runId, round, chunk), JSON.stringify(stats));
  };
  const deps = () => ({
    s3: s3.client,
    events: new EventBridgeClient({ region: 'us-east-1' }),
    bedrock: new BedrockClient({ region: 'us-east-1' }),
    jobs: new JobRecords(db.ddb, db.table),
    limiter: new JobSlotLimiter(db.ddb, db.table),
    claims: new RunClaims(db.ddb, db.table),
    bucket: s3.bucket,
    eventBusName: 'default',
  });
  const executionArn = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:M:${name}`;
  const aborted = (name: string, input: unknown): ExecutionStatusChangeEvent => ({
    'detail-type': 'Step Functions Execution Status Change',
    detail: { executionArn: `arn:aws:states:us-east-1:123456789012:execution:M:${name}`, name, status: 'ABORTED', input: JSON.stringify(input) },
  });

  /**
   * A run stopped in round 1 of one chunk holding `ids`, whose job `jobId` was created: run.json,
   * run-stats.json, the plan, the chunk input, and the job item with its ARN.
   */
  const runWithCreatedJob = async (runId: string, ids: string[], jobId: string) => {
    const run = runConfig({ runId, bucket: s3.bucket });
    const jobs = new JobRecords(db.ddb, db.table);
    await s3.put(runKeys.runConfig(runId), JSON.stringify(run));
    await s3.put(runKeys.runStats(runId), JSON.stringify({ inputFiles: 1, inputLines: ids.length, blankLines: 0, valid: ids.length, rejected: 0, inputs: [] }));
    await planned(runId, 1, 1);
    await s3.put(runKeys.chunkInput(runId, 1, 0), jsonl(ids.map(line)));
    const jobName = `bb-${runId}-r01-c00000`;
    await jobs.putSubmitting({ jobName, runId, round: 1, chunk: 0, modelId: run.modelId, taskToken: 't' });
    await jobs.setCreated(jobName, arn(jobId));
    return { run, jobs, jobName, output: `${runKeys.chunkOutputPrefix(runId, 1, 0)}${jobId}/c00000.jsonl.out` };
  };

  it('ignores every status but ABORTED', async () => {
    const e = aborted('x', {});
    await expect(windUpStoppedRun(deps(), { ...e, detail: { ...e.detail, status: 'SUCCEEDED' } })).resolves.toEqual({ ignored: 'execution status SUCCEEDED' });
  });

  it("stops open jobs, frees the run's slots and fails exactly the records no step settled", async () => {
    const run = runConfig({ runId: 'stopped-1', bucket: s3.bucket });
    const jobs = new JobRecords(db.ddb, db.table);
    const limiter = new JobSlotLimiter(db.ddb, db.table);
    await s3.put(runKeys.runConfig('stopped-1'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-1'), JSON.stringify({ inputFiles: 1, inputLines: 6, blankLines: 0, valid: 6, rejected: 0, inputs: [] }));
    await planned('stopped-1', 1, 2);
    // A chunk file past the plan's count (a re-split tail) is not part of the round.
    await s3.put(runKeys.chunkInput('stopped-1', 1, 2), jsonl(['x'].map(line)));
    // Chunk 0 reconciled: a and b succeeded, c is a retry the run will never resubmit.
    await s3.put(runKeys.chunkInput('stopped-1', 1, 0), jsonl(['a', 'b', 'c'].map(line)));
    await reconciled('stopped-1', 1, 0, {
      succeeded: [
        { recordId: 'a', modelOutput: {} },
        { recordId: 'b', modelOutput: {} },
      ],
      retry: [retryRow('c')],
    });
    // Chunk 1 in flight: its job is open and holds a slot. A reconcile attempt that failed
    // left a part: in no manifest, so d is failed once, not also succeeded.
    await s3.put(runKeys.chunkInput('stopped-1', 1, 1), jsonl(['d', 'e', 'f'].map(line)));
    await s3.put(runKeys.chunkPart('stopped-1', 1, 1, 'succeeded'), jsonl([{ recordId: 'd', modelOutput: {} }]));
    await jobs.putSubmitting({ jobName: 'bb-stopped-1-r01-c00001', runId: 'stopped-1', round: 1, chunk: 1, modelId: run.modelId, taskToken: 't1' });
    await jobs.setCreated('bb-stopped-1-r01-c00001', arn('inflight0001'));
    await limiter.acquire(run.modelId, 'bb-stopped-1-r01-c00001', 5);
    // Another run's slot stays.
    await limiter.acquire(run.modelId, 'bb-other-r01-c00000', 5);
    bedrockMock.on(StopModelInvocationJobCommand).resolves({});
    // Stopped before it wrote any output: nothing of it to keep.
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Stopped' });

    const summary = await windUpStoppedRun(deps(), aborted('stopped-1', { inputs: [], runId: 'stopped-1' }));

    expect(bedrockMock.commandCalls(StopModelInvocationJobCommand).map((c) => c.args[0].input.jobIdentifier)).toEqual([arn('inflight0001')]);
    expect(await limiter.holders(run.modelId)).toEqual(['bb-other-r01-c00000']);
    expect(await jobs.openJobs('stopped-1')).toEqual([]);
    expect(summary).toMatchObject({ runId: 'stopped-1', status: 'Stopped', records: { input: 6, succeeded: 2, failed: 4, rejected: 0 }, warnings: [] });
    const failed = await s3.jsonl<{ recordId: string; error: { code: string }; attempts: number }>(runKeys.results('stopped-1', 'failed.jsonl'));
    expect(failed.map((f) => f.recordId).sort()).toEqual(['c', 'd', 'e', 'f']);
    for (const f of failed) expect(f).toMatchObject({ error: { code: 'RunStopped' }, attempts: 1 });
  });

  it('keeps what a stopped job processed: its output is reconciled, only the records without output fail RunStopped', async () => {
    const { output } = await runWithCreatedJob('stopped-keep', ['a', 'b', 'c', 'd', 'e'], 'keep00000001');
    // The job had processed a (succeeded) and b (a model error of its own) when it was stopped.
    await s3.put(output, [anthropicOutputLine('a', 3, 4), errorOutputLine('b', 400, 'max_tokens too large')].join('\n') + '\n');
    bedrockMock.on(StopModelInvocationJobCommand).resolves({});
    // Stopping, then Stopped at the second look.
    bedrockMock
      .on(GetModelInvocationJobCommand)
      .resolvesOnce({ status: 'Stopping' })
      .resolves({ jobArn: arn('keep00000001'), status: 'Stopped' });
    const waits: number[] = [];

    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async (ms) => void waits.push(ms) },
      aborted('stopped-keep', { inputs: [], runId: 'stopped-keep' }),
    );

    expect(waits).toEqual([POLL_MS]);
    expect(summary).toMatchObject({
      status: 'Stopped',
      records: { input: 5, succeeded: 1, failed: 4, rejected: 0 },
      savedFromStoppedJobs: 2,
      warnings: [],
    });
    expect((await s3.jsonl<{ recordId: string }>(runKeys.results('stopped-keep', 'results.jsonl'))).map((r) => r.recordId)).toEqual(['a']);
    const failed = await s3.jsonl<{ recordId: string; error: { code: string } }>(runKeys.results('stopped-keep', 'failed.jsonl'));
    expect(failed.map((f) => [f.recordId, f.error.code]).sort()).toEqual([
      ['b', '400'],
      ['c', 'RunStopped'],
      ['d', 'RunStopped'],
      ['e', 'RunStopped'],
    ]);
    expect(await s3.json(runKeys.chunkStats('stopped-keep', 1, 0))).toMatchObject({
      jobStatus: 'Stopped',
      succeeded: 1,
      failed: 1,
      retry: 3,
      reconciledAfterStop: true,
    });
  });

  it('keeps the output of a job that ended (its token completed) between the stop and stop-run', async () => {
    const { jobs, jobName, output } = await runWithCreatedJob('stopped-ended', ['a', 'b'], 'ended0000001');
    // job-state completed its token after the execution was stopped: it is no open job any more.
    await jobs.markTokenCompleted(jobName);
    await s3.put(output, [anthropicOutputLine('a'), anthropicOutputLine('b')].join('\n'));
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    const summary = await windUpStoppedRun(deps(), aborted('stopped-ended', { inputs: [], runId: 'stopped-ended' }));
    expect(bedrockMock.commandCalls(StopModelInvocationJobCommand)).toHaveLength(0);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 2, failed: 0, rejected: 0 }, savedFromStoppedJobs: 2, warnings: [] });
  });

  it("leaves a chunk whose reconcile still runs after the wait to that reconcile: stop-run fails its records, and never writes the chunk's stats itself", async () => {
    const { output } = await runWithCreatedJob('stopped-busy', ['a', 'b'], 'busy00000001');
    const claims = new RunClaims(db.ddb, db.table);
    await claims.claim('stopped-busy', executionArn('stopped-busy'));
    await s3.put(output, anthropicOutputLine('a'));
    // The chunk's reconcile entered its step and never leaves it within stop-run's wait.
    await claims.enterStep('stopped-busy', 'reconcile:r01-c00000', LIVE);
    bedrockMock.on(StopModelInvocationJobCommand).resolves({});
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 2 * POLL_MS, sleep: async () => undefined },
      aborted('stopped-busy', { inputs: [], runId: 'stopped-busy' }),
    );
    expect(await s3.keys(runKeys.chunkStats('stopped-busy', 1, 0))).toEqual([]);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 0, failed: 2, rejected: 0 }, savedFromStoppedJobs: 0 });
    expect((summary as { warnings: string[] }).warnings.join(' ')).toMatch(/reconcile of job bb-stopped-busy-r01-c00000 was still running/);
  });

  it("reconciles the chunk of a reconcile Lambda killed: its lease, never renewed, ends within stop-run's wait", async () => {
    const { output } = await runWithCreatedJob('stopped-killed', ['a', 'b'], 'kill00000001');
    let now = Date.now();
    const claims = new RunClaims(db.ddb, db.table, () => now);
    await claims.claim('stopped-killed', executionArn('stopped-killed'));
    await s3.put(output, [anthropicOutputLine('a'), anthropicOutputLine('b')].join('\n'));
    // The chunk's reconcile took its lease and was killed: it never renews it, nor leaves.
    await claims.enterStep('stopped-killed', 'reconcile:r01-c00000', now + 60_000);
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    const waits: number[] = [];
    const summary = await windUpStoppedRun(
      {
        ...deps(),
        claims,
        waitMs: 10 * 60_000,
        sleep: async (ms) => {
          waits.push(ms);
          now += ms;
        },
      },
      aborted('stopped-killed', { inputs: [], runId: 'stopped-killed' }),
    );
    // It waited for the lease to end (about 60 s of its 10 minutes), then reconciled the chunk.
    const waited = waits.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThanOrEqual(60_000);
    expect(waited).toBeLessThanOrEqual(60_000 + POLL_MS);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 2, failed: 0, rejected: 0 }, savedFromStoppedJobs: 2, warnings: [] });
  });

  it('fails every record of a stopped job RunStopped when the job does not end within the wait', async () => {
    await runWithCreatedJob('stopped-slow', ['a', 'b'], 'slow00000001');
    bedrockMock.on(StopModelInvocationJobCommand).resolves({});
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Stopping' });
    const waits: number[] = [];
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 3 * POLL_MS, sleep: async (ms) => void waits.push(ms) },
      aborted('stopped-slow', { inputs: [], runId: 'stopped-slow' }),
    );
    expect(waits).toHaveLength(3);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 0, failed: 2, rejected: 0 }, savedFromStoppedJobs: 0 });
    expect((summary as { warnings: string[] }).warnings.join(' ')).toMatch(/bb-stopped-slow-r01-c00000.*did not end/);
  });

  it('treats a job that is over already as nothing to stop', async () => {
    const jobs = new JobRecords(db.ddb, db.table);
    await jobs.putSubmitting({ jobName: 'bb-stopped-2-r01-c00000', runId: 'stopped-2', round: 1, chunk: 0, modelId: 'm', taskToken: 't' });
    await jobs.setCreated('bb-stopped-2-r01-c00000', arn('done00000000'));
    bedrockMock.on(StopModelInvocationJobCommand).rejects(Object.assign(new Error('terminal'), { name: 'ValidationException' }));
    const summary = await windUpStoppedRun(deps(), aborted('stopped-2', { inputs: [], runId: 'stopped-2' }));
    expect(summary).toMatchObject({ runId: 'stopped-2', status: 'Stopped' });
    expect(await jobs.openJobs('stopped-2')).toEqual([]);
  });

  it('waits for a prepare still running, then fails every record of round 1', async () => {
    const run = runConfig({ runId: 'stopped-3', bucket: s3.bucket });
    const claims = new RunClaims(db.ddb, db.table);
    await claims.claim('stopped-3', executionArn('stopped-3'));
    const lease = await claims.enterStep('stopped-3', 'prepare', LIVE);
    await s3.put(runKeys.runConfig('stopped-3'), JSON.stringify(run));
    // Prepare finishes while stop-run waits: its last write is plan.json, then it leaves its step.
    const waits: number[] = [];
    const sleep = async (ms: number) => {
      waits.push(ms);
      if (waits.length === 3) {
        await s3.put(runKeys.chunkInput('stopped-3', 1, 0), jsonl(['a', 'b'].map(line)));
        await s3.put(runKeys.workRejected('stopped-3'), jsonl([{ file: 'f', line: 3, reason: 'not valid JSON' }]));
        await s3.put(runKeys.runStats('stopped-3'), JSON.stringify({ inputFiles: 1, inputLines: 3, blankLines: 0, valid: 2, rejected: 1, inputs: [] }));
        await planned('stopped-3', 1, 1);
        await claims.leaveStep('stopped-3', lease);
      }
    };
    const summary = await windUpStoppedRun({ ...deps(), waitMs: 60_000, sleep }, aborted('stopped-3', { inputs: [], runId: 'stopped-3' }));
    expect(waits).toEqual([POLL_MS, POLL_MS, POLL_MS]);
    expect(summary).toMatchObject({ runId: 'stopped-3', status: 'Stopped', records: { input: 3, succeeded: 0, failed: 2, rejected: 1 }, warnings: [] });
    const failed = await s3.jsonl<{ recordId: string; error: { code: string } }>(runKeys.results('stopped-3', 'failed.jsonl'));
    expect(failed.map((f) => [f.recordId, f.error.code])).toEqual([
      ['a', 'RunStopped'],
      ['b', 'RunStopped'],
    ]);
  });

  it('gives up waiting for a prepare that never finishes, and says conservation is not known', async () => {
    const run = runConfig({ runId: 'stopped-4', bucket: s3.bucket });
    const claims = new RunClaims(db.ddb, db.table);
    await claims.claim('stopped-4', executionArn('stopped-4'));
    await claims.enterStep('stopped-4', 'prepare', LIVE);
    await s3.put(runKeys.runConfig('stopped-4'), JSON.stringify(run));
    const waits: number[] = [];
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 5 * POLL_MS, sleep: async (ms) => void waits.push(ms) },
      aborted('stopped-4', { inputs: [], runId: 'stopped-4' }),
    );
    expect(waits).toHaveLength(5);
    expect(summary).toMatchObject({ runId: 'stopped-4', status: 'Stopped' });
    expect((summary as { warnings: string[] }).warnings.length).toBeGreaterThan(0);
  });

  it('does not wait for a plan that no running step can write: a prepare that ended without it (its retries stopped)', async () => {
    // A Prepare whose on-demand remainder did not fit its invocation ended RemainderIncomplete;
    // the stop ended the execution before its retry. Nothing will write plan.json.
    const run = runConfig({ runId: 'stopped-6', bucket: s3.bucket });
    await s3.put(runKeys.runConfig('stopped-6'), JSON.stringify(run));
    const waits: number[] = [];
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async (ms) => void waits.push(ms) },
      aborted('stopped-6', { inputs: [], runId: 'stopped-6' }),
    );
    expect(waits).toEqual([]);
    expect(summary).toMatchObject({ runId: 'stopped-6', status: 'Stopped' });
  });

  it("fails round 1's records when Prepare ended at its on-demand remainder (remainder-ready.json, no plan) and the stop ended its retries, keeping the answers it wrote", async () => {
    const prepared = async (runId: string, startedAt: string) => {
      const run = runConfig({ runId, bucket: s3.bucket });
      await s3.put(runKeys.runConfig(runId), JSON.stringify(run));
      await s3.put(runKeys.runStats(runId), JSON.stringify({ inputFiles: 1, inputLines: 4, blankLines: 0, valid: 4, rejected: 0, inputs: [] }));
      await s3.put(runKeys.chunkInput(runId, 1, 0), jsonl(['a', 'b'].map(line)));
      await s3.put(runKeys.roundRemainder(runId, 1), jsonl(['c', 'd'].map(line)));
      await s3.put(runKeys.remainderReady(runId, 1), JSON.stringify({ chunkCount: 1, remainder: 2, startedAt }));
      // An answer the unfinished remainder wrote (no remainder-stats.json: not committed).
      await s3.put(
        runKeys.roundPart(runId, 1, 'succeeded'),
        jsonl([{ recordId: 'c', modelOutput: {}, usage: { inputTokens: 3, outputTokens: 4 }, onDemand: true }]),
      );
    };
    await prepared('stopped-ready', '2025-01-01T00:00:00.000Z');
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async () => undefined },
      aborted('stopped-ready', { inputs: [], runId: 'stopped-ready' }),
    );
    // The answer the remainder wrote (billed) is kept; the rest of the round fails RunStopped.
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 4, succeeded: 1, failed: 3, rejected: 0 }, warnings: [] });
    const failed = await s3.jsonl<{ recordId: string; error: { code: string } }>(runKeys.results('stopped-ready', 'failed.jsonl'));
    expect(failed.map((f) => [f.recordId, f.error.code]).sort()).toEqual([
      ['a', 'RunStopped'],
      ['b', 'RunStopped'],
      ['d', 'RunStopped'],
    ]);
    const results = await s3.jsonl<{ recordId: string }>(runKeys.results('stopped-ready', 'results.jsonl'));
    expect(results.map((r) => r.recordId)).toEqual(['c']);
    expect(summary).toMatchObject({ onDemandRecords: 2, tokens: { input: 3, output: 4 } });
    // A marker of another execution of the same name (long before) opens nothing.
    await prepared('stopped-ready-old', '2024-01-01T00:00:00.000Z');
    await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async () => undefined },
      aborted('stopped-ready-old', { inputs: [], runId: 'stopped-ready-old' }),
    );
    expect(await s3.text(runKeys.roundPlan('stopped-ready-old', 1))).toBeUndefined();
  });

  it('fails a held remainder HeldForNextSweep, not RunStopped, when its held file was written (the next sweep runs it)', async () => {
    // A hold Prepare wrote the held file, then died before its remainder-stats.json; the stop
    // ended its retries. The route's next sweep takes the held file: its records are held.
    const held = async (runId: string, heldFile: boolean) => {
      const run = runConfig({ runId, bucket: s3.bucket, smallRemainder: 'hold' });
      await s3.put(runKeys.runConfig(runId), JSON.stringify(run));
      await s3.put(runKeys.runStats(runId), JSON.stringify({ inputFiles: 1, inputLines: 4, blankLines: 0, valid: 4, rejected: 0, inputs: [] }));
      // Prepare wrote its chunks, remainder and marker, then (hold) the held file, and died
      // before the remainder's stats and round 1's plan.json; stop-run opens the round.
      await s3.put(runKeys.remainderReady(runId, 1), JSON.stringify({ chunkCount: 1, remainder: 2, startedAt: run.startedAt }));
      await s3.put(runKeys.chunkInput(runId, 1, 0), jsonl(['a', 'b'].map(line)));
      await s3.put(runKeys.roundRemainder(runId, 1), jsonl(['c', 'd'].map(line)));
      if (heldFile) await s3.put(runKeys.held(run.route, runId, 1), jsonl(['c', 'd'].map(line)));
      return run;
    };
    const codes = async (runId: string) =>
      (await s3.jsonl<{ recordId: string; error: { code: string; message: string } }>(runKeys.results(runId, 'failed.jsonl')))
        .map((f) => [f.recordId, f.error.code])
        .sort();
    const run = await held('stopped-held', true);
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async () => undefined },
      aborted('stopped-held', { inputs: [], runId: 'stopped-held' }),
    );
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 4, succeeded: 0, failed: 4, rejected: 0 } });
    expect(await codes('stopped-held')).toEqual([
      ['a', 'RunStopped'],
      ['b', 'RunStopped'],
      ['c', 'HeldForNextSweep'],
      ['d', 'HeldForNextSweep'],
    ]);
    const failed = await s3.jsonl<{ recordId: string; error: { message: string } }>(runKeys.results('stopped-held', 'failed.jsonl'));
    expect(failed.find((f) => f.recordId === 'c')?.error.message).toContain(`s3://${s3.bucket}/${runKeys.held(run.route, 'stopped-held', 1)}`);
    // What a step that outlived the stop commits for the remainder later is not taken.
    expect(await s3.json(runKeys.stoppedManifest('stopped-held'))).toMatchObject({ round: 1, unfinishedRemainder: true });
    // Without the held file, nothing will run them: RunStopped.
    await held('stopped-unheld', false);
    await windUpStoppedRun({ ...deps(), waitMs: 60_000, sleep: async () => undefined }, aborted('stopped-unheld', { inputs: [], runId: 'stopped-unheld' }));
    expect((await codes('stopped-unheld')).map(([, code]) => code)).toEqual(['RunStopped', 'RunStopped', 'RunStopped', 'RunStopped']);
  });

  it('keeps the on-demand answers of an EndRound that ended at its remainder: the next round is opened from its remainder-ready.json', async () => {
    const run = runConfig({ runId: 'stopped-next', bucket: s3.bucket, maxAttempts: 3 });
    await s3.put(runKeys.runConfig('stopped-next'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-next'), JSON.stringify({ inputFiles: 1, inputLines: 3, blankLines: 0, valid: 3, rejected: 0, inputs: [] }));
    await planned('stopped-next', 1, 1);
    await s3.put(runKeys.chunkInput('stopped-next', 1, 0), jsonl(['a', 'b', 'c'].map(line)));
    await reconciled('stopped-next', 1, 0, { succeeded: [{ recordId: 'a', modelOutput: {} }], retry: ['b', 'c'].map(retryRow) });
    // EndRound wrote round 2 (all remainder), answered b, then ended RemainderIncomplete.
    await s3.put(runKeys.roundRemainder('stopped-next', 2), jsonl(['b', 'c'].map(line)));
    await s3.put(runKeys.remainderReady('stopped-next', 2), JSON.stringify({ chunkCount: 0, remainder: 2, startedAt: run.startedAt }));
    await s3.put(
      runKeys.roundPart('stopped-next', 2, 'succeeded'),
      jsonl([{ recordId: 'b', modelOutput: {}, usage: { inputTokens: 3, outputTokens: 4 }, onDemand: true }]),
    );
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async () => undefined },
      aborted('stopped-next', { inputs: [], runId: 'stopped-next' }),
    );
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 3, succeeded: 2, failed: 1, rejected: 0 }, warnings: [] });
    const results = await s3.jsonl<{ recordId: string }>(runKeys.results('stopped-next', 'results.jsonl'));
    expect(results.map((r) => r.recordId).sort()).toEqual(['a', 'b']);
    const failed = await s3.jsonl<{ recordId: string; error: { code: string }; attempts: number }>(runKeys.results('stopped-next', 'failed.jsonl'));
    expect(failed.map((f) => [f.recordId, f.error.code, f.attempts])).toEqual([['c', 'RunStopped', 2]]);
  });

  it('waits for an end-round still running, then fails the records of the round it opened', async () => {
    const run = runConfig({ runId: 'stopped-5', bucket: s3.bucket, maxAttempts: 3 });
    const claims = new RunClaims(db.ddb, db.table);
    await claims.claim('stopped-5', executionArn('stopped-5'));
    const lease = await claims.enterStep('stopped-5', 'end-round:r01', LIVE);
    await s3.put(runKeys.runConfig('stopped-5'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-5'), JSON.stringify({ inputFiles: 1, inputLines: 3, blankLines: 0, valid: 3, rejected: 0, inputs: [] }));
    await planned('stopped-5', 1, 1);
    await s3.put(runKeys.chunkInput('stopped-5', 1, 0), jsonl(['a', 'b', 'c'].map(line)));
    await reconciled('stopped-5', 1, 0, { succeeded: [{ recordId: 'a', modelOutput: {} }], retry: ['b', 'c'].map(retryRow) });
    // End-round opens round 2 while stop-run waits.
    let looks = 0;
    const sleep = async () => {
      looks += 1;
      if (looks === 2) {
        await s3.put(runKeys.chunkInput('stopped-5', 2, 0), jsonl(['b', 'c'].map(line)));
        await planned('stopped-5', 2, 1);
        await claims.leaveStep('stopped-5', lease);
      }
    };
    const summary = await windUpStoppedRun({ ...deps(), waitMs: 60_000, sleep }, aborted('stopped-5', { inputs: [], runId: 'stopped-5' }));
    expect(looks).toBe(2);
    // b and c once each, failed in round 2: not twice (round 1's retries and round 2's chunk).
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 3, succeeded: 1, failed: 2, rejected: 0 }, warnings: [] });
    const failed = await s3.jsonl<{ recordId: string; attempts: number }>(runKeys.results('stopped-5', 'failed.jsonl'));
    expect(failed.map((f) => [f.recordId, f.attempts])).toEqual([
      ['b', 2],
      ['c', 2],
    ]);
  });

  it('fails only the retries a reconciled chunk lists: a retry part a failed attempt left is not read', async () => {
    const run = runConfig({ runId: 'stopped-7', bucket: s3.bucket });
    await s3.put(runKeys.runConfig('stopped-7'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-7'), JSON.stringify({ inputFiles: 1, inputLines: 3, blankLines: 0, valid: 3, rejected: 0, inputs: [] }));
    await planned('stopped-7', 1, 2);
    await s3.put(runKeys.chunkInput('stopped-7', 1, 0), jsonl(['a', 'b'].map(line)));
    // The first attempt saw the job stopped and retried b; the one that finished saw it complete.
    await s3.put(runKeys.chunkPart('stopped-7', 1, 0, 'retry'), jsonl([retryRow('b')]));
    await reconciled('stopped-7', 1, 0, {
      succeeded: [
        { recordId: 'a', modelOutput: {} },
        { recordId: 'b', modelOutput: {} },
      ],
    });
    await s3.put(runKeys.chunkInput('stopped-7', 1, 1), jsonl(['c'].map(line)));
    let looks = 0;
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async () => void (looks += 1) },
      aborted('stopped-7', { inputs: [], runId: 'stopped-7' }),
    );
    expect(looks).toBe(0);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 3, succeeded: 2, failed: 1, rejected: 0 }, warnings: [] });
    expect((await s3.jsonl<{ recordId: string }>(runKeys.results('stopped-7', 'failed.jsonl'))).map((f) => f.recordId)).toEqual(['c']);
  });

  it('counts a chunk once when its reconcile (which outlived the stop) commits after stop-run failed its records', async () => {
    const run = runConfig({ runId: 'stopped-8', bucket: s3.bucket });
    await s3.put(runKeys.runConfig('stopped-8'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-8'), JSON.stringify({ inputFiles: 1, inputLines: 2, blankLines: 0, valid: 2, rejected: 0, inputs: [] }));
    await planned('stopped-8', 1, 2);
    await s3.put(runKeys.chunkInput('stopped-8', 1, 0), jsonl(['a'].map(line)));
    await reconciled('stopped-8', 1, 0, { succeeded: [{ recordId: 'a', modelOutput: {} }] });
    await s3.put(runKeys.chunkInput('stopped-8', 1, 1), jsonl(['b'].map(line)));
    // Chunk 1's reconcile commits just after stop-run wrote stopped.jsonl (b failed RunStopped).
    const client = new S3Client(localS3ClientConfig(s3.endpoint));
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        const key = (args.input as { Key?: string }).Key;
        if (context.commandName === 'PutObjectCommand' && key === runKeys.stopped('stopped-8')) {
          await reconciled('stopped-8', 1, 1, { succeeded: [{ recordId: 'b', modelOutput: {} }] });
        }
        return out;
      },
      { step: 'initialize' },
    );
    const summary = await windUpStoppedRun({ ...deps(), s3: client }, aborted('stopped-8', { inputs: [], runId: 'stopped-8' }));
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 1, failed: 1, rejected: 0 }, warnings: [] });
    expect((await s3.jsonl<{ recordId: string }>(runKeys.results('stopped-8', 'results.jsonl'))).map((r) => r.recordId)).toEqual(['a']);
    client.destroy();
  });

  it('does not wait when the last round is still in its jobs (no end-round can be running)', async () => {
    const run = runConfig({ runId: 'stopped-6', bucket: s3.bucket });
    await s3.put(runKeys.runConfig('stopped-6'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-6'), JSON.stringify({ inputFiles: 1, inputLines: 2, blankLines: 0, valid: 2, rejected: 0, inputs: [] }));
    await planned('stopped-6', 1, 2);
    await s3.put(runKeys.chunkInput('stopped-6', 1, 0), jsonl(['a'].map(line)));
    await s3.put(runKeys.chunkInput('stopped-6', 1, 1), jsonl(['b'].map(line)));
    await reconciled('stopped-6', 1, 0, { retry: [retryRow('a')] });
    let looks = 0;
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 60_000, sleep: async () => void (looks += 1) },
      aborted('stopped-6', { inputs: [], runId: 'stopped-6' }),
    );
    expect(looks).toBe(0);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 0, failed: 2, rejected: 0 }, warnings: [] });
  });
  it("touches nothing of a run another execution owns (a reused runId's execution was stopped)", async () => {
    const run = runConfig({ runId: 'owned-run', bucket: s3.bucket });
    const claims = new RunClaims(db.ddb, db.table);
    const jobs = new JobRecords(db.ddb, db.table);
    const limiter = new JobSlotLimiter(db.ddb, db.table);
    await claims.claim('owned-run', executionArn('owner'));
    await s3.put(runKeys.runConfig('owned-run'), JSON.stringify(run));
    await jobs.putSubmitting({ jobName: 'bb-owned-run-r01-c00000', runId: 'owned-run', round: 1, chunk: 0, modelId: run.modelId, taskToken: 't' });
    await jobs.setCreated('bb-owned-run-r01-c00000', arn('owned000000a'));
    await limiter.acquire(run.modelId, 'bb-owned-run-r01-c00000', 5);

    const outcome = await windUpStoppedRun(deps(), aborted('intruder', { inputs: ['s3://b/k.jsonl'], runId: 'owned-run' }));
    expect(outcome).toEqual({ ignored: 'run owned-run is owned by execution owner, not by the stopped execution intruder' });
    expect(bedrockMock.commandCalls(StopModelInvocationJobCommand)).toHaveLength(0);
    expect(await limiter.holders(run.modelId)).toContain('bb-owned-run-r01-c00000');
    expect((await jobs.openJobs('owned-run')).map((j) => j.jobName)).toEqual(['bb-owned-run-r01-c00000']);
    expect(await claims.get('owned-run')).not.toHaveProperty('stopRequestedAt');
    expect(await s3.keys(runKeys.results('owned-run', 'summary.json'))).toEqual([]);
    expect(eventsMock.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('sets the stop mark first, then waits for steps in flight, so a reconcile that was running is not also failed', async () => {
    const run = runConfig({ runId: 'stopped-mark', bucket: s3.bucket });
    const claims = new RunClaims(db.ddb, db.table);
    await claims.claim('stopped-mark', executionArn('stopped-mark'));
    await s3.put(runKeys.runConfig('stopped-mark'), JSON.stringify(run));
    await s3.put(runKeys.runStats('stopped-mark'), JSON.stringify({ inputFiles: 1, inputLines: 2, blankLines: 0, valid: 2, rejected: 0, inputs: [] }));
    await planned('stopped-mark', 1, 2);
    await s3.put(runKeys.chunkInput('stopped-mark', 1, 0), jsonl(['a'].map(line)));
    await s3.put(runKeys.chunkInput('stopped-mark', 1, 1), jsonl(['b'].map(line)));
    // Chunk 0's reconcile is running when the stop comes; it finishes while stop-run waits.
    const lease = await claims.enterStep('stopped-mark', 'reconcile:r01-c00000', LIVE);
    let looks = 0;
    const sleep = async () => {
      looks += 1;
      // The mark is set before the first look: no new step may start now.
      await expect(claims.enterStep('stopped-mark', 'submit:r01-c00001', LIVE)).rejects.toBeInstanceOf(RunStopping);
      await reconciled('stopped-mark', 1, 0, { succeeded: [{ recordId: 'a', modelOutput: {} }] });
      await claims.leaveStep('stopped-mark', lease);
    };
    const summary = await windUpStoppedRun({ ...deps(), waitMs: 60_000, sleep }, aborted('stopped-mark', { inputs: [], runId: 'stopped-mark' }));
    expect(looks).toBe(1);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 2, succeeded: 1, failed: 1, rejected: 0 }, warnings: [] });
    const failed = await s3.jsonl<{ recordId: string }>(runKeys.results('stopped-mark', 'failed.jsonl'));
    expect(failed.map((f) => f.recordId)).toEqual(['b']);
  });
  it('shares one wait between the steps in flight and a prepare that never finishes (the sum stays within waitMs)', async () => {
    const run = runConfig({ runId: 'stopped-budget', bucket: s3.bucket });
    const claims = new RunClaims(db.ddb, db.table);
    await claims.claim('stopped-budget', executionArn('stopped-budget'));
    await claims.enterStep('stopped-budget', 'prepare', LIVE);
    await s3.put(runKeys.runConfig('stopped-budget'), JSON.stringify(run));
    const waits: number[] = [];
    const summary = await windUpStoppedRun(
      { ...deps(), waitMs: 6 * POLL_MS, sleep: async (ms) => void waits.push(ms) },
      aborted('stopped-budget', { inputs: [], runId: 'stopped-budget' }),
    );
    expect(waits).toHaveLength(6);
    expect(summary).toMatchObject({ runId: 'stopped-budget', status: 'Stopped' });
  });
});
