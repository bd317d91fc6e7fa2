import { BedrockClient, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { readRunView, RunNotFound } from '../../cli/run-view';
import { jsonBody, mockedTarget, noSuchKey } from './support';

const s3 = mockClient(S3Client);
const sfn = mockClient(SFNClient);
const ddb = mockClient(DynamoDBDocumentClient);
const bedrock = mockClient(BedrockClient);
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const OWNER = 'arn:aws:states:eu-west-1:111122223333:execution:bb:run-1';
const key = (k: string) => ({ Bucket: 'bb-bucket', Key: k });

beforeEach(() => {
  for (const m of [s3, sfn, ddb, bedrock]) m.reset();
  s3.on(GetObjectCommand).rejects(noSuchKey());
});
afterAll(() => {
  for (const m of [s3, sfn, ddb, bedrock]) m.restore();
});

function runningRun(): void {
  ddb.on(GetCommand, { TableName: 'bb-table', Key: { pk: 'RUN#run-1', sk: 'RUN' }, ConsistentRead: true }).resolves({
    Item: { pk: 'RUN#run-1', owner: OWNER, claimedAt: '2026-12-06T10:00:00.000Z', round: { number: 1 } },
  });
  sfn
    .on(DescribeExecutionCommand, { executionArn: OWNER })
    .resolves({ executionArn: OWNER, status: 'RUNNING', stateMachineArn: 'x', startDate: new Date('2026-12-06T10:00:00Z') });
  s3.on(GetObjectCommand, key('work/run-1/run.json')).resolves(
    jsonBody({ runId: 'run-1', route: 'default', modelId: HAIKU, maxConcurrentJobs: 4, startedAt: '2026-12-06T10:00:00.000Z' }),
  );
  s3.on(GetObjectCommand, key('work/run-1/run-stats.json')).resolves(
    jsonBody({ inputFiles: 1, inputLines: 1000, blankLines: 0, valid: 990, rejected: 10, inputs: [] }),
  );
  s3.on(ListObjectsV2Command).resolves({
    Contents: [
      { Key: 'work/run-1/run.json' },
      { Key: 'work/run-1/r01/c00000/stats.json' },
      { Key: 'work/run-1/r01/c00000/succeeded.jsonl' },
      { Key: 'work/run-1/r01/plan.json' },
    ],
  });
  s3.on(GetObjectCommand, key('work/run-1/r01/c00000/stats.json')).resolves(
    jsonBody({
      round: 1,
      chunk: 0,
      jobStatus: 'Completed',
      records: 330,
      succeeded: 320,
      failed: 10,
      retry: 0,
      tokens: { input: 1_000_000, output: 200_000 },
      parts: [],
    }),
  );
  ddb.on(ScanCommand).resolves({
    Items: [
      { pk: 'JOB#bb-run-1-r01-c00001', jobName: 'bb-run-1-r01-c00001', runId: 'run-1', round: 1, chunk: 1, status: 'InProgress', jobArn: 'arn:job/1' },
      { pk: 'JOB#bb-run-1-r01-c00000', jobName: 'bb-run-1-r01-c00000', runId: 'run-1', round: 1, chunk: 0, status: 'Completed', jobArn: 'arn:job/0' },
      { pk: 'JOB#bb-run-1-r01-c00002', jobName: 'bb-run-1-r01-c00002', runId: 'run-1', round: 1, chunk: 2, status: 'Submitted', jobArn: 'arn:job/2' },
    ],
  });
  bedrock
    .on(GetModelInvocationJobCommand, { jobIdentifier: 'arn:job/1' })
    .resolves({ status: 'InProgress', processedRecordCount: 100, totalRecordCount: 330 } as never);
  bedrock
    .on(GetModelInvocationJobCommand, { jobIdentifier: 'arn:job/2' })
    .resolves({ status: 'Scheduled', processedRecordCount: 0, totalRecordCount: 330 } as never);
}

describe('readRunView', () => {
  it("puts together a running run from its claim, execution, prepare's and reconcile's counters and Bedrock's job counters", async () => {
    runningRun();
    const view = await readRunView(mockedTarget(), 'run-1', () => new Date('2026-12-06T10:10:00Z'));
    expect(view).toMatchObject({
      runId: 'run-1',
      status: 'Running',
      final: false,
      executionArn: OWNER,
      modelId: HAIKU,
      round: 1,
      records: { input: 1000, prepared: 990, succeeded: 320, failed: 10, rejected: 10 },
      jobsByStatus: { Completed: 1, InProgress: 1, Scheduled: 1 },
      slots: { held: 2, cap: 4 },
      elapsedSeconds: 600,
    });
    expect(view.jobs).toEqual([
      { name: 'bb-run-1-r01-c00000', round: 1, chunk: 0, status: 'Completed' },
      { name: 'bb-run-1-r01-c00001', round: 1, chunk: 1, status: 'InProgress', processed: 100, total: 330 },
      { name: 'bb-run-1-r01-c00002', round: 1, chunk: 2, status: 'Scheduled', processed: 0, total: 330 },
    ]);
    // 430 of 990 records done in 600 s: 560 left at that rate is 781 s.
    expect(view.etaSeconds).toBe(Math.round((560 * 600) / 430));
    // Claude 3 Haiku batch: $0.125 in, $0.625 out per million tokens.
    expect(view.cost?.batchUsd).toBeCloseTo(1 * 0.125 + 0.2 * 0.625, 6);
    // Only the jobs still running are asked for their counters.
    expect(
      bedrock
        .commandCalls(GetModelInvocationJobCommand)
        .map((c) => c.args[0].input.jobIdentifier)
        .sort(),
    ).toEqual(['arn:job/1', 'arn:job/2']);
    expect(ddb.commandCalls(ScanCommand)[0]!.args[0].input.ExpressionAttributeValues).toEqual({ ':job': 'JOB#', ':run': 'run-1' });
  });

  it('says Stopping once the run is marked stopped, and Preparing before prepare has counted', async () => {
    runningRun();
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER, claimedAt: '2026-12-06T10:00:00.000Z', stopRequestedAt: '2026-12-06T10:05:00.000Z' } });
    expect((await readRunView(mockedTarget(), 'run-1')).status).toBe('Stopping');
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER, claimedAt: '2026-12-06T10:00:00.000Z' } });
    s3.on(GetObjectCommand, key('work/run-1/run-stats.json')).rejects(noSuchKey());
    expect((await readRunView(mockedTarget(), 'run-1')).status).toBe('Preparing');
  });

  it("reads an ended run from its summary, with the summary's cost", async () => {
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER } });
    s3.on(GetObjectCommand, key('results/run-1/summary.json')).resolves(
      jsonBody({
        runId: 'run-1',
        status: 'Stopped',
        modelId: HAIKU,
        records: { input: 100, succeeded: 60, failed: 30, rejected: 10 },
        jobs: { Stopped: 1, Completed: 1 },
        rounds: 1,
        cost: { currency: 'USD', batchUsd: 0.5, onDemandUsd: 0, allOnDemandUsd: 1, estimated: false },
        startedAt: '2026-12-06T10:00:00.000Z',
        finishedAt: '2026-12-06T10:02:05.000Z',
        outputs: { results: [], failed: '', rejected: '' },
        warnings: [],
      }),
    );
    const view = await readRunView(mockedTarget(), 'run-1');
    expect(view).toMatchObject({
      status: 'Stopped',
      final: true,
      records: { input: 100, prepared: 90, succeeded: 60, failed: 30, rejected: 10 },
      elapsedSeconds: 125,
    });
    expect(view.cost?.batchUsd).toBe(0.5);
    expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(0);
  });

  it('finds a run prepare has not claimed yet by the execution submit named after it', async () => {
    ddb.on(GetCommand).resolves({});
    s3.on(ListObjectsV2Command).resolves({});
    ddb.on(ScanCommand).resolves({});
    const arn = 'arn:aws:states:eu-west-1:111122223333:execution:bb:fresh-1';
    sfn
      .on(DescribeExecutionCommand, { executionArn: arn })
      .resolves({ executionArn: arn, status: 'RUNNING', startDate: new Date('2026-12-06T10:00:00Z') } as never);
    expect(await readRunView(mockedTarget(), 'fresh-1')).toMatchObject({ status: 'Preparing', final: false, executionArn: arn });
  });

  it('an ABORTED execution without a summary is Stopping, not ended: stop-run is still at work', async () => {
    runningRun();
    sfn.on(DescribeExecutionCommand, { executionArn: OWNER }).resolves({ executionArn: OWNER, status: 'ABORTED', error: 'RunStopped', cause: 'x' } as never);
    const view = await readRunView(mockedTarget(), 'run-1');
    expect(view).toMatchObject({ status: 'Stopping', final: false });
    expect(view.error).toBeUndefined();
  });

  it('says why it cannot look at the execution instead of calling the run Preparing forever', async () => {
    runningRun();
    sfn
      .on(DescribeExecutionCommand)
      .rejects(Object.assign(new Error('not authorized to perform: states:DescribeExecution'), { name: 'AccessDeniedException', $metadata: {} }));
    await expect(readRunView(mockedTarget(), 'run-1')).rejects.toThrow(/states:DescribeExecution/);
  });

  it("prices a small remainder's tokens on demand, as finalize does, and reads each stats.json once per cache", async () => {
    runningRun();
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'work/run-1/r01/c00000/stats.json' }, { Key: 'work/run-1/r02/remainder-stats.json' }] });
    s3.on(GetObjectCommand, key('work/run-1/r02/remainder-stats.json')).resolves(
      jsonBody({
        round: 2,
        policy: 'on-demand',
        records: 10,
        succeeded: 10,
        failed: 0,
        held: 0,
        onDemandRecords: 10,
        tokens: { input: 1_000_000, output: 0 },
        parts: [],
      }),
    );
    const cache = new Map();
    const view = await readRunView(mockedTarget(), 'run-1', () => new Date('2026-12-06T10:10:00Z'), cache);
    // Batch: 1M in, 0.2M out at $0.125 / $0.625; on demand: 1M in at $0.25.
    expect(view.cost?.batchUsd).toBeCloseTo(0.125 + 0.2 * 0.625, 6);
    expect(view.cost?.onDemandUsd).toBeCloseTo(0.25, 6);
    expect(view.round).toBe(2);
    const reads = () => s3.commandCalls(GetObjectCommand).filter((c) => /(\/c\d+\/stats|remainder-stats)\.json$/.test(String(c.args[0].input.Key))).length;
    const before = reads();
    await readRunView(mockedTarget(), 'run-1', () => new Date('2026-12-06T10:10:00Z'), cache);
    expect(reads()).toBe(before);
  });

  it('says a run id is unknown when there is no claim, no summary and no execution of that name', async () => {
    ddb.on(GetCommand).resolves({});
    sfn.on(DescribeExecutionCommand).rejects(Object.assign(new Error('Execution Does Not Exist'), { name: 'ExecutionDoesNotExist', $metadata: {} }));
    await expect(readRunView(mockedTarget(), 'nope')).rejects.toThrow(new RunNotFound("no run 'nope' in stack Test (eu-west-1)"));
  });
});
