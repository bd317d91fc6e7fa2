import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { isValidRunId, KEY_PREFIX_VARIABLE } from '../../../lambdas/shared/contracts';
import { RunIdTaken, type StartDeps } from '../../../lambdas/start-run/claim-and-start';
import { startFromObject, type ObjectCreatedEvent } from '../../../lambdas/start-run/start-run';
import {
  InvalidSweepEvent,
  MAX_FILES_PER_SWEEP,
  MAX_SWEEP_INPUT_BYTES,
  startSweep,
  sweepPrefixes,
  sweepRunId,
  sweepTime,
  SWEEP_MARK_RETENTION_DAYS,
  SWEEP_MAX_FILE_AGE_DAYS,
} from '../../../lambdas/start-run/sweep';
import { pipeline, route } from '../support/fixtures';

const SM = 'arn:aws:states:us-east-1:123456789012:stateMachine:bedrock-batch';
/** Step Functions execution names: 1..80 characters, none of whitespace, brackets, wildcards, punctuation listed by the API. */
// The API's name pattern excludes control characters, so the regex must name them.
// eslint-disable-next-line no-control-regex
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
const claims = () => ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input);
const execArn = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:bedrock-batch:${name}`;
const conditionFailed = () => Object.assign(new Error('conditional'), { name: 'ConditionalCheckFailedException' });
/** Someone else's execution holds the run id `RUN#<runId>` (the claim's conditional update fails). */
function squatted(owner = execArn('squatter'), extra: Record<string, unknown> = {}) {
  ddbMock.on(UpdateCommand).rejects(conditionFailed());
  ddbMock.on(GetCommand).resolves({ Item: { pk: 'RUN#x', sk: 'RUN', owner, runId: 'x', claimedAt: '2025-03-03T00:00:00.000Z', ...extra } });
}
/** An execution of the name start-run uses exists already, started with `input`. */
function existing(input: unknown) {
  sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
  sfnMock.on(DescribeExecutionCommand).resolves({ input: JSON.stringify(input) });
}

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
        input: JSON.stringify({
          inputs: ['s3://drop/inbox/tickets/2025/a.jsonl'],
          route: 'tickets',
          runId: out.runId,
          inputETags: { 's3://drop/inbox/tickets/2025/a.jsonl': 'e1' },
        }),
      },
    ]);
  });

  describe('a key the event may have URL-encoded (S3 encodes keys in its notifications)', () => {
    /** The bucket holds exactly `objects` (key to ETag); ListObjectsV2 answers by prefix, sorted. */
    const bucketHolds = (objects: Record<string, string>) =>
      s3Mock.on(ListObjectsV2Command).callsFake((input: { Prefix?: string }) => ({
        Contents: Object.keys(objects)
          .filter((k) => k.startsWith(input.Prefix ?? ''))
          .sort()
          .slice(0, 1)
          .map((k) => ({ Key: k, ETag: `"${objects[k]}"` })),
      }));
    const inputOf = (i = 0) => JSON.parse(starts()[i]!.input!) as { inputs: string[]; inputETags?: Record<string, string> };

    it('runs the object the key decodes to when only that one exists (percent- or form-encoded)', async () => {
      bucketHolds({ 'inbox/tickets/my file+1.jsonl': 'e1' });
      await startFromObject(deps(), created('inbox/tickets/my%20file%2B1.jsonl'));
      await startFromObject(deps(), created('inbox/tickets/my+file%2B1.jsonl'));
      for (const i of [0, 1]) {
        expect(inputOf(i).inputs).toEqual(['s3://drop/inbox/tickets/my file+1.jsonl']);
        expect(inputOf(i).inputETags).toEqual({ 's3://drop/inbox/tickets/my file+1.jsonl': 'e1' });
      }
    });

    it('decodes a path-style key too, where a plus stays a plus', async () => {
      bucketHolds({ 'inbox/tickets/a+b c.jsonl': 'e1' });
      await startFromObject(deps(), created('inbox/tickets/a+b%20c.jsonl'));
      expect(inputOf(0).inputs).toEqual(['s3://drop/inbox/tickets/a+b c.jsonl']);
    });

    it('names the run after the key as sent, so a redelivery is the same run whatever the bucket holds by then', async () => {
      bucketHolds({ 'inbox/tickets/my file.jsonl': 'e1' });
      await startFromObject(deps(), created('inbox/tickets/my+file.jsonl'));
      bucketHolds({});
      await startFromObject(deps(), created('inbox/tickets/my+file.jsonl'));
      expect(starts()[0]!.name).toBe(starts()[1]!.name);
    });

    it('takes only the exact key: a longer key sharing its prefix is not it', async () => {
      bucketHolds({ 'inbox/tickets/c d.jsonl.bak': 'e1' });
      await startFromObject(deps(), created('inbox/tickets/c%20d.jsonl'));
      expect(inputOf(0).inputs).toEqual(['s3://drop/inbox/tickets/c%20d.jsonl']);
    });

    it('checks the route and suffix on the key it runs, not on a decoding of it', async () => {
      bucketHolds({ 'inbox/tickets%2Fx/a.jsonl': 'e1' });
      await expect(startFromObject(deps(), created('inbox/tickets%2Fx/a.jsonl'))).resolves.toEqual({ ignored: 'route tickets%2Fx is not configured' });
      expect(starts()).toEqual([]);
    });

    it('keeps the key as sent when that object exists, or when neither does (prepare then says it is missing)', async () => {
      bucketHolds({ 'inbox/tickets/a+b.jsonl': 'e1' });
      await startFromObject(deps(), created('inbox/tickets/a+b.jsonl'));
      expect(inputOf(0).inputs).toEqual(['s3://drop/inbox/tickets/a+b.jsonl']);
      bucketHolds({});
      await startFromObject(deps(), created('inbox/tickets/c%20d.jsonl'));
      expect(inputOf(1).inputs).toEqual(['s3://drop/inbox/tickets/c%20d.jsonl']);
    });

    it("takes the one with the event's ETag when both exist, else the key as sent", async () => {
      bucketHolds({ 'inbox/tickets/a b.jsonl': 'e1', 'inbox/tickets/a+b.jsonl': 'e2' });
      await startFromObject(deps(), created('inbox/tickets/a+b.jsonl', { etag: 'e1' }));
      await startFromObject(deps(), created('inbox/tickets/a+b.jsonl', { etag: 'e2' }));
      await startFromObject(deps(), created('inbox/tickets/a+b.jsonl', { etag: 'e3' }));
      expect([0, 1, 2].map((i) => inputOf(i).inputs[0])).toEqual([
        's3://drop/inbox/tickets/a b.jsonl',
        's3://drop/inbox/tickets/a+b.jsonl',
        's3://drop/inbox/tickets/a+b.jsonl',
      ]);
    });

    it('looks nothing up for a key that decodes to itself, or that is not valid percent-encoding', async () => {
      await startFromObject(deps(), created('inbox/tickets/plain-name_1.jsonl'));
      await startFromObject(deps(), created('inbox/tickets/100%.jsonl'));
      expect(s3Mock.commandCalls(ListObjectsV2Command)).toHaveLength(0);
      expect(inputOf(1).inputs).toEqual(['s3://drop/inbox/tickets/100%.jsonl']);
    });
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

  it('claims the run id for the execution it starts, before starting it', async () => {
    const out = (await startFromObject(deps(), created('inbox/tickets/a.jsonl'))) as { started: string; runId: string };
    expect(claims()).toEqual([
      expect.objectContaining({
        TableName: 'jobs',
        Key: { pk: `RUN#${out.runId}`, sk: 'RUN' },
        ConditionExpression: 'attribute_not_exists(pk) OR #owner = :arn',
        ExpressionAttributeValues: expect.objectContaining({ ':arn': execArn(out.started), ':runId': out.runId }),
      }),
    ]);
    const order = [...ddbMock.calls(), ...sfnMock.calls()].map((c) => c.args[0].constructor.name);
    expect(order).toEqual(['UpdateCommand', 'StartExecutionCommand']);
  });

  it('reports a re-delivered event as a duplicate (ExecutionAlreadyExists with the same input)', async () => {
    await startFromObject(deps(), created('inbox/tickets/a.jsonl'));
    const first = JSON.parse(starts()[0]!.input!);
    sfnMock.reset();
    existing(first);
    const out = await startFromObject(deps(), created('inbox/tickets/a.jsonl'));
    expect(out).toEqual({ duplicate: first.runId });
    expect(sfnMock.commandCalls(DescribeExecutionCommand).map((c) => c.args[0].input)).toEqual([{ executionArn: execArn(first.runId) }]);
  });

  it('refuses a file whose run id another execution claimed first (a precomputed id): error, no start', async () => {
    squatted();
    const err = await startFromObject(deps(), created('inbox/tickets/a.jsonl')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunIdTaken);
    expect((err as Error).message).toMatch(
      /^cannot start run tickets-[0-9a-f]{16} for s3:\/\/drop\/inbox\/tickets\/a\.jsonl: its run id is held by execution squatter/,
    );
    expect(starts()).toEqual([]);
  });

  it('refuses a file whose execution name was taken by an execution with another input', async () => {
    existing({ runId: 'whatever' });
    const err = await startFromObject(deps(), created('inbox/tickets/a.jsonl')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunIdTaken);
    expect((err as Error).message).toMatch(/an execution named tickets-[0-9a-f]{16} exists already with another input/);
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
  /** Sweep marks expire SWEEP_MARK_RETENTION_DAYS after the sweep's time (table TTL, epoch seconds). */
  const EXPIRES_AT = NOW.getTime() / 1000 + SWEEP_MARK_RETENTION_DAYS * 86400;

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
        Item: { pk: 'SWEPT#drop/inbox/nightly/a.jsonl', sk: '"ea"', runId, takenAt: NOW.toISOString(), expiresAt: EXPIRES_AT },
        ConditionExpression: 'attribute_not_exists(pk) OR runId = :runId',
        ExpressionAttributeValues: { ':runId': runId },
      },
      {
        TableName: 'jobs',
        Item: { pk: 'SWEPT#drop/held/nightly/run-r02.jsonl', sk: '"eh"', runId, takenAt: NOW.toISOString(), expiresAt: EXPIRES_AT },
        ConditionExpression: 'attribute_not_exists(pk) OR runId = :runId',
        ExpressionAttributeValues: { ':runId': runId },
      },
    ]);
    expect(starts()).toEqual([
      {
        stateMachineArn: SM,
        name: runId,
        input: JSON.stringify({ inputs: ['s3://drop/inbox/nightly/a.jsonl', 's3://drop/held/nightly/run-r02.jsonl'], route: 'nightly', runId }),
      },
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
      {
        stateMachineArn: SM,
        name: runId,
        input: JSON.stringify({ inputs: ['s3://drop/held/holding/holding-0123456789abcdef-r01.jsonl'], route: 'holding', runId }),
      },
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
    ddbMock
      .on(PutCommand, { Item: { pk: 'SWEPT#drop/inbox/nightly/old.jsonl' } })
      .rejects(Object.assign(new Error('exists'), { name: 'ConditionalCheckFailedException' }));
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
    const marked = puts().map((p) => ({ Key: { pk: p.Item!.pk, sk: p.Item!.sk }, runId: p.Item!.runId as string }));
    // Only this sweep's own marks are removed, never one another sweep wrote meanwhile.
    expect(ddbMock.commandCalls(DeleteCommand).map((c) => c.args[0].input)).toEqual(
      marked.map(({ Key, runId }) => ({ TableName: 'jobs', Key, ConditionExpression: 'runId = :runId', ExpressionAttributeValues: { ':runId': runId } })),
    );
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

  it.each([
    ['long keys', (i: number) => `inbox/nightly/${'k'.repeat(280)}-${i}.jsonl`],
    ['multi-byte keys (counted in UTF-8 bytes, as Step Functions counts)', (i: number) => `inbox/nightly/${'日本語のファイル名'.repeat(10)}-${i}.jsonl`],
  ])(`keeps the run input under ${MAX_SWEEP_INPUT_BYTES} bytes with %s: the rest wait, unmarked, for the next sweep`, async (_, key) => {
    listing(
      'inbox/nightly/',
      Array.from({ length: MAX_FILES_PER_SWEEP }, (_, i) => ({ Key: key(i), Size: 1, ETag: `"e${i}"` })),
    );
    const out = (await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)) as { files: number };
    const input = starts()[0]!.input!;
    expect(Buffer.byteLength(input)).toBeLessThanOrEqual(MAX_SWEEP_INPUT_BYTES);
    const inputs = (JSON.parse(input) as { inputs: string[] }).inputs;
    expect(out.files).toBe(inputs.length);
    expect(inputs.length).toBeLessThan(MAX_FILES_PER_SWEEP);
    // As many as fit: one more would not.
    expect(Buffer.byteLength(input) + Buffer.byteLength(JSON.stringify(`s3://drop/${key(inputs.length)}`)) + 1).toBeGreaterThan(MAX_SWEEP_INPUT_BYTES);
    // Only the files the run takes are marked.
    expect(puts().map((p) => p.Item!.pk)).toEqual(inputs.map((uri) => `SWEPT#drop/${uri.slice('s3://drop/'.length)}`));
  });

  it('is a duplicate when the same sweep was already started (same input): its marks stay', async () => {
    listing('inbox/nightly/', [{ Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"' }]);
    const runId = sweepRunId('nightly', NOW, 'drop');
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('exists'), { name: 'ExecutionAlreadyExists' }));
    sfnMock.on(DescribeExecutionCommand).resolves({ input: JSON.stringify({ runId, route: 'nightly', inputs: ['s3://drop/inbox/nightly/a.jsonl'] }) });
    await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).resolves.toEqual({ duplicate: runId });
    expect(ddbMock.commandCalls(DeleteCommand)).toHaveLength(0);
  });

  describe('a squatted run id or execution name (computed in advance by someone else)', () => {
    const A = { Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"' };
    const B = { Key: 'inbox/nightly/b.jsonl', Size: 20, ETag: '"eb"' };
    const runId = sweepRunId('nightly', NOW, 'drop');
    const ownInput = { inputs: ['s3://drop/inbox/nightly/a.jsonl', 's3://drop/inbox/nightly/b.jsonl'], route: 'nightly', runId };
    const removed = () => ddbMock.commandCalls(DeleteCommand).map((c) => c.args[0].input.Key);
    const MARKS = [
      { pk: 'SWEPT#drop/inbox/nightly/a.jsonl', sk: '"ea"' },
      { pk: 'SWEPT#drop/inbox/nightly/b.jsonl', sk: '"eb"' },
    ];

    beforeEach(() => listing('inbox/nightly/', [A, B]));

    it('claims RUN#<runId> for the sweep execution after marking its files and before starting it', async () => {
      await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW);
      expect(claims()).toEqual([
        expect.objectContaining({ Key: { pk: `RUN#${runId}`, sk: 'RUN' }, ExpressionAttributeValues: expect.objectContaining({ ':arn': execArn(runId) }) }),
      ]);
      const order = [...ddbMock.calls(), ...sfnMock.calls()].map((c) => c.args[0].constructor.name);
      expect(order).toEqual(['PutCommand', 'PutCommand', 'UpdateCommand', 'StartExecutionCommand']);
    });

    it('a run id held by another execution: marks removed, a clear error, no StartExecution', async () => {
      squatted();
      const err = await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunIdTaken);
      expect((err as Error).message).toBe(
        `cannot start run ${runId} for the sweep of route nightly: its run id is held by execution squatter, not by ${runId}; its 2 files were not taken and wait for the next sweep (see docs/OPERATIONS.md, "Failures")`,
      );
      expect(starts()).toEqual([]);
      expect(removed()).toEqual(MARKS);
    });

    it('an execution of the same name with another input: marks removed, a clear error', async () => {
      existing({ runId, route: 'nightly', inputs: ['s3://drop/inbox/nightly/a.jsonl'] });
      const err = await startSweep(deps(), { sweep: { route: 'nightly' } }, NOW).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunIdTaken);
      expect((err as Error).message).toMatch(
        new RegExp(`^cannot start run ${runId} for the sweep of route nightly: an execution named ${runId} exists already with another input`),
      );
      expect(removed()).toEqual(MARKS);
    });

    it('an execution of the same name whose input is not JSON is another input', async () => {
      sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
      sfnMock.on(DescribeExecutionCommand).resolves({ input: '{not json' });
      await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).rejects.toThrow(RunIdTaken);
      expect(removed()).toEqual(MARKS);
    });

    it('a redelivery (same name, same input, in any key order) is a duplicate and keeps its marks', async () => {
      existing({ runId, inputs: ownInput.inputs, route: 'nightly' });
      await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).resolves.toEqual({ duplicate: runId });
      expect(removed()).toEqual([]);
    });

    it('a redelivery after the run was handed over to a successor is a duplicate and keeps its marks', async () => {
      squatted(execArn(`${runId}-r1-c400`), { handedOverBy: execArn(runId) });
      sfnMock.on(DescribeExecutionCommand).resolves({ input: JSON.stringify(ownInput) });
      await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).resolves.toEqual({ duplicate: runId });
      expect(starts()).toEqual([]);
      expect(removed()).toEqual([]);
    });

    it('a held id with an execution of our name and input that was never handed over is still refused', async () => {
      // The squatter claimed the id first, then started our exact input under our name: that
      // execution failed in Prepare, so the files were not run.
      squatted();
      sfnMock.on(DescribeExecutionCommand).resolves({ input: JSON.stringify(ownInput) });
      await expect(startSweep(deps(), { sweep: { route: 'nightly' } }, NOW)).rejects.toThrow(RunIdTaken);
      expect(removed()).toEqual(MARKS);
    });
  });

  describe("named after the scheduled event's time", () => {
    const TICK = '2025-03-04T02:00:00Z';
    const tick = (route: string, time: unknown = TICK) => ({ sweep: { route, time } }) as never;

    it('a redelivery after a lost StartExecution response is the same sweep: same name, same files, no second run', async () => {
      listing('inbox/nightly/', [{ Key: 'inbox/nightly/a.jsonl', Size: 10, ETag: '"ea"', LastModified: new Date('2025-03-04T01:00:00Z') } as never]);
      // The first start reached Step Functions but its response was lost; EventBridge (or
      // Lambda's async retry) delivers the same event again minutes later.
      sfnMock
        .on(StartExecutionCommand)
        .rejectsOnce(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }))
        .rejects(Object.assign(new Error('exists'), { name: 'ExecutionAlreadyExists' }));
      sfnMock.on(DescribeExecutionCommand).callsFake(() => ({ input: starts()[0]!.input }));
      await expect(startSweep(deps(), tick('nightly'), new Date('2025-03-04T02:00:03Z'))).rejects.toThrow('socket hang up');
      await expect(startSweep(deps(), tick('nightly'), new Date('2025-03-04T02:04:10Z'))).resolves.toEqual({
        duplicate: sweepRunId('nightly', new Date(TICK), 'drop'),
      });
      const names = starts().map((x) => x.name);
      expect(names).toEqual([sweepRunId('nightly', new Date(TICK), 'drop'), sweepRunId('nightly', new Date(TICK), 'drop')]);
      expect(starts()[0]!.input).toBe(starts()[1]!.input);
      // The redelivery took its own marks again (the failed start had removed them) and keeps them.
      expect(puts().map((p) => [p.Item!.runId, p.Item!.takenAt, p.Item!.expiresAt])).toEqual([
        [names[0], '2025-03-04T02:00:00.000Z', Date.parse(TICK) / 1000 + SWEEP_MARK_RETENTION_DAYS * 86400],
        [names[0], '2025-03-04T02:00:00.000Z', Date.parse(TICK) / 1000 + SWEEP_MARK_RETENTION_DAYS * 86400],
      ]);
      expect(ddbMock.commandCalls(DeleteCommand)).toHaveLength(1);
    });

    it('two routes swept by the same tick get different names', () => {
      const at = new Date(TICK);
      // Same first 12 characters: the prefix alone would collide.
      expect(sweepRunId('tickets-emea-a', at, 'drop')).not.toBe(sweepRunId('tickets-emea-b', at, 'drop'));
      expect(sweepRunId('nightly', at, 'drop')).toBe(sweepRunId('nightly', new Date(TICK), 'drop'));
      expect(isValidRunId(sweepRunId('nightly', at, 'drop'))).toBe(true);
    });

    it('two pipelines in one account sweeping a route of the same name at the same tick get different names', () => {
      // Job names are bb-<runId>-r..-c..., unique per account and region: the same run id in two
      // stacks (dev and prod, both with a nightly route) would collide at CreateModelInvocationJob.
      const at = new Date(TICK);
      expect(sweepRunId('nightly', at, 'dev-drop')).not.toBe(sweepRunId('nightly', at, 'prod-drop'));
      // Two pipelines in one shared bucket, under their own key prefixes.
      const saved = process.env[KEY_PREFIX_VARIABLE];
      try {
        process.env[KEY_PREFIX_VARIABLE] = 'teams/a/';
        const a = sweepRunId('nightly', at, 'lake');
        process.env[KEY_PREFIX_VARIABLE] = 'teams/b/';
        expect(sweepRunId('nightly', at, 'lake')).not.toBe(a);
      } finally {
        if (saved === undefined) delete process.env[KEY_PREFIX_VARIABLE];
        else process.env[KEY_PREFIX_VARIABLE] = saved;
      }
    });

    it('leaves files written after the tick for the next sweep, so every delivery of one tick takes the same files', async () => {
      listing('inbox/nightly/', [
        { Key: 'inbox/nightly/before.jsonl', Size: 1, ETag: '"e1"', LastModified: new Date('2025-03-04T02:00:00Z') },
        { Key: 'inbox/nightly/after.jsonl', Size: 1, ETag: '"e2"', LastModified: new Date('2025-03-04T02:00:01Z') },
      ] as never);
      await startSweep(deps(), tick('nightly'), new Date('2025-03-04T02:09:00Z'));
      expect(JSON.parse(starts()[0]!.input!).inputs).toEqual(['s3://drop/inbox/nightly/before.jsonl']);
    });

    it(`leaves files older than ${SWEEP_MAX_FILE_AGE_DAYS} days (their marks may have expired): never taken twice`, async () => {
      const day = 86400_000;
      expect(SWEEP_MAX_FILE_AGE_DAYS).toBeLessThan(SWEEP_MARK_RETENTION_DAYS);
      listing('inbox/nightly/', [
        { Key: 'inbox/nightly/ancient.jsonl', Size: 1, ETag: '"e1"', LastModified: new Date(Date.parse(TICK) - SWEEP_MAX_FILE_AGE_DAYS * day - 1000) },
        { Key: 'inbox/nightly/old.jsonl', Size: 1, ETag: '"e2"', LastModified: new Date(Date.parse(TICK) - SWEEP_MAX_FILE_AGE_DAYS * day + 1000) },
      ] as never);
      await startSweep(deps(), tick('nightly'));
      expect(JSON.parse(starts()[0]!.input!).inputs).toEqual(['s3://drop/inbox/nightly/old.jsonl']);
    });

    it.each([
      ['2025-03-04', 'a date only'],
      ['2025-03-04T02:00:00', 'no zone'],
      ['2025-03-04T02:00:00+01:00', 'not UTC'],
      ['2025-02-30T02:00:00Z', 'no such day'],
      ['2025-03-04T24:00:00Z', 'no such hour'],
      ['Tue, 04 Mar 2025 02:00:00 GMT', 'not ISO 8601'],
      [1741053600000, 'a number'],
      ['', 'empty'],
      [null, 'null'],
    ] as Array<[unknown, string]>)('refuses time %j (%s) and touches nothing', async (time) => {
      listing('inbox/nightly/', [{ Key: 'inbox/nightly/a.jsonl', Size: 1, ETag: '"e1"' }]);
      const err = await startSweep(deps(), tick('nightly', time), NOW).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidSweepEvent);
      expect((err as Error).message).toBe(
        `sweep.time must be the scheduled event's time, an ISO 8601 UTC timestamp such as 2026-12-03T02:00:00Z (got ${JSON.stringify(time)}); leave it out to name the sweep after the clock`,
      );
      expect(s3Mock.calls()).toHaveLength(0);
      expect(ddbMock.calls()).toHaveLength(0);
      expect(starts()).toHaveLength(0);
    });

    it('accepts milliseconds, and falls back to the clock without a time', () => {
      expect(sweepTime({ sweep: { route: 'r', time: '2025-03-04T02:00:00.250Z' } }, NOW)).toEqual({
        at: new Date('2025-03-04T02:00:00.250Z'),
        fromEvent: true,
      });
      expect(sweepTime({ sweep: { route: 'r' } }, NOW)).toEqual({ at: NOW, fromEvent: false });
    });
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
