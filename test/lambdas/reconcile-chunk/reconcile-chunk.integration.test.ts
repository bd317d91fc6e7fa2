import { BedrockClient, GetModelInvocationJobCommand, StopModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { reconcileChunk, type ReconcileEvent } from '../../../lambdas/reconcile-chunk/reconcile-chunk';
import { runKeys, type RunConfig } from '../../../lambdas/shared/contracts';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { JobSlotLimiter } from '../../../lambdas/shared/job-slots';
import { anthropicInput, anthropicOutputLine, errorOutputLine, runConfig } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';

const bedrockMock = mockClient(BedrockClient);
const ddbMock = mockClient(DynamoDBDocumentClient);
let s3: TestS3;

const JOB_ID = 'abcdef123456';
const JOB_ARN = `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/${JOB_ID}`;

beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  bedrockMock.restore();
  ddbMock.restore();
  await s3.stop();
});
beforeEach(() => {
  bedrockMock.reset();
  ddbMock.reset();
  ddbMock.on(UpdateCommand).resolves({}).on(GetCommand).resolves({});
});

function deps() {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  return {
    s3: s3.client,
    bedrock: new BedrockClient({ region: 'us-east-1' }),
    limiter: new JobSlotLimiter(ddb, 'jobs'),
    jobs: new JobRecords(ddb, 'jobs'),
  };
}

const inputLine = (id: string) => JSON.stringify({ recordId: id, modelInput: anthropicInput(`in ${id}`) });

async function chunkWith(runId: string, ids: string[], round = 1, chunk = 0): Promise<RunConfig> {
  const run = runConfig({ runId, bucket: s3.bucket });
  await s3.put(runKeys.chunkInput(runId, round, chunk), ids.map((id) => inputLine(id) + '\n').join(''));
  return run;
}

const sortById = <T extends { recordId?: unknown }>(rows: T[]) => [...rows].sort((a, b) => String(a.recordId).localeCompare(String(b.recordId)));

