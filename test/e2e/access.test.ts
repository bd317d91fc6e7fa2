/**
 * IAM in the twin: a handler's call that its role does not allow is refused as AWS refuses it
 * (AccessDenied), failing the handler the same way. With one grant removed from the synthesized
 * template, the twin denies the call that needed it and the run fails.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { loadPipelineConfig } from '../../lib/pipeline-config';
import type { CfnTemplate } from '../../local/services/template-intrinsics';
import { cachedPipelineTemplate } from '../../local/template-cache';
import { takeDeniedCalls } from '../../local/twin/access-checks';
import { LocalTwin } from '../../local/twin';
import { claudeLines, CLAUDE, expectConservation, expectFailedRunAccounted, readOutputsFromS3, tempDir, writeLines } from './helpers';

type Statement = { Action: string | string[]; Condition?: Record<string, unknown> };

/** A copy of the template whose policies of the role matching `role` have their statements replaced by `edit`'s. */
function withRoleStatements(template: CfnTemplate, role: RegExp, edit: (s: Statement) => Statement[]): CfnTemplate {
  const copy = structuredClone(template);
  for (const [id, resource] of Object.entries(copy.Resources ?? {})) {
    if (resource.Type !== 'AWS::IAM::Policy' || !role.test(id)) continue;
    const doc = resource.Properties!.PolicyDocument as { Statement: Statement[] };
    doc.Statement = doc.Statement.flatMap(edit);
  }
  return copy;
}

/** The template with the actions `drop` picks removed from every statement of the policies of the role matching `role`. */
function withoutGrants(template: CfnTemplate, role: RegExp, drop: (action: string) => boolean): CfnTemplate {
  return withRoleStatements(template, role, (s) => {
    const actions = ([] as string[]).concat(s.Action).filter((a) => !drop(a));
    return actions.length > 0 ? [{ ...s, Action: actions }] : [];
  });
}

