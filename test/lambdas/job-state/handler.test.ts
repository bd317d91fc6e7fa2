import { SFNClient, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../../lambdas/job-state/handler';
import { pipeline } from '../support/fixtures';
import { HANDLER_ENV, useHandlerEnv } from '../support/handler-env';

const ddbMock = mockClient(DynamoDBDocumentClient);
const sfnMock = mockClient(SFNClient);
useHandlerEnv(pipeline(), [ddbMock, sfnMock]);

describe('job-state handler', () => {
  it("completes the job's token from an EventBridge event, reading the configured table", async () => {
    ddbMock
      .on(GetCommand)
      .resolves({ Item: { jobName: 'bb-r-r01-c00000', taskToken: 'tok', jobArn: 'arn:job/x' } })
      .on(UpdateCommand)
      .resolves({});
    sfnMock.on(SendTaskSuccessCommand).resolves({});
    const out = await handler({
      source: 'aws.bedrock',
      'detail-type': 'Batch Inference Job State Change',
      detail: { batchJobArn: 'arn:job/x', batchJobName: 'bb-r-r01-c00000', status: 'Completed' },
    });
    expect(out).toBe('completed');
    expect(ddbMock.commandCalls(GetCommand)[0]!.args[0].input.TableName).toBe(HANDLER_ENV.TABLE_NAME);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.taskToken).toBe('tok');
  });
});
