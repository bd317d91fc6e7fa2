/**
 * The handlers of one run chained as the workflow chains them (Prepare -> per chunk: job +
 * ReconcileChunk -> EndRound -> ... -> Finalize), over a real S3, with Bedrock's jobs played by
 * a fake that writes per-record outcomes. Checks the conservation invariant of DESIGN.md.
 */
import { BedrockClient, GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DeleteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { endRound } from '../../lambdas/end-round/end-round';
import { finalizeRun } from '../../lambdas/finalize/finalize';
import { prepareRun } from '../../lambdas/prepare/prepare';
import { reconcileChunk } from '../../lambdas/reconcile-chunk/reconcile-chunk';
import { runKeys, type RoundState, type RunConfig } from '../../lambdas/shared/contracts';
import { JobRecords } from '../../lambdas/shared/job-records';
import { RunClaims } from '../../lambdas/shared/run-claims';
import { JobSlotLimiter } from '../../lambdas/shared/job-slots';
import { anthropicResponse, invokeResponse } from './support/bedrock-runtime';
import { anthropicInput, anthropicOutputLine, errorOutputLine, pipeline, route } from './support/fixtures';
import { startTestS3, type TestS3 } from './support/local-s3';

type Fate = 'ok' | 400 | 429 | 'drop';
const FATES: Fate[] = ['ok', 'ok', 'ok', 400, 429, 'drop'];

const bedrockMock = mockClient(BedrockClient);
const runtimeMock = mockClient(BedrockRuntimeClient);
const ddbMock = mockClient(DynamoDBDocumentClient);
const eventsMock = mockClient(EventBridgeClient);
let s3: TestS3;
let seq = 0;

beforeAll(async () => {
  s3 = await startTestS3();
  ddbMock.on(DeleteCommand).resolves({});
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
  runtimeMock.on(InvokeModelCommand).resolves(invokeResponse(anthropicResponse('on demand', 2, 3)));
});
afterAll(async () => {
  for (const m of [bedrockMock, runtimeMock, ddbMock, eventsMock]) m.restore();
  await s3.stop();
});

/** Deterministic pseudo-random pick from `seed`, the record and the round. */
function fateOf(seed: number, recordId: string, round: number): Fate {
  const h = createHash('sha256').update(`${seed}/${recordId}/${round}`).digest();
  return FATES[h[0]! % FATES.length]!;
}

/** Plays Bedrock: reads the chunk's job input and writes shuffled outputs in two .out files and a manifest. */
async function playJob(run: RunConfig, round: number, chunk: number, seed: number): Promise<string> {
  const jobId = createHash('sha256').update(`${run.runId}/${round}/${chunk}`).digest('hex').slice(0, 12);
  const input = await s3.jsonl<{ recordId: string }>(runKeys.chunkInput(run.runId, round, chunk));
  const lines: string[] = [];
  for (const { recordId } of input) {
    const fate = fateOf(seed, recordId, round);
    if (fate === 'ok') lines.push(anthropicOutputLine(recordId, 10, 20));
    else if (fate !== 'drop') lines.push(errorOutputLine(recordId, fate));
  }
  lines.sort((a, b) => createHash('md5').update(a).digest('hex').localeCompare(createHash('md5').update(b).digest('hex')));
  const prefix = `${runKeys.chunkOutputPrefix(run.runId, round, chunk)}${jobId}/`;
  const half = Math.ceil(lines.length / 2);
  await s3.put(`${prefix}a.jsonl.out`, lines.slice(0, half).join('\n'));
  await s3.put(`${prefix}b.jsonl.out`, lines.slice(half).join('\n'));
  await s3.put(`${prefix}manifest.json.out`, JSON.stringify({ totalRecordCount: input.length, processedRecordCount: lines.length }));
  return `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/${jobId}`;
}

describe('a run through prepare, reconcile-chunk, end-round and finalize', () => {
  it('puts every input line in exactly one of results, failed and rejected', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 4 }), fc.integer(), async (valid, invalid, seed) => {
        const runId = `flow-${++seq}`;
        const lines = [
          ...Array.from({ length: valid }, (_, i) => JSON.stringify({ recordId: `rec-${i}`, modelInput: anthropicInput(`t${i}`) })),
          ...Array.from({ length: invalid }, (_, i) => (i % 2 === 0 ? `broken ${i}` : JSON.stringify({ recordId: `bad-${i}`, modelInput: {} }))),
        ];
        await s3.put(`inbox/flow/${runId}.jsonl`, lines.join('\n') + '\n\n');

        const clients = {
          s3: s3.client,
          bedrockRuntime: new BedrockRuntimeClient({ region: 'us-east-1' }),
          bedrock: new BedrockClient({ region: 'us-east-1' }),
          limiter: new JobSlotLimiter(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs'),
          jobs: new JobRecords(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs'),
        };
        const env = {
          bucket: s3.bucket,
          claims: new RunClaims(DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })), 'jobs'),
          pipeline: pipeline({ flow: route({ minRecordsPerJob: 2, maxRecordsPerJob: 4, maxAttempts: 3, smallRemainder: 'on-demand' }) }),
        };
        const prepared = await prepareRun(clients, env, {
          input: { inputs: [`s3://${s3.bucket}/inbox/flow/${runId}.jsonl`], runId },
          executionName: runId,
          executionArn: `arn:aws:states:us-east-1:123456789012:execution:Workflow:${runId}`,
          startTime: new Date().toISOString(),
        });
        const run = prepared.run;
        let round: RoundState = prepared.round;
        let jobs = 0;
        for (;;) {
          for (let chunk = 0; chunk < round.chunkCount; chunk++) {
            const jobArn = await playJob(run, round.number, chunk, seed);
            bedrockMock.on(GetModelInvocationJobCommand, { jobIdentifier: jobArn }).resolves({ jobArn, status: 'PartiallyCompleted' });
            await reconcileChunk(clients, { run, round: round.number, chunk, job: { jobArn, status: 'PartiallyCompleted' } });
            jobs += 1;
          }
          const ended = await endRound(clients, { run, round: { ...round, nextChunk: round.chunkCount, hasMoreChunks: false } });
          if (ended.done) break;
          round = ended.round;
        }
        const summary = await finalizeRun(
          {
            s3: s3.client,
            events: new EventBridgeClient({ region: 'us-east-1' }),
            bucket: s3.bucket,
            eventBusName: 'default',
            claims: {
              get: async (id: string) => ({ runId: id, owner: `arn:aws:states:us-east-1:123456789012:execution:Workflow:${id}`, claimedAt: '' }),
            } as unknown as RunClaims,
          },
          { outcome: 'Finished', run, executionArn: `arn:aws:states:us-east-1:123456789012:execution:Workflow:${runId}` },
        );

        const results = await s3.jsonl<{ recordId: string }>(runKeys.results(runId, 'results.jsonl'));
        const failed = await s3.jsonl<{ recordId: string; error: { code: string }; attempts: number }>(runKeys.results(runId, 'failed.jsonl'));
        const rejected = await s3.jsonl(runKeys.results(runId, 'rejected.jsonl'));

        expect(summary.records).toEqual({ input: valid + invalid, succeeded: results.length, failed: failed.length, rejected: invalid });
        expect(results.length + failed.length + rejected.length).toBe(valid + invalid);
        const placed = [...results, ...failed].map((r) => r.recordId).sort();
        expect(placed).toEqual(Array.from({ length: valid }, (_, i) => `rec-${i}`).sort());
        for (const f of failed) {
          expect(f.attempts).toBeGreaterThanOrEqual(1);
          expect(f.attempts).toBeLessThanOrEqual(run.maxAttempts);
          if (f.error.code === '400') expect(fateOf(seed, f.recordId, f.attempts)).toBe(400);
          else expect(f.attempts).toBe(run.maxAttempts);
        }
        expect(summary.rounds).toBeLessThanOrEqual(run.maxAttempts);
        expect(Object.values(summary.jobs).reduce((a, b) => a + b, 0)).toBe(jobs);
        expect(summary.warnings).toEqual([]);
        expect(summary.status).toBe(failed.length + invalid === 0 ? 'Succeeded' : 'CompletedWithFailures');
      }),
      { numRuns: 12 },
    );
  });
});
