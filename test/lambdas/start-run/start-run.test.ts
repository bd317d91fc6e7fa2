import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { isValidRunId } from '../../../lambdas/shared/contracts';
import { MAX_FILES_PER_SWEEP, startFromObject, startSweep, sweepPrefixes, type ObjectCreatedEvent, type StartDeps } from '../../../lambdas/start-run/start-run';
import { pipeline, route } from '../support/fixtures';

const SM = 'arn:aws:states:us-east-1:123456789012:stateMachine:bedrock-batch';
/** Step Functions execution names: 1..80 characters, none of whitespace, brackets, wildcards, punctuation listed by the API. */
const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/;

const ddbMock = mockClient(DynamoDBDocumentClient);
const sfnMock = mockClient(SFNClient);
const s3Client = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(s3Client);

const PIPELINE = pipeline({
  default: route(),
  tickets: route(),
  nightly: route({ trigger: 'nightly' }),
  holding: route({ smallRemainder: 'hold' }),
});

function deps(overrides: Partial<StartDeps> = {}): StartDeps {
  return {
    sfn: new SFNClient({ region: 'us-east-1' }),
    s3: s3Client,
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })),
    table: 'jobs',
    stateMachineArn: SM,
    bucket: 'drop',
    pipeline: PIPELINE,
    ...overrides,
  };
}

function created(key: string, object: Partial<ObjectCreatedEvent['detail']['object']> = { etag: 'e1' }, bucket = 'drop'): ObjectCreatedEvent {
  return { 'detail-type': 'Object Created', detail: { bucket: { name: bucket }, object: { key, ...object } } };
}

const starts = () => sfnMock.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);

beforeEach(() => {
  ddbMock.reset();
  sfnMock.reset();
  s3Mock.reset();
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: 'arn:exec' });
});
afterAll(() => {
  ddbMock.restore();
  sfnMock.restore();
  s3Mock.restore();
});

describe('startFromObject', () => {
  it('starts a run over the dropped file, named after the object', async () => {
    const out = await startFromObject(deps(), created('inbox/tickets/2025/a.jsonl'));
    expect(out).toEqual({ started: expect.any(String), runId: expect.any(String), files: 1 });
    if (!('started' in out)) throw new Error('not started');
    expect(out.started).toBe(out.runId);
    expect(out.runId).toMatch(/^tickets-[0-9a-f]{16}$/);
    expect(isValidRunId(out.runId)).toBe(true);
    // The run reads the file only while it still has the dropped object's ETag.
    expect(starts()).toEqual([
      {
        stateMachineArn: SM,
        name: out.runId,
        input: JSON.stringify({ inputs: ['s3://drop/inbox/tickets/2025/a.jsonl'], route: 'tickets', runId: out.runId, inputETags: { 's3://drop/inbox/tickets/2025/a.jsonl': 'e1' } }),
      },
    ]);
  });

  it('names no ETag when the event has none', async () => {
    await startFromObject(deps(), created('inbox/tickets/b.jsonl', {}));
    expect(JSON.parse(starts()[0]!.input!)).not.toHaveProperty('inputETags');
  });

  it('ignores a route name that is an inherited property (constructor)', async () => {
    await expect(startFromObject(deps(), created('inbox/constructor/a.jsonl'))).resolves.toEqual({ ignored: 'route constructor is not configured' });
    expect(starts()).toEqual([]);
  });

  it('derives the same execution name for the same bucket, key and ETag, and a new one when any changes', async () => {
    const name = async (e: ObjectCreatedEvent) => ((await startFromObject(deps(), e)) as { started: string }).started;
    const a = await name(created('inbox/tickets/a.jsonl', { etag: 'e1' }));
    expect(await name(created('inbox/tickets/a.jsonl', { etag: 'e1', sequencer: 'other' }))).toBe(a);
    expect(await name(created('inbox/tickets/a.jsonl', { etag: 'e2' }))).not.toBe(a);
    expect(await name(created('inbox/tickets/b.jsonl', { etag: 'e1' }))).not.toBe(a);
    expect(await name(created('inbox/tickets/a.jsonl', { etag: 'e1' }, 'other-bucket'))).not.toBe(a);
    // A version id identifies the object better than its ETag: same version, same run.
    const v = await name(created('inbox/tickets/a.jsonl', { etag: 'e1', 'version-id': 'v1' }));
    expect(await name(created('inbox/tickets/a.jsonl', { etag: 'e9', 'version-id': 'v1' }))).toBe(v);
  });

  it('reports a re-delivered event as a duplicate (ExecutionAlreadyExists)', async () => {
    sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    const out = await startFromObject(deps(), created('inbox/tickets/a.jsonl'));
    expect(out).toEqual({ duplicate: expect.stringMatching(/^tickets-[0-9a-f]{16}$/) });
  });

  it('propagates other StartExecution errors', async () => {
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('nope'), { name: 'AccessDeniedException' }));
    await expect(startFromObject(deps(), created('inbox/tickets/a.jsonl'))).rejects.toThrow('nope');
  });

  it.each([
    ['a non-jsonl file', 'inbox/tickets/a.csv', /^not a \.jsonl file/],
    ['a file directly under inbox/', 'inbox/a.jsonl', /^not a \.jsonl file/],
    ['a file outside inbox/', 'results/run/results.jsonl', /^not a \.jsonl file/],
    ['a file of an unknown route', 'inbox/unknown/a.jsonl', /^route unknown is not configured/],
    ['a file of a nightly route', 'inbox/nightly/a.jsonl', /^route nightly runs on the nightly sweep/],
  ])('ignores %s', async (_name, key, reason) => {
    const out = await startFromObject(deps(), created(key));
    expect(out).toEqual({ ignored: expect.stringMatching(reason) });
    expect(starts()).toHaveLength(0);
  });

  it('makes a valid run id and execution name for every route name the config allows ([a-z0-9-]+)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[a-z0-9-]{1,40}$/), fc.string({ maxLength: 40 }), async (name, etag) => {
        const d = deps({ pipeline: pipeline({ [name]: route() }) });
        const out = await startFromObject(d, created(`inbox/${name}/x.jsonl`, { etag }));
        if (!('started' in out)) throw new Error(JSON.stringify(out));
        expect(isValidRunId(out.runId)).toBe(true);
        expect(out.started).toMatch(EXECUTION_NAME);
      }),
      { numRuns: 300 },
    );
  });
});

