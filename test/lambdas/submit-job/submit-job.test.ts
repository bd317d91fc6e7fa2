import { BedrockClient, CreateModelInvocationJobCommand, GetModelInvocationJobCommand, ThrottlingException } from '@aws-sdk/client-bedrock';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { submitChunkJob, type SubmitJobEvent } from '../../../lambdas/submit-job/submit-job';
import { ANTHROPIC_MODEL, runConfig } from '../support/fixtures';

const ROLE = 'arn:aws:iam::123456789012:role/bedrock-batch';
const JOB_ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456';
const JOB_NAME = 'bb-run-7-r02-c00003';

const ddbMock = mockClient(DynamoDBDocumentClient);
const bedrockMock = mockClient(BedrockClient);
const sfnMock = mockClient(SFNClient);

const deps = () => ({
  bedrock: new BedrockClient({ region: 'us-east-1' }),
  sfn: new SFNClient({ region: 'us-east-1' }),
  jobs: new JobRecords(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs'),
  bedrockRoleArn: ROLE,
  stackName: 'BedrockBatch',
});

const event = (taskToken = 'token-1'): SubmitJobEvent => ({
  run: runConfig({ runId: 'run-7', bucket: 'drop', jobTimeoutHours: 36 }),
  round: 2,
  chunk: 3,
  taskToken,
});

/** Every call to any of the three clients, in order. */
let order: string[];

beforeEach(() => {
  ddbMock.reset();
  bedrockMock.reset();
  sfnMock.reset();
  order = [];
  ddbMock.on(UpdateCommand).callsFake((input: { UpdateExpression: string }) => (order.push(`ddb:Update ${input.UpdateExpression.split(' ')[1]}`), {}));
  bedrockMock.on(CreateModelInvocationJobCommand).callsFake(() => (order.push('bedrock:Create'), { jobArn: JOB_ARN }));
  bedrockMock.on(GetModelInvocationJobCommand).callsFake(() => (order.push('bedrock:Get'), { jobArn: JOB_ARN, status: 'Submitted' }));
  sfnMock.on(SendTaskSuccessCommand).callsFake(() => (order.push('sfn:SendTaskSuccess'), {}));
});
/** Makes GetModelInvocationJob return `job`, still recording the call's place in `order`. */
function bedrockJobIs(job: { status: string; message?: string }) {
  bedrockMock.on(GetModelInvocationJobCommand).callsFake(() => (order.push('bedrock:Get'), { jobArn: JOB_ARN, ...job }));
}

afterAll(() => {
  ddbMock.restore();
  bedrockMock.restore();
  sfnMock.restore();
});

describe('submitChunkJob', () => {
  it('stores the task token before creating the job, then records the ARN', async () => {
    await expect(submitChunkJob(deps(), event())).resolves.toBe(JOB_ARN);
    expect(order).toEqual(['ddb:Update jobName', 'bedrock:Create', 'ddb:Update jobArn', 'bedrock:Get']);

    const [store, created] = ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(store!.TableName).toBe('jobs');
    expect(store!.Key).toEqual({ pk: `JOB#${JOB_NAME}`, sk: 'JOB' });
    // This attempt's token joins the earlier attempts' (a set), and the item is open again.
    expect(store!.UpdateExpression).toMatch(/ ADD taskTokens :tokens REMOVE tokenCompletedAt$/);
    expect(store!.ExpressionAttributeValues).toMatchObject({
      ':name': JOB_NAME,
      ':run': 'run-7',
      ':round': 2,
      ':chunk': 3,
      ':model': ANTHROPIC_MODEL,
      ':token': 'token-1',
      ':tokens': new Set(['token-1']),
      ':submitting': 'Submitting',
      ':exp': expect.any(Number),
    });

    // Submitted only over Submitting: an event that already recorded a later status wins.
    expect(created).toMatchObject({ Key: { pk: `JOB#${JOB_NAME}`, sk: 'JOB' }, ConditionExpression: '#s = :submitting' });
    expect(created!.ExpressionAttributeValues).toMatchObject({ ':submitted': 'Submitted', ':arn': JOB_ARN });
    expect(sfnMock.calls()).toHaveLength(0);
  });

  it('creates the job with the role, model, stable token, timeout and the chunk S3 URIs', async () => {
    await submitChunkJob(deps(), event());
    expect(bedrockMock.commandCalls(CreateModelInvocationJobCommand)[0]!.args[0].input).toEqual({
      jobName: JOB_NAME,
      roleArn: ROLE,
      modelId: ANTHROPIC_MODEL,
      clientRequestToken: 'run-7-r02-c00003',
      inputDataConfig: { s3InputDataConfig: { s3Uri: 's3://drop/jobs-input/run-7/r02/c00003.jsonl', s3InputFormat: 'JSONL' } },
      outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://drop/jobs-output/run-7/r02/c00003/' } },
      timeoutDurationInHours: 36,
      tags: [
        { key: 'bedrock-batch:run', value: 'run-7' },
        { key: 'bedrock-batch:route', value: 'default' },
        { key: 'bedrock-batch:stack', value: 'BedrockBatch' },
      ],
    });
    expect(bedrockMock.commandCalls(GetModelInvocationJobCommand)[0]!.args[0].input).toEqual({ jobIdentifier: JOB_ARN });
  });

  it('sends the same clientRequestToken and job name on a retried submit with a new task token', async () => {
    await submitChunkJob(deps(), event('token-1'));
    await submitChunkJob(deps(), event('token-2'));
    const creates = bedrockMock.commandCalls(CreateModelInvocationJobCommand).map((c) => c.args[0].input);
    expect(creates).toHaveLength(2);
    expect(creates[1]!.clientRequestToken).toBe(creates[0]!.clientRequestToken);
    expect(creates[1]!.jobName).toBe(creates[0]!.jobName);
    // The retry stores its own (new) task token under the same job name.
    const stores = ddbMock.commandCalls(UpdateCommand).filter((c) => c.args[0].input.UpdateExpression!.startsWith('SET jobName'));
    expect(stores.map((c) => c.args[0].input.ExpressionAttributeValues![':tokens'])).toEqual([new Set(['token-1']), new Set(['token-2'])]);
  });

  it('propagates ThrottlingException by name, after the token was stored, without marking the job submitted', async () => {
    bedrockMock.on(CreateModelInvocationJobCommand).rejects(new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 429 } }));
    const err = (await submitChunkJob(deps(), event()).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('ThrottlingException');
    expect(err.message).toBe('Rate exceeded');
    expect(order).toEqual(['ddb:Update jobName']);
    expect(ddbMock.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it("turns Bedrock's run-wide refusals of the create into JobRefused, and leaves a table error of the same name as it is", async () => {
    bedrockMock
      .on(CreateModelInvocationJobCommand)
      .rejects(Object.assign(new Error('Batch inference is not supported for the model m.'), { name: 'ValidationException' }));
    const refused = (await submitChunkJob(deps(), event()).catch((e: unknown) => e)) as Error;
    expect(refused.name).toBe('JobRefused');
    expect(refused.message).toBe('ValidationException: Batch inference is not supported for the model m.');
    bedrockMock.reset();
    bedrockMock.on(CreateModelInvocationJobCommand).rejects(Object.assign(new Error('name in use'), { name: 'ConflictException' }));
    expect(((await submitChunkJob(deps(), event()).catch((e: unknown) => e)) as Error).name).toBe('ConflictException');
    ddbMock.on(UpdateCommand).rejects(Object.assign(new Error('item too large'), { name: 'ValidationException' }));
    expect(((await submitChunkJob(deps(), event()).catch((e: unknown) => e)) as Error).name).toBe('ValidationException');
  });

  it('does not create a job when the token cannot be stored', async () => {
    ddbMock.on(UpdateCommand).rejects(Object.assign(new Error('table gone'), { name: 'ResourceNotFoundException' }));
    await expect(submitChunkJob(deps(), event())).rejects.toThrow('table gone');
    expect(bedrockMock.commandCalls(CreateModelInvocationJobCommand)).toHaveLength(0);
  });

  it('completes its own token when Bedrock returns a job that is already terminal', async () => {
    bedrockJobIs({ status: 'Completed', message: 'done' });
    ddbMock.on(GetCommand).resolves({ Item: { jobName: JOB_NAME, taskToken: 'token-2', status: 'Submitted' } });
    await submitChunkJob(deps(), event('token-2'));

    const sends = sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.taskToken).toBe('token-2');
    expect(JSON.parse(sends[0]!.output!)).toEqual({ jobArn: JOB_ARN, status: 'Completed', message: 'done' });
    expect(order).toEqual([
      'ddb:Update jobName',
      'bedrock:Create',
      'ddb:Update jobArn',
      'bedrock:Get',
      'sfn:SendTaskSuccess',
      'ddb:Update #s',
      'ddb:Update tokenCompletedAt',
    ]);
    expect(ddbMock.commandCalls(GetCommand)[0]!.args[0].input).toMatchObject({ Key: { pk: `JOB#${JOB_NAME}`, sk: 'JOB' }, ConsistentRead: true });
  });

  it('leaves a terminal job alone when the item does not hold its token (not stored by this attempt)', async () => {
    bedrockJobIs({ status: 'Failed' });
    ddbMock.on(GetCommand).resolves({ Item: { jobName: JOB_NAME, taskToken: 'token-3', status: 'Submitted' } });
    await submitChunkJob(deps(), event('token-2'));
    expect(sfnMock.calls()).toHaveLength(0);
  });

  it('swallows an already-closed token when completing a terminal job', async () => {
    bedrockJobIs({ status: 'Stopped' });
    ddbMock.on(GetCommand).resolves({ Item: { jobName: JOB_NAME, taskToken: 'token-1', status: 'Submitted' } });
    sfnMock.on(SendTaskSuccessCommand).rejects(Object.assign(new Error('closed'), { name: 'TaskTimedOut' }));
    await expect(submitChunkJob(deps(), event())).resolves.toBe(JOB_ARN);
    expect(JSON.parse(sfnMock.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output!)).toEqual({ jobArn: JOB_ARN, status: 'Stopped' });
  });
});
