/**
 * A user stops a run's execution midway: the stop-run rule stops the run's Bedrock jobs, frees
 * its job slots, fails every unfinished record with RunStopped, and finalizes the run as
 * Stopped, so every record is still accounted for.
 */
import { BedrockClient, ListModelInvocationJobsCommand } from '@aws-sdk/client-bedrock';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DynamoDBClient, GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { SFNClient, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { loadPipelineConfig } from '../../lib/pipeline-config';
import { parseJobName, runKeys } from '../../lambdas/shared/contracts';
import { LocalTwin } from '../../local/twin';
import type { CrashPlan } from '../../local/crash-plan';
import { claudeLines, CLAUDE, expectConservation, readOutputsFromS3, tempDir, writeLines } from './helpers';

async function readResult<T>(twin: LocalTwin, key: string): Promise<T> {
  const res = await twin.s3.send(new GetObjectCommand({ Bucket: twin.bucket, Key: key }));
  return (await res.Body!.transformToString()) as unknown as T;
}

const jsonl = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { recordId: string; error?: { code: string } });

test('stopping an execution stops its jobs, frees its slots and ends the run Stopped with every record accounted for', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'long.jsonl', claudeLines(300));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } } });
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 }, stepDelayMs: 150 });
  try {
    const input = await twin.upload(file, 'inbox/default/long.jsonl');
    twin.startExecution({ name: 'stop-me', input: JSON.stringify({ inputs: [input], runId: 'stop-me' }) });
    // Let the first two jobs finish and be reconciled (a chunk's stats.json is reconcile's last
    // write), then stop while later ones are in flight.
    for (let i = 0; i < 400 && (await reconciledChunks(twin, 'stop-me')) < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await reconciledChunks(twin, 'stop-me')).toBeGreaterThanOrEqual(2);
    twin.stopExecution('stop-me');
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('ABORTED');

    const summary = JSON.parse(await readResult<string>(twin, 'results/stop-me/summary.json'));
    expect(summary.status).toBe('Stopped');
    const results = jsonl(await readResult<string>(twin, 'results/stop-me/results.jsonl'));
    const failed = jsonl(await readResult<string>(twin, 'results/stop-me/failed.jsonl'));
    // Conservation: every input record is in exactly one output, once.
    expect(summary.records).toEqual({ input: 300, succeeded: results.length, failed: failed.length, rejected: 0 });
    const ids = [...results, ...failed].map((r) => r.recordId);
    expect(new Set(ids).size).toBe(300);
    expect(results.length).toBeGreaterThanOrEqual(100);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f.error?.code).toBe('RunStopped');

    // No job of the run is left running, and the model's cap holds no slot of the run.
    await twin.emulator.idle();
    const stats = twin.emulatorStats();
    expect(stats.maxConcurrentJobs).toBeLessThanOrEqual(2);
    for (const status of ['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Stopping']) expect(stats.jobsByStatus[status] ?? 0).toBe(0);
    const ddb = new DynamoDBClient({});
    const cap = await ddb.send(new GetItemCommand({ TableName: 'bedrock-batch-jobs', Key: { pk: { S: `CAP#${CLAUDE}` }, sk: { S: 'CAP' } } }));
    expect(cap.Item?.holders?.SS ?? []).toEqual([]);
    ddb.destroy();
  } finally {
    await twin.stop();
  }
});

