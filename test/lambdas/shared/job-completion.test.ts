import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, SendTaskSuccessCommand, TaskTimedOut } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { completeJobTask } from '../../../lambdas/shared/job-completion';
import { JobRecords, type JobItem } from '../../../lambdas/shared/job-records';

const JOB_ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456';
const JOB_NAME = 'bb-run-1-r01-c00000';

const ddbMock = mockClient(DynamoDBDocumentClient);
const sfnMock = mockClient(SFNClient);
const sfn = () => new SFNClient({ region: 'us-east-1' });
const jobs = () => new JobRecords(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs');

/** The item as a caller read it earlier (e.g. the sweeper's scan). */
const snapshot: JobItem = {
  jobName: JOB_NAME,
  runId: 'run-1',
  round: 1,
  chunk: 0,
  modelId: 'm',
  taskToken: 'tok',
  jobArn: JOB_ARN,
  status: 'InProgress',
  createdAt: 't',
  updatedAt: 't',
};
const outcome = { jobArn: JOB_ARN, status: 'Completed' };
const updates = () => ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input.UpdateExpression);

beforeEach(() => {
  ddbMock.reset();
  sfnMock.reset();
  ddbMock.on(UpdateCommand).resolves({});
  sfnMock.on(SendTaskSuccessCommand).resolves({});
});
afterAll(() => {
  ddbMock.restore();
  sfnMock.restore();
});

describe('completeJobTask', () => {
  it('sends the outcome to the token when the stored item is still open, then marks it', async () => {
    ddbMock.on(GetCommand).resolves({ Item: snapshot });
    await expect(completeJobTask(sfn(), jobs(), snapshot, outcome)).resolves.toBe(true);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input)).toEqual([{ taskToken: 'tok', output: JSON.stringify(outcome) }]);
    expect(ddbMock.commandCalls(GetCommand)[0]!.args[0].input).toMatchObject({ Key: { pk: `JOB#${JOB_NAME}`, sk: 'JOB' }, ConsistentRead: true });
    expect(updates()).toEqual([expect.stringContaining('SET #s = :s'), 'SET tokenCompletedAt = :now']);
  });

  it('sends and writes nothing when the token was completed since the caller read the item', async () => {
    // A sweep's snapshot is seconds old: job-state may have completed the token meanwhile.
    ddbMock.on(GetCommand).resolves({ Item: { ...snapshot, status: 'Completed', tokenCompletedAt: '2025-01-01T00:00:00Z' } });
    await expect(completeJobTask(sfn(), jobs(), snapshot, outcome)).resolves.toBe(false);
    expect(sfnMock.calls()).toHaveLength(0);
    expect(updates()).toEqual([]);
  });

  it('sends to every token the item holds now, and marks it only while it holds no more', async () => {
    // A retried submit added its token since the caller read the item: both get the outcome.
    ddbMock.on(GetCommand).resolves({ Item: { ...snapshot, taskToken: 'newer', taskTokens: new Set(['tok', 'newer']) } });
    await expect(completeJobTask(sfn(), jobs(), snapshot, outcome)).resolves.toBe(true);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input.taskToken)).toEqual(['tok', 'newer']);
    const mark = ddbMock.commandCalls(UpdateCommand).find((c) => c.args[0].input.UpdateExpression === 'SET tokenCompletedAt = :now')!;
    expect(mark.args[0].input).toMatchObject({ ConditionExpression: 'size(taskTokens) = :n', ExpressionAttributeValues: { ':n': 2 } });
  });

  it('still completes the token when the item cannot be found again (it is the only record of the token)', async () => {
    ddbMock.on(GetCommand).resolves({});
    await expect(completeJobTask(sfn(), jobs(), snapshot, outcome)).resolves.toBe(true);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
  });

  it('treats a token closed between the read and the send as already closed, and marks the item', async () => {
    ddbMock.on(GetCommand).resolves({ Item: snapshot });
    sfnMock.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ message: 'closed', $metadata: {} }));
    await expect(completeJobTask(sfn(), jobs(), snapshot, outcome)).resolves.toBe(false);
    expect(updates()).toContain('SET tokenCompletedAt = :now');
  });
});
