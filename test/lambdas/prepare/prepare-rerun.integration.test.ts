/**
 * Prepare run again after failing at any write: round 1 (chunk files, re-split tail, remainder
 * outcomes, plan), run.json, run-stats.json and rejected.jsonl end as one clean attempt leaves
 * them, including a crash right after remainder-ready.json (the retry then resumes there). And a
 * Prepare of an execution whose name was used long before does not resume that run's files.
 */
import { BedrockRuntimeClient, InvokeModelCommand, type InvokeModelCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { prepareRun, type PrepareEvent } from '../../../lambdas/prepare/prepare';
import { runKeys } from '../../../lambdas/shared/contracts';
import type { RemainderStats, RoundPlan } from '../../../lambdas/shared/outcomes';
import { RunClaims } from '../../../lambdas/shared/run-claims';
import { anthropicResponse, invokeResponse } from '../support/bedrock-runtime';
import { crashingS3, SimulatedCrash } from '../support/crashing-s3';
import { anthropicLine, pipeline, route } from '../support/fixtures';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';
import { startTestS3, type TestS3 } from '../support/local-s3';

const runtimeMock = mockClient(BedrockRuntimeClient);
let s3: TestS3;
let dynamo: TestDynamo;
/** The prompts InvokeModel got (each record's text is its id). */
let invoked: string[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  runtimeMock.restore();
  await s3.stop();
  await dynamo.stop();
});
beforeEach(() => {
  invoked = [];
  runtimeMock.reset();
  runtimeMock.on(InvokeModelCommand).callsFake((input: InvokeModelCommandInput) => {
    const body = JSON.parse(Buffer.from(input.body as Uint8Array).toString('utf8')) as { messages: Array<{ content: string }> };
    invoked.push(body.messages[0]!.content);
    return invokeResponse(anthropicResponse('ok', 1, 2));
  });
});

const runtime = new BedrockRuntimeClient({ region: 'us-east-1' });
const event = (file: string, runId: string, startTime = '2025-01-01T00:00:00.000Z'): PrepareEvent => ({
  input: { inputs: [`s3://${s3.bucket}/${file}`], route: 'r', runId },
  executionName: runId,
  executionArn: `arn:aws:states:us-east-1:123456789012:execution:W:${runId}`,
  startTime,
});

/** What readers see of round 1 and the run's files, the run id taken out (to compare runs). */
async function view(runId: string) {
  const plan = await s3.json<RoundPlan>(runKeys.roundPlan(runId, 1));
  const chunks: Array<string | undefined> = [];
  for (let c = 0; c < (plan?.chunkCount ?? 0); c++) chunks.push(await s3.text(runKeys.chunkInput(runId, 1, c)));
  const stats = await s3.json<RemainderStats>(runKeys.remainderStats(runId, 1));
  const v = {
    plan,
    chunks,
    runJson: await s3.json(runKeys.runConfig(runId)),
    runStats: await s3.json(runKeys.runStats(runId)),
    rejected: await s3.text(runKeys.workRejected(runId)),
    // Sizes differ only by the run id's length in the held file's name.
    remainder: stats && { ...stats, parts: stats.parts?.map((p) => ({ ...p, bytes: undefined })) },
    succeeded: (await s3.jsonl<{ recordId: string }>(runKeys.roundPart(runId, 1, 'succeeded'))).map((r) => r.recordId).sort(),
  };
  return JSON.parse(JSON.stringify(v).split(runId).join('RUN')) as typeof v;
}

describe.each(['on-demand', 'hold', 'fail'] as const)('prepare (%s remainder) run again after crashing after any write', (policy) => {
  it('ends as one clean attempt, invoking again only what the first attempt did not write', async () => {
    // 11 valid records at 4 per job (two jobs and a remainder of 3) and one line that is not JSON.
    const env = () => ({
      bucket: s3.bucket,
      pipeline: pipeline({
        r: route({ minRecordsPerJob: 4, maxRecordsPerJob: 4, smallRemainder: policy, trigger: policy === 'hold' ? 'nightly' : 'immediate' }),
      }),
      claims: new RunClaims(dynamo.ddb, dynamo.table),
    });
    const file = `inbox/r/in-${policy}.jsonl`;
    const lines = Array.from({ length: 11 }, (_, i) => anthropicLine(`x${i}`, `x${i}`));
    lines.splice(3, 0, 'not json');
    await s3.put(file, lines.join('\n'));

    const counting = crashingS3(s3.endpoint);
    const clean = await prepareRun({ s3: counting.client, bedrockRuntime: runtime }, env(), event(file, `pc-${policy}-clean`));
    const cleanView = await view(`pc-${policy}-clean`);
    const writes = counting.writes();
    expect(cleanView.plan).toEqual({ chunkCount: 2, remainder: 3 });
    expect(cleanView.runStats).toMatchObject({ inputLines: 12, valid: 11, rejected: 1 });

    for (let k = 1; k <= writes; k++) {
      const runId = `pc-${policy}-${k}`;
      const crashing = crashingS3(s3.endpoint, k);
      await expect(prepareRun({ s3: crashing.client, bedrockRuntime: runtime }, env(), event(file, runId))).rejects.toBeInstanceOf(SimulatedCrash);
      const written = (await s3.jsonl<{ recordId: string }>(runKeys.roundPart(runId, 1, 'succeeded'))).map((r) => r.recordId);
      invoked = [];
      const again = await prepareRun({ s3: s3.client, bedrockRuntime: runtime }, env(), event(file, runId));
      expect({ k, round: again.round }).toEqual({ k, round: clean.round });
      expect({ k, view: await view(runId) }).toEqual({ k, view: cleanView });
      if (policy === 'on-demand') {
        // Prompts are the records' ids: only the records the crashed attempt did not answer.
        expect({ k, invoked: invoked.sort() }).toEqual({
          k,
          invoked: cleanView.succeeded.filter((id) => !written.includes(id)),
        });
      }
    }
  });
});

test('a Prepare of an execution whose name was used before does not resume that run: it reads its own input', async () => {
  const env = {
    bucket: s3.bucket,
    pipeline: pipeline({ r: route({ minRecordsPerJob: 4, maxRecordsPerJob: 4 }) }),
    claims: new RunClaims(dynamo.ddb, dynamo.table),
  };
  const deps = { s3: s3.client, bedrockRuntime: runtime };
  await s3.put('inbox/r/old.jsonl', Array.from({ length: 11 }, (_, i) => anthropicLine(`old${i}`)).join('\n'));
  await s3.put('inbox/r/new.jsonl', Array.from({ length: 30 }, (_, i) => anthropicLine(`new${i}`)).join('\n'));
  // Same name, so the same execution ARN and run id; Step Functions allows it 90 days after the first closed.
  const first = await prepareRun(deps, env, event('inbox/r/old.jsonl', 'reused', '2025-01-01T00:00:00.000Z'));
  expect(first.round).toMatchObject({ chunkCount: 2 });
  const second = await prepareRun(deps, env, event('inbox/r/new.jsonl', 'reused', '2025-06-01T00:00:00.000Z'));
  expect(second.run.startedAt).toBe('2025-06-01T00:00:00.000Z');
  expect(second.round).toMatchObject({ number: 1, chunkCount: 7 });
  expect(await s3.json(runKeys.runStats('reused'))).toMatchObject({ inputLines: 30, inputs: [`s3://${s3.bucket}/inbox/r/new.jsonl`] });
});