test('a job that had processed its records when the run was stopped keeps them: they come back succeeded, not RunStopped', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'keep.jsonl', claudeLines(200));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } } });
  // Long steps: a job that has processed every record stays InProgress for one step before it completes.
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 }, stepDelayMs: 400 });
  const bedrock = new BedrockClient({});
  try {
    const input = await twin.upload(file, 'inbox/default/keep.jsonl');
    twin.startExecution({ name: 'keep-me', input: JSON.stringify({ inputs: [input], runId: 'keep-me' }) });
    // Stop as soon as some job is still InProgress with all its records processed (its output written).
    let processed: string | undefined;
    for (let i = 0; i < 2000 && !processed; i++) {
      const page = await bedrock.send(new ListModelInvocationJobsCommand({ nameContains: 'keep-me' }));
      processed = page.invocationJobSummaries?.find(
        (j) =>
          j.status === 'InProgress' &&
          (j as { totalRecordCount?: number }).totalRecordCount === 50 &&
          (j as { processedRecordCount?: number }).processedRecordCount === 50,
      )?.jobName;
      if (!processed) await new Promise((r) => setTimeout(r, 10));
    }
    expect(processed).toBeDefined();
    twin.stopExecution('keep-me');
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('ABORTED');

    const summary = JSON.parse(await readResult<string>(twin, 'results/keep-me/summary.json'));
    expect(summary.status).toBe('Stopped');
    const results = jsonl(await readResult<string>(twin, 'results/keep-me/results.jsonl'));
    const failed = jsonl(await readResult<string>(twin, 'results/keep-me/failed.jsonl'));
    // Conservation: every input record in exactly one output, once.
    expect(summary.records).toEqual({ input: 200, succeeded: results.length, failed: failed.length, rejected: 0 });
    expect(new Set([...results, ...failed].map((r) => r.recordId)).size).toBe(200);
    for (const f of failed) expect(f.error?.code).toBe('RunStopped');
    // Every record of the job that had processed them is a result.
    const { round, chunk } = parseJobName(processed!)!;
    const chunkIds = jsonl(await readResult<string>(twin, runKeys.chunkInput('keep-me', round, chunk))).map((r) => r.recordId);
    const succeeded = new Set(results.map((r) => r.recordId));
    expect(chunkIds).toHaveLength(50);
    expect(chunkIds.filter((id) => !succeeded.has(id))).toEqual([]);
    // The summary counts what the jobs stop-run reconciled kept.
    const listed = await twin.s3.send(new ListObjectsV2Command({ Bucket: twin.bucket, Prefix: runKeys.roundPrefix('keep-me', 1) }));
    let kept = 0;
    for (const o of listed.Contents ?? []) {
      if (!o.Key?.endsWith('/stats.json')) continue;
      const stats = JSON.parse(await readResult<string>(twin, o.Key)) as { reconciledAfterStop?: boolean; succeeded: number; failed: number };
      if (stats.reconciledAfterStop) kept += stats.succeeded + stats.failed;
    }
    expect(summary.savedFromStoppedJobs).toBe(kept);
  } finally {
    bedrock.destroy();
    await twin.stop();
  }
});

test('the task tokens of a stopped execution are closed: a late SendTaskSuccess on one answers TaskTimedOut, as on AWS', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'tokens.jsonl', claudeLines(200));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } } });
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 }, stepDelayMs: 400 });
  const ddb = new DynamoDBClient({});
  const sfn = new SFNClient({ endpoint: twin.endpoints.sfn });
  try {
    const input = await twin.upload(file, 'inbox/default/tokens.jsonl');
    twin.startExecution({ name: 'stop-tokens', input: JSON.stringify({ inputs: [input], runId: 'stop-tokens' }) });
    // Wait until a job is created and its task waits on its token, then stop the execution.
    let waiting: string[] = [];
    for (let i = 0; i < 2000 && waiting.length === 0; i++) {
      waiting = await openTokens(ddb, 'stop-tokens');
      if (waiting.length === 0) await new Promise((r) => setTimeout(r, 10));
    }
    expect(waiting.length).toBeGreaterThan(0);
    twin.stopExecution('stop-tokens');
    expect((await twin.executions.get('stop-tokens')!.done).status).toBe('ABORTED');
    // The execution is over: its tasks no longer exist, whatever the job items still hold.
    for (const taskToken of waiting) {
      await expect(sfn.send(new SendTaskSuccessCommand({ taskToken, output: '{}' }))).rejects.toMatchObject({ name: 'TaskTimedOut' });
    }

    await twin.settle();
    const summary = JSON.parse(await readResult<string>(twin, 'results/stop-tokens/summary.json'));
    expect(summary.status).toBe('Stopped');
    const results = jsonl(await readResult<string>(twin, 'results/stop-tokens/results.jsonl'));
    const failed = jsonl(await readResult<string>(twin, 'results/stop-tokens/failed.jsonl'));
    // Conservation: every input record in exactly one output, once.
    expect(summary.records).toEqual({ input: 200, succeeded: results.length, failed: failed.length, rejected: 0 });
    expect(new Set([...results, ...failed].map((r) => r.recordId)).size).toBe(200);
  } finally {
    sfn.destroy();
    ddb.destroy();
    await twin.stop();
  }
});