test("a call its role does not allow is denied: without finalize's s3:PutObject the run cannot write its results", async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'a.jsonl', claudeLines(100));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100 } } });
  const template = withoutGrants(cachedPipelineTemplate(config) as CfnTemplate, /FinalizeRole/, (a) => a === 's3:PutObject');
  const twin = await LocalTwin.start({ config, template });
  try {
    const input = await twin.upload(file, 'inbox/default/a.jsonl');
    twin.startExecution({ name: 'no-put', input: JSON.stringify({ inputs: [input], runId: 'no-put' }) });
    const [execution] = await twin.settle();
    // Finalize fails on its first write (its retries too), and FinalizeFailed (the same function) as well.
    expect(execution!.result?.status).toBe('FAILED');
    const report = twin.accessReport();
    const denied = report.calls.filter((c) => !c.allowed);
    expect(denied.length).toBeGreaterThan(0);
    expect(report.denied).toBe(denied.length);
    for (const c of denied)
      expect(c).toMatchObject({
        function: 'finalize',
        action: 's3:PutObject',
        resource: expect.stringMatching(/^arn:aws:s3:::bedrock-batch-local\/results\/no-put\//),
      });
    // Nothing of the run's results was written.
    for (const name of ['summary.json', 'results.jsonl', 'failed.jsonl', 'rejected.jsonl'])
      await expect(twin.s3.send(new GetObjectCommand({ Bucket: twin.bucket, Key: `results/no-put/${name}` }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    // Conservation up to the denied write: the one chunk reconciled every input record exactly
    // once into its parts, which a finalize with its grant back would publish.
    const part = async (name: string): Promise<string[]> => {
      const key = `work/no-put/r01/c00000/${name}.jsonl`;
      const res = await twin.s3
        .send(new GetObjectCommand({ Bucket: twin.bucket, Key: key }))
        .catch((e: Error) => (e.name === 'NoSuchKey' ? undefined : Promise.reject(e)));
      const text = res ? await res.Body!.transformToString() : '';
      return text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => (JSON.parse(l) as { recordId: string }).recordId);
    };
    const reconciled = [...(await part('succeeded')), ...(await part('failed')), ...(await part('retry'))];
    expect(reconciled.sort()).toEqual(
      claudeLines(100)
        .map((l) => (JSON.parse(l) as { recordId: string }).recordId)
        .sort(),
    );
    // The denial, taken here, is this test's expectation (the suite fails any other test that leaves one).
    expect(takeDeniedCalls().map((c) => c.action)).toEqual(denied.map(() => 's3:PutObject'));
    // The grants the unchanged functions used are not reported unused; finalize's removed one is not in its list.
    expect(report.unusedGrants.some((g) => g.function === 'finalize' && g.action === 's3:PutObject')).toBe(false);
  } finally {
    await twin.stop();
  }
});

test('an unchanged template: every call allowed, and what the functions were granted but did not use is listed', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'b.jsonl', claudeLines(100));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100 } } });
  const twin = await LocalTwin.start({ config });
  try {
    const input = await twin.upload(file, 'inbox/default/b.jsonl');
    twin.startExecution({ name: 'all-ok', input: JSON.stringify({ inputs: [input], runId: 'all-ok' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    expectConservation(await readOutputsFromS3(twin.s3, twin.bucket, 'all-ok'), 100);
    const report = twin.accessReport();
    expect(report.denied).toBe(0);
    const fns = new Set(report.calls.map((c) => c.function));
    for (const fn of ['prepare', 'acquire-slot', 'submit-job', 'job-state', 'reconcile-chunk', 'finalize']) expect(fns).toContain(fn);
    expect(report.calls).toContainEqual({ function: 'submit-job', action: 'iam:PassRole', resource: expect.stringContaining(':role/'), allowed: true });
    // Stop-run never ran: its grants are all unused; finalize's PutObject was used.
    expect(report.unusedGrants.some((g) => g.function === 'stop-run' && g.action === 'bedrock:StopModelInvocationJob')).toBe(true);
    expect(report.unusedGrants.some((g) => g.function === 'finalize' && g.action === 's3:PutObject')).toBe(false);
    expect(report.unusedGrants.some((g) => /^(logs|xray):/.test(g.action))).toBe(false);
    // Prepare reads the model's quotas, and is granted only the Service Quotas call it makes.
    expect(report.calls).toContainEqual(expect.objectContaining({ function: 'prepare', action: 'servicequotas:ListServiceQuotas', allowed: true }));
    expect(report.unusedGrants.filter((g) => g.action.startsWith('servicequotas:'))).toEqual([]);
  } finally {
    await twin.stop();
  }
});

test('a read of a missing key without s3:ListBucket is a 403, not a 404: reconcile-chunk needs its IfExists listing grant', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'c.jsonl', claudeLines(100));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100 } } });
  // reconcile-chunk reads its chunk's stats.json, missing until it writes it. Its ListBucket grant
  // is StringLikeIfExists on s3:prefix (lib/function-grants.ts, readsMissingKeys): S3 checks
  // ListBucket without a prefix for a missing key. As a plain StringLike it would not hold.
  const copy = withRoleStatements(cachedPipelineTemplate(config) as CfnTemplate, /ReconcileChunkRole/, (s) =>
    s.Condition?.StringLikeIfExists ? [{ ...s, Condition: { StringLike: s.Condition.StringLikeIfExists } }] : [s],
  );
  const twin = await LocalTwin.start({ config, template: copy });
  try {
    const input = await twin.upload(file, 'inbox/default/c.jsonl');
    twin.startExecution({ name: 'no-list', input: JSON.stringify({ inputs: [input], runId: 'no-list' }) });
    const [execution] = await twin.settle();
    const denied = twin.accessReport().calls.filter((c) => !c.allowed);
    expect(denied).toEqual([{ function: 'reconcile-chunk', action: 's3:ListBucket', resource: 'arn:aws:s3:::bedrock-batch-local', allowed: false }]);
    expect(takeDeniedCalls()).toHaveLength(1);
    // Every reconcile attempt fails: no chunk settles, and the run does not succeed.
    expect(execution!.result?.status).not.toBe('SUCCEEDED');
    // FinalizeFailed still accounts for every record: none twice, and those no chunk settled are
    // counted in its summary's warning, not dropped silently.
    expect(expectFailedRunAccounted(await readOutputsFromS3(twin.s3, twin.bucket, 'no-list'), 100)).toBe(100);
  } finally {
    await twin.stop();
  }
});

