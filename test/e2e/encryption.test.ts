/**
 * A drop bucket encrypted with a KMS key (SSE-KMS), run on the twin: S3 asks the key on each
 * caller's behalf, so IAM checks `kms:Decrypt` to read and `kms:GenerateDataKey` to write, for
 * the functions and for Bedrock's service role alike. The stack grants them; without one, the
 * twin denies the call that needed it, as AWS would.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BedrockBatchPipeline } from '../../lib';
import type { CfnTemplate } from '../../local/services/template-intrinsics';
import { takeDeniedCalls } from '../../local/twin/access-checks';
import { LocalTwin } from '../../local/twin';
import { claudeLines, CLAUDE, expectConservation, readOutputsFromS3, tempDir, writeLines } from './helpers';

const LAKE_KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The pipeline on its own bucket encrypted with a key of the stack, or (`lake`) on a bucket of the user's under a key of theirs. */
function encryptedTemplate(lake = false): CfnTemplate {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Encrypted', { env: { region: 'us-east-1', account: '123456789012' } });
  new BedrockBatchPipeline(stack, 'Batch', {
    ...(lake
      ? { bucket: s3.Bucket.fromBucketName(stack, 'Lake', 'data-lake'), keyPrefix: 'teams/ml/', encryptionKey: kms.Key.fromKeyArn(stack, 'LakeKey', LAKE_KEY) }
      : { encryptionKey: new kms.Key(stack, 'DataKey', { enableKeyRotation: true }) }),
    maxConcurrentJobs: 2,
    routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100 } },
  });
  return Template.fromStack(stack).toJSON() as CfnTemplate;
}

/** The template with `action` removed from every statement of the policies whose logical id matches `policy`. */
function withoutAction(template: CfnTemplate, policy: RegExp, action: string): CfnTemplate {
  const copy = structuredClone(template);
  let removed = 0;
  for (const [id, resource] of Object.entries(copy.Resources ?? {})) {
    if (resource.Type !== 'AWS::IAM::Policy' || !policy.test(id)) continue;
    const doc = resource.Properties!.PolicyDocument as { Statement: Array<{ Action: string | string[] }> };
    doc.Statement = doc.Statement.flatMap((s) => {
      const actions = ([] as string[]).concat(s.Action);
      const kept = actions.filter((a) => a !== action);
      removed += actions.length - kept.length;
      return kept.length > 0 ? [{ ...s, Action: kept }] : [];
    });
  }
  expect(removed).toBeGreaterThan(0);
  return copy;
}

test('runs with every call allowed; the functions read with kms:Decrypt and write with kms:GenerateDataKey, through S3', async () => {
  const file = writeLines(tempDir(), 'a.jsonl', claudeLines(150));
  const twin = await LocalTwin.start({ template: encryptedTemplate() });
  try {
    const input = await twin.upload(file, 'inbox/default/a.jsonl');
    twin.startExecution({ name: 'kms-ok', input: JSON.stringify({ inputs: [input], runId: 'kms-ok' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'kms-ok');
    expectConservation(out, 150);
    expect(out.results).toHaveLength(150);
    const report = twin.accessReport();
    expect(report.denied).toBe(0);
    const kmsCalls = report.calls.filter((c) => c.action.startsWith('kms:'));
    expect(kmsCalls).toContainEqual(expect.objectContaining({ function: 'prepare', action: 'kms:Decrypt', allowed: true }));
    expect(kmsCalls).toContainEqual(expect.objectContaining({ function: 'finalize', action: 'kms:GenerateDataKey', allowed: true }));
    expect(new Set(kmsCalls.map((c) => c.resource)).size).toBe(1);
  } finally {
    await twin.stop();
  }
});

test("without prepare's kms:Decrypt it cannot read the input: the call is denied and the run fails", async () => {
  const file = writeLines(tempDir(), 'b.jsonl', claudeLines(100));
  const twin = await LocalTwin.start({ template: withoutAction(encryptedTemplate(), /PrepareRole/, 'kms:Decrypt') });
  try {
    const input = await twin.upload(file, 'inbox/default/b.jsonl');
    twin.startExecution({ name: 'kms-denied', input: JSON.stringify({ inputs: [input], runId: 'kms-denied' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('FAILED');
    const denied = takeDeniedCalls();
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((c) => c.function === 'prepare' && c.action === 'kms:Decrypt')).toBe(true);
    // Prepare failed before it read a line: the run accounts for none and says why, naming the
    // file; the file itself is untouched, to be run again once the grant is back.
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'kms-denied');
    expectConservation(out, 0);
    expect(out.summary).toMatchObject({ status: 'Failed', error: { error: 'InputUnreadable', cause: `cannot read input ${input}: AccessDenied` } });
    const kept = await twin.s3.send(new ListObjectsV2Command({ Bucket: twin.bucket, Prefix: 'inbox/default/b.jsonl' }));
    expect((kept.Contents ?? []).map((o) => o.Key)).toEqual(['inbox/default/b.jsonl']);
  } finally {
    await twin.stop();
  }
});

test("without the service role's kms:GenerateDataKey, Bedrock fails the job with its S3 message and every record fails, once", async () => {
  const file = writeLines(tempDir(), 'c.jsonl', claudeLines(100));
  const twin = await LocalTwin.start({ template: withoutAction(encryptedTemplate(), /BedrockServiceRole/, 'kms:GenerateDataKey') });
  try {
    const input = await twin.upload(file, 'inbox/default/c.jsonl');
    twin.startExecution({ name: 'kms-role', input: JSON.stringify({ inputs: [input], runId: 'kms-role' }) });
    await twin.settle();
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'kms-role');
    expectConservation(out, 100);
    expect(out.results).toHaveLength(0);
    expect(out.summary.jobs).toEqual({ Failed: expect.any(Number) });
    expect(twin.accessReport().denied).toBe(0);
  } finally {
    await twin.stop();
  }
});

test("on a bucket of the user's given with its key, the key the construct was given is checked the same way", async () => {
  const file = writeLines(tempDir(), 'd.jsonl', claudeLines(100));
  const twin = await LocalTwin.start({ template: encryptedTemplate(true) });
  try {
    const input = await twin.upload(file, 'teams/ml/inbox/default/d.jsonl');
    twin.startExecution({ name: 'kms-lake', input: JSON.stringify({ inputs: [input], runId: 'kms-lake' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    expectConservation(await readOutputsFromS3(twin.s3, 'data-lake', 'kms-lake', 'teams/ml/'), 100);
    const report = twin.accessReport();
    expect(report.denied).toBe(0);
    const kmsCalls = report.calls.filter((c) => c.action.startsWith('kms:'));
    expect(kmsCalls).toContainEqual(expect.objectContaining({ function: 'prepare', action: 'kms:Decrypt', resource: LAKE_KEY, allowed: true }));
    expect(kmsCalls).toContainEqual(expect.objectContaining({ function: 'finalize', action: 'kms:GenerateDataKey', resource: LAKE_KEY, allowed: true }));
  } finally {
    await twin.stop();
  }
});