describe('startSweep', () => {
  const NOW = new Date('2025-03-04T02:00:00.000Z');

  function listing(prefix: string, objects: Array<{ Key: string; Size: number; ETag: string }>) {
    s3Mock.on(ListObjectsV2Command, { Bucket: 'drop', Prefix: prefix }).resolves({ Contents: objects, IsTruncated: false });
  }

  beforeEach(() => {
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [] });
    ddbMock.on(PutCommand).resolves({}).on(DeleteCommand).resolves({});
  });

  const puts = () => ddbMock.commandCalls(PutCommand).map((c) => c.args[0].input);

  it('marks every new .jsonl file of inbox/<route>/ and held/<route>/ and starts one run over them', async () => {
    listing('inbox/nightly/', [
      { Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"' },
      { Key: 'inbox/nightly/readme.txt', Size: 1, ETag: '"er"' },
    ]);
    listing('held/nightly/', [{ Key: 'held/nightly/run-r02.jsonl', Size: 5, ETag: '"eh"' }]);

    const out = await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW);
    expect(out).toEqual({ started: expect.stringMatching(/^nightly-sweep-20250304-[0-9a-f]{6}$/), runId: expect.any(String), files: 2 });
    const runId = (out as { runId: string }).runId;
    expect(isValidRunId(runId)).toBe(true);

    expect(puts()).toEqual([
      {
        TableName: 'jobs',
        Item: { pk: 'SWEPT#drop/inbox/nightly/a.jsonl', sk: '"ea"', runId, takenAt: NOW.toISOString() },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
      {
        TableName: 'jobs',
        Item: { pk: 'SWEPT#drop/held/nightly/run-r02.jsonl', sk: '"eh"', runId, takenAt: NOW.toISOString() },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    ]);
    expect(starts()).toEqual([
      { stateMachineArn: SM, name: runId, input: JSON.stringify({ inputs: ['s3://drop/inbox/nightly/a.jsonl', 's3://drop/held/nightly/run-r02.jsonl'], route: 'nightly', runId }) },
    ]);
  });

  it('on an immediate route takes only held/<route>/: its inbox files already ran when they were dropped', async () => {
    listing('inbox/holding/', [{ Key: 'inbox/holding/ran-already.jsonl', Size: 10, ETag: '"ei"' }]);
    listing('held/holding/', [{ Key: 'held/holding/holding-0123456789abcdef-r01.jsonl', Size: 5, ETag: '"eh"' }]);

    const out = await startSweep(deps(), { sweep: { route: 'holding' } }, NOW);
    expect(out).toEqual({ started: expect.stringMatching(/^holding-sweep-20250304-[0-9a-f]{6}$/), runId: expect.any(String), files: 1 });
    const runId = (out as { runId: string }).runId;

    const listed = s3Mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input.Prefix);
    expect(listed).toEqual(['held/holding/']);
    expect(puts().map((p) => p.Item!.pk)).toEqual(['SWEPT#drop/held/holding/holding-0123456789abcdef-r01.jsonl']);
    expect(starts()).toEqual([
      { stateMachineArn: SM, name: runId, input: JSON.stringify({ inputs: ['s3://drop/held/holding/holding-0123456789abcdef-r01.jsonl'], route: 'holding', runId }) },
    ]);
  });

  it('on an immediate route with nothing held starts nothing, whatever is in its inbox', async () => {
    listing('inbox/holding/', [{ Key: 'inbox/holding/ran-already.jsonl', Size: 10, ETag: '"ei"' }]);
    await expect(startSweep(deps(), { sweep: { route: 'holding' } }, NOW)).resolves.toEqual({ ignored: 'no new files for route holding' });
    expect(puts()).toHaveLength(0);
    expect(starts()).toHaveLength(0);
  });

  it('sweeps inbox/ and held/ of a nightly route, held/ only of an immediate one', () => {
    expect(sweepPrefixes('r', 'nightly')).toEqual(['inbox/r/', 'held/r/']);
    expect(sweepPrefixes('r', 'immediate')).toEqual(['held/r/']);
  });

  it('skips files an earlier sweep already took', async () => {
    listing('inbox/nightly/', [
      { Key: 'inbox/nightly/old.jsonl', Size: 10, ETag: '"e1"' },
      { Key: 'inbox/nightly/new.jsonl', Size: 10, ETag: '"e2"' },
    ]);
    ddbMock.on(PutCommand, { Item: { pk: 'SWEPT#drop/inbox/nightly/old.jsonl' } }).rejects(Object.assign(new Error('exists'), { name: 'ConditionalCheckFailedException' }));
    const out = await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW);
    expect(out).toMatchObject({ files: 1 });
    expect(JSON.parse(starts()[0]!.input!).inputs).toEqual(['s3://drop/inbox/nightly/new.jsonl']);
  });

  it('takes a file again when it was replaced by a new version of the same size', async () => {
    listing('inbox/nightly/', [{ Key: 'inbox/nightly/daily.jsonl', Size: 10, ETag: '"monday"' }]);
    await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW);
    listing('inbox/nightly/', [{ Key: 'inbox/nightly/daily.jsonl', Size: 10, ETag: '"tuesday"' }]);
    await startSweep(deps(), { sweep: { route: 'nightly' } }, new Date('2025-03-05T02:00:00.000Z'));
    const [monday, tuesday] = puts();
    expect(monday!.Item!.pk).toBe(tuesday!.Item!.pk);
    expect(monday!.Item!.sk).not.toBe(tuesday!.Item!.sk);
  });

  it('starts nothing when there is no new file', async () => {
    listing('inbox/nightly/', [{ Key: 'inbox/nightly/old.jsonl', Size: 10, ETag: '"e1"' }]);
    ddbMock.on(PutCommand).rejects(Object.assign(new Error('exists'), { name: 'ConditionalCheckFailedException' }));
    await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).resolves.toEqual({ ignored: 'no new files for route nightly' });
    expect(starts()).toHaveLength(0);
  });

  it('ignores an unknown route', async () => {
    await expect(startSweep(deps(), { sweep: { route: 'nope' } }, NOW)).resolves.toEqual({ ignored: 'route nope is not configured' });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('removes its marks when the run cannot be started, so the next sweep takes the files', async () => {
    listing('inbox/nightly/', [
      { Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"' },
      { Key: 'inbox/nightly/b.jsonl', Size: 20, ETag: '"eb"' },
    ]);
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).rejects.toThrow('throttled');
    const marked = puts().map((p) => ({ pk: p.Item!.pk, sk: p.Item!.sk }));
    expect(ddbMock.commandCalls(DeleteCommand).map((c) => c.args[0].input)).toEqual(marked.map((Key) => ({ TableName: 'jobs', Key })));
  });

  it('propagates a marking error other than an existing mark', async () => {
    listing('inbox/nightly/', [{ Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"' }]);
    ddbMock.on(PutCommand).rejects(Object.assign(new Error('down'), { name: 'InternalServerError' }));
    await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).rejects.toThrow('down');
    expect(starts()).toHaveLength(0);
  });

  it(`takes at most ${MAX_FILES_PER_SWEEP} files per sweep`, async () => {
    listing(
      'inbox/nightly/',
      Array.from({ length: MAX_FILES_PER_SWEEP + 5 }, (_, i) => ({ Key: `inbox/nightly/f${String(i).padStart(5, '0')}.jsonl`, Size: 1, ETag: `"e${i}"` })),
    );
    const out = await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW);
    expect(out).toMatchObject({ files: MAX_FILES_PER_SWEEP });
    expect(puts()).toHaveLength(MAX_FILES_PER_SWEEP);
  });

  it('is a duplicate when the same sweep was already started', async () => {
    listing('inbox/nightly/', [{ Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"' }]);
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('exists'), { name: 'ExecutionAlreadyExists' }));
    await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).resolves.toEqual({ duplicate: expect.stringMatching(/^nightly-sweep-/) });
  });

  it('makes a valid run id for every route name the config allows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[a-z0-9-]{1,40}$/), async (name) => {
        ddbMock.reset();
        ddbMock.on(PutCommand).resolves({});
        s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: `inbox/${name}/a.jsonl`, Size: 1, ETag: '"e"' }] });
        const out = await startSweep(deps({ pipeline: pipeline({ [name]: route({ trigger: 'nightly' }) }) }), { sweep: { route: name } }, NOW);
        if (!('started' in out)) throw new Error(JSON.stringify(out));
        expect(isValidRunId(out.runId)).toBe(true);
        expect(out.started).toMatch(EXECUTION_NAME);
      }),
      { numRuns: 200 },
    );
  });
});
