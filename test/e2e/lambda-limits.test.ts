/**
 * Lambda's limits in the twin: each invocation runs in a sandbox with its function's memory size
 * as its heap limit and its (scaled) timeout, so a function that would be killed on Lambda is
 * killed here, with Lambda's error, and the workflow handles it as it would on AWS.
 */
import { loadPipelineConfig } from '../../lib/pipeline-config';
import type { CfnTemplate } from '../../local/services/template-intrinsics';
import { cachedPipelineTemplate } from '../../local/template-cache';
import { LocalTwin } from '../../local/twin';
import { claudeLines, CLAUDE, expectConservation, expectFailedRunAccounted, readOutputsFromS3, tempDir, withFunction, writeLines } from './helpers';

const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100 } } });

test('submit-job with too little memory is killed with Runtime.OutOfMemory: its jobs are never submitted and every record fails, once', async () => {
  const file = writeLines(tempDir(), 'a.jsonl', claudeLines(200));
  const template = withFunction(cachedPipelineTemplate(config) as CfnTemplate, 'submit-job', { MemorySize: 8 });
  const twin = await LocalTwin.start({ config, template });
  try {
    const input = await twin.upload(file, 'inbox/default/a.jsonl');
    twin.startExecution({ name: 'oom', input: JSON.stringify({ inputs: [input], runId: 'oom' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    expect(twin.lambdaStats().outOfMemory).toBeGreaterThan(0);
    expect(twin.emulatorStats().jobsCreated).toBe(0);
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'oom');
    expectConservation(out, 200);
    expect(out.failed).toHaveLength(200);
    expect(out.summary.jobs).toEqual({ NotSubmitted: expect.any(Number) });
  } finally {
    await twin.stop();
  }
});

test('a reconcile that outlives its timeout is killed with Sandbox.Timedout, retried as Lambda errors are, and the run fails naming it', async () => {
  const file = writeLines(tempDir(), 'a.jsonl', claudeLines(200));
  // 0.1 s at a time scale of 0.01: 1 ms, less than any reconcile takes.
  const template = withFunction(cachedPipelineTemplate(config) as CfnTemplate, 'reconcile-chunk', { Timeout: 0.1 });
  const twin = await LocalTwin.start({ config, template, lambdaTimeScale: 0.01 });
  try {
    const input = await twin.upload(file, 'inbox/default/a.jsonl');
    twin.startExecution({ name: 'slow', input: JSON.stringify({ inputs: [input], runId: 'slow' }) });
    const [execution] = await twin.settle();
    expect(execution!.result).toMatchObject({ status: 'FAILED', cause: expect.stringContaining('Task timed out after 0.10 seconds') });
    const stats = twin.lambdaStats();
    // Each chunk's reconcile and its retries: more than one timeout per chunk.
    expect(stats.timeouts).toBeGreaterThan(2);
    expect(stats.outOfMemory).toBe(0);
    // The failed run says what it did not account for: no record is dropped silently, none twice.
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'slow');
    expectFailedRunAccounted(out, 200);
    expect(out.summary.warnings).toHaveLength(1);
    expect(out.summary.error).toMatchObject({ error: 'Sandbox.Timedout' });
  } finally {
    await twin.stop();
  }
});

test('an on-demand remainder that outlasts its function goes on where it stopped: none lost, none answered twice', async () => {
  // 150 records: one job of 100, and a remainder of 50 that runs on demand, 4 calls at a time.
  // Each answer runs to max_tokens 4096, about 104 s at the emulator's modelled speed: 13 waves
  // take about 22 minutes, more than Prepare's 15 (here 27 s, at a time scale of 0.03).
  const lines = claudeLines(150, 'rec', 4096);
  const file = writeLines(tempDir(), 'a.jsonl', lines);
  const twin = await LocalTwin.start({ config, faults: { 'long-outputs': 1 }, lambdaTimeScale: 0.03 });
  try {
    const input = await twin.upload(file, 'inbox/default/a.jsonl');
    twin.startExecution({ name: 'long', input: JSON.stringify({ inputs: [input], runId: 'long' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'long');
    expectConservation({ ...out, access: twin.accessReport() }, 150);
    expect(out.results).toHaveLength(150);
    expect(out.summary.onDemandRecords).toBe(50);
    expect(out.summary.truncated).toBe(150);
    // More than one Prepare: the first ran out of time and said so; its retry went on.
    const lambda = twin.lambdaStats();
    expect(lambda.timeouts).toBe(0);
    const prepares = lambda.invocationsByFunction.prepare!;
    expect(prepares).toBeGreaterThanOrEqual(2);
    // What one invocation finished, the next did not invoke again: 50 calls, plus at most the 4
    // an invocation aborted at its end (on a slow machine), each then invoked again.
    const emulator = twin.emulatorStats();
    expect(emulator.invokeModelCalls).toBeGreaterThanOrEqual(50);
    expect(emulator.invokeModelCalls).toBeLessThanOrEqual(50 + 4 * (prepares - 1));
    expect(emulator.invokeModelWaitMs).toBeGreaterThan(27_000);
  } finally {
    await twin.stop();
  }
});

test('an on-demand record whose answer alone outlasts its function fails with OnDemandTimeout, once, instead of holding the run up', async () => {
  // 40,000 tokens at the emulator's modelled speed take about 1,000 s: no 15-minute Lambda
  // invocation can wait for them, whatever the retries.
  const sonnet = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
  const longConfig = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: sonnet } } });
  const lines = claudeLines(3, 'rec', 40_000);
  const file = writeLines(tempDir(), 'a.jsonl', lines);
  const twin = await LocalTwin.start({ config: longConfig, faults: { 'long-outputs': 1 }, lambdaTimeScale: 0.03 });
  try {
    const input = await twin.upload(file, 'inbox/default/a.jsonl');
    twin.startExecution({ name: 'endless', input: JSON.stringify({ inputs: [input], runId: 'endless' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'endless');
    expectConservation({ ...out, access: twin.accessReport() }, 3);
    expect(out.failed).toHaveLength(3);
    for (const f of out.failed) {
      expect(f.error.code).toBe('OnDemandTimeout');
      expect(f.error.message).toMatch(/^on-demand InvokeModel gave no answer in \d+ s, nearly all of its function's time: a retry would have no more$/);
    }
    expect(twin.emulatorStats().invokeModelCalls).toBe(3);
    const lambda = twin.lambdaStats();
    expect(lambda.timeouts).toBe(0);
    expect(lambda.invocationsByFunction.prepare).toBe(1);
  } finally {
    await twin.stop();
  }
});
