import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockClient } from 'aws-sdk-client-mock';
import { CommandInputError, defaultRunId, listRuns, stopRun, submitRun } from '../../cli/operate';
import { isValidRunId } from '../../lambdas/shared/contracts';
import { jsonBody, mockedTarget, noSuchKey } from './support';

const s3 = mockClient(S3Client);
const sfn = mockClient(SFNClient);
const ddb = mockClient(DynamoDBDocumentClient);
const OWNER = 'arn:aws:states:eu-west-1:111122223333:execution:bb:run-1';
let dir: string;

beforeEach(async () => {
  for (const m of [s3, sfn, ddb]) m.reset();
  s3.on(GetObjectCommand).rejects(noSuchKey());
  s3.on(ListObjectsV2Command).resolves({});
  ddb.on(ScanCommand).resolves({});
  dir = await mkdtemp(join(tmpdir(), 'bb-operate-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));
afterAll(() => {
  for (const m of [s3, sfn, ddb]) m.restore();
});

describe('submitRun', () => {
  it('uploads local files under uploads/<runId>/ and starts the run with the console input', async () => {
    const a = join(dir, 'tickets.jsonl');
    await writeFile(a, '{"recordId":"1","modelInput":{}}\n');
    ddb.on(GetCommand).resolves({});
    s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:exec', startDate: new Date() });
    const started = await submitRun(mockedTarget(), {
      inputs: [a, 's3://bb-bucket/inbox/default/more.jsonl'],
      runId: 'tickets-1',
      route: 'default',
      overrides: { maxAttempts: 2, modelId: 'amazon.nova-lite-v1:0' },
    });
    expect(started).toEqual({
      runId: 'tickets-1',
      executionArn: 'arn:exec',
      inputs: ['s3://bb-bucket/uploads/tickets-1/tickets.jsonl', 's3://bb-bucket/inbox/default/more.jsonl'],
    });
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input).toMatchObject({ Bucket: 'bb-bucket', Key: 'uploads/tickets-1/tickets.jsonl' });
    const start = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(start.name).toBe('tickets-1');
    expect(start.stateMachineArn).toBe('arn:aws:states:eu-west-1:111122223333:stateMachine:bb');
    expect(JSON.parse(start.input!)).toEqual({
      inputs: ['s3://bb-bucket/uploads/tickets-1/tickets.jsonl', 's3://bb-bucket/inbox/default/more.jsonl'],
      runId: 'tickets-1',
      route: 'default',
      // The uploaded file is read only while it has the ETag of this upload.
      inputETags: { 's3://bb-bucket/uploads/tickets-1/tickets.jsonl': '"e"' },
      maxAttempts: 2,
      modelId: 'amazon.nova-lite-v1:0',
    });
  });

  it('refuses a run id that is taken, before uploading anything', async () => {
    const a = join(dir, 'a.jsonl');
    await writeFile(a, '\n');
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER } });
    await expect(submitRun(mockedTarget(), { inputs: [a], runId: 'run-1' })).rejects.toThrow(
      new CommandInputError('run id run-1 is taken (a run owns its id): choose another --run-id'),
    );
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it("refuses an S3 input outside the pipeline's bucket and a missing file, naming them", async () => {
    ddb.on(GetCommand).resolves({});
    await expect(submitRun(mockedTarget(), { inputs: ['s3://other/x.jsonl'] })).rejects.toThrow(
      "s3://other/x.jsonl is not in the pipeline's bucket (s3://bb-bucket/)",
    );
    await expect(submitRun(mockedTarget(), { inputs: [join(dir, 'none.jsonl')] })).rejects.toThrow(`file not found: ${join(dir, 'none.jsonl')}`);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('gives files named alike keys of their own, and refuses a file given twice', async () => {
    for (const d of ['a', 'b']) await mkdir(join(dir, d));
    const files = [join(dir, 'a', 'x.jsonl'), join(dir, 'b', 'x.jsonl'), join(dir, '2-x.jsonl')];
    for (const f of files) await writeFile(f, '\n');
    ddb.on(GetCommand).resolves({});
    s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:exec', startDate: new Date() });
    const started = await submitRun(mockedTarget(), { inputs: files, runId: 'r1' });
    expect(started.inputs).toEqual(['s3://bb-bucket/uploads/r1/x.jsonl', 's3://bb-bucket/uploads/r1/2-x.jsonl', 's3://bb-bucket/uploads/r1/2-2-x.jsonl']);
    await expect(submitRun(mockedTarget(), { inputs: [files[0]!, join(dir, 'b', '..', 'a', 'x.jsonl')], runId: 'r2' })).rejects.toThrow(
      /x\.jsonl is given twice: each input is read once per run$/,
    );
  });

  it('makes a valid run id from the first file name when none is given', () => {
    const id = defaultRunId('/data/Support Tickets (Dec).jsonl', new Date('2026-12-06T10:11:12Z'), () => 0.5);
    expect(id).toMatch(/^Support-Tickets-Dec-20261206-101112-[0-9a-z]{4}$/);
    expect(isValidRunId(id)).toBe(true);
    expect(isValidRunId(defaultRunId('a'.repeat(200) + '.jsonl', new Date(), () => 0.999))).toBe(true);
    expect(isValidRunId(defaultRunId('---.jsonl', new Date(), () => 0))).toBe(true);
  });
});

describe('stopRun', () => {
  const summary = {
    runId: 'run-1',
    status: 'Stopped',
    records: { input: 10, succeeded: 4, failed: 6, rejected: 0 },
    jobs: { Stopped: 1 },
    rounds: 1,
    cost: null,
    finishedAt: '2026-12-06T10:01:00.000Z',
    outputs: { results: [], failed: '', rejected: '' },
    warnings: [],
  };

  it("stops the run's current execution and returns once the pipeline has written the summary", async () => {
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER, claimedAt: '2026-12-06T10:00:00.000Z' } });
    // Running when looked at; ABORTED at once after StopExecution, as on AWS.
    sfn
      .on(DescribeExecutionCommand)
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolves({ status: 'ABORTED' } as never);
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    const seen: string[] = [];
    let looks = 0;
    const { view, stopped } = await stopRun(mockedTarget(), 'run-1', {
      intervalMs: 1,
      onChange: (v) => seen.push(v.status),
      // The summary appears after the second look (an injected sleep counts the looks).
      sleep: async () => {
        looks += 1;
        if (looks === 2) s3.on(GetObjectCommand, { Bucket: 'bb-bucket', Key: 'results/run-1/summary.json' }).resolves(jsonBody(summary));
      },
    });
    expect(stopped).toBe(true);
    expect(view).toMatchObject({ status: 'Stopped', final: true, records: { succeeded: 4, failed: 6 } });
    // ABORTED without a summary is not the end: stop-run is still winding the run up.
    expect(seen).toEqual(['Stopping', 'Stopped']);
    expect(sfn.commandCalls(StopExecutionCommand)[0]!.args[0].input).toEqual({
      executionArn: OWNER,
      error: 'RunStopped',
      cause: 'stopped with bedrock-batch stop',
    });
  });

  it('stops a run prepare has not claimed yet, by the execution submit named after it', async () => {
    ddb.on(GetCommand).resolves({});
    const arn = 'arn:aws:states:eu-west-1:111122223333:execution:bb:fresh-1';
    sfn
      .on(DescribeExecutionCommand, { executionArn: arn })
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolves({ status: 'ABORTED' } as never);
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    s3.on(GetObjectCommand, { Bucket: 'bb-bucket', Key: 'results/fresh-1/summary.json' })
      .rejectsOnce(noSuchKey())
      .rejectsOnce(noSuchKey())
      .resolves(jsonBody({ ...summary, runId: 'fresh-1' }));
    const { stopped } = await stopRun(mockedTarget(), 'fresh-1', { sleep: async () => undefined });
    expect(stopped).toBe(true);
    expect(sfn.commandCalls(StopExecutionCommand)[0]!.args[0].input.executionArn).toBe(arn);
  });

  it('does not stop a run that has ended', async () => {
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER } });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'FAILED', error: 'States.Runtime', cause: 'boom' } as never);
    const { view, stopped } = await stopRun(mockedTarget(), 'run-1');
    expect({ stopped, status: view.status, final: view.final }).toEqual({ stopped: false, status: 'FAILED', final: true });
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });

  it('gives up after its timeout when no summary comes', async () => {
    ddb.on(GetCommand).resolves({ Item: { owner: OWNER } });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'ABORTED' } as never);
    let t = 0;
    await expect(
      stopRun(mockedTarget(), 'run-1', { timeoutMs: 10_000, sleep: async () => void (t += 6000), now: () => new Date(1_800_000_000_000 + t) }),
    ).rejects.toThrow("the pipeline has not written run run-1's summary after 10 s");
  });
});

