import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { JobSlotLimiter, SlotUnavailable } from '../../../lambdas/shared/job-slots';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

describe('JobSlotLimiter (mocked DynamoDB)', () => {
  const ddbMock = mockClient(DynamoDBDocumentClient);
  const limiter = new JobSlotLimiter(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs');
  beforeEach(() => ddbMock.reset());
  afterAll(() => ddbMock.restore());

  it('acquires with one conditional update of the holder set', async () => {
    ddbMock.on(UpdateCommand).resolves({});
    await limiter.acquire(MODEL, 'job-a', 5, new Date(1_700_000_000_000));
    const calls = ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([
      {
        TableName: 'jobs',
        Key: { pk: `CAP#${MODEL}`, sk: 'CAP' },
        UpdateExpression: 'ADD holders :holderSet SET #acquired = :now',
        ConditionExpression: 'attribute_not_exists(holders) OR size(holders) < :limit OR contains(holders, :holder)',
        ExpressionAttributeNames: { '#acquired': 'acquired:job-a' },
        ExpressionAttributeValues: { ':holderSet': new Set(['job-a']), ':holder': 'job-a', ':limit': 5, ':now': 1_700_000_000_000 },
      },
    ]);
  });

  it('turns a failed condition into SlotUnavailable and propagates other errors', async () => {
    ddbMock.on(UpdateCommand).rejects(conditionFailed());
    const err = await limiter.acquire(MODEL, 'job-a', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlotUnavailable);
    expect((err as Error).name).toBe('SlotUnavailable');
    expect((err as Error).message).toBe(`all 2 job slots of ${MODEL} are in use`);

    ddbMock.reset();
    ddbMock.on(UpdateCommand).rejects(Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' }));
    await expect(limiter.acquire(MODEL, 'job-a', 5)).rejects.toThrow('slow down');
    await expect(limiter.release(MODEL, 'job-a')).rejects.toThrow('slow down');
  });

  it('release reports whether the holder had a slot', async () => {
    ddbMock.on(UpdateCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
    await expect(limiter.release(MODEL, 'job-a')).resolves.toBe(true);
    await expect(limiter.release(MODEL, 'job-a')).resolves.toBe(false);
    expect(ddbMock.commandCalls(UpdateCommand)[0]!.args[0].input).toMatchObject({
      UpdateExpression: 'DELETE holders :holderSet REMOVE #acquired',
      ConditionExpression: 'contains(holders, :holder)',
      ExpressionAttributeNames: { '#acquired': 'acquired:job-a' },
    });
  });
});

describe('JobSlotLimiter (dynalite)', () => {
  let db: TestDynamo;
  let limiter: JobSlotLimiter;
  beforeAll(async () => {
    db = await startTestDynamo();
    limiter = new JobSlotLimiter(db.ddb, db.table);
  });
  afterAll(async () => {
    await db.stop();
  });

  it('never grants more than the cap to concurrent acquirers, and a freed slot is reusable', async () => {
    const model = 'm-race';
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => limiter.acquire(model, `job-${i}`, 3)));
    const granted = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`job-${i}`] : []));
    expect(granted).toHaveLength(3);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(SlotUnavailable);
    expect(await limiter.holders(model)).toEqual([...granted].sort());

    // Idempotent: a holder acquiring again, even at the cap, takes nothing more.
    await limiter.acquire(model, granted[0]!, 3);
    expect(await limiter.holders(model)).toHaveLength(3);
    await expect(limiter.acquire(model, 'job-late', 3)).rejects.toBeInstanceOf(SlotUnavailable);

    expect(await limiter.release(model, granted[0]!)).toBe(true);
    expect(await limiter.release(model, granted[0]!)).toBe(false);
    expect(await limiter.holders(model)).toHaveLength(2);
    await limiter.acquire(model, 'job-new', 3);
    expect(await limiter.holders(model)).toContain('job-new');
  });

  it('keeps caps of different models apart and lists the models', async () => {
    await limiter.acquire('m-a', 'x', 1);
    await limiter.acquire('m-b', 'y', 1);
    await expect(limiter.acquire('m-a', 'z', 1)).rejects.toBeInstanceOf(SlotUnavailable);
    expect(await limiter.models()).toEqual(expect.arrayContaining(['m-a', 'm-b']));
  });

  it('frees exactly the holders judged leaked', async () => {
    const model = 'm-leak';
    for (const h of ['live-1', 'dead-1', 'dead-2']) await limiter.acquire(model, h, 5);
    const freed = await limiter.recoverLeaked(model, async (h) => h.holder.startsWith('dead'));
    expect(freed).toBe(2);
    expect(await limiter.holders(model)).toEqual(['live-1']);
    expect(await limiter.recoverLeaked(model, async () => false)).toBe(0);
  });

  it('keeps when each holder took its slot, and forgets it with the slot', async () => {
    const model = 'm-times';
    await limiter.acquire(model, 'h-1', 5, new Date('2026-01-01T00:00:00Z'));
    await limiter.acquire(model, 'h-2', 5, new Date('2026-01-01T00:05:00Z'));
    expect(await limiter.slotHolders(model)).toEqual([
      { holder: 'h-1', acquiredAt: new Date('2026-01-01T00:00:00Z') },
      { holder: 'h-2', acquiredAt: new Date('2026-01-01T00:05:00Z') },
    ]);
    await limiter.release(model, 'h-1');
    const item = await db.ddb.send(new GetCommand({ TableName: db.table, Key: { pk: `CAP#${model}`, sk: 'CAP' } }));
    expect(Object.keys(item.Item!).filter((k) => k.startsWith('acquired:'))).toEqual(['acquired:h-2']);
    // A slot taken before acquire times were kept reads as unknown.
    await db.ddb.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { pk: `CAP#${model}`, sk: 'CAP' },
        UpdateExpression: 'ADD holders :s',
        ExpressionAttributeValues: { ':s': new Set(['h-old']) },
      }),
    );
    expect(await limiter.slotHolders(model)).toContainEqual({ holder: 'h-old', acquiredAt: undefined });
  });
});

describe('JobSlotLimiter (one cap per base model)', () => {
  let db: TestDynamo;
  beforeAll(async () => {
    db = await startTestDynamo();
  });
  afterAll(async () => db.stop());

  it('shares one cap between a bare model id, its inference profile and its ARN', async () => {
    const limiter = new JobSlotLimiter(db.ddb, db.table);
    await limiter.acquire('anthropic.claude-3-haiku-20240307-v1:0', 'job-a', 2);
    await limiter.acquire('us.anthropic.claude-3-haiku-20240307-v1:0', 'job-b', 2);
    await expect(limiter.acquire('arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0', 'job-c', 2)).rejects.toBeInstanceOf(
      SlotUnavailable,
    );
    expect(await limiter.holders('global.anthropic.claude-3-haiku-20240307-v1:0')).toEqual(['job-a', 'job-b']);
  });
});
