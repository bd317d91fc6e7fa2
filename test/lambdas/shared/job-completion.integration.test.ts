import { SFNClient, SendTaskSuccessCommand, TaskTimedOut } from '@aws-sdk/client-sfn';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { completeJobTask } from '../../../lambdas/shared/job-completion';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const JOB_ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456';
const JOB_NAME = 'bb-run-1-r01-c00000';
const outcome = { jobArn: JOB_ARN, status: 'Completed' };

const sfnMock = mockClient(SFNClient);
const sfn = () => new SFNClient({ region: 'us-east-1' });

/**
 * Races on a real conditional store (dynalite): a retried SubmitJob replaces the item's task
 * token while job-state or the sweeper is completing the previous attempt's token.
 */
describe('completeJobTask racing a retried submit (dynalite)', () => {
  let db: TestDynamo;
  let jobs: JobRecords;
  const submit = (taskToken: string) => jobs.putSubmitting({ jobName: JOB_NAME, runId: 'run-1', round: 1, chunk: 0, modelId: 'm', taskToken });

  beforeEach(async () => {
    db = await startTestDynamo();
    jobs = new JobRecords(db.ddb, db.table);
    sfnMock.reset();
  });
  afterEach(async () => db.stop());
  afterAll(() => sfnMock.restore());

  it('leaves the new token open when a retry adds it during the send, so the retry completes it', async () => {
    await submit('tok-1');
    await jobs.setCreated(JOB_NAME, JOB_ARN);
    const stale = (await jobs.get(JOB_NAME))!;
    // The first attempt failed, so its token is closed; its retry stores a new token meanwhile.
    sfnMock
      .on(SendTaskSuccessCommand, { taskToken: 'tok-1' })
      .callsFakeOnce(async () => {
        await submit('tok-2');
        throw new TaskTimedOut({ message: 'closed', $metadata: {} });
      })
      .rejects(new TaskTimedOut({ message: 'closed', $metadata: {} }));
    sfnMock.on(SendTaskSuccessCommand, { taskToken: 'tok-2' }).resolves({});

    await expect(completeJobTask(sfn(), jobs, stale, outcome)).resolves.toBe(false);
    const current = (await jobs.get(JOB_NAME))!;
    expect(current).toMatchObject({ taskToken: 'tok-2' });
    expect(current.tokenCompletedAt).toBeUndefined();
    expect((await jobs.openJobs()).map((j) => j.taskToken)).toEqual(['tok-2']);

    // The retry finds the job over already and completes the item (submit-job's path): every
    // token it holds, the closed tok-1 answering TaskTimedOut.
    await expect(completeJobTask(sfn(), jobs, current, outcome)).resolves.toBe(true);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input.taskToken)).toEqual(['tok-1', 'tok-1', 'tok-2']);
    expect((await jobs.get(JOB_NAME))!.tokenCompletedAt).toEqual(expect.any(String));
    expect(await jobs.openJobs()).toEqual([]);
  });

  it("completes the live token when an earlier attempt, still running, stores its token after its retry's", async () => {
    // Step Functions retried SubmitJob (a Lambda service error) while attempt 1 was still
    // running: attempt 2 stored tok-2, found the job running and returned; attempt 1 then
    // stored tok-1, which nothing waits on any more.
    await submit('tok-2');
    await jobs.setCreated(JOB_NAME, JOB_ARN);
    await submit('tok-1');
    await jobs.setCreated(JOB_NAME, JOB_ARN);
    sfnMock.on(SendTaskSuccessCommand, { taskToken: 'tok-1' }).rejects(new TaskTimedOut({ message: 'closed', $metadata: {} }));
    sfnMock.on(SendTaskSuccessCommand, { taskToken: 'tok-2' }).resolves({});

    // The job ends; job-state (or the sweeper) completes what the item holds.
    await expect(completeJobTask(sfn(), jobs, (await jobs.get(JOB_NAME))!, outcome)).resolves.toBe(true);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input.taskToken)).toContain('tok-2');
    expect(await jobs.openJobs()).toEqual([]);
  });

  it('marks the token it sent when no retry intervened', async () => {
    await submit('tok-1');
    await jobs.setCreated(JOB_NAME, JOB_ARN);
    sfnMock.on(SendTaskSuccessCommand).resolves({});
    await expect(completeJobTask(sfn(), jobs, (await jobs.get(JOB_NAME))!, outcome)).resolves.toBe(true);
    expect(await jobs.get(JOB_NAME)).toMatchObject({ taskToken: 'tok-1', status: 'Completed', tokenCompletedAt: expect.any(String) });
  });
});

describe('marking an item that is gone (dynalite)', () => {
  let db: TestDynamo;
  beforeEach(async () => {
    db = await startTestDynamo();
  });
  afterEach(async () => db.stop());

  it.each([
    ['without a token count (stop-run)', {}],
    ['with a token count (completion)', { tokenCount: 1 }],
  ])('creates no stub item %s and says so', async (_label, opts) => {
    const jobs = new JobRecords(db.ddb, db.table);
    // Scanned open, then deleted (TTL, or another stop) before the mark.
    await jobs.putSubmitting({ jobName: JOB_NAME, runId: 'run-1', round: 1, chunk: 0, modelId: 'm', taskToken: 'tok-1' });
    await db.ddb.send(new DeleteCommand({ TableName: db.table, Key: { pk: `JOB#${JOB_NAME}`, sk: 'JOB' } }));
    await expect(jobs.markTokenCompleted(JOB_NAME, opts)).resolves.toBe(false);
    expect(await jobs.get(JOB_NAME)).toBeUndefined();
  });
});