describe('listRuns', () => {
  it('lists run claims newest first, with the summary of those that ended', async () => {
    ddb.on(ScanCommand).resolves({
      Items: [
        { pk: 'RUN#old', owner: 'arn:old', claimedAt: '2026-12-01T00:00:00.000Z' },
        { pk: 'RUN#new', owner: 'arn:new', claimedAt: '2026-12-06T00:00:00.000Z' },
      ],
    });
    sfn.on(DescribeExecutionCommand, { executionArn: 'arn:new' }).resolves({ status: 'RUNNING' } as never);
    s3.on(GetObjectCommand, { Bucket: 'bb-bucket', Key: 'results/old/summary.json' }).resolves(
      jsonBody({ status: 'Succeeded', records: { input: 3, succeeded: 3, failed: 0, rejected: 0 }, cost: { batchUsd: 0.25, onDemandUsd: 0.5 } }),
    );
    expect(await listRuns(mockedTarget())).toEqual([
      { runId: 'new', status: 'Running', claimedAt: '2026-12-06T00:00:00.000Z' },
      { runId: 'old', status: 'Succeeded', claimedAt: '2026-12-01T00:00:00.000Z', records: { input: 3, succeeded: 3, failed: 0, rejected: 0 }, costUsd: 0.75 },
    ]);
    expect(ddb.commandCalls(ScanCommand)[0]!.args[0].input.ExpressionAttributeValues).toEqual({ ':run': 'RUN#' });
  });
});