test("Bedrock's service role is checked too: without its s3:PutObject on jobs-output/ every job fails after validation, as on AWS", async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'd.jsonl', claudeLines(100));
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100, maxAttempts: 2 } } });
  const copy = structuredClone(cachedPipelineTemplate(config) as CfnTemplate);
  // The service role's policy is inline (lib/bedrock-service-role.ts): drop its WriteJobOutputs statement.
  const role = Object.entries(copy.Resources ?? {}).find(([id, r]) => r.Type === 'AWS::IAM::Role' && /BedrockServiceRole/.test(id))![1];
  const policies = role.Properties!.Policies as Array<{ PolicyDocument: { Statement: Array<{ Sid?: string }> } }>;
  for (const p of policies) p.PolicyDocument.Statement = p.PolicyDocument.Statement.filter((s) => s.Sid !== 'WriteJobOutputs');
  const twin = await LocalTwin.start({ config, template: copy });
  try {
    const input = await twin.upload(file, 'inbox/default/d.jsonl');
    twin.startExecution({ name: 'no-output', input: JSON.stringify({ inputs: [input], runId: 'no-output' }) });
    await twin.settle();
    await twin.emulator.idle();
    const stats = twin.emulatorStats();
    // Accepted at create, failed once Bedrock tried the role: one job per attempt.
    expect(stats.jobsCreated).toBe(2);
    expect(stats.jobsByStatus).toMatchObject({ Failed: 2 });
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'no-output');
    expectConservation(out, 100);
    expect(out.summary.records).toMatchObject({ succeeded: 0, failed: 100 });
    expect(out.failed[0]!.error.message).toMatch(
      /could not validate GetObject or PutObject permissions with the service role .*s3:PutObject on arn:aws:s3:::bedrock-batch-local\/jobs-output\//,
    );
  } finally {
    await twin.stop();
  }
});

test("without prepare's Service Quotas grant the run plans with the documented defaults, and its summary warns", async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'q.jsonl', claudeLines(150));
  // The route allows jobs of 20 records; Claude 3 Haiku's documented minimum is 100 (docs/BEDROCK-FACTS.md §7).
  const config = loadPipelineConfig({ maxConcurrentJobs: 2, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 100, minRecordsPerJob: 20 } } });
  const template = withoutGrants(cachedPipelineTemplate(config) as CfnTemplate, /PrepareRole/, (a) => a.startsWith('servicequotas:'));
  const twin = await LocalTwin.start({ config, template });
  try {
    const input = await twin.upload(file, 'inbox/default/q.jsonl');
    twin.startExecution({ name: 'no-quotas', input: JSON.stringify({ inputs: [input], runId: 'no-quotas' }) });
    const [execution] = await twin.settle();
    expect(execution!.result?.status).toBe('SUCCEEDED');
    // The denial is this test's expectation: prepare's one ListServiceQuotas call.
    expect(takeDeniedCalls().map((c) => `${c.function} ${c.action}`)).toEqual(['prepare servicequotas:ListServiceQuotas']);
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'no-quotas');
    expectConservation(out, 150);
    expect(out.summary.quotas?.minRecordsPerJob).toEqual({ value: 100, source: 'default' });
    expect(out.summary.warnings).toEqual([
      expect.stringMatching(/^Service Quotas could not be read \(AccessDeniedException: .*\): the documented default quotas of /),
    ]);
    // One job of 100 (never one below the model's minimum); the 50 left run on demand.
    expect(out.summary.jobs).toEqual({ Completed: 1 });
    expect(out.summary.onDemandRecords).toBe(50);
  } finally {
    await twin.stop();
  }
});
