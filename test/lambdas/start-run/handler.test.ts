import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../../lambdas/start-run/handler';
import { pipeline, route } from '../support/fixtures';
import { HANDLER_ENV, setHandlerEnv, useHandlerEnv } from '../support/handler-env';

const sfnMock = mockClient(SFNClient);
const s3Mock = mockClient(S3Client);
const ddbMock = mockClient(DynamoDBDocumentClient);
const PIPELINE = pipeline({ tickets: route(), nightly: route({ trigger: 'nightly' }) });
useHandlerEnv(PIPELINE, [sfnMock, s3Mock, ddbMock]);
beforeEach(() => {
  for (const m of [sfnMock, s3Mock, ddbMock]) m.reset();
  sfnMock.on(StartExecutionCommand).resolves({});
});

describe('start-run handler', () => {
  it('starts the configured state machine for an Object Created event', async () => {
    const out = await handler({ 'detail-type': 'Object Created', detail: { bucket: { name: 'bucket' }, object: { key: 'inbox/tickets/a.jsonl', etag: 'e' } } });
    expect(out).toMatchObject({ files: 1 });
    expect(sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input.stateMachineArn).toBe(HANDLER_ENV.STATE_MACHINE_ARN);
  });

  it('sweeps the configured bucket for a sweep event', async () => {
    s3Mock
      .on(ListObjectsV2Command)
      .resolves({ Contents: [] })
      .on(ListObjectsV2Command, { Prefix: 'inbox/nightly/' })
      .resolves({ Contents: [{ Key: 'inbox/nightly/a.jsonl', Size: 1, ETag: '"e"' }] });
    ddbMock.on(PutCommand).resolves({});
    await expect(handler({ sweep: { route: 'nightly' } })).resolves.toMatchObject({ files: 1 });
    expect(s3Mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)).toEqual([
      expect.objectContaining({ Bucket: HANDLER_ENV.BUCKET_NAME, Prefix: 'inbox/nightly/' }),
      expect.objectContaining({ Bucket: HANDLER_ENV.BUCKET_NAME, Prefix: 'held/nightly/' }),
    ]);
    expect(ddbMock.commandCalls(PutCommand)[0]!.args[0].input.TableName).toBe(HANDLER_ENV.TABLE_NAME);
  });

  it('refuses to run without STATE_MACHINE_ARN', async () => {
    const back = setHandlerEnv(PIPELINE, { STATE_MACHINE_ARN: undefined });
    try {
      await expect(handler({ sweep: { route: 'nightly' } })).rejects.toThrow('environment variable STATE_MACHINE_ARN is not set');
    } finally {
      back();
    }
  });
});
