/**
 * ReconcileChunk run again after failing at any write: what the readers (end-round, finalize,
 * stop-run) then see is what one clean attempt gives, each record exactly once.
 */
import { BedrockClient, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { endRound } from '../../../lambdas/end-round/end-round';
import { finalizeRun } from '../../../lambdas/finalize/finalize';
import { reconcileChunk, type ReconcileEvent } from '../../../lambdas/reconcile-chunk/reconcile-chunk';
import type { RunClaims } from '../../../lambdas/shared/run-claims';
import { runKeys, type RunConfig } from '../../../lambdas/shared/contracts';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { JobSlotLimiter } from '../../../lambdas/shared/job-slots';
import type { PrepareStats } from '../../../lambdas/shared/outcomes';
import { crashingS3, SimulatedCrash } from '../support/crashing-s3';
import { anthropicInput, anthropicOutputLine, errorOutputLine, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';

const bedrockMock = mockClient(BedrockClient);
const ddbMock = mockClient(DynamoDBDocumentClient);
const eventsMock = mockClient(EventBridgeClient);
let s3: TestS3;

const JOB_ID = 'job123456789';
const JOB_ARN = `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/${JOB_ID}`;
const IDS = ['a', 'b', 'c', 'd', 'e', 'f'];

beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  bedrockMock.restore();
  ddbMock.restore();
  eventsMock.restore();
  await s3.stop();
});
beforeEach(() => {
  bedrockMock.reset();
  ddbMock.reset();
  ddbMock.on(UpdateCommand).resolves({}).on(GetCommand).resolves({});
  eventsMock.reset();
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
});

function deps(client: TestS3['client']) {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  return { s3: client, bedrock: new BedrockClient({ region: 'us-east-1' }), limiter: new JobSlotLimiter(ddb, 'jobs'), jobs: new JobRecords(ddb, 'jobs') };
}

/**
 * Job outputs: stopped early (only `a` came back: every other record retried), partially
 * completed (some of each kind), completed (nothing left to retry: no retry part).
 */
const OUTPUTS = {
  Stopped: [anthropicOutputLine('a')],
  PartiallyCompleted: [
    anthropicOutputLine('a'),
    anthropicOutputLine('b'),
    errorOutputLine('c', 400, 'bad'),
    errorOutputLine('d', 429, 'slow'),
    anthropicOutputLine('e'),
  ],
  Completed: ['a', 'b', 'd', 'e', 'f'].map((id) => anthropicOutputLine(id)).concat(errorOutputLine('c', 400, 'bad')),
} as const;
type Outcome = keyof typeof OUTPUTS;

/** A run whose round 1 has one chunk of {@link IDS}, prepared and planned as prepare leaves it. */
async function preparedRun(runId: string): Promise<RunConfig> {
  const run = runConfig({ runId, bucket: s3.bucket, minRecordsPerJob: 1, maxRecordsPerJob: 10, maxAttempts: 2 });
  await s3.put(runKeys.chunkInput(runId, 1, 0), IDS.map((id) => JSON.stringify({ recordId: id, modelInput: anthropicInput(id) }) + '\n').join(''));
  await s3.put(runKeys.roundPlan(runId, 1), JSON.stringify({ chunkCount: 1, remainder: 0 }));
  const stats: PrepareStats = { inputFiles: 1, inputLines: IDS.length, blankLines: 0, valid: IDS.length, rejected: 0, inputs: [] };
  await s3.put(runKeys.runStats(runId), JSON.stringify(stats));
  return run;
}

/** The job as an attempt sees it: its status and the output Bedrock has written by then. */
async function jobSeenAs(run: RunConfig, outcome: Outcome): Promise<ReconcileEvent> {
  await s3.put(`${runKeys.chunkOutputPrefix(run.runId, 1, 0)}${JOB_ID}/c00000.jsonl.out`, OUTPUTS[outcome].join('\n') + '\n');
  bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: outcome });
  return { run, round: 1, chunk: 0, job: { jobArn: JOB_ARN, status: outcome } };
}

/**
 * What the readers make of the chunk: end-round's next round (the retried ids) and finalize's
 * results and failures, sorted; and whether every record is in exactly one of them.
 */
