/**
 * The ways a run starts, through the local twin: a file dropped into the inbox (the S3
 * Object Created rule and start-run), a repeated delivery of that event, several runs at once
 * sharing one cap, and a console input that cannot start a run.
 */
import { loadPipelineConfig } from '../../lib/pipeline-config';
import { LocalTwin } from '../../local/twin';
import { runLocal } from '../../local/run-local';
import { claudeLines, CLAUDE, expectConservation, expectUnderCap, readOutputs, readOutputsFromS3, tempDir, writeLines } from './helpers';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { CfnTemplate } from '../../local/services/template-intrinsics';
import { cachedPipelineTemplate } from '../../local/template-cache';

describe('starting runs on the local twin', () => {
  test('a dropped file starts one run; the same event delivered twice starts no second run', async () => {
    const dir = tempDir();
    const file = writeLines(dir, 'dropped.jsonl', claudeLines(120));
    const config = loadPipelineConfig({ routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 60, minRecordsPerJob: 10 } } });
    const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 } });
    try {
      await twin.drop(file);
      await twin.drop(file); // same key, same bytes, same ETag: a repeated delivery
      const executions = await twin.settle();
      expect(executions).toHaveLength(1);
      expect(executions[0]!.result?.status).toBe('SUCCEEDED');
      const runId = (executions[0]!.input as { runId: string }).runId;
      expect(runId).toMatch(/^default-[0-9a-f]{16}$/);
      const out = await readOutputsFromS3(twin.s3, twin.bucket, runId);
      expectConservation(
        out,
        120,
        claudeLines(120).map((l) => JSON.parse(l).recordId),
      );
      const summary = out.summary;
      expect(summary).toMatchObject({
        status: 'Succeeded',
        route: 'default',
        records: { input: 120, succeeded: 120, failed: 0, rejected: 0 },
        jobs: { Completed: 2 },
      });
      expect(summary.inputs).toEqual([`s3://${twin.bucket}/inbox/default/dropped.jsonl`]);
      // The run announced itself on the bus.
      const finished = twin.bus.events.filter((e) => e['detail-type'] === 'Batch Run Completed');
      expect(finished).toHaveLength(1);
      expect(finished[0]).toMatchObject({ source: 'bedrock-batch', detail: { runId, status: 'Succeeded' } });
    } finally {
      await twin.stop();
    }
  });

  test('a dropped file whose name has a space and a plus runs: the event key, URL-encoded, is looked up both ways', async () => {
    const file = writeLines(tempDir(), 'my file+1.jsonl', claudeLines(30));
    const config = loadPipelineConfig({ routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 60, minRecordsPerJob: 10 } } });
    const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 } });
    try {
      await twin.drop(file);
      const created = twin.bus.events.find((e) => e['detail-type'] === 'Object Created') as { detail: { object: { key: string } } } | undefined;
      expect(created?.detail.object.key).toBe('inbox/default/my%20file%2B1.jsonl');
      const [execution] = await twin.settle();
      expect(execution!.result?.status).toBe('SUCCEEDED');
      const out = await readOutputsFromS3(twin.s3, twin.bucket, (execution!.input as { runId: string }).runId);
      expectConservation(out, 30);
      expect(out.summary.inputs).toEqual([`s3://${twin.bucket}/inbox/default/my file+1.jsonl`]);
    } finally {
      await twin.stop();
    }
  });

  test('a drop bucket without EventBridge notifications starts nothing when a file is dropped, as on AWS', async () => {
    const dir = tempDir();
    const lines = claudeLines(120);
    const file = writeLines(dir, 'unheard.jsonl', lines);
    const config = loadPipelineConfig({ routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 60, minRecordsPerJob: 10 } } });
    // The drop bucket's notification setting removed (say, by an escape hatch or a refactor).
    const template = structuredClone(cachedPipelineTemplate(config)) as CfnTemplate;
    const buckets = Object.values(template.Resources ?? {}).filter((r) => r.Type === 'AWS::S3::Bucket' && r.Properties?.NotificationConfiguration);
    expect(buckets).toHaveLength(1);
    delete buckets[0]!.Properties!.NotificationConfiguration;
    const twin = await LocalTwin.start({ config, template, accountQuotas: { minRecordsPerJob: 10 } });
    try {
      const uri = await twin.drop(file);
      expect(await twin.settle()).toHaveLength(0);
      // Nothing ran: the dropped file is whole in the inbox, and no record reached any output.
      const key = uri.slice(`s3://${twin.bucket}/`.length);
      const body = await (await twin.s3.send(new GetObjectCommand({ Bucket: twin.bucket, Key: key }))).Body!.transformToString();
      expect(body.split('\n').filter(Boolean)).toEqual(lines);
      expect((await twin.s3.send(new ListObjectsV2Command({ Bucket: twin.bucket, Prefix: 'results/' }))).KeyCount ?? 0).toBe(0);
    } finally {
      await twin.stop();
    }
  });

  test('--one-run-per-file: three runs at once share one cap, each conserving its records', async () => {
    const dir = tempDir();
    const files = [1, 2, 3].map((n) => writeLines(dir, `part-${n}.jsonl`, claudeLines(100 * n, `p${n}`)));
    const outcome = await runLocal({
      files,
      modelId: CLAUDE,
      out: `${dir}/out`,
      maxRecordsPerJob: 50,
      maxConcurrentJobs: 2,
      oneRunPerFile: true,
      accountQuotas: { minRecordsPerJob: 25 },
    });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.runs).toHaveLength(3);
    const byInput = new Map<number, ReturnType<typeof readOutputs>>();
    for (const run of outcome.runs) {
      const out = readOutputs(run);
      byInput.set(out.summary.records.input, out);
      expect(run.outDir).toBe(`${dir}/out/${run.runId}`);
    }
    for (const n of [1, 2, 3]) {
      const out = byInput.get(100 * n)!;
      expectConservation(out, 100 * n);
      expect(out.summary.status).toBe('Succeeded');
      // 2 jobs of 50 per 100 records; the emulator saw all runs' jobs and never more than 2 at once.
      expect(Object.values(out.summary.jobs).reduce((a, b) => a + b, 0)).toBe(2 * n);
      expectUnderCap(out, 2);
      expect(out.emulator.jobsCreated).toBe(12);
    }
  });

  test('an execution input that cannot start a run ends Failed with the reason in summary.json', async () => {
    const config = loadPipelineConfig({ routes: { default: { modelId: CLAUDE } } });
    const twin = await LocalTwin.start({ config });
    try {
      twin.startExecution({ name: 'bad-input', input: JSON.stringify({ inputs: ['not-a-uri'] }) });
      const [execution] = await twin.settle();
      expect(execution!.result?.status).toBe('FAILED');
      expect(execution!.result?.error).toBe('RunFailed');
      const res = await twin.s3.send(new GetObjectCommand({ Bucket: twin.bucket, Key: 'results/bad-input/summary.json' }));
      const summary = JSON.parse(await res.Body!.transformToString());
      expect(summary).toMatchObject({ runId: 'bad-input', status: 'Failed', error: { error: 'InvalidRunInput' } });
      expect(summary.error.cause).toMatch(/inputs\[0\] is not an s3:\/\/bucket\/key URI/);
    } finally {
      await twin.stop();
    }
  });

  test('a nightly route ignores drops and sweeps what accumulated into one run', async () => {
    const dir = tempDir();
    const config = loadPipelineConfig({ routes: { tickets: { modelId: CLAUDE, maxRecordsPerJob: 100, minRecordsPerJob: 10, trigger: 'nightly' } } });
    const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 } });
    try {
      await twin.drop(writeLines(dir, 'a.jsonl', claudeLines(70, 'a')), 'tickets');
      await twin.drop(writeLines(dir, 'b.jsonl', claudeLines(80, 'b')), 'tickets');
      expect(await twin.settle()).toHaveLength(0);

      const tick = new Date();
      await expect(twin.sweep('tickets', tick)).resolves.toMatchObject({ files: 2 });
      const executions = await twin.settle();
      expect(executions).toHaveLength(1);
      const runId = (executions[0]!.input as { runId: string }).runId;
      const out = await readOutputsFromS3(twin.s3, twin.bucket, runId);
      expectConservation(
        out,
        150,
        [...claudeLines(70, 'a'), ...claudeLines(80, 'b')].map((l) => JSON.parse(l).recordId),
      );
      const summary = out.summary;
      // 150 records from two files merged into two full jobs of 75, not one job per file.
      expect(summary).toMatchObject({ status: 'Succeeded', records: { input: 150, succeeded: 150 }, jobs: { Completed: 2 } });

      // The tick's event delivered again (EventBridge delivers at least once): the same sweep,
      // already started, starts nothing.
      await expect(twin.sweep('tickets', tick)).resolves.toEqual({ duplicate: runId });
      expect(await twin.settle()).toHaveLength(1);

      await twin.drop(writeLines(dir, 'c.jsonl', claudeLines(30, 'c')), 'tickets');
      // The next tick takes only the new file (ticks are a night apart; here two seconds ahead
      // of the clock, so that c, written to the second, is before it).
      await expect(twin.sweep('tickets', new Date(Date.now() + 2000))).resolves.toMatchObject({ files: 1 });
      const all = await twin.settle();
      expect(all).toHaveLength(2);
      const next = all[1]!.input as { runId: string; inputs: string[] };
      expect(next.inputs).toEqual([`s3://${twin.bucket}/inbox/tickets/c.jsonl`]);
      expectConservation(
        await readOutputsFromS3(twin.s3, twin.bucket, next.runId),
        30,
        claudeLines(30, 'c').map((l) => JSON.parse(l).recordId),
      );

      // A later sweep finds nothing new.
      await expect(twin.sweep('tickets', new Date(Date.now() + 4000))).resolves.toEqual({ ignored: 'no new files for route tickets' });
      expect(await twin.settle()).toHaveLength(2);
    } finally {
      await twin.stop();
    }
  });
});
