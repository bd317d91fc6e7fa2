import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvalidToken, SFNClient, SendTaskSuccessCommand, TaskTimedOut } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { handleJobStateEvent, type BatchJobStateEvent } from '../../../lambdas/job-state/job-state';
import { JobRecords } from '../../../lambdas/shared/job-records';

const JOB_ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456';
const JOB_NAME = 'bb-run-1-r01-c00000';

const ddbMock = mockClient(DynamoDBDocumentClient);
const sfnMock = mockClient(SFNClient);

const deps = () => ({
  sfn: new SFNClient({ region: 'us-east-1' }),
  jobs: new JobRecords(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs'),
});

function stateEvent(status: string, failureMessage?: string): BatchJobStateEvent {
  return {
    source: 'aws.bedrock',
    'detail-type': 'Batch Inference Job State Change',
    detail: { batchJobArn: JOB_ARN, batchJobName: JOB_NAME, status, ...(failureMessage ? { failureMessage } : {}) },
  };
}

const item = (extra: Record<string, unknown> = {}) => ({
  jobName: JOB_NAME,
  runId: 'run-1',
  round: 1,
  chunk: 0,
  modelId: 'm',
  taskToken: 'tok',
  jobArn: JOB_ARN,
  status: 'Submitted',
  ...extra,
});
const updates = () => ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input);

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

describe('handleJobStateEvent', () => {
  it('ignores a job the pipeline does not track', async () => {
    ddbMock.on(GetCommand).resolves({});
    await expect(handleJobStateEvent(deps(), stateEvent('Completed'))).resolves.toBe('unknown-job');
    expect(ddbMock.commandCalls(GetCommand)[0]!.args[0].input).toEqual({ TableName: 'jobs', Key: { pk: `JOB#${JOB_NAME}`, sk: 'JOB' }, ConsistentRead: true });
    expect(sfnMock.calls()).toHaveLength(0);
    expect(updates()).toHaveLength(0);
  });

  it.each(['InProgress', 'Completed', 'Failed'])("ignores an event (%s) for another job of the same name: its ARN is not the item's", async (status) => {
    // A job of this name that is not the item's (another pipeline's in the account, say): its
    // events must not complete this chunk's task.
    ddbMock.on(GetCommand).resolves({ Item: item({ jobArn: 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/ffffff000000' }) });
    await expect(handleJobStateEvent(deps(), stateEvent(status))).resolves.toBe('unknown-job');
    expect(sfnMock.calls()).toHaveLength(0);
    expect(updates()).toHaveLength(0);
  });

  it.each(['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Stopping'])(
    'records a non-terminal status (%s) without completing the token',
    async (status) => {
      ddbMock.on(GetCommand).resolves({ Item: item() });
      await expect(handleJobStateEvent(deps(), stateEvent(status))).resolves.toBe('not-terminal');
      expect(sfnMock.calls()).toHaveLength(0);
      expect(updates()).toHaveLength(1);
      expect(updates()[0]!.ExpressionAttributeValues).toMatchObject({ ':s': status, ':arn': JOB_ARN });
    },
  );

  it('does not overwrite the status of a job whose token is already completed', async () => {
    ddbMock.on(GetCommand).resolves({ Item: item({ tokenCompletedAt: '2025-01-01T00:00:00Z', status: 'Completed' }) });
    await expect(handleJobStateEvent(deps(), stateEvent('InProgress'))).resolves.toBe('not-terminal');
    expect(updates()).toHaveLength(0);
  });

  it.each(['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'])('completes the task token on %s', async (status) => {
    ddbMock.on(GetCommand).resolves({ Item: item() });
    await expect(handleJobStateEvent(deps(), stateEvent(status, 'why it ended'))).resolves.toBe('completed');
    const sends = sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.taskToken).toBe('tok');
    expect(JSON.parse(sends[0]!.output!)).toEqual({ jobArn: JOB_ARN, status, message: 'why it ended' });
    expect(updates().map((u) => u.UpdateExpression)).toEqual([expect.stringContaining('SET #s = :s'), 'SET tokenCompletedAt = :now']);
    expect(updates()[0]!.ExpressionAttributeValues).toMatchObject({ ':s': status, ':arn': JOB_ARN });
  });

  it.each(['Completed', 'InProgress'])('changes nothing on an event (%s) that arrives before submit-job recorded the job ARN', async (status) => {
    // Until the item has its job's ARN, an event of its name may be another job's (see the
    // module comment); submit-job reads its own job once the ARN is recorded.
    const { jobArn: _unknown, ...submitting } = item({ status: 'Submitting' });
    ddbMock.on(GetCommand).resolves({ Item: submitting });
    await expect(handleJobStateEvent(deps(), stateEvent(status))).resolves.toBe('awaiting-job-arn');
    expect(sfnMock.calls()).toHaveLength(0);
    expect(updates()).toHaveLength(0);
  });

  it('sends no message field when the event has none', async () => {
    ddbMock.on(GetCommand).resolves({ Item: item() });
    await handleJobStateEvent(deps(), stateEvent('Completed'));
    expect(JSON.parse(sfnMock.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output!)).toEqual({ jobArn: JOB_ARN, status: 'Completed' });
  });

  it.each([
    ['TaskTimedOut', () => new TaskTimedOut({ message: 'timed out', $metadata: {} })],
    ['InvalidToken', () => new InvalidToken({ message: 'invalid', $metadata: {} })],
    ['TaskDoesNotExist', () => Object.assign(new Error('gone'), { name: 'TaskDoesNotExist' })],
  ])('swallows %s (token already closed) and still marks the item', async (_name, error) => {
    ddbMock.on(GetCommand).resolves({ Item: item() });
    sfnMock.on(SendTaskSuccessCommand).rejects(error());
    await expect(handleJobStateEvent(deps(), stateEvent('Completed'))).resolves.toBe('already-closed');
    expect(updates().map((u) => u.UpdateExpression)).toContain('SET tokenCompletedAt = :now');
  });

  it('propagates other SendTaskSuccess errors and leaves the token open for a retry', async () => {
    ddbMock.on(GetCommand).resolves({ Item: item() });
    sfnMock.on(SendTaskSuccessCommand).rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    await expect(handleJobStateEvent(deps(), stateEvent('Completed'))).rejects.toThrow('slow down');
    expect(updates()).toHaveLength(0);
  });

  it('sends nothing for an item whose token is already completed (a repeated event)', async () => {
    ddbMock.on(GetCommand).resolves({ Item: item({ tokenCompletedAt: '2025-01-01T00:00:00Z' }) });
    await expect(handleJobStateEvent(deps(), stateEvent('Completed'))).resolves.toBe('already-closed');
    expect(sfnMock.calls()).toHaveLength(0);
    expect(updates()).toHaveLength(0);
  });
});
