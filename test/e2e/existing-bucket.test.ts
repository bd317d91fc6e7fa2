/**
 * A pipeline on a bucket of the user's, under a key prefix, run on the twin: a drop under
 * `<prefix>inbox/` runs, a drop at the bucket's own `inbox/` does not, and every key the
 * pipeline writes is under the prefix.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { RunSummary } from '../../lambdas/finalize/run-summary';
import { BedrockBatchPipeline } from '../../lib';
import { LocalTwin } from '../../local/twin';
import type { CfnTemplate } from '../../local/services/template-intrinsics';
import { claudeLines, CLAUDE, expectConservation, readOutputsFromS3, tempDir, writeLines } from './helpers';

function lakeTemplate(): CfnTemplate {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Lake');
  new BedrockBatchPipeline(stack, 'Ml', {
    bucket: s3.Bucket.fromBucketName(stack, 'DataLake', 'data-lake'),
    keyPrefix: 'teams/ml/',
    maxConcurrentJobs: 2,
    routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } },
  });
  return Template.fromStack(stack).toJSON() as CfnTemplate;
}

test('runs under its key prefix in a shared bucket, and only there', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'tickets.jsonl', claudeLines(120));
  const twin = await LocalTwin.start({ template: lakeTemplate(), accountQuotas: { minRecordsPerJob: 10 } });
  try {
    expect(twin.bucket).toBe('data-lake');
    // The bucket's own inbox/ is someone else's data: no run.
    await twin.drop(file, 'default', 'inbox/default/not-ours.jsonl');
    await twin.drop(file, 'default', 'teams/ml/inbox/default/tickets.jsonl');
    const executions = await twin.settle();
    expect(executions.map((e) => e.result?.status)).toEqual(['SUCCEEDED']);

    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await twin.s3.send(new ListObjectsV2Command({ Bucket: 'data-lake', ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    // Everything the pipeline wrote is under the prefix; the only other key is the foreign drop.
    expect(keys.filter((k) => !k.startsWith('teams/ml/'))).toEqual(['inbox/default/not-ours.jsonl']);
    const summaryKey = keys.find((k) => /^teams\/ml\/results\/[^/]+\/summary\.json$/.test(k))!;
    const read = async (key: string) => (await twin.s3.send(new GetObjectCommand({ Bucket: 'data-lake', Key: key }))).Body!.transformToString();
    const summary = JSON.parse(await read(summaryKey)) as RunSummary;
    // Conservation: 120 lines, each record once.
    expect(summary.records).toEqual({ input: 120, succeeded: 120, failed: 0, rejected: 0 });
    const results = (await read(summaryKey.replace('summary.json', 'results.jsonl'))).trim().split('\n');
    expect(new Set(results.map((l) => (JSON.parse(l) as { recordId: string }).recordId)).size).toBe(120);
    expect(summary.outputs.failed).toBe(`s3://data-lake/${summaryKey.replace('summary.json', 'failed.jsonl')}`);
    expect(keys.some((k) => k.startsWith('teams/ml/jobs-output/'))).toBe(true);
  } finally {
    await twin.stop();
  }
});

test('runs an on-demand remainder in a shared bucket: Prepare may read the parts an earlier attempt left, which are missing at first', async () => {
  // 5 records, fewer than a job's minimum of 10: all go through InvokeModel in Prepare, which
  // first looks for outcomes an earlier attempt wrote. S3 answers a missing key with 404 only to
  // a caller allowed to list the bucket, else with 403 AccessDenied.
  const file = writeLines(tempDir(), 'few.jsonl', claudeLines(5));
  const twin = await LocalTwin.start({ template: lakeTemplate(), accountQuotas: { minRecordsPerJob: 10 } });
  try {
    await twin.drop(file, 'default', 'teams/ml/inbox/default/few.jsonl');
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    const runId = (execution!.result!.output as { runId: string }).runId;
    const out = await readOutputsFromS3(twin.s3, 'data-lake', runId, 'teams/ml/');
    expectConservation({ ...out, access: twin.accessReport() }, 5);
    expect(out.summary.onDemandRecords).toBe(5);
    expect(out.results).toHaveLength(5);
  } finally {
    await twin.stop();
  }
});
