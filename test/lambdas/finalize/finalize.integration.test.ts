import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { finalizeRun, type FinalizeDeps, type FinalizeEvent, type RunSummary } from '../../../lambdas/finalize/finalize';
import { runKeys, type RunConfig } from '../../../lambdas/shared/contracts';
import type { ChunkStats, PartFile, PrepareStats, RemainderStats, RoundPlan } from '../../../lambdas/shared/outcomes';
import { runIdFromExecutionName } from '../../../lambdas/shared/run-input';
import { crashingS3, SimulatedCrash } from '../support/crashing-s3';
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
const ok = (id: string, onDemand = false) => ({
  recordId: id,
  modelOutput: { text: id },
  usage: { inputTokens: 1, outputTokens: 1 },
  ...(onDemand ? { onDemand: true } : {}),
});
const bad = (id: string, attempts: number, code = '400') => ({ recordId: id, error: { code, message: 'no' }, attempts });

function chunkStats(round: number, chunk: number, s: Partial<ChunkStats>): ChunkStats {
  return {
    round,
    chunk,
    jobStatus: 'Completed',
    records: 0,
    succeeded: 0,
    failed: 0,
    retry: 0,
    tokens: { input: 0, output: 0 },
    unknownOutputRecords: 0,
    duplicateOutputRecords: 0,
    parts: [],
    ...s,
  };
}

/** Writes a part and returns its manifest entry. */
async function part(kind: PartFile['kind'], key: string, rows: unknown[]): Promise<PartFile> {
  const body = jsonl(rows);
  await s3.put(key, body);
  return { kind, key, lines: rows.length, bytes: Buffer.byteLength(body) };
}

/** A reconciled chunk: its parts of `rows` and the `stats.json` listing them. */
async function reconciled(
  runId: string,
  round: number,
  chunk: number,
  rows: Partial<Record<'succeeded' | 'failed' | 'retry', unknown[]>>,
  s: Partial<ChunkStats> = {},
) {
  const parts: PartFile[] = [];
  for (const kind of ['succeeded', 'failed', 'retry'] as const) {
    const these = rows[kind];
    if (these) parts.push(await part(kind, runKeys.chunkPart(runId, round, chunk, kind), these));
  }
  await s3.put(runKeys.chunkStats(runId, round, chunk), JSON.stringify(chunkStats(round, chunk, { ...s, parts })));
}