/** The task tokens of the run's job items whose job exists and whose tokens are not completed. */
async function openTokens(ddb: DynamoDBClient, runId: string): Promise<string[]> {
  const res = await ddb.send(new ScanCommand({ TableName: 'bedrock-batch-jobs' }));
  return (res.Items ?? []).filter((i) => i.runId?.S === runId && i.jobArn?.S && !i.tokenCompletedAt).flatMap((i) => i.taskTokens?.SS ?? []);
}

/** How many chunks of the run's first round are reconciled (have their stats.json). */
async function reconciledChunks(twin: LocalTwin, runId: string): Promise<number> {
  const res = await twin.s3.send(new ListObjectsV2Command({ Bucket: twin.bucket, Prefix: runKeys.roundPrefix(runId, 1) }));
  return (res.Contents ?? []).filter((o) => o.Key?.endsWith('/stats.json')).length;
}

/** True when the object exists in the twin's bucket. */
async function exists(twin: LocalTwin, key: string): Promise<boolean> {
  try {
    await twin.s3.send(new HeadObjectCommand({ Bucket: twin.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

test('stopping an execution while prepare runs: stop-run waits for prepare, then fails every record RunStopped', async () => {
  const dir = tempDir();
  const records = 60_000;
  const file = writeLines(dir, 'big.jsonl', claudeLines(records));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50_000, minRecordsPerJob: 10 } } });
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 } });
  try {
    const input = await twin.upload(file, 'inbox/default/big.jsonl');
    twin.startExecution({ name: 'stop-early', input: JSON.stringify({ inputs: [input], runId: 'stop-early' }) });
    // Stop as soon as prepare has started (run.json is its first write) and before it is done.
    for (let i = 0; i < 1000 && !(await exists(twin, 'work/stop-early/run.json')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await exists(twin, 'work/stop-early/r01/plan.json')).toBe(false);
    twin.stopExecution('stop-early');
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('ABORTED');

    const summary = JSON.parse(await readResult<string>(twin, 'results/stop-early/summary.json'));
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: records, succeeded: 0, failed: records, rejected: 0 }, warnings: [] });
    const failed = jsonl(await readResult<string>(twin, 'results/stop-early/failed.jsonl'));
    // Conservation: every input record in failed.jsonl exactly once, as RunStopped.
    expect(new Set(failed.map((f) => f.recordId)).size).toBe(records);
    expect(failed.every((f) => f.error?.code === 'RunStopped')).toBe(true);
    expect(twin.emulatorStats().jobsCreated).toBe(0);
  } finally {
    await twin.stop();
  }
}, 120_000);

test('stopping an execution while its on-demand remainder runs: no call starts after the stop, its answers are kept, every record is accounted for', async () => {
  // 60 records, fewer than a job's minimum of 100: all run on demand in Prepare. Long answers
  // (4,096 tokens, about 104 s each at the emulator's modelled speed) take 15 waves of 4: more
  // than Prepare's invocation (27 s at a time scale of 0.03), so it would end RemainderIncomplete
  // and be retried, were the run not stopped.
  const lines = claudeLines(60, 'rec', 4096);
  const file = writeLines(tempDir(), 'few.jsonl', lines);
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE } } });
  const twin = await LocalTwin.start({ config, faults: { 'long-outputs': 1 }, lambdaTimeScale: 0.03 });
  try {
    const input = await twin.upload(file, 'inbox/default/few.jsonl');
    twin.startExecution({ name: 'stop-remainder', input: JSON.stringify({ inputs: [input], runId: 'stop-remainder' }) });
    // Stop once the first calls are under way.
    for (let i = 0; i < 2000 && twin.emulatorStats().invokeModelCalls < 4; i++) await new Promise((r) => setTimeout(r, 10));
    expect(twin.emulatorStats().invokeModelCalls).toBeGreaterThanOrEqual(4);
    twin.stopExecution('stop-remainder');
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('ABORTED');

    const summary = JSON.parse(await readResult<string>(twin, 'results/stop-remainder/summary.json'));
    // Round 1 is opened from remainder-ready.json and its remainder closed by stop-run: the answers
    // the calls in flight at the stop gave (billed) are kept, every other record failed RunStopped.
    const calls = twin.emulatorStats().invokeModelCalls;
    expect(calls).toBeLessThanOrEqual(8);
    expect(summary).toMatchObject({ status: 'Stopped', records: { input: 60, succeeded: calls, failed: 60 - calls, rejected: 0 }, warnings: [] });
    expect(summary.onDemandRecords).toBe(60);
    const results = jsonl(await readResult<string>(twin, 'results/stop-remainder/results.jsonl'));
    const failed = jsonl(await readResult<string>(twin, 'results/stop-remainder/failed.jsonl'));
    // Conservation: every input record in exactly one output, once.
    expect(new Set([...results, ...failed].map((r) => r.recordId)).size).toBe(60);
    expect(failed.every((f) => f.error?.code === 'RunStopped')).toBe(true);
    expect(twin.lambdaStats().invocationsByFunction.prepare).toBe(1);
  } finally {
    await twin.stop();
  }
});

