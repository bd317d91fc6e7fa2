import { BedrockClient, CreateModelInvocationJobCommand, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { SFNClient, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { handleJobStateEvent, type BatchJobStateEvent } from '../../../lambdas/job-state/job-state';
import { jobNameFor } from '../../../lambdas/shared/contracts';
import { JobRecords } from '../../../lambdas/shared/job-records';
import { submitChunkJob, type SubmitJobEvent } from '../../../lambdas/submit-job/submit-job';
import { runConfig } from '../support/fixtures';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const OWN_ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/aaaaaa111111';
const FOREIGN_ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/ffffff999999';

const bedrockMock = mockClient(BedrockClient);
const sfnMock = mockClient(SFNClient);

const submitEvent: SubmitJobEvent = { run: runConfig({ runId: 'run-9', bucket: 'drop' }), round: 1, chunk: 0, taskToken: 'tok-1' };
const JOB_NAME = jobNameFor('run-9', 1, 0);
const stateEvent = (jobArn: string, status: string): BatchJobStateEvent => ({
  source: 'aws.bedrock',
  'detail-type': 'Batch Inference Job State Change',
  detail: { batchJobArn: jobArn, batchJobName: JOB_NAME, status },
});

/**
 * Job-state and submit-job on a real conditional store (dynalite): the window between
 * CreateModelInvocationJob and the item recording the job's ARN, in which an event cannot yet
 * be told apart from one of another job of the same name.
 */
describe('job-state while submit-job is creating the job (dynalite)', () => {
  let db: TestDynamo;
  let jobs: JobRecords;
  const deps = () => ({
    bedrock: new BedrockClient({ region: 'us-east-1' }),
    sfn: new SFNClient({ region: 'us-east-1' }),
    jobs,
    bedrockRoleArn: 'arn:aws:iam::123456789012:role/r',
  });
  const sent = () => sfnMock.commandCalls(SendTaskSuccessCommand).map((c) => ({ token: c.args[0].input.taskToken, ...JSON.parse(c.args[0].input.output!) }));

  beforeEach(async () => {
    db = await startTestDynamo();
    jobs = new JobRecords(db.ddb, db.table);
    bedrockMock.reset();
    sfnMock.reset();
    sfnMock.on(SendTaskSuccessCommand).resolves({});
  });
  afterEach(async () => db.stop());
  afterAll(() => {
    bedrockMock.restore();
    sfnMock.restore();
  });

  it("does not let another job's terminal event complete the chunk; submit-job completes it with its own job's outcome", async () => {
    bedrockMock.on(CreateModelInvocationJobCommand).callsFake(async () => {
      // Another pipeline's job of the same name fails while this create is in flight.
      await expect(handleJobStateEvent({ sfn: new SFNClient({ region: 'us-east-1' }), jobs }, stateEvent(FOREIGN_ARN, 'Failed'))).resolves.toBe(
        'awaiting-job-arn',
      );
      return { jobArn: OWN_ARN };
    });
    bedrockMock.on(GetModelInvocationJobCommand, { jobIdentifier: OWN_ARN }).resolves({ jobArn: OWN_ARN, status: 'Completed' });

    await expect(submitChunkJob(deps(), submitEvent)).resolves.toBe(OWN_ARN);

    expect(sent()).toEqual([{ token: 'tok-1', jobArn: OWN_ARN, status: 'Completed' }]);
    expect(await jobs.get(JOB_NAME)).toMatchObject({ jobArn: OWN_ARN, status: 'Completed', tokenCompletedAt: expect.any(String) });
  });

  it("completes the chunk when its own job's terminal event beat the create call's response", async () => {
    // The event is set aside (its ARN cannot be checked yet); the Get after the ARN is recorded
    // finds the job over and completes the token, once.
    bedrockMock.on(CreateModelInvocationJobCommand).callsFake(async () => {
      await expect(handleJobStateEvent({ sfn: new SFNClient({ region: 'us-east-1' }), jobs }, stateEvent(OWN_ARN, 'Completed'))).resolves.toBe(
        'awaiting-job-arn',
      );
      return { jobArn: OWN_ARN };
    });
    bedrockMock.on(GetModelInvocationJobCommand, { jobIdentifier: OWN_ARN }).resolves({ jobArn: OWN_ARN, status: 'Completed' });

    await submitChunkJob(deps(), submitEvent);
    // A repeat of the event, now that the ARN is known, finds the token closed.
    await expect(handleJobStateEvent({ sfn: new SFNClient({ region: 'us-east-1' }), jobs }, stateEvent(OWN_ARN, 'Completed'))).resolves.toBe('already-closed');

    expect(sent()).toEqual([{ token: 'tok-1', jobArn: OWN_ARN, status: 'Completed' }]);
  });

  it('does not record a foreign ARN from a non-terminal event, so the sweeper never polls another job', async () => {
    bedrockMock.on(CreateModelInvocationJobCommand).callsFake(async () => {
      await handleJobStateEvent({ sfn: new SFNClient({ region: 'us-east-1' }), jobs }, stateEvent(FOREIGN_ARN, 'InProgress'));
      expect((await jobs.get(JOB_NAME))?.jobArn).toBeUndefined();
      return { jobArn: OWN_ARN };
    });
    bedrockMock.on(GetModelInvocationJobCommand, { jobIdentifier: OWN_ARN }).resolves({ jobArn: OWN_ARN, status: 'Submitted' });

    await submitChunkJob(deps(), submitEvent);

    expect(sent()).toEqual([]);
    expect(await jobs.get(JOB_NAME)).toMatchObject({ jobArn: OWN_ARN });
    expect((await jobs.get(JOB_NAME))?.tokenCompletedAt).toBeUndefined();
  });
});