/** An opened round's plan.json. */
async function planned(runId: string, round: number, chunkCount: number, remainder = 0) {
  await s3.put(runKeys.roundPlan(runId, round), JSON.stringify({ chunkCount, remainder } satisfies RoundPlan));
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
    await s3.put(
      runKeys.workRejected('fin-1'),
      jsonl([
        { file: 'f', line: 3, reason: 'not valid JSON' },
        { file: 'f', line: 9, recordId: 'r9', reason: 'duplicate' },
      ]),
    );
    await s3.put(runKeys.roundTail('fin-1', 1, 0), jsonl([{ recordId: 'ignored' }]));
    await s3.put(runKeys.chunkInput('fin-1', 1, 0), jsonl([{ recordId: 'ignored' }]));
    await planned('fin-1', 1, 2);
    await reconciled(
      'fin-1',
      1,
      0,
      { succeeded: [ok('a'), ok('b'), ok('c')], failed: [bad('d', 1)], retry: [{ recordId: 'e' }, { recordId: 'f' }, { recordId: 'g' }] },
      { jobStatus: 'Completed', tokens: { input: 900_000, output: 60_000 } },
    );
    await reconciled(
      'fin-1',
      1,
      1,
      { succeeded: [ok('h')] },
      { jobStatus: 'PartiallyCompleted', tokens: { input: 100_000, output: 40_000 }, unknownOutputRecords: 1, duplicateOutputRecords: 2 },
    );
    // Left by a failed attempt of chunk 1's reconcile: in no manifest, so not read.
    await s3.put(runKeys.chunkPart('fin-1', 1, 1, 'failed'), jsonl([bad('h', 1)]));
    await planned('fin-1', 2, 1, 1);
    await reconciled('fin-1', 2, 0, {}, { jobStatus: 'PartiallyCompleted' });
    const rs: RemainderStats = {
      round: 2,
      policy: 'on-demand',
      records: 1,
      succeeded: 1,
      failed: 0,
      held: 0,
      onDemandRecords: 1,
      // Its one record stopped at max_tokens.
      truncated: 1,
      tokens: { input: 100_000, output: 0 },
      parts: [await part('succeeded', runKeys.roundPart('fin-1', 2, 'succeeded'), [ok('e', true)])],
    };
    await s3.put(runKeys.remainderStats('fin-1', 2), JSON.stringify(rs));
    // A chunk stats file past the plan's count: not part of the round.
    await reconciled('fin-1', 2, 1, { succeeded: [ok('zz')] });
    await s3.put(runKeys.exhausted('fin-1', 2), jsonl([bad('f', 2, '429'), bad('g', 2, 'MissingFromOutput')]));
    // Another run's work and a run whose id is a prefix of this one: not part of this run.
    await planned('fin-10', 1, 1);
    await reconciled('fin-10', 1, 0, { succeeded: [ok('other')] });

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
      truncated: 1,
      tokens: { input: 1_100_000, output: 100_000 },
      // Claude 3 Haiku: $0.25 in / $1.25 out per million on demand, $0.125 / $0.625 in batch.
      // batch: 1.0 M × 0.125 + 0.1 M × 0.625 = 0.125 + 0.0625; on demand: 0.1 M × 0.25;
      // all on demand: 1.1 M × 0.25 + 0.1 M × 1.25 = 0.275 + 0.125.
      cost: expect.objectContaining({ currency: 'USD', batchUsd: 0.1875, onDemandUsd: 0.025, allOnDemandUsd: 0.4, estimated: false, model: ANTHROPIC_MODEL }),
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
    await planned('fin-ok', 1, 1);
    await reconciled('fin-ok', 1, 0, { succeeded: [ok('a'), ok('b')] });
    const summary = await finalizeRun(deps(), await finished(run));
    expect(summary).toMatchObject({
      status: 'Succeeded',
      records: { input: 2, succeeded: 2, failed: 0, rejected: 0 },
      jobs: { Completed: 1 },
      rounds: 1,
      warnings: [],
    });
    expect(await s3.text(runKeys.results('fin-ok', 'failed.jsonl'))).toBe('');
    expect(await s3.text(runKeys.results('fin-ok', 'rejected.jsonl'))).toBe('');
  });

  it('warns and reports CompletedWithFailures when records went missing (conservation broken)', async () => {
    const run = runConfig({ runId: 'fin-lost', bucket: s3.bucket });
    await prepared('fin-lost', 3);
    await planned('fin-lost', 1, 1);
    await reconciled('fin-lost', 1, 0, { succeeded: [ok('a'), ok('b')] });
    const summary = await finalizeRun(deps(), await finished(run));
    expect(summary.status).toBe('CompletedWithFailures');
    expect(summary.warnings).toEqual(['conservation broken: 3 input lines but 2 succeeded + 0 failed + 0 rejected']);
  });

  it('splits results larger than the part size into numbered parts of bounded size, no line split', async () => {
    const run = runConfig({ runId: 'fin-parts', bucket: s3.bucket });
    await prepared('fin-parts', 7);
    const rows = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => ok(id));
    await planned('fin-parts', 1, 2);
    await reconciled('fin-parts', 1, 0, { succeeded: rows.slice(0, 4) });
    await reconciled('fin-parts', 1, 1, { succeeded: rows.slice(4) });
    const lineBytes = JSON.stringify(rows[0]).length + 1;
    const summary = await finalizeRun({ ...deps(), resultsPartMaxBytes: lineBytes * 3 }, await finished(run));
    expect(summary.records.succeeded).toBe(7);
    expect(summary.outputs.results).toEqual([1, 2, 3].map((n) => `s3://${s3.bucket}/results/fin-parts/results-0000${n}.jsonl`));
    const parts = await Promise.all([1, 2, 3].map((n) => s3.jsonl<{ recordId: string }>(runKeys.resultsPart('fin-parts', n))));
    expect(parts.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(
      parts
        .flat()
        .map((r) => r.recordId)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(await s3.text(runKeys.results('fin-parts', 'results.jsonl'))).toBeUndefined();

    // Run again with fewer parts (here: a larger part size): the parts it no longer writes are
    // emptied, so a reader taking every file under results/ still counts each record once.
    const again = await finalizeRun({ ...deps(), resultsPartMaxBytes: lineBytes * 5 }, await finished(run));
    expect(again.outputs.results).toEqual([1, 2].map((n) => `s3://${s3.bucket}/results/fin-parts/results-0000${n}.jsonl`));
    expect(await s3.text(runKeys.resultsPart('fin-parts', 3))).toBe('');
    const once = await finalizeRun(deps(), await finished(run));
    expect(once.outputs.results).toEqual([`s3://${s3.bucket}/results/fin-parts/results.jsonl`]);
    const everyFile = await Promise.all(
      (await s3.keys('results/fin-parts/')).filter((k) => /results[-.]/.test(k)).map((k) => s3.jsonl<{ recordId: string }>(k)),
    );
    expect(
      everyFile
        .flat()
        .map((r) => r.recordId)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
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
    await planned('r7', 1, 1);
    await reconciled('r7', 1, 0, { succeeded: [ok('a')] });
    expect((await finalizeRun(deps(), await finished(run))).rounds).toBe(1);
  });
});

