import { BedrockClient, CreateModelInvocationJobCommand, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../../lambdas/submit-job/handler';
import { pipeline, runConfig } from '../support/fixtures';
import { HANDLER_ENV, useHandlerEnv } from '../support/handler-env';

const ddbMock = mockClient(DynamoDBDocumentClient);
const bedrockMock = mockClient(BedrockClient);
useHandlerEnv(pipeline(), [ddbMock, bedrockMock]);
beforeAll(() => {
  process.env.STACK_NAME = 'MyPipeline';
});
afterAll(() => {
  delete process.env.STACK_NAME;
});

describe('submit-job handler', () => {
  it('submits with the configured role and table and returns the job ARN', async () => {
    const jobArn = 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/x1';
    ddbMock.on(UpdateCommand).resolves({});
    bedrockMock.on(CreateModelInvocationJobCommand).resolves({ jobArn }).on(GetModelInvocationJobCommand).resolves({ status: 'Submitted' });
    await expect(handler({ run: runConfig(), round: 1, chunk: 0, taskToken: 'tok' })).resolves.toEqual({ jobArn });
    expect(ddbMock.commandCalls(UpdateCommand)[0]!.args[0].input.TableName).toBe(HANDLER_ENV.TABLE_NAME);
    expect(bedrockMock.commandCalls(CreateModelInvocationJobCommand)[0]!.args[0].input.roleArn).toBe(HANDLER_ENV.BEDROCK_ROLE_ARN);
    // The stack tag comes from STACK_NAME.
    expect(bedrockMock.commandCalls(CreateModelInvocationJobCommand)[0]!.args[0].input.tags).toContainEqual({
      key: 'bedrock-batch:stack',
      value: 'MyPipeline',
    });
  });
});
