import { BedrockClient, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { SFNClient, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { JobSlotLimiter } from '../../../lambdas/shared/job-slots';
import { SLOT_LEAK_GRACE_MS, SUBMIT_STALL_MS, sweepJobs } from '../../../lambdas/sweeper/sweeper';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const bedrockMock = mockClient(BedrockClient);
const sfnMock = mockClient(SFNClient);
const arn = (id: string) => `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/${id}`;

describe('sweepJobs (dynalite table, mocked Bedrock and Step Functions)', () => {
  let db: TestDynamo;
  let jobs: JobRecords;
  let limiter: JobSlotLimiter;
  const deps = () => ({ bedrock: new BedrockClient({ region: 'us-east-1' }), sfn: new SFNClient({ region: 'us-east-1' }), jobs, limiter });

  beforeEach(async () => {
    db = await startTestDynamo();
    jobs = new JobRecords(db.ddb, db.table);
    limiter = new JobSlotLimiter(db.ddb, db.table);
    bedrockMock.reset();
    sfnMock.reset();
  });
  afterEach(async () => db.stop());
  afterAll(() => {
    bedrockMock.restore();
    sfnMock.restore();
  });

  const track = async (name: string, modelId: string, jobArn?: string) => {
    await jobs.putSubmitting({ jobName: name, runId: 'run', round: 1, chunk: 0, modelId, taskToken: `tok-${name}` });
    if (jobArn) await jobs.setStatus(name, 'Submitted', jobArn);
  };

  it('completes terminal jobs whose event was missed and leaves the others open', async () => {
    await track('a', 'm1', arn('a'));
    await track('b', 'm1', arn('b'));
    await track('c', 'm2', arn('c'));
    await track('d', 'm2'); // still being submitted: no ARN, not polled
    await track('e', 'm2', arn('e'));
    bedrockMock
      .on(GetModelInvocationJobCommand, { jobIdentifier: arn('a') })
      .resolves({ status: 'Completed' })
      .on(GetModelInvocationJobCommand, { jobIdentifier: arn('b') })
      .resolves({ status: 'InProgress' })
      .on(GetModelInvocationJobCommand, { jobIdentifier: arn('c') })
      .resolves({ status: 'Failed', message: 'bad input' })
      .on(GetModelInvocationJobCommand, { jobIdentifier: arn('e') })
      .resolves({ status: 'Expired' });
    sfnMock
      .on(SendTaskSuccessCommand)
      .resolves({})
      .on(SendTaskSuccessCommand, { taskToken: 'tok-e' })
      .rejects(Object.assign(new Error('closed'), { name: 'TaskTimedOut' }));

    await expect(sweepJobs(deps())).resolves.toEqual({ polled: 4, completed: 2, recoveredSlots: 0, failed: [] });
    const sends = sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => [c.args[0].input.taskToken, JSON.parse(c.args[0].input.output!)]);
    expect(sends).toEqual(
      expect.arrayContaining([
        ['tok-a', { jobArn: arn('a'), status: 'Completed' }],
        ['tok-c', { jobArn: arn('c'), status: 'Failed', message: 'bad input' }],
        ['tok-e', { jobArn: arn('e'), status: 'Expired' }],
      ]),
    );
    expect(sends).toHaveLength(3);
    // Completed and already-closed tokens are marked; the next sweep polls only b.
    expect((await jobs.openJobs()).map((j) => j.jobName).sort()).toEqual(['b', 'd']);
    bedrockMock.resetHistory();
    await sweepJobs(deps());
    expect(bedrockMock.commandCalls(GetModelInvocationJobCommand).map((c) => c.args[0].input.jobIdentifier)).toEqual([arn('b')]);
  });

  it('frees slots held long after their job outcome was delivered, and only those', async () => {
    await track('old', 'm1', arn('old'));
    await track('recent', 'm1', arn('recent'));
    await track('running', 'm1', arn('running'));
    for (const h of ['old', 'recent', 'running']) await limiter.acquire('m1', h, 10);
    const t0 = new Date('2026-01-01T00:00:00Z');
    await jobs.markTokenCompleted('old', { now: t0 });
    await jobs.markTokenCompleted('recent', { now: new Date(t0.getTime() + SLOT_LEAK_GRACE_MS) });
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'InProgress' });

    const report = await sweepJobs(deps(), new Date(t0.getTime() + SLOT_LEAK_GRACE_MS + 1000));
    expect(report.recoveredSlots).toBe(1);
    expect(await limiter.holders('m1')).toEqual(['recent', 'running']);
  });

  it('frees slots whose run died before or while submitting, and keeps those about to submit', async () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const at = (ms: number) => new Date(t0.getTime() + ms);
    const now = at(SUBMIT_STALL_MS + 60_000);
    // No job item: taken long ago (leaked) or just now (SubmitJob has yet to write it).
    await limiter.acquire('m1', 'no-item-old', 10, at(0));
    await limiter.acquire('m1', 'no-item-new', 10, at(SUBMIT_STALL_MS + 30_000));
    // Still Submitting: last attempt long ago (leaked), or recent (a throttled create being retried).
    await jobs.putSubmitting({ jobName: 'stalled', runId: 'run', round: 1, chunk: 1, modelId: 'm1', taskToken: 't1' }, at(0));
    await jobs.putSubmitting({ jobName: 'retrying', runId: 'run', round: 1, chunk: 2, modelId: 'm1', taskToken: 't2' }, at(SUBMIT_STALL_MS - 60_000));
    for (const h of ['stalled', 'retrying']) await limiter.acquire('m1', h, 10, at(0));
    // A slot taken before acquire times were kept, with no job item: leaked.
    await db.ddb.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { pk: 'CAP#m1', sk: 'CAP' },
        UpdateExpression: 'ADD holders :s',
        ExpressionAttributeValues: { ':s': new Set(['legacy']) },
      }),
    );

    const report = await sweepJobs(deps(), now);
    expect(report.recoveredSlots).toBe(3);
    expect(await limiter.holders('m1')).toEqual(['no-item-new', 'retrying']);
    expect(bedrockMock.calls()).toHaveLength(0);
  });

  it('handles each job on its own: one whose poll always fails stops neither the other jobs nor slot recovery', async () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const now = new Date(t0.getTime() + SLOT_LEAK_GRACE_MS + 1000);
    // Several jobs on each side of the failing one, whatever order the scan returns them in.
    for (const name of ['a', 'b', 'poison', 'c', 'd']) await track(name, 'm1', arn(name));
    // A slot whose job outcome was delivered long ago and never freed: leaked.
    await track('leaked', 'm1', arn('leaked'));
    await limiter.acquire('m1', 'leaked', 10, t0);
    await limiter.acquire('m1', 'poison', 10, t0);
    await jobs.markTokenCompleted('leaked', { now: t0 });
    bedrockMock
      .on(GetModelInvocationJobCommand)
      .resolves({ status: 'Completed' })
      .on(GetModelInvocationJobCommand, { jobIdentifier: arn('poison') })
      .rejects(Object.assign(new Error('internal error'), { name: 'InternalServerException' }));
    sfnMock.on(SendTaskSuccessCommand).resolves({});

    const report = await sweepJobs(deps(), now);
    expect(report).toEqual({ polled: 5, completed: 4, recoveredSlots: 1, failed: ['job poison'] });
    expect(
      sfnMock
        .commandCalls(SendTaskSuccessCommand)
        .map((c) => c.args[0].input.taskToken)
        .sort(),
    ).toEqual(['tok-a', 'tok-b', 'tok-c', 'tok-d']);
    // The failing job keeps its slot and stays open for the next cycle.
    expect(await limiter.holders('m1')).toEqual(['poison']);
    expect((await jobs.openJobs()).map((j) => j.jobName)).toEqual(['poison']);
  });

  it('recovers slots even when the open jobs cannot be listed, and keeps a slot whose holder cannot be judged', async () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    await limiter.acquire('m1', 'gone', 10, t0);
    await limiter.acquire('m2', 'gone-too', 10, t0);
    const realGet = jobs.get.bind(jobs);
    jest.spyOn(jobs, 'get').mockImplementation(async (name: string) => {
      if (name === 'gone-too') throw new Error('throttled');
      return realGet(name);
    });
    jest.spyOn(jobs, 'openJobs').mockRejectedValue(new Error('scan failed'));

    const report = await sweepJobs(deps(), new Date(t0.getTime() + SLOT_LEAK_GRACE_MS + 1000));
    expect(report.recoveredSlots).toBe(1);
    expect(report.failed).toEqual(['slot m2/gone-too', 'open jobs']);
    expect(await limiter.holders('m1')).toEqual([]);
    expect(await limiter.holders('m2')).toEqual(['gone-too']);
  });

  it('reports nothing when nothing is tracked', async () => {
    await expect(sweepJobs(deps())).resolves.toEqual({ polled: 0, completed: 0, recoveredSlots: 0, failed: [] });
    expect(bedrockMock.calls()).toHaveLength(0);
  });
});