describe('finalizeRun costs', () => {
  /** A one-round run of `modelId` whose chunk used `tokens` in batch and whose remainder used `onDemand`. */
  async function costedRun(runId: string, modelId: string, tokens: ChunkStats['tokens'], onDemand: ChunkStats['tokens'], prices?: FinalizeDeps['prices']) {
    const run = runConfig({ runId, modelId, bucket: s3.bucket });
    await prepared(runId, 2);
    await planned(runId, 1, 1, 1);
    await reconciled(runId, 1, 0, { succeeded: [ok('a')] }, { tokens });
    const parts = [await part('succeeded', runKeys.roundPart(runId, 1, 'succeeded'), [ok('b', true)])];
    const rs: RemainderStats = { round: 1, policy: 'on-demand', records: 1, succeeded: 1, failed: 0, held: 0, onDemandRecords: 1, tokens: onDemand, parts };
    await s3.put(runKeys.remainderStats(runId, 1), JSON.stringify(rs));
    return finalizeRun({ ...deps(), ...(prices ? { prices } : {}) }, await finished(run));
  }

  it('prices Claude Sonnet 4 as itself, not as Claude 3 Haiku', async () => {
    const summary = await costedRun(
      'cost-sonnet',
      'us.anthropic.claude-sonnet-4-20250514-v1:0',
      { input: 1_000_000, output: 100_000 },
      { input: 10_000, output: 1_000 },
    );
    expect(summary.status).toBe('Succeeded');
    // batch: 1.0 M × 1.5 + 0.1 M × 7.5 = 1.5 + 0.75; on demand: 0.01 M × 3 + 0.001 M × 15 = 0.03 + 0.015;
    // all on demand: 1.01 M × 3 + 0.101 M × 15 = 3.03 + 1.515.
    expect(summary.cost).toMatchObject({
      batchUsd: 2.25,
      onDemandUsd: 0.045,
      allOnDemandUsd: 4.545,
      estimated: false,
      model: 'anthropic.claude-sonnet-4-20250514-v1:0',
    });
  });

  it('marks a cost from estimated tokens (Mistral) and adds up what each step estimated', async () => {
    const summary = await costedRun(
      'cost-mistral',
      'mistral.mistral-7b-instruct-v0:2',
      { input: 400_000, output: 100_000, estimated: { input: 400_000, output: 100_000 } },
      { input: 100_000, output: 50_000, estimated: { input: 100_000, output: 50_000 } },
    );
    expect(summary.tokens).toEqual({ input: 500_000, output: 150_000 });
    // Mistral 7B: 0.15 / 0.20 on demand, 0.075 / 0.10 in batch.
    // batch: 0.4 M × 0.075 + 0.1 M × 0.1 = 0.03 + 0.01; on demand: 0.1 M × 0.15 + 0.05 M × 0.2 = 0.015 + 0.01.
    expect(summary.cost).toMatchObject({ batchUsd: 0.04, onDemandUsd: 0.025, estimated: true, estimatedTokens: { input: 500_000, output: 150_000 } });
  });

  it('reports cost null and a warning for a model with no price, without failing the run', async () => {
    const summary = await costedRun('cost-unpriced', 'meta.llama3-1-70b-instruct-v1:0', { input: 1000, output: 1000 }, { input: 0, output: 0 });
    expect(summary.cost).toBeNull();
    expect(summary.status).toBe('Succeeded');
    expect(summary.warnings).toEqual([
      expect.stringMatching(/^cost not estimated: no price for model meta\.llama3-1-70b-instruct-v1:0 .*bedrockBatch\.prices/),
    ]);
    expect((await s3.json<RunSummary>(runKeys.results('cost-unpriced', 'summary.json')))?.cost).toBeNull();
  });

  it("uses cdk.json's prices over the shipped table", async () => {
    const prices = {
      'meta.llama3-1-70b-instruct-v1:0': { onDemandInput: 0.72, onDemandOutput: 0.72, batchInput: 0.36, batchOutput: 0.36 },
    };
    const summary = await costedRun('cost-override', 'meta.llama3-1-70b-instruct-v1:0', { input: 1_000_000, output: 500_000 }, { input: 0, output: 0 }, prices);
    // 1.0 M × 0.36 + 0.5 M × 0.36
    expect(summary.cost).toMatchObject({ batchUsd: 0.54, allOnDemandUsd: 1.08, priceSource: ['cdk.json'] });
    expect(summary.warnings).toEqual([]);
  });
});

