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
    await expect(handler()).resolves.toEqual({ polled: 0, completed: 0, recoveredSlots: 0, failed: [] });
    expect(ddbMock.commandCalls(ScanCommand)[0]!.args[0].input.TableName).toBe(HANDLER_ENV.TABLE_NAME);
  });

  it('fails after a full cycle that could not handle everything, naming what failed', async () => {
    ddbMock.reset();
    ddbMock.on(ScanCommand).rejects(new Error('scan failed'));
    await expect(handler()).rejects.toMatchObject({
      name: 'SweepIncomplete',
      message: 'the sweep could not handle 2 item(s): slot models, open jobs (see the log for each; the next sweep tries again)',
    });
    // Both scans (slot items, open jobs) were tried: one failing does not skip the other.
    expect(ddbMock.commandCalls(ScanCommand)).toHaveLength(2);
  });
});