async function readersView(run: RunConfig) {
  const rs = deps(s3.client);
  const next = await endRound(
    { s3: rs.s3, bedrockRuntime: new BedrockRuntimeClient({ region: 'us-east-1' }) },
    { run, round: { number: 1, chunkCount: 1, nextChunk: 1, hasMoreChunks: false } },
  );
  const retried: string[] = [];
  for (let chunk = 0; chunk < (next.done ? 0 : next.round.chunkCount); chunk++) {
    retried.push(...(await s3.jsonl<{ recordId: string }>(runKeys.chunkInput(run.runId, 2, chunk))).map((r) => r.recordId));
  }
  // The run's claim is not what this test is about: its execution owns it.
  const owned = {
    get: async (id: string) => ({ runId: id, owner: `arn:aws:states:us-east-1:123456789012:execution:Workflow:${id}`, claimedAt: '' }),
  } as unknown as RunClaims;
  const summary = await finalizeRun(
    { s3: s3.client, events: new EventBridgeClient({ region: 'us-east-1' }), bucket: s3.bucket, eventBusName: 'bus', claims: owned },
    { outcome: 'Finished', run, executionArn: `arn:aws:states:us-east-1:123456789012:execution:Workflow:${run.runId}` },
  );
  const succeeded = (await s3.jsonl<{ recordId: string }>(runKeys.results(run.runId, 'results.jsonl'))).map((r) => r.recordId);
  const failed = (await s3.jsonl<{ recordId: string }>(runKeys.results(run.runId, 'failed.jsonl'))).map((r) => r.recordId);
  const all = [...succeeded, ...failed, ...retried].sort();
  return {
    succeeded: succeeded.sort(),
    failed: failed.sort(),
    retried: retried.sort(),
    records: { succeeded: summary.records.succeeded, failed: summary.records.failed },
    jobs: summary.jobs,
    eachRecordOnce: JSON.stringify(all) === JSON.stringify(IDS),
  };
}

/** Attempt 1 sees `first` and crashes after write k; attempt 2 sees `second` and finishes. */
async function crashThenRetry(runId: string, k: number, first: Outcome, second: Outcome) {
  const run = await preparedRun(runId);
  const crashing = crashingS3(s3.endpoint, k);
  await expect(reconcileChunk(deps(crashing.client), await jobSeenAs(run, first))).rejects.toBeInstanceOf(SimulatedCrash);
  const stats = await reconcileChunk(deps(s3.client), await jobSeenAs(run, second));
  return { run, stats };
}

/** One clean attempt that sees `outcome`; and how many writes it made. */
async function cleanRun(runId: string, outcome: Outcome) {
  const run = await preparedRun(runId);
  const counting = crashingS3(s3.endpoint);
  const stats = await reconcileChunk(deps(counting.client), await jobSeenAs(run, outcome));
  return { run, stats, writes: counting.writes(), view: await readersView(run) };
}

describe('reconcileChunk run again after crashing after any write', () => {
  it('ends as one clean attempt when both attempts see the same outcome', async () => {
    const clean = await cleanRun('rr-clean-same', 'PartiallyCompleted');
    expect(clean.writes).toBe(4); // succeeded, failed, retry, stats.json
    expect(clean.view).toMatchObject({ succeeded: ['a', 'b', 'e'], failed: ['c'], retried: ['d', 'f'], eachRecordOnce: true });
    for (let k = 1; k <= clean.writes; k++) {
      const { run, stats } = await crashThenRetry(`rr-same-${k}`, k, 'PartiallyCompleted', 'PartiallyCompleted');
      expect({ k, stats: { ...stats, parts: stats.parts.map((p) => ({ ...p, key: p.key.replace(run.runId, 'RUN') })) } }).toEqual({
        k,
        stats: { ...clean.stats, parts: clean.stats.parts.map((p) => ({ ...p, key: p.key.replace(clean.run.runId, 'RUN') })) },
      });
      expect({ k, view: await readersView(run) }).toEqual({ k, view: clean.view });
    }
  });

  it('counts each record once when the second attempt sees another job outcome: the first attempt counts only if it committed its stats', async () => {
    const stopped = await cleanRun('rr-clean-stopped', 'Stopped');
    const completed = await cleanRun('rr-clean-completed', 'Completed');
    expect(stopped.writes).toBe(3); // succeeded, retry, stats.json
    expect(completed.view).toMatchObject({ succeeded: ['a', 'b', 'd', 'e', 'f'], failed: ['c'], retried: [], eachRecordOnce: true });
    for (let k = 1; k <= stopped.writes; k++) {
      const { run } = await crashThenRetry(`rr-other-${k}`, k, 'Stopped', 'Completed');
      // Before its stats.json the first attempt settled nothing; after it, the chunk is settled.
      const expected = k < stopped.writes ? completed.view : stopped.view;
      expect({ k, view: await readersView(run) }).toEqual({ k, view: expected });
    }
  });
});