describe('finalizeRun run again after crashing after any write', () => {
  /** A finished run of two rounds whose results come in two parts. */
  async function finishedRun(runId: string): Promise<RunConfig> {
    await prepared(runId, 6);
    await s3.put(runKeys.workRejected(runId), jsonl([{ file: 'f', line: 1, reason: 'not valid JSON' }]));
    await planned(runId, 1, 2);
    await reconciled(runId, 1, 0, { succeeded: [ok('a'), ok('b')], failed: [bad('c', 1)], retry: [{ recordId: 'd' }] });
    await reconciled(runId, 1, 1, { succeeded: [ok('e')] });
    await planned(runId, 2, 0, 1);
    const rs: RemainderStats = {
      round: 2,
      policy: 'on-demand',
      records: 1,
      succeeded: 1,
      failed: 0,
      held: 0,
      onDemandRecords: 1,
      tokens: { input: 1, output: 1 },
      parts: [await part('succeeded', runKeys.roundPart(runId, 2, 'succeeded'), [ok('d', true)])],
    };
    await s3.put(runKeys.remainderStats(runId, 2), JSON.stringify(rs));
    return runConfig({ runId, bucket: s3.bucket });
  }

  /** Every file under results/<runId>/, with the run id and the finish time taken out. */
  async function outputs(runId: string) {
    const files: Record<string, string> = {};
    for (const key of await s3.keys(`results/${runId}/`)) {
      const text = (await s3.text(key))!.split(runId).join('RUN');
      files[key.slice(`results/${runId}/`.length)] = key.endsWith('summary.json') ? JSON.stringify({ ...JSON.parse(text), finishedAt: undefined }) : text;
    }
    return files;
  }

  it('ends with the same files as one clean run', async () => {
    const lineBytes = JSON.stringify(ok('a')).length + 1;
    const clean = await finishedRun('fin-crash-clean');
    const counting = crashingS3(s3.endpoint);
    await finalizeRun({ ...deps(), s3: counting.client, resultsPartMaxBytes: lineBytes * 2 }, await finished(clean));
    const expected = await outputs('fin-crash-clean');
    expect(Object.keys(expected).filter((k) => k.startsWith('results-')).length).toBeGreaterThan(1);
    expect(Object.keys(expected)).toEqual(expect.arrayContaining(['failed.jsonl', 'rejected.jsonl', 'summary.json']));
    for (let k = 1; k <= counting.writes(); k++) {
      const run = await finishedRun(`fin-crash-${k}`);
      const crashing = crashingS3(s3.endpoint, k);
      await expect(finalizeRun({ ...deps(), s3: crashing.client, resultsPartMaxBytes: lineBytes * 2 }, await finished(run))).rejects.toBeInstanceOf(
        SimulatedCrash,
      );
      await finalizeRun({ ...deps(), resultsPartMaxBytes: lineBytes * 2 }, await finished(run));
      expect({ k, files: await outputs(run.runId) }).toEqual({ k, files: expected });
    }
  });
});

