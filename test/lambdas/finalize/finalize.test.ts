import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { finalizeRun, type FinalizeDeps, type FinalizeEvent, type RunSummary } from '../../../lambdas/finalize/finalize';
import { runKeys, type RunConfig } from '../../../lambdas/shared/contracts';
import type { ChunkStats, PrepareStats, RemainderStats } from '../../../lambdas/shared/outcomes';
import { runIdFromExecutionName } from '../../../lambdas/shared/run-input';
import { ANTHROPIC_MODEL, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';
import { RunClaims } from '../../../lambdas/shared/run-claims';

const eventsMock = mockClient(EventBridgeClient);
let s3: TestS3;
let dynamo: TestDynamo;
let claims: RunClaims;
const arnOf = (executionName: string) => `arn:aws:states:us-east-1:123456789012:execution:Workflow:${executionName}`;

beforeAll(async () => {
  s3 = await startTestS3();
  dynamo = await startTestDynamo();
  claims = new RunClaims(dynamo.ddb, dynamo.table);
});
afterAll(async () => {
  eventsMock.restore();
  await s3.stop();
  await dynamo.stop();
});

/** The Finalize event of the execution that owns `run` (claimed here, as its Prepare would). */
async function finished(run: RunConfig): Promise<FinalizeEvent> {
  await claims.claim(run.runId, arnOf(run.runId));
  return { outcome: 'Finished', run, executionArn: arnOf(run.runId) };
}
beforeEach(() => {
  eventsMock.reset();
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
});

function deps(): FinalizeDeps {
  return { s3: s3.client, events: new EventBridgeClient({ region: 'us-east-1' }), bucket: s3.bucket, eventBusName: 'runs-bus', claims };
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');
const ok = (id: string, onDemand = false) => ({ recordId: id, modelOutput: { text: id }, usage: { inputTokens: 1, outputTokens: 1 }, ...(onDemand ? { onDemand: true } : {}) });
const bad = (id: string, attempts: number, code = '400') => ({ recordId: id, error: { code, message: 'no' }, attempts });

function chunkStats(round: number, chunk: number, s: Partial<ChunkStats>): ChunkStats {
  return { round, chunk, jobStatus: 'Completed', records: 0, succeeded: 0, failed: 0, retry: 0, tokens: { input: 0, output: 0 }, unknownOutputRecords: 0, duplicateOutputRecords: 0, ...s };
}

async function prepared(runId: string, inputLines: number, inputs = [`s3://${'bucket'}/inbox/default/a.jsonl`]) {
  const stats: PrepareStats = { inputFiles: inputs.length, inputLines, blankLines: 0, valid: 0, rejected: 0, inputs };
  await s3.put(runKeys.runStats(runId), JSON.stringify(stats));
}

const putEntries = () => eventsMock.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries);

describe('finalizeRun (Finished)', () => {
  let run: RunConfig;
  let summary: RunSummary;
  let entries: ReturnType<typeof putEntries>;

  beforeAll(async () => {
    run = runConfig({ runId: 'fin-1', route: 'tickets', bucket: s3.bucket, maxAttempts: 2 });
    await prepared('fin-1', 10);
    await s3.put(runKeys.workRejected('fin-1'), jsonl([{ file: 'f', line: 3, reason: 'not valid JSON' }, { file: 'f', line: 9, recordId: 'r9', reason: 'duplicate' }]));
    await s3.put(runKeys.roundTail('fin-1', 1, 0), jsonl([{ recordId: 'ignored' }]));
    await s3.put(runKeys.chunkInput('fin-1', 1, 0), jsonl([{ recordId: 'ignored' }]));
    await s3.put(runKeys.chunkPart('fin-1', 1, 0, 'succeeded'), jsonl([ok('a'), ok('b'), ok('c')]));
    await s3.put(runKeys.chunkPart('fin-1', 1, 0, 'failed'), jsonl([bad('d', 1)]));
    await s3.put(runKeys.chunkPart('fin-1', 1, 0, 'retry'), jsonl([{ recordId: 'e' }, { recordId: 'f' }, { recordId: 'g' }]));
    await s3.put(runKeys.chunkStats('fin-1', 1, 0), JSON.stringify(chunkStats(1, 0, { jobStatus: 'Completed', tokens: { input: 900_000, output: 60_000 } })));
    await s3.put(runKeys.chunkPart('fin-1', 1, 1, 'succeeded'), jsonl([ok('h')]));
    await s3.put(runKeys.chunkStats('fin-1', 1, 1), JSON.stringify(chunkStats(1, 1, { jobStatus: 'PartiallyCompleted', tokens: { input: 100_000, output: 40_000 }, unknownOutputRecords: 1, duplicateOutputRecords: 2 })));
    await s3.put(runKeys.chunkStats('fin-1', 2, 0), JSON.stringify(chunkStats(2, 0, { jobStatus: 'PartiallyCompleted' })));
    await s3.put(runKeys.roundPart('fin-1', 2, 'succeeded'), jsonl([ok('e', true)]));
    const rs: RemainderStats = { round: 2, policy: 'on-demand', records: 1, succeeded: 1, failed: 0, held: 0, onDemandRecords: 1, tokens: { input: 100_000, output: 0 } };
    await s3.put(runKeys.remainderStats('fin-1', 2), JSON.stringify(rs));
    await s3.put(runKeys.exhausted('fin-1', 2), jsonl([bad('f', 2, '429'), bad('g', 2, 'MissingFromOutput')]));
    // Another run's work and a run whose id is a prefix of this one: not part of this run.
    await s3.put(runKeys.chunkPart('fin-10', 1, 0, 'succeeded'), jsonl([ok('other')]));

    eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
    summary = await finalizeRun(deps(), await finished(run));
    entries = putEntries();
  });

  it('writes results, failed and rejected from every part, conserving records', async () => {
    expect((await s3.jsonl<{ recordId: string }>(runKeys.results('fin-1', 'results.jsonl'))).map((r) => r.recordId).sort()).toEqual(['a', 'b', 'c', 'e', 'h']);
    expect(await s3.jsonl(runKeys.results('fin-1', 'failed.jsonl'))).toEqual([bad('d', 1), bad('f', 2, '429'), bad('g', 2, 'MissingFromOutput')]);
    expect(await s3.jsonl(runKeys.results('fin-1', 'rejected.jsonl'))).toEqual([
      { file: 'f', line: 3, reason: 'not valid JSON' },
      { file: 'f', line: 9, recordId: 'r9', reason: 'duplicate' },
    ]);
    expect(summary.records).toEqual({ input: 10, succeeded: 5, failed: 3, rejected: 2 });
    expect(summary.records.input).toBe(summary.records.succeeded + summary.records.failed + summary.records.rejected);
  });

  it('summarizes the run', () => {
    expect(summary).toEqual({
      runId: 'fin-1',
      route: 'tickets',
      modelId: ANTHROPIC_MODEL,
      startedAt: run.startedAt,
      status: 'CompletedWithFailures',
      records: { input: 10, succeeded: 5, failed: 3, rejected: 2 },
      jobs: { Completed: 1, PartiallyCompleted: 2 },
      rounds: 2,
      onDemandRecords: 1,
      tokens: { input: 1_100_000, output: 100_000 },
      // anthropic: $0.00025 in / $0.00125 out per 1k on demand, half in batch.
      cost: { batchUsd: 0.1875, onDemandUsd: 0.025, allOnDemandUsd: 0.4 },
      finishedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      inputs: ['s3://bucket/inbox/default/a.jsonl'],
      inputFiles: 1,
      outputs: {
        results: [`s3://${s3.bucket}/results/fin-1/results.jsonl`],
        failed: `s3://${s3.bucket}/results/fin-1/failed.jsonl`,
        rejected: `s3://${s3.bucket}/results/fin-1/rejected.jsonl`,
      },
      warnings: [
        "1 job output line(s) had a recordId not in their job's input, or no recordId; ignored",
        '2 job output line(s) repeated a recordId; counted once',
      ],
    });
    expect(Date.parse(summary.finishedAt)).toBeGreaterThanOrEqual(Date.parse(run.startedAt));
  });

  it('writes summary.json under results/<runId>/', async () => {
    const text = (await s3.text(runKeys.results('fin-1', 'summary.json')))!;
    expect(JSON.parse(text)).toEqual(summary);
    expect(text).toContain('\n  "runId": "fin-1"');
  });

  it("puts one 'Batch Run Completed' event from 'bedrock-batch' with the summary", () => {
    expect(entries).toEqual([[{ Source: 'bedrock-batch', DetailType: 'Batch Run Completed', Detail: JSON.stringify(summary), EventBusName: 'runs-bus' }]]);
  });
});

describe('finalizeRun status and warnings', () => {
  it('is Succeeded when every record succeeded', async () => {
    const run = runConfig({ runId: 'fin-ok', bucket: s3.bucket });
    await prepared('fin-ok', 2);
    await s3.put(runKeys.chunkPart('fin-ok', 1, 0, 'succeeded'), jsonl([ok('a'), ok('b')]));
    await s3.put(runKeys.chunkStats('fin-ok', 1, 0), JSON.stringify(chunkStats(1, 0, {})));
    const summary = await finalizeRun(deps(), await finished(run));
    expect(summary).toMatchObject({ status: 'Succeeded', records: { input: 2, succeeded: 2, failed: 0, rejected: 0 }, jobs: { Completed: 1 }, rounds: 1, warnings: [] });
    expect(await s3.text(runKeys.results('fin-ok', 'failed.jsonl'))).toBe('');
    expect(await s3.text(runKeys.results('fin-ok', 'rejected.jsonl'))).toBe('');
  });

  it('warns and reports CompletedWithFailures when records went missing (conservation broken)', async () => {
    const run = runConfig({ runId: 'fin-lost', bucket: s3.bucket });
    await prepared('fin-lost', 3);
    await s3.put(runKeys.chunkPart('fin-lost', 1, 0, 'succeeded'), jsonl([ok('a'), ok('b')]));
    const summary = await finalizeRun(deps(), await finished(run));
    expect(summary.status).toBe('CompletedWithFailures');
    expect(summary.warnings).toEqual(['conservation broken: 3 input lines but 2 succeeded + 0 failed + 0 rejected']);
  });

  it('splits results larger than the part size into numbered parts of bounded size, no line split', async () => {
    const run = runConfig({ runId: 'fin-parts', bucket: s3.bucket });
    await prepared('fin-parts', 7);
    const rows = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => ok(id));
    await s3.put(runKeys.chunkPart('fin-parts', 1, 0, 'succeeded'), jsonl(rows.slice(0, 4)));
    await s3.put(runKeys.chunkPart('fin-parts', 1, 1, 'succeeded'), jsonl(rows.slice(4)));
    const lineBytes = JSON.stringify(rows[0]).length + 1;
    const summary = await finalizeRun({ ...deps(), resultsPartMaxBytes: lineBytes * 3 }, await finished(run));
    expect(summary.records.succeeded).toBe(7);
    expect(summary.outputs.results).toEqual([1, 2, 3].map((n) => `s3://${s3.bucket}/results/fin-parts/results-0000${n}.jsonl`));
    const parts = await Promise.all([1, 2, 3].map((n) => s3.jsonl<{ recordId: string }>(runKeys.resultsPart('fin-parts', n))));
    expect(parts.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(parts.flat().map((r) => r.recordId).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(await s3.text(runKeys.results('fin-parts', 'results.jsonl'))).toBeUndefined();
  });

  it('lists at most 100 input files in the summary and counts them all', async () => {
    const run = runConfig({ runId: 'fin-many', bucket: s3.bucket });
    const inputs = Array.from({ length: 150 }, (_, i) => `s3://bucket/inbox/default/f${i}.jsonl`);
    await prepared('fin-many', 0, inputs);
    const summary = await finalizeRun(deps(), await finished(run));
    expect(summary.inputFiles).toBe(150);
    expect(summary.inputs).toEqual(inputs.slice(0, 100));
  });

  it('counts rounds from the work layout even when the run id looks like a round label', async () => {
    const run = runConfig({ runId: 'r7', bucket: s3.bucket });
    await prepared('r7', 1);
    await s3.put(runKeys.chunkPart('r7', 1, 0, 'succeeded'), jsonl([ok('a')]));
    expect((await finalizeRun(deps(), await finished(run))).rounds).toBe(1);
  });
});

describe('finalizeRun (Failed)', () => {
  it('summarizes a run that failed before prepare produced a run config', async () => {
    const executionName = 'Console run: 2025/01/01 with an odd name';
    const cause = JSON.stringify({ errorType: 'InvalidRunInput', errorMessage: 'inputs must be a non-empty array of s3:// URIs', trace: [] });
    const summary = await finalizeRun(deps(), { outcome: 'Failed', executionName, executionArn: arnOf(executionName), state: { error: { Error: 'InvalidRunInput', Cause: cause } } });
    const runId = runIdFromExecutionName(executionName);
    expect(summary).toEqual({
      runId,
      status: 'Failed',
      records: { input: 0, succeeded: 0, failed: 0, rejected: 0 },
      jobs: {},
      rounds: 0,
      onDemandRecords: 0,
      tokens: { input: 0, output: 0 },
      cost: { batchUsd: 0, onDemandUsd: 0, allOnDemandUsd: 0 },
      finishedAt: expect.any(String),
      inputs: [],
      inputFiles: 0,
      outputs: {
        results: [`s3://${s3.bucket}/results/${runId}/results.jsonl`],
        failed: `s3://${s3.bucket}/results/${runId}/failed.jsonl`,
        rejected: `s3://${s3.bucket}/results/${runId}/rejected.jsonl`,
      },
      warnings: [],
      error: { error: 'InvalidRunInput', cause: 'inputs must be a non-empty array of s3:// URIs' },
    });
    expect(summary).not.toHaveProperty('modelId');
    expect(await s3.json(runKeys.results(runId, 'summary.json'))).toEqual(summary);
    expect(putEntries()).toEqual([[expect.objectContaining({ Source: 'bedrock-batch', DetailType: 'Batch Run Completed', Detail: JSON.stringify(summary) })]]);
  });

  it("uses the input's run id when it is valid, and keeps a cause that is not JSON", async () => {
    const summary = await finalizeRun(deps(), { outcome: 'Failed', executionName: 'exec', executionArn: arnOf('exec'), state: { runId: 'given-id', error: { Error: 'States.Timeout', Cause: 'plain text' } } });
    expect(summary.runId).toBe('given-id');
    expect(summary.error).toEqual({ error: 'States.Timeout', cause: 'plain text' });
    const unnamed = await finalizeRun(deps(), { outcome: 'Failed', executionName: 'exec-2', executionArn: arnOf('exec-2'), state: { runId: 'bad id!' } });
    expect(unnamed.runId).toBe('exec-2');
    expect(unnamed.error).toEqual({ error: 'Unknown', cause: '' });
  });

  it('reports what a run that failed midway finished, without a conservation warning', async () => {
    const run = runConfig({ runId: 'fin-mid', bucket: s3.bucket });
    await prepared('fin-mid', 4);
    await s3.put(runKeys.chunkPart('fin-mid', 1, 0, 'succeeded'), jsonl([ok('a')]));
    const summary = await finalizeRun(deps(), { outcome: 'Failed', executionName: 'fin-mid', executionArn: arnOf('fin-mid'), state: { run, error: { Error: 'Lambda.Unknown', Cause: '{"errorMessage":"boom"}' } } });
    expect(summary).toMatchObject({ runId: 'fin-mid', status: 'Failed', modelId: run.modelId, route: 'default', records: { input: 4, succeeded: 1, failed: 0, rejected: 0 }, warnings: [], error: { error: 'Lambda.Unknown', cause: 'boom' } });
  });
  it("writes and announces nothing of a run another execution owns (a reused runId, a forged resume)", async () => {
    const run = runConfig({ runId: 'fin-owned', bucket: s3.bucket });
    await prepared('fin-owned', 1);
    await s3.put(runKeys.chunkPart('fin-owned', 1, 0, 'succeeded'), jsonl([ok('a')]));
    const owners = await finalizeRun(deps(), await finished(run));
    eventsMock.resetHistory();

    const summary = await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'intruder',
      executionArn: arnOf('intruder'),
      state: { runId: 'fin-owned', error: { Error: 'InvalidRunInput', Cause: 'runId fin-owned is already used by execution fin-owned' } },
    });
    expect(summary).toMatchObject({ runId: 'fin-owned', status: 'Failed', warnings: ['run fin-owned is owned by execution fin-owned: this execution (intruder) wrote nothing of it'] });
    expect(await s3.json(runKeys.results('fin-owned', 'summary.json'))).toEqual(owners);
    expect(putEntries()).toEqual([]);
    // The same through a forged resume's run.
    await finalizeRun(deps(), { outcome: 'Failed', executionName: 'intruder-2', executionArn: arnOf('intruder-2'), state: { resume: { run }, error: { Error: 'InvalidRunInput' } } });
    expect(await s3.json(runKeys.results('fin-owned', 'summary.json'))).toEqual(owners);
    expect(putEntries()).toEqual([]);
    // A Finished from an execution that does not own the run is refused outright.
    await expect(finalizeRun(deps(), { outcome: 'Finished', run, executionArn: arnOf('intruder') })).rejects.toThrow('run fin-owned is not owned by execution intruder: it may not finalize it');
  });

  it('claims an unclaimed run id for the failed execution, so a later run cannot take its id', async () => {
    await finalizeRun(deps(), { outcome: 'Failed', executionName: 'early-fail', executionArn: arnOf('early-fail'), state: { runId: 'never-prepared', error: { Error: 'InvalidRunInput' } } });
    expect(await claims.get('never-prepared')).toMatchObject({ owner: arnOf('early-fail') });
    expect(await s3.json(runKeys.results('never-prepared', 'summary.json'))).toMatchObject({ status: 'Failed' });
  });
});