test("a step Lambda killed does not hold up the stop: its lease ends without renewals, and its job's records are kept", async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'killed.jsonl', claudeLines(100));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } } });
  // Every reconcile of chunk 0 dies right after its first write (taking its lease), early in its
  // 15 minutes (90 s in the twin), as a Lambda killed mid-invocation does: it never leaves, and
  // renews nothing. stop-run's own wait (about 10 minutes) would all go to a lease that never ends.
  const crashPlan: CrashPlan = (id) => (id.functionName === 'reconcile-chunk' && id.subject?.endsWith('chunk 0') ? 1 : undefined);
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 }, crashPlan });
  try {
    const input = await twin.upload(file, 'inbox/default/killed.jsonl');
    twin.startExecution({ name: 'killed-step', input: JSON.stringify({ inputs: [input], runId: 'killed-step' }) });
    for (let i = 0; i < 2000 && twin.faultStats().handlerCrash === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(twin.faultStats().crashes[0]).toMatchObject({
      point: 'reconcile-chunk after write 1 (DynamoDB UpdateItem)',
      subject: 'run killed-step round 1 chunk 0',
    });
    twin.stopExecution('killed-step');
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('ABORTED');

    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'killed-step');
    expect(out.summary.status).toBe('Stopped');
    expectConservation(out, 100);
    // Chunk 0's job had ended: stop-run reconciled it once the killed reconcile's lease had ended.
    expect(out.summary.warnings ?? []).toEqual([]);
    const chunk0 = jsonl(await readResult<string>(twin, runKeys.chunkInput('killed-step', 1, 0))).map((r) => r.recordId);
    const succeeded = new Set(out.results.map((r) => (r as { recordId: string }).recordId));
    expect(chunk0).toHaveLength(50);
    expect(chunk0.filter((id) => !succeeded.has(id))).toEqual([]);
    for (const f of out.failed) expect((f as { error?: { code: string } }).error?.code).toBe('RunStopped');
  } finally {
    await twin.stop();
  }
});

test.each([1, 2, 3])(
  'a stop under handler crashes (seed %i): stop-run and the steps it waits for die after any write and run again, and every record is accounted for once',
  async (seed) => {
    const runId = `stop-crash-${seed}`;
    const file = writeLines(tempDir(), 'crash.jsonl', claudeLines(300));
    const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } } });
    const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 }, faults: { 'handler-crash': 0.3 }, seed, stepDelayMs: 100 });
    try {
      const input = await twin.upload(file, 'inbox/default/crash.jsonl');
      twin.startExecution({ name: runId, input: JSON.stringify({ inputs: [input], runId }) });
      for (let i = 0; i < 1000 && (await reconciledChunks(twin, runId)) < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await reconciledChunks(twin, runId)).toBeGreaterThanOrEqual(2);
      twin.stopExecution(runId);
      const [execution] = await twin.settle();
      expect(execution!.result?.status).toBe('ABORTED');
      expect(twin.faultStats().handlerCrash).toBeGreaterThan(0);
      const out = await readOutputsFromS3(twin.s3, twin.bucket, runId);
      expect(out.summary.status).toBe('Stopped');
      expect(out.summary.warnings ?? []).toEqual([]);
      expectConservation(out, 300);
      for (const f of out.failed) expect((f as { error?: { code: string } }).error?.code).toBe('RunStopped');
    } finally {
      await twin.stop();
    }
  },
);
