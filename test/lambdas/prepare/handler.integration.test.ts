/**
 * The workflow's S3 handlers end to end with their real clients, pointed at s3rver only through
 * `AWS_ENDPOINT_URL_S3` (as the local twin does); Bedrock and EventBridge are mocked.
 */
import { BedrockClient, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { GetExecutionHistoryCommand, SFNClient } from '@aws-sdk/client-sfn';
import { ListServiceQuotasCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { mockClient } from 'aws-sdk-client-mock';
import { handler as endRound } from '../../../lambdas/end-round/handler';
import { handler as finalize } from '../../../lambdas/finalize/handler';
import { handler as nextWindow } from '../../../lambdas/next-window/handler';
import { handler as prepare } from '../../../lambdas/prepare/handler';
import { handler as reconcile } from '../../../lambdas/reconcile-chunk/handler';
import { runKeys } from '../../../lambdas/shared/contracts';
import { anthropicLine, anthropicOutputLine, pipeline, route } from '../support/fixtures';
import { HANDLER_ENV, setHandlerEnv } from '../support/handler-env';
import { startTestS3, type TestS3 } from '../support/local-s3';

const bedrockMock = mockClient(BedrockClient);
const ddbMock = mockClient(DynamoDBDocumentClient);
const eventsMock = mockClient(EventBridgeClient);
const sfnMock = mockClient(SFNClient);
// An account whose Claude 3 Haiku minimum is 1: the route's 1..2 records per job stand.
const quotasMock = mockClient(ServiceQuotasClient);
quotasMock.on(ListServiceQuotasCommand).resolves({ Quotas: [{ QuotaName: 'Minimum number of records per batch inference job for Claude 3 Haiku', Value: 1 }] });
let s3: TestS3;
const HANDLER_ARN = 'arn:aws:states:us-east-1:123456789012:execution:Run:handler-run';
let restore: () => void;

beforeAll(async () => {
  s3 = await startTestS3(HANDLER_ENV.BUCKET_NAME);
  restore = setHandlerEnv(pipeline({ default: route({ minRecordsPerJob: 1, maxRecordsPerJob: 2 }) }), { AWS_ENDPOINT_URL_S3: s3.endpoint });
});
afterAll(async () => {
  restore();
  for (const m of [bedrockMock, ddbMock, eventsMock, sfnMock, quotasMock]) m.restore();
  await s3.stop();
});

describe('workflow handlers over AWS_ENDPOINT_URL_S3', () => {
  it('prepare -> next-window -> reconcile-chunk -> end-round -> finalize', async () => {
    await s3.put('inbox/default/h.jsonl', [anthropicLine('a'), anthropicLine('b'), anthropicLine('c'), 'junk'].join('\n'));
    const prepared = await prepare({
      input: { inputs: ['s3://bucket/inbox/default/h.jsonl'] },
      executionName: 'handler-run',
      executionArn: HANDLER_ARN,
      startTime: '2025-01-01T00:00:00.000Z',
    });
    expect(prepared.run).toMatchObject({ runId: 'handler-run', bucket: 'bucket', maxConcurrentJobs: 20, jobTimeoutHours: 24 });
    expect(prepared.round).toEqual({ number: 1, chunkCount: 2, nextChunk: 0, hasMoreChunks: true });

    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [{ id: 12, type: 'TaskStateExited', timestamp: new Date() }] });
    const window = await nextWindow({ ...prepared, executionArn: 'arn:aws:states:us-east-1:123456789012:execution:Run:handler-run' });
    expect(window.continued).toBe(false);
    expect(window.window.items).toEqual([{ chunk: 0 }, { chunk: 1 }]);

    ddbMock.on(UpdateCommand).resolves({});
    bedrockMock.on(GetModelInvocationJobCommand).resolves({ status: 'Completed' });
    for (const { chunk } of window.window.items) {
      const ids = (await s3.jsonl<{ recordId: string }>(runKeys.chunkInput('handler-run', 1, chunk))).map((r) => r.recordId);
      const jobArn = `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/job${chunk}`;
      await s3.put(`${runKeys.chunkOutputPrefix('handler-run', 1, chunk)}job${chunk}/x.jsonl.out`, ids.map((id) => anthropicOutputLine(id)).join('\n'));
      await expect(reconcile({ run: prepared.run, round: 1, chunk, job: { jobArn, status: 'Completed' } })).resolves.toEqual({
        succeeded: ids.length,
        failed: 0,
        retry: 0,
      });
    }
    expect(ddbMock.commandCalls(UpdateCommand)[0]!.args[0].input.TableName).toBe(HANDLER_ENV.TABLE_NAME);

    const ended = await endRound({ run: prepared.run, round: window.round });
    expect(ended.done).toBe(true);

    eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    // The claim Prepare made (an UpdateCommand here) names this execution.
    ddbMock.on(GetCommand, { Key: { pk: 'RUN#handler-run', sk: 'RUN' } }).resolves({ Item: { runId: 'handler-run', owner: HANDLER_ARN } });
    const summary = await finalize({ outcome: 'Finished', run: prepared.run, executionArn: HANDLER_ARN });
    expect(summary).toMatchObject({ runId: 'handler-run', status: 'CompletedWithFailures', records: { input: 4, succeeded: 3, failed: 0, rejected: 1 } });
    expect(eventsMock.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries![0]!.EventBusName).toBe(HANDLER_ENV.EVENT_BUS_NAME);
    expect(await s3.json(runKeys.results('handler-run', 'summary.json'))).toEqual(summary);
  });

  it('finalizes a failed run into the configured bucket', async () => {
    eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    // No claim yet (Prepare failed before claiming): finalize claims the id for this execution.
    ddbMock.on(GetCommand).resolves({});
    const summary = await finalize({
      outcome: 'Failed',
      executionName: 'failed-run',
      executionArn: 'arn:aws:states:us-east-1:123456789012:execution:Run:failed-run',
      state: { error: { Error: 'InvalidRunInput', Cause: 'bad' } },
    });
    expect(summary.status).toBe('Failed');
    expect(await s3.json(runKeys.results('failed-run', 'summary.json'))).toMatchObject({ runId: 'failed-run', status: 'Failed' });
  });
});