describe('reconcileChunk', () => {
  it('joins shuffled output of several .out files with the input, ignoring the manifest, and retries what is missing', async () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const run = await chunkWith('rc-1', ids, 2, 4);
    const out = `${runKeys.chunkOutputPrefix('rc-1', 2, 4)}${JOB_ID}/`;
    await s3.put(
      `${out}c00004.jsonl.out`,
      [errorOutputLine('c', 429, 'Too many requests'), anthropicOutputLine('e', 10, 20), anthropicOutputLine('a', 1, 2)].join('\n') + '\n',
    );
    await s3.put(
      `${out}c00004-part2.jsonl.out`,
      [anthropicOutputLine('zzz'), errorOutputLine('b', 400, 'Malformed input'), anthropicOutputLine('a', 1, 2), errorOutputLine('d', 500, 'boom')].join('\n'),
    );
    await s3.put(
      `${out}manifest.json.out`,
      JSON.stringify({ totalRecordCount: 7, processedRecordCount: 5, successRecordCount: 2, errorRecordCount: 3, recordId: 'a' }),
    );
    // Output of an earlier job of the same chunk (another job id): not this job's output.
    await s3.put(`${runKeys.chunkOutputPrefix('rc-1', 2, 4)}oldjob000000/c00004.jsonl.out`, anthropicOutputLine('f'));
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ jobArn: JOB_ARN, status: 'PartiallyCompleted', message: 'some records failed' });

    const stats = await reconcileChunk(deps(), { run, round: 2, chunk: 4, job: { jobArn: JOB_ARN, status: 'Completed' } });

    expect(stats).toEqual({
      round: 2,
      chunk: 4,
      jobArn: JOB_ARN,
      jobStatus: 'PartiallyCompleted',
      records: 7,
      succeeded: 2,
      failed: 1,
      retry: 4,
      tokens: { input: 11, output: 22 },
      unknownOutputRecords: 1,
      duplicateOutputRecords: 1,
      // The manifest of the parts written, with their sizes (what readers go by).
      parts: [
        { kind: 'succeeded', key: runKeys.chunkPart('rc-1', 2, 4, 'succeeded'), lines: 2, bytes: expect.any(Number) },
        { kind: 'failed', key: runKeys.chunkPart('rc-1', 2, 4, 'failed'), lines: 1, bytes: expect.any(Number) },
        { kind: 'retry', key: runKeys.chunkPart('rc-1', 2, 4, 'retry'), lines: 4, bytes: expect.any(Number) },
      ],
    });
    expect(stats.succeeded + stats.failed + stats.retry).toBe(ids.length);
    for (const part of stats.parts) expect(Buffer.byteLength((await s3.text(part.key))!)).toBe(part.bytes);
    expect(await s3.json(runKeys.chunkStats('rc-1', 2, 4))).toEqual(stats);

    const succeeded = sortById(await s3.jsonl(runKeys.chunkPart('rc-1', 2, 4, 'succeeded')));
    expect(succeeded.map((s) => s.recordId)).toEqual(['a', 'e']);
    expect(succeeded[0]).toEqual({
      recordId: 'a',
      modelOutput: JSON.parse(anthropicOutputLine('a', 1, 2)).modelOutput,
      usage: { inputTokens: 1, outputTokens: 2 },
    });

    expect(await s3.jsonl(runKeys.chunkPart('rc-1', 2, 4, 'failed'))).toEqual([
      { recordId: 'b', error: { code: '400', message: 'Malformed input' }, attempts: 2 },
    ]);

    const retry = sortById(
      await s3.jsonl<{ recordId: string; modelInput: unknown; lastError: { code: string; message: string } }>(runKeys.chunkPart('rc-1', 2, 4, 'retry')),
    );
    expect(retry.map((r) => [r.recordId, r.lastError.code])).toEqual([
      ['c', '429'],
      ['d', '500'],
      ['f', 'MissingFromOutput'],
      ['g', 'MissingFromOutput'],
    ]);
    for (const r of retry) expect(r.modelInput).toEqual(anthropicInput(`in ${r.recordId}`));
    expect(retry[2]!.lastError.message).toBe('the job ended PartiallyCompleted and did not return this record: some records failed');

    // The slot is freed, under the chunk's job name.
    const release = ddbMock.commandCalls(UpdateCommand)[0]!.args[0].input;
    expect(release.Key).toEqual({ pk: `CAP#${run.modelId}`, sk: 'CAP' });
    expect(release).toMatchObject({
      UpdateExpression: 'DELETE holders :holderSet REMOVE #acquired',
      ExpressionAttributeValues: { ':holder': 'bb-rc-1-r02-c00004' },
    });
    expect(bedrockMock.commandCalls(GetModelInvocationJobCommand)[0]!.args[0].input).toEqual({ jobIdentifier: JOB_ARN });
  });

  it('retries every record of a chunk whose job was never created (NotSubmitted)', async () => {
    const run = await chunkWith('rc-2', ['a', 'b']);
    const event: ReconcileEvent = { run, round: 1, chunk: 0, jobError: { Error: 'ServiceQuotaExceededException', Cause: 'too many jobs' } };
    const stats = await reconcileChunk(deps(), event);
    expect(stats).toMatchObject({ jobStatus: 'NotSubmitted', records: 2, succeeded: 0, failed: 0, retry: 2 });
    expect(stats.jobArn).toBeUndefined();
    expect(bedrockMock.calls()).toHaveLength(0);
    const retry = await s3.jsonl<{ lastError: { code: string; message: string } }>(runKeys.chunkPart('rc-2', 1, 0, 'retry'));
    expect(retry.map((r) => r.lastError)).toEqual([
      { code: 'MissingFromOutput', message: 'the job ended NotSubmitted and did not return this record: ServiceQuotaExceededException: too many jobs' },
      { code: 'MissingFromOutput', message: 'the job ended NotSubmitted and did not return this record: ServiceQuotaExceededException: too many jobs' },
    ]);
    expect(await s3.text(runKeys.chunkPart('rc-2', 1, 0, 'succeeded'))).toBeUndefined();
    expect(await s3.text(runKeys.chunkPart('rc-2', 1, 0, 'failed'))).toBeUndefined();
    expect(ddbMock.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it('reads a job whose wait timed out: a finished job is reconciled as usual', async () => {
    const run = await chunkWith('rc-6', ['a', 'b']);
    ddbMock.on(GetCommand).resolves({ Item: { jobName: 'bb-rc-6-r01-c00000', jobArn: JOB_ARN } });
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    await s3.put(`${runKeys.chunkOutputPrefix('rc-6', 1, 0)}${JOB_ID}/c00000.jsonl.out`, [anthropicOutputLine('a'), anthropicOutputLine('b')].join('\n'));
    const stats = await reconcileChunk(deps(), { run, round: 1, chunk: 0, jobError: { Error: 'States.Timeout', Cause: 'wait timed out' } });
    expect(stats).toMatchObject({ jobArn: JOB_ARN, jobStatus: 'Completed', succeeded: 2, retry: 0 });
    expect(bedrockMock.commandCalls(StopModelInvocationJobCommand)).toHaveLength(0);
  });

  it('stops a job still running when its wait timed out, keeps what it returned, retries the rest', async () => {
    const run = await chunkWith('rc-7', ['a', 'b']);
    ddbMock.on(GetCommand).resolves({ Item: { jobName: 'bb-rc-7-r01-c00000', jobArn: JOB_ARN } });
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'InProgress' }).on(StopModelInvocationJobCommand).resolves({});
    await s3.put(`${runKeys.chunkOutputPrefix('rc-7', 1, 0)}${JOB_ID}/c00000.jsonl.out`, anthropicOutputLine('a'));
    const stats = await reconcileChunk(deps(), { run, round: 1, chunk: 0, jobError: { Error: 'States.Timeout', Cause: 'wait timed out' } });
    expect(bedrockMock.commandCalls(StopModelInvocationJobCommand)[0]!.args[0].input).toEqual({ jobIdentifier: JOB_ARN });
    expect(stats).toMatchObject({ jobArn: JOB_ARN, jobStatus: 'Stopped', succeeded: 1, retry: 1 });
    const [r] = await s3.jsonl<{ recordId: string; lastError: { message: string } }>(runKeys.chunkPart('rc-7', 1, 0, 'retry'));
    expect(r).toMatchObject({ recordId: 'b' });
    expect(r!.lastError.message).toMatch(/the wait for the job ended \(States.Timeout: wait timed out\); the job was stopped/);
    // The slot is freed only after the job was stopped.
    const order = [...bedrockMock.calls(), ...ddbMock.calls()].map((c) => c.args[0].constructor.name);
    expect(order).toContain('StopModelInvocationJobCommand');
    expect(ddbMock.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it('fails, not retries, the records of a job Bedrock refused for the whole run (JobRefused); a name in use or a table error is retried', async () => {
    const run = await chunkWith('rc-ref', ['a', 'b']);
    const cause = JSON.stringify({
      errorType: 'JobRefused',
      errorMessage: 'ValidationException: Batch inference is not supported for the model anthropic.claude-instant-v1.',
    });
    const stats = await reconcileChunk(deps(), { run, round: 1, chunk: 0, jobError: { Error: 'JobRefused', Cause: cause } });
    const refused = {
      code: 'JobRefused',
      message: `Bedrock refused to create the job for model ${run.modelId}: ValidationException: Batch inference is not supported for the model anthropic.claude-instant-v1.`,
    };
    expect(stats).toMatchObject({ jobStatus: 'NotSubmitted', succeeded: 0, failed: 2, retry: 0, refused });
    expect(await s3.jsonl(runKeys.chunkPart('rc-ref', 1, 0, 'failed'))).toEqual([
      { recordId: 'a', error: refused, attempts: 1 },
      { recordId: 'b', error: refused, attempts: 1 },
    ]);
    // A DynamoDB ValidationException of SubmitJob's own (not Bedrock's refusal) is retried too.
    const ddbError = await chunkWith('rc-ddb', ['a']);
    const table = await reconcileChunk(deps(), { run: ddbError, round: 1, chunk: 0, jobError: { Error: 'ValidationException', Cause: 'item too large' } });
    expect(table).toMatchObject({ retry: 1, failed: 0 });
    const named = await chunkWith('rc-conflict', ['a']);
    const conflict = await reconcileChunk(deps(), { run: named, round: 1, chunk: 0, jobError: { Error: 'ConflictException', Cause: 'name in use' } });
    expect(conflict).toMatchObject({ jobStatus: 'NotSubmitted', failed: 0, retry: 1 });
    expect(conflict).not.toHaveProperty('refused');
  });

  it("uses the event's status when the job cannot be read", async () => {
    const run = await chunkWith('rc-3', ['a']);
    bedrockMock.on(GetModelInvocationJobCommand).rejects(Object.assign(new Error('slow'), { name: 'ThrottlingException' }));
    const stats = await reconcileChunk(deps(), { run, round: 1, chunk: 0, job: { jobArn: JOB_ARN, status: 'Expired', message: 'timed out' } });
    expect(stats).toMatchObject({ jobArn: JOB_ARN, jobStatus: 'Expired', retry: 1 });
    const [r] = await s3.jsonl<{ lastError: { message: string } }>(runKeys.chunkPart('rc-3', 1, 0, 'retry'));
    expect(r!.lastError.message).toBe('the job ended Expired and did not return this record: timed out');
  });

  it('succeeds a whole chunk and writes no failed or retry part', async () => {
    const run = await chunkWith('rc-4', ['a', 'b']);
    await s3.put(
      `${runKeys.chunkOutputPrefix('rc-4', 1, 0)}${JOB_ID}/c00000.jsonl.out`,
      [anthropicOutputLine('b'), '', anthropicOutputLine('a')].join('\n') + '\n',
    );
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    const stats = await reconcileChunk(deps(), { run, round: 1, chunk: 0, job: { jobArn: JOB_ARN, status: 'Completed' } });
    expect(stats).toMatchObject({ jobStatus: 'Completed', succeeded: 2, failed: 0, retry: 0, unknownOutputRecords: 0, duplicateOutputRecords: 0 });
    expect(await s3.keys('work/rc-4/')).toEqual([runKeys.chunkStats('rc-4', 1, 0), runKeys.chunkPart('rc-4', 1, 0, 'succeeded')]);
  });

  it('leaves a committed chunk as it is: a run after its stats.json returns them and writes nothing, whatever the job looks like now', async () => {
    const run = await chunkWith('rc-5', ['a', 'b']);
    await s3.put(`${runKeys.chunkOutputPrefix('rc-5', 1, 0)}${JOB_ID}/c00000.jsonl.out`, anthropicOutputLine('a'));
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'PartiallyCompleted' });
    const event: ReconcileEvent = { run, round: 1, chunk: 0, job: { jobArn: JOB_ARN, status: 'PartiallyCompleted' } };
    const first = await reconcileChunk(deps(), event);
    const parts = async () => Promise.all(['succeeded', 'retry'].map((p) => s3.text(runKeys.chunkPart('rc-5', 1, 0, p as 'succeeded' | 'retry'))));
    const before = await parts();
    // By the second run the job reads Completed with both records: the chunk stays as committed.
    await s3.put(`${runKeys.chunkOutputPrefix('rc-5', 1, 0)}${JOB_ID}/c00000.jsonl.out`, [anthropicOutputLine('a'), anthropicOutputLine('b')].join('\n'));
    bedrockMock.reset();
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    ddbMock.resetHistory();
    expect(await reconcileChunk(deps(), event)).toEqual(first);
    expect(await parts()).toEqual(before);
    expect(bedrockMock.calls()).toHaveLength(0);
    expect(ddbMock.calls()).toHaveLength(0);
  });
});