describe('finalizeRun (Failed)', () => {
  it('summarizes a run that failed before prepare produced a run config', async () => {
    const executionName = 'Console run: 2025/01/01 with an odd name';
    const cause = JSON.stringify({ errorType: 'InvalidRunInput', errorMessage: 'inputs must be a non-empty array of s3:// URIs', trace: [] });
    const summary = await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName,
      executionArn: arnOf(executionName),
      state: { error: { Error: 'InvalidRunInput', Cause: cause } },
    });
    const runId = runIdFromExecutionName(executionName);
    expect(summary).toEqual({
      runId,
      status: 'Failed',
      records: { input: 0, succeeded: 0, failed: 0, rejected: 0 },
      jobs: {},
      rounds: 0,
      onDemandRecords: 0,
      truncated: 0,
      tokens: { input: 0, output: 0 },
      cost: { currency: 'USD', batchUsd: 0, onDemandUsd: 0, allOnDemandUsd: 0, estimated: false },
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
    const summary = await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'exec',
      executionArn: arnOf('exec'),
      state: { runId: 'given-id', error: { Error: 'States.Timeout', Cause: 'plain text' } },
    });
    expect(summary.runId).toBe('given-id');
    expect(summary.error).toEqual({ error: 'States.Timeout', cause: 'plain text' });
    const unnamed = await finalizeRun(deps(), { outcome: 'Failed', executionName: 'exec-2', executionArn: arnOf('exec-2'), state: { runId: 'bad id!' } });
    expect(unnamed.runId).toBe('exec-2');
    expect(unnamed.error).toEqual({ error: 'Unknown', cause: '' });
  });

  it('reports what a run that failed midway finished, and how many records it left in no output', async () => {
    const run = runConfig({ runId: 'fin-mid', bucket: s3.bucket });
    await prepared('fin-mid', 4);
    await planned('fin-mid', 1, 2);
    await reconciled('fin-mid', 1, 0, { succeeded: [ok('a')] });
    // Chunk 1 was being reconciled when the run failed: its parts so far are in no manifest.
    await s3.put(runKeys.chunkPart('fin-mid', 1, 1, 'succeeded'), jsonl([ok('b')]));
    const summary = await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'fin-mid',
      executionArn: arnOf('fin-mid'),
      state: { run, error: { Error: 'Lambda.Unknown', Cause: '{"errorMessage":"boom"}' } },
    });
    expect(summary).toMatchObject({
      runId: 'fin-mid',
      status: 'Failed',
      modelId: run.modelId,
      route: 'default',
      records: { input: 4, succeeded: 1, failed: 0, rejected: 0 },
      warnings: ['the run failed before 3 of its 4 input records reached an output: they are in none of results, failed or rejected'],
      error: { error: 'Lambda.Unknown', cause: 'boom' },
    });
  });
  it('writes and announces nothing of a run another execution owns (a reused runId, a forged resume)', async () => {
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
    expect(summary).toMatchObject({
      runId: 'fin-owned',
      status: 'Failed',
      warnings: ['run fin-owned is owned by execution fin-owned: this execution (intruder) wrote nothing of it'],
    });
    expect(await s3.json(runKeys.results('fin-owned', 'summary.json'))).toEqual(owners);
    expect(putEntries()).toEqual([]);
    // The same through a forged resume's run.
    await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'intruder-2',
      executionArn: arnOf('intruder-2'),
      state: { resume: { run }, error: { Error: 'InvalidRunInput' } },
    });
    expect(await s3.json(runKeys.results('fin-owned', 'summary.json'))).toEqual(owners);
    expect(putEntries()).toEqual([]);
    // A Finished from an execution that does not own the run is refused outright.
    await expect(finalizeRun(deps(), { outcome: 'Finished', run, executionArn: arnOf('intruder') })).rejects.toThrow(
      'run fin-owned is not owned by execution intruder: it may not finalize it',
    );
  });

  it('claims an unclaimed run id for the failed execution, so a later run cannot take its id', async () => {
    await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'early-fail',
      executionArn: arnOf('early-fail'),
      state: { runId: 'never-prepared', error: { Error: 'InvalidRunInput' } },
    });
    expect(await claims.get('never-prepared')).toMatchObject({ owner: arnOf('early-fail') });
    expect(await s3.json(runKeys.results('never-prepared', 'summary.json'))).toMatchObject({ status: 'Failed' });
  });
  it("does not take a run id or bucket from a raw input's `run` it cannot believe (Prepare failed on that input)", async () => {
    const summary = await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'raw-run',
      executionArn: arnOf('raw-run'),
      state: { run: { runId: 'fin-owned/x', bucket: s3.bucket, route: 'r', modelId: 'm' } as unknown as RunConfig, error: { Error: 'InvalidRunInput' } },
    });
    expect(summary).toMatchObject({ runId: 'raw-run', status: 'Failed' });
    expect(summary).not.toHaveProperty('route');
    expect(await s3.keys('results/fin-owned/x/')).toEqual([]);
    const foreign = await finalizeRun(deps(), {
      outcome: 'Failed',
      executionName: 'raw-run-2',
      executionArn: arnOf('raw-run-2'),
      state: { run: runConfig({ runId: 'raw-foreign', bucket: 'someone-elses-bucket' }), error: { Error: 'InvalidRunInput' } },
    });
    expect(foreign.runId).toBe('raw-run-2');
  });

  it('writes nothing once the run was stopped: stop-run writes its summary', async () => {
    const run = runConfig({ runId: 'fin-stopped', bucket: s3.bucket });
    await prepared('fin-stopped', 1);
    const event = await finished(run);
    await claims.requestStop('fin-stopped', arnOf('fin-stopped'));
    eventsMock.resetHistory();
    await expect(finalizeRun(deps(), event)).resolves.toMatchObject({ warnings: ['run fin-stopped was stopped: stop-run writes its summary'] });
    await expect(
      finalizeRun(deps(), { outcome: 'Failed', executionName: 'fin-stopped', executionArn: arnOf('fin-stopped'), state: { run, error: { Error: 'X' } } }),
    ).resolves.toMatchObject({
      warnings: ['run fin-stopped was stopped: stop-run writes its summary'],
    });
    expect(await s3.keys(runKeys.results('fin-stopped', 'summary.json'))).toEqual([]);
    expect(putEntries()).toEqual([]);
  });
  it('takes back a run handed over to a successor that was never started, and winds it up; a successor that exists keeps it', async () => {
    const sfnMock = mockClient(SFNClient);
    try {
      const sfn = new SFNClient({ region: 'us-east-1' });
      const run = runConfig({ runId: 'fin-handed', bucket: s3.bucket });
      await prepared('fin-handed', 1);
      await claims.claim('fin-handed', arnOf('fin-handed'));
      await claims.handOver('fin-handed', arnOf('fin-handed'), arnOf('fin-handed-r1-c10-0a1b2c3d'), {
        number: 1,
        chunkCount: 20,
        nextChunk: 10,
        hasMoreChunks: true,
      });
      const failed = {
        outcome: 'Failed' as const,
        executionName: 'fin-handed',
        executionArn: arnOf('fin-handed'),
        state: { run, error: { Error: 'SuccessorNameTaken', Cause: 'x' } },
      };

      // The successor exists: it owns the run, the predecessor writes nothing.
      sfnMock.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });
      await expect(finalizeRun({ ...deps(), sfn }, failed)).resolves.toMatchObject({
        warnings: [expect.stringContaining('is owned by execution fin-handed-r1-c10-0a1b2c3d')],
      });
      expect(await s3.keys(runKeys.results('fin-handed', 'summary.json'))).toEqual([]);

      // It was never started: the run is taken back and finalized Failed.
      sfnMock.on(DescribeExecutionCommand).rejects(Object.assign(new Error('no such execution'), { name: 'ExecutionDoesNotExist' }));
      await expect(finalizeRun({ ...deps(), sfn }, failed)).resolves.toMatchObject({
        runId: 'fin-handed',
        status: 'Failed',
        warnings: ['the run failed before 1 of its 1 input records reached an output: they are in none of results, failed or rejected'],
      });
      expect(await claims.get('fin-handed')).toMatchObject({ owner: arnOf('fin-handed') });
      expect(await s3.json(runKeys.results('fin-handed', 'summary.json'))).toMatchObject({ status: 'Failed' });
    } finally {
      sfnMock.restore();
    }
  });
});
