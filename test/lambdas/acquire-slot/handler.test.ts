import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../../lambdas/acquire-slot/handler';
import { runConfig, pipeline } from '../support/fixtures';
import { useHandlerEnv } from '../support/handler-env';

const ddbMock = mockClient(DynamoDBDocumentClient);
useHandlerEnv(pipeline(), [ddbMock]);
beforeEach(() => ddbMock.reset());

describe('acquire-slot handler', () => {
  it("takes a slot of the run's model under the chunk's job name, capped by the run's maxConcurrentJobs", async () => {
    ddbMock.on(UpdateCommand).resolves({});
    const run = runConfig({ runId: 'run-9', maxConcurrentJobs: 4 });
    await handler({ run, round: 1, chunk: 12 });
    expect(ddbMock.commandCalls(UpdateCommand)[0]!.args[0].input).toMatchObject({
      TableName: 'jobs-table',
      Key: { pk: `CAP#${run.modelId}` },
      ExpressionAttributeValues: { ':limit': 4, ':holder': 'bb-run-9-r01-c00012' },
    });
  });

  it('throws SlotUnavailable (the error the workflow retries on) when the cap is full', async () => {
    ddbMock.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
    await expect(handler({ run: runConfig(), round: 1, chunk: 0 })).rejects.toMatchObject({ name: 'SlotUnavailable' });
  });
  it("never takes a slot above the pipeline's cap, whatever the run's state says (a forged resume)", async () => {
    ddbMock.on(UpdateCommand).resolves({});
    await handler({ run: runConfig({ runId: 'run-9', maxConcurrentJobs: 1000 }), round: 1, chunk: 0 });
    await handler({ run: runConfig({ runId: 'run-9', maxConcurrentJobs: Number.NaN }), round: 1, chunk: 1 });
    const limits = ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input.ExpressionAttributeValues?.[':limit']);
    expect(limits).toEqual([pipeline().maxConcurrentJobs, pipeline().maxConcurrentJobs]);
  });
});
