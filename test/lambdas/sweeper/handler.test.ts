import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../../lambdas/sweeper/handler';
import { pipeline } from '../support/fixtures';
import { HANDLER_ENV, useHandlerEnv } from '../support/handler-env';

const ddbMock = mockClient(DynamoDBDocumentClient);
useHandlerEnv(pipeline(), [ddbMock]);

describe('sweeper handler', () => {
  it('sweeps the configured table', async () => {
    ddbMock.on(ScanCommand).resolves({ Items: [] });
    await expect(handler()).resolves.toEqual({ polled: 0, completed: 0, recoveredSlots: 0 });
    expect(ddbMock.commandCalls(ScanCommand)[0]!.args[0].input.TableName).toBe(HANDLER_ENV.TABLE_NAME);
  });
});
