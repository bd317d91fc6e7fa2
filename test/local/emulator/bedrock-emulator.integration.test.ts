import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BedrockClient,
  CreateModelInvocationJobCommand,
  GetModelInvocationJobCommand,
  ListModelInvocationJobsCommand,
  ListTagsForResourceCommand,
  type ListModelInvocationJobsCommandInput,
  StopModelInvocationJobCommand,
} from '@aws-sdk/client-bedrock';
import { InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { BedrockEmulator, INVOKE_FIRST_TOKEN_MS, INVOKE_OUTPUT_TOKENS_PER_SECOND, invokeModelLatencyMs } from '../../../local/emulator/bedrock-emulator';
import { BUCKET, CLAUDE, ROLE_ARN, claudeRecord, claudeRecords, emulatorsForFile, jobIdOf, sdkError, type EmulatorHarness } from './harness';

const { s3, emulator } = emulatorsForFile();

let inputSeq = 0;
/** Writes records to a fresh input key and returns the key. */
async function input(records: readonly unknown[]): Promise<string> {
  const key = `in/${++inputSeq}/input.jsonl`;
  await s3.putRecords(key, records);
  return key;
}
const freshOutput = () => `out/${++inputSeq}/`;

describe('CreateModelInvocationJob validation', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['jobName with an underscore', { jobName: 'job_1' }, 'jobName'],
    ['jobName with a space', { jobName: 'job 1' }, 'jobName'],
    ['jobName over 63 characters', { jobName: 'a'.repeat(64) }, 'jobName'],
    ['roleArn that is not an IAM role', { roleArn: 'arn:aws:iam::123456789012:user/bob' }, 'roleArn'],
    [
      'input S3 uri with an uppercase bucket',
      { inputDataConfig: { s3InputDataConfig: { s3Uri: 's3://Test-Bucket/in.jsonl' } } },
      'inputDataConfig.s3InputDataConfig.s3Uri',
    ],
    [
      'output S3 uri that is not s3://',
      { outputDataConfig: { s3OutputDataConfig: { s3Uri: 'https://test-bucket/out/' } } },
      'outputDataConfig.s3OutputDataConfig.s3Uri',
    ],
    ['timeout of 10 hours', { timeoutDurationInHours: 10 }, 'timeoutDurationInHours'],
    ['timeout of 169 hours', { timeoutDurationInHours: 169 }, 'timeoutDurationInHours'],
    ['clientRequestToken with an underscore', { clientRequestToken: 'run_1' }, 'clientRequestToken'],
    ['empty modelId', { modelId: '' }, 'modelId'],
  ];

  it.each(cases)('rejects a %s with ValidationException (400)', async (_label, override, field) => {
    const h = await emulator();
    const err = await sdkError(() => h.create(override));
    expect(err.name).toBe('ValidationException');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect(err.message).toContain(`at '${field}'`);
    expect(h.emulator.stats().jobsCreated).toBe(0);
  });

  it('accepts names and tokens the patterns allow', async () => {
    const h = await emulator({ stepDelayMs: 10_000 });
    await expect(h.create({ jobName: 'job.v2+x', clientRequestToken: 'a1-b2' })).resolves.toMatch(/:model-invocation-job\/[a-z0-9]{12}$/);
    await expect(h.create({ jobName: 'Job--1', timeoutDurationInHours: 168 })).resolves.toBeDefined();
    await expect(h.create({ modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', timeoutDurationInHours: 24 })).resolves.toBeDefined();
  });

  it('answers a missing required field with ValidationException', async () => {
    const h = await emulator();
    const res = await fetch(`${h.endpoint}/model-invocation-job`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobName: 'x', modelId: CLAUDE }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('ValidationException');
    const body = (await res.json()) as { message: string };
    expect(body.message).toMatch(/^3 validation errors detected: /);
    expect(body.message).toContain("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
  });
});

describe('job ARN, idempotency and quotas', () => {
  it('returns the same jobArn for a repeated clientRequestToken and counts the duplicate', async () => {
    const h = await emulator({ stepDelayMs: 10_000 });
    const first = await h.create({ jobName: 'bb-run1-r01-c00001', clientRequestToken: 'run1-r01-c00001' });
    const second = await h.create({ jobName: 'bb-run1-r01-c00001', clientRequestToken: 'run1-r01-c00001' });
    const third = await h.create({ jobName: 'bb-run1-r01-c00002', clientRequestToken: 'run1-r01-c00002' });
    expect(first).toMatch(/^arn:aws:bedrock:us-east-1:123456789012:model-invocation-job\/[a-z0-9]{12}$/);
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    expect(h.emulator.stats()).toMatchObject({ jobsCreated: 2, duplicateCreates: 1 });
  });

  it("refuses a job name in use, whatever that job's status, with ConflictException (400)", async () => {
    const h = await emulator();
    const first = await h.create({ jobName: 'bb-run1-r01-c00001', clientRequestToken: 'run1-r01-c00001', inputKey: await input(claudeRecords(100)) });
    await h.emulator.idle();
    const err = await sdkError(() => h.create({ jobName: 'bb-run1-r01-c00001', clientRequestToken: 'other-token' }));
    expect(err.name).toBe('ConflictException');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect(err.message).toContain(first);
    expect(h.emulator.stats()).toMatchObject({ jobsCreated: 1, conflicts: 1 });
  });

  it('refuses a clientRequestToken reused for a different request with ConflictException; the same request is a duplicate', async () => {
    const h = await emulator({ stepDelayMs: 10_000 });
    const first = await h.create({ jobName: 'alpha', clientRequestToken: 'tok-1', tags: [{ key: 'k', value: 'v' }] });
    await expect(h.create({ jobName: 'alpha', clientRequestToken: 'tok-1', tags: [{ key: 'k', value: 'v' }] })).resolves.toBe(first);
    const err = await sdkError(() => h.create({ jobName: 'beta', clientRequestToken: 'tok-1' }));
    expect(err.name).toBe('ConflictException');
    expect(err.message).toMatch(/clientRequestToken tok-1 was already used .* \(alpha\) with a different request/);
    expect(h.emulator.stats()).toMatchObject({ jobsCreated: 1, duplicateCreates: 1, conflicts: 1 });
  });

  it('uses the configured region and account', async () => {
    const h = await emulator({ stepDelayMs: 10_000, region: 'eu-west-1', accountId: '999988887777' });
    expect(await h.create()).toMatch(/^arn:aws:bedrock:eu-west-1:999988887777:model-invocation-job\/[a-z0-9]{12}$/);
  });

  it('refuses a job over the per-model concurrent quota with ServiceQuotaExceededException (400)', async () => {
    const h = await emulator({ stepDelayMs: 10_000, accountQuotas: { maxConcurrentJobs: 2 } });
    await h.create();
    await h.create({ modelId: `us.${CLAUDE}` });
    const err = await sdkError(() => h.create());
    expect(err.name).toBe('ServiceQuotaExceededException');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    // Another model has its own quota.
    await h.create({ modelId: 'amazon.nova-lite-v1:0' });
    expect(h.emulator.stats()).toMatchObject({
      jobsCreated: 3,
      quotaRejections: 1,
      maxConcurrentJobs: 3,
      maxConcurrentJobsByModel: { [CLAUDE]: 1, [`us.${CLAUDE}`]: 1, 'amazon.nova-lite-v1:0': 1 },
    });
  });

  it('frees a quota slot when a job ends', async () => {
    const h = await emulator({ accountQuotas: { maxConcurrentJobs: 1 } });
    const key = await input(claudeRecords(100));
    await h.create({ inputKey: key, outputPrefix: freshOutput() });
    await expect(h.create({ inputKey: key })).rejects.toMatchObject({ name: 'ServiceQuotaExceededException' });
    await h.emulator.idle();
    await expect(h.create({ inputKey: key, outputPrefix: freshOutput() })).resolves.toBeDefined();
    await h.emulator.idle();
    expect(h.emulator.stats().maxConcurrentJobs).toBe(1);
  });

  it('throttles creates with the create-throttle fault, without creating a job', async () => {
    const h = await emulator({ faults: { 'create-throttle': 1 } });
    const err = await sdkError(() => h.create());
    expect(err.name).toBe('ThrottlingException');
    expect(err.$metadata?.httpStatusCode).toBe(429);
    expect(h.emulator.stats()).toMatchObject({ jobsCreated: 0, createThrottled: 1 });
  });

  it('lets SDK retries through a partial create-throttle fault', async () => {
    const h = await emulator({ faults: { 'create-throttle': 0.5 }, stepDelayMs: 10_000 });
    const client = new BedrockClient({
      endpoint: h.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 10,
    });
    const arns = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await client.send(
        new CreateModelInvocationJobCommand({
          jobName: `retry-${i}`,
          roleArn: ROLE_ARN,
          modelId: CLAUDE,
          clientRequestToken: `retry-token-${i}`,
          inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${BUCKET}/in/x.jsonl` } },
          outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${BUCKET}/out/` } },
        }),
      );
      arns.add(res.jobArn!);
    }
    client.destroy();
    expect(arns.size).toBe(4);
    expect(h.emulator.stats().jobsCreated).toBe(4);
  }, 30_000);
});

describe('job lifecycle', () => {
  it('runs a job to Completed with output files, manifest, counters and events', async () => {
    const h = await emulator({ stepDelayMs: 25 });
    const records: Record<string, unknown>[] = claudeRecords(150);
    records[3] = { recordId: 'bad-input', modelInput: { max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] } };
    records[4] = { modelInput: claudeRecord(4).modelInput as Record<string, unknown> };
    const key = await input(records);
    const out = freshOutput();
    const arn = await h.create({ inputKey: key, outputPrefix: out, jobName: 'bb-run1-r01-c00001' });
    const jobId = jobIdOf(arn);

    const submitted = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(submitted.status).toBe('Submitted');
    expect(submitted.totalRecordCount).toBe(0);

    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: jobId }));
    expect(job).toMatchObject({
      jobArn: arn,
      jobName: 'bb-run1-r01-c00001',
      modelId: CLAUDE,
      roleArn: ROLE_ARN,
      status: 'Completed',
      totalRecordCount: 150,
      processedRecordCount: 150,
      successRecordCount: 149,
      errorRecordCount: 1,
      timeoutDurationInHours: 24,
      modelInvocationType: 'InvokeModel',
      inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${BUCKET}/${key}` } },
    });
    expect(job.submitTime).toBeInstanceOf(Date);
    expect(job.endTime).toBeInstanceOf(Date);
    expect(job.jobExpirationTime!.getTime() - job.submitTime!.getTime()).toBe(24 * 3_600_000);
    expect(job.message).toBeUndefined();

    expect(await s3.keys(out)).toEqual([`${out}${jobId}/input.jsonl.out`, `${out}${jobId}/manifest.json.out`]);
    const lines = await s3.jsonLines(`${out}${jobId}/input.jsonl.out`);
    expect(lines).toHaveLength(150);
    const ids = lines.map((l) => l.recordId as string);
    expect(ids).not.toEqual([...ids].sort());
    const generated = ids.filter((id) => !id.startsWith('rec-') && id !== 'bad-input');
    expect(generated).toHaveLength(1);
    expect(generated[0]).toMatch(/^[A-Z0-9]{11}$/);

    const bad = lines.find((l) => l.recordId === 'bad-input')!;
    expect(Object.keys(bad)).toEqual(['recordId', 'modelInput', 'error']);
    expect(bad.error).toEqual({ errorCode: 400, errorMessage: expect.stringContaining('anthropic_version') });

    const good = lines.find((l) => l.recordId === 'rec-000010')!;
    expect(Object.keys(good)).toEqual(['modelInput', 'modelOutput', 'recordId']);
    expect(good.modelInput).toEqual(claudeRecord(10).modelInput);
    expect(good.modelOutput).toMatchObject({
      id: expect.stringMatching(/^msg_bdrk_/),
      type: 'message',
      role: 'assistant',
      model: 'claude-3-haiku-20240307',
      content: [{ type: 'text', text: expect.any(String) }],
      stop_reason: expect.stringMatching(/^(end_turn|max_tokens)$/),
      stop_sequence: null,
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });

    const manifest = JSON.parse(await s3.text(`${out}${jobId}/manifest.json.out`)) as Record<string, number>;
    const goodLines = lines.filter((l) => 'modelOutput' in l) as { modelOutput: { usage: { input_tokens: number; output_tokens: number } } }[];
    expect(manifest).toEqual({
      totalRecordCount: 150,
      processedRecordCount: 150,
      successRecordCount: 149,
      errorRecordCount: 1,
      inputTokenCount: goodLines.reduce((s, l) => s + l.modelOutput.usage.input_tokens, 0),
      outputTokenCount: goodLines.reduce((s, l) => s + l.modelOutput.usage.output_tokens, 0),
    });
    expect(manifest.inputTokenCount).toBeGreaterThan(149);

    expect(h.statuses(arn)).toEqual(['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Completed']);
    const event = h.events.at(-1)!;
    expect(Object.keys(event).sort()).toEqual(['account', 'detail', 'detail-type', 'id', 'region', 'resources', 'source', 'time', 'version']);
    expect(event).toMatchObject({
      version: '0',
      'detail-type': 'Batch Inference Job State Change',
      source: 'aws.bedrock',
      account: '123456789012',
      region: 'us-east-1',
      resources: [arn],
    });
    expect(new Date(event.time).toISOString()).toBe(event.time);
    expect(Object.keys(event.detail).sort()).toEqual(
      ['accountId', 'batchJobArn', 'batchJobName', 'batchModelId', 'creationTime', 'failureMessage', 'status', 'version'].sort(),
    );
    expect(event.detail).toMatchObject({
      version: '0.0',
      accountId: '123456789012',
      batchJobName: 'bb-run1-r01-c00001',
      batchJobArn: arn,
      batchModelId: CLAUDE,
      status: 'Completed',
      failureMessage: '',
    });
    expect(event.detail.creationTime).toMatch(/^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} (AM|PM)$/);

    expect(h.emulator.stats()).toMatchObject({
      jobsCreated: 1,
      recordsProcessed: 150,
      eventsSent: 5,
      jobsByStatus: { Completed: 1, Submitted: 0, InProgress: 0 },
    });
  });

  it('reads every .jsonl file under a prefix and writes one .out per file', async () => {
    const h = await emulator();
    await s3.putRecords('in/prefix-job/a.jsonl', claudeRecords(60, 0));
    await s3.putRecords('in/prefix-job/b.jsonl', claudeRecords(60, 60));
    await s3.putLines('in/prefix-job/notes.txt', ['not input']);
    const out = freshOutput();
    const arn = await h.create({ inputKey: 'in/prefix-job/', outputPrefix: out.slice(0, -1) });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job).toMatchObject({ status: 'Completed', totalRecordCount: 120, successRecordCount: 120 });
    const jobId = jobIdOf(arn);
    expect(await s3.keys(out)).toEqual([`${out}${jobId}/a.jsonl.out`, `${out}${jobId}/b.jsonl.out`, `${out}${jobId}/manifest.json.out`]);
    expect(await s3.jsonLines(`${out}${jobId}/b.jsonl.out`)).toHaveLength(60);
  });

  it('fails a job with too few records at Validating, with a message and no output', async () => {
    const h = await emulator();
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(99)), outputPrefix: out });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Failed');
    expect(job.message).toMatch(/99 records.*minimum of 100/);
    expect(job.totalRecordCount).toBe(0);
    expect(h.statuses(arn)).toEqual(['Submitted', 'Validating', 'Failed']);
    expect(h.events.at(-1)!.detail.failureMessage).toBe(job.message);
    expect(await s3.keys(out)).toEqual([]);
  });

  it.each([
    ['a line that is not a JSON object', [JSON.stringify(claudeRecord(0)), '[1,2]'], /Line 2 .* not a valid JSON object/],
    ['a line that is not JSON', [JSON.stringify(claudeRecord(0)), '{"recordId": '], /Line 2 .* not a valid JSON object/],
  ])('fails a job whose input has %s', async (_label, lines, message) => {
    const h = await emulator({ accountQuotas: { minRecordsPerJob: 1 } });
    const key = `in/${++inputSeq}/bad.jsonl`;
    await s3.putLines(key, lines);
    const arn = await h.create({ inputKey: key });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Failed');
    expect(job.message).toMatch(message);
  });

  it.each([
    ['records per job', { maxRecordsPerJob: 100 }, /more than 100 records.*per batch inference job/],
    ['records per file', { maxRecordsPerFile: 100 }, /more than 100 records.*per input file/],
    ['file size', { maxFileBytes: 1000 }, /bytes, over the quota of 1000 bytes per file/],
    ['job size', { maxJobBytes: 1000 }, /bytes, over the quota of 1000 bytes per job/],
  ])('fails a job over the %s quota', async (_label, quotas, message) => {
    const h = await emulator({ accountQuotas: quotas });
    const arn = await h.create({ inputKey: await input(claudeRecords(101)) });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Failed');
    expect(job.message).toMatch(message);
  });

  it('fails a job whose input location is missing', async () => {
    const h = await emulator();
    const missing = await h.create({ inputKey: 'in/does-not-exist/' });
    await h.emulator.idle();
    const a = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: missing }));
    expect(a).toMatchObject({ status: 'Failed', message: expect.stringContaining('No .jsonl input files') });
  });

  it.each([
    ['an unknown model', 'cohere.command-r-v1:0', /model identifier is invalid: cohere\.command-r-v1:0/],
    ['an unknown model behind a profile', 'us.anthropic.claude-9-v1:0', /model identifier is invalid/],
    ['an application inference profile it cannot resolve', 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdef123456', /invalid/],
    ['a model that does not run in batch', 'anthropic.claude-instant-v1', /Batch inference is not supported for the model anthropic\.claude-instant-v1/],
    ['the bare id of a model served only through a profile', 'anthropic.claude-sonnet-4-5-20250929-v1:0', /inference profile/],
    ['the foundation-model ARN of such a model', 'arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-premier-v1:0', /inference profile/],
    // A geographic profile runs only from a region inside its geography (this emulator is us-east-1).
    ['an EU profile called from us-east-1', 'eu.anthropic.claude-3-haiku-20240307-v1:0', /^The provided model identifier is invalid\./],
    ['an APAC profile called from us-east-1', 'apac.anthropic.claude-3-haiku-20240307-v1:0', /^The provided model identifier is invalid\./],
    [
      'a profile ARN of another region',
      'arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0',
      /^The provided model identifier is invalid\./,
    ],
  ])('refuses at create %s (ValidationException, no job)', async (_label, modelId, message) => {
    const h = await emulator();
    const err = await h.create({ inputKey: await input(claudeRecords(100)), modelId }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect((err as Error).message).toMatch(message);
    expect(h.emulator.stats().jobsCreated).toBe(0);
  });

  it.each([
    ['a US profile', 'us.anthropic.claude-3-haiku-20240307-v1:0'],
    ['a global profile', 'global.anthropic.claude-sonnet-4-5-20250929-v1:0'],
    ["this region's profile ARN", 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0'],
  ])('accepts from us-east-1 %s', async (_label, modelId) => {
    const h = await emulator();
    await h.create({ inputKey: await input(claudeRecords(100)), modelId });
    expect(h.emulator.stats().jobsCreated).toBe(1);
  });

  it('accepts a profile-only model through its inference profile, and holds it to its own quotas', async () => {
    const h = await emulator();
    const scout = await h.create({ inputKey: await input(claudeRecords(60)), modelId: 'us.meta.llama4-scout-17b-instruct-v1:0' });
    const haiku = await h.create({ inputKey: await input(claudeRecords(60)) });
    await h.emulator.idle();
    // 60 records: above Llama 4 Scout's minimum of 50, below Claude 3 Haiku's 100 (docs/BEDROCK-FACTS.md §7).
    const a = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: scout }));
    const b = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: haiku }));
    expect(a.status).toBe('Completed');
    expect(b).toMatchObject({ status: 'Failed', message: expect.stringMatching(/fewer than the minimum of 100 records/) });
  });

  it('processes a 20,000-record job, paying the step delay per status change, not per record', async () => {
    // Count the emulator's step timers instead of timing the run: a delay per record would show
    // as thousands of them. 7 ms is a delay nothing else in the process uses.
    const timers = jest.spyOn(global, 'setTimeout');
    const h = await emulator({ stepDelayMs: 7 });
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(20_000)), outputPrefix: out });
    await h.emulator.idle();
    const steps = timers.mock.calls.filter(([, ms]) => ms === 7).length;
    timers.mockRestore();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job).toMatchObject({ status: 'Completed', successRecordCount: 20_000 });
    expect(await s3.jsonLines(`${out}${jobIdOf(arn)}/input.jsonl.out`)).toHaveLength(20_000);
    // Submitted -> Validating -> Scheduled -> InProgress -> Completed: one step before each change.
    expect(steps).toBe(4);
  });
});

describe('faults', () => {
  it('writes record-error (400) and record-throttle (429) records, deterministically per seed', async () => {
    const run = async () => {
      const h = await emulator({ faults: { 'record-error': 0.2, 'record-throttle': 0.2 }, seed: 7 });
      const out = freshOutput();
      const arn = await h.create({ inputKey: await input(claudeRecords(200)), outputPrefix: out });
      await h.emulator.idle();
      const lines = await s3.jsonLines(`${out}${jobIdOf(arn)}/input.jsonl.out`);
      const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
      await h.stop();
      return { arn, lines, job };
    };
    const first = await run();
    const errors = first.lines.filter((l) => 'error' in l) as { recordId: string; modelInput: unknown; error: { errorCode: number; errorMessage: string } }[];
    const by = (code: number) => errors.filter((e) => e.error.errorCode === code);
    expect(by(400).length).toBeGreaterThan(15);
    expect(by(429).length).toBeGreaterThan(10);
    expect(by(400).length + by(429).length).toBe(errors.length);
    for (const e of errors) {
      expect(Object.keys(e)).toEqual(['recordId', 'modelInput', 'error']);
      expect(typeof e.error.errorMessage).toBe('string');
      expect(e.modelInput).toBeDefined();
    }
    expect(first.job).toMatchObject({ status: 'Completed', errorRecordCount: errors.length, successRecordCount: 200 - errors.length });

    const second = await run();
    expect(second.arn).toBe(first.arn);
    const key = (ls: Record<string, unknown>[]) =>
      ls
        .filter((l) => 'error' in l)
        .map((l) => `${l.recordId as string}:${(l.error as { errorCode: number }).errorCode}`)
        .sort();
    expect(key(second.lines)).toEqual(key(first.lines));
  });

  it('fails a job with job-fail: Failed with a message and no output', async () => {
    const h = await emulator({ faults: { 'job-fail': 1 } });
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: out });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Failed');
    expect(job.message).toBeTruthy();
    expect(h.statuses(arn)).toEqual(['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Failed']);
    expect(await s3.keys(out)).toEqual([]);
  });

  it('partially completes a job with job-partial: some records written, the rest absent', async () => {
    const h = await emulator({ faults: { 'job-partial': 1 } });
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(300)), outputPrefix: out });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('PartiallyCompleted');
    const lines = await s3.jsonLines(`${out}${jobIdOf(arn)}/input.jsonl.out`);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(300);
    expect(job).toMatchObject({ totalRecordCount: 300, processedRecordCount: lines.length });
    const manifest = JSON.parse(await s3.text(`${out}${jobIdOf(arn)}/manifest.json.out`)) as Record<string, number>;
    expect(manifest).toMatchObject({ totalRecordCount: 300, processedRecordCount: lines.length });
    expect(h.statuses(arn).at(-1)).toBe('PartiallyCompleted');
  });

  it('expires a job with job-expire straight from Scheduled, without output', async () => {
    const h = await emulator({ faults: { 'job-expire': 1 } });
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: out });
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Expired');
    expect(h.statuses(arn)).toEqual(['Submitted', 'Validating', 'Scheduled', 'Expired']);
    expect(await s3.keys(out)).toEqual([]);
  });

  it('drops every event with drop-events=1', async () => {
    const h = await emulator({ faults: { 'drop-events': 1 } });
    await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: freshOutput() });
    await h.emulator.idle();
    expect(h.events).toEqual([]);
    expect(h.emulator.stats()).toMatchObject({ eventsSent: 0, eventsDropped: 5 });
  });

  it('delivers every event twice with duplicate-events=1, same id, in order', async () => {
    const h = await emulator({ faults: { 'duplicate-events': 1 } });
    const arn = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: freshOutput() });
    await h.emulator.idle();
    expect(h.statuses(arn)).toEqual([
      'Submitted',
      'Submitted',
      'Validating',
      'Validating',
      'Scheduled',
      'Scheduled',
      'InProgress',
      'InProgress',
      'Completed',
      'Completed',
    ]);
    expect(h.events[0]!.id).toBe(h.events[1]!.id);
    expect(h.emulator.stats()).toMatchObject({ eventsSent: 10, eventsDuplicated: 5, eventsDropped: 0 });
  });

  it('sends a stale status after the terminal one with reorder-events=1', async () => {
    const h = await emulator({ faults: { 'reorder-events': 1 } });
    const arn = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: freshOutput() });
    await h.emulator.idle();
    expect(h.statuses(arn)).toEqual(['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Completed', 'InProgress']);
    // A delivery of its own (another event id), not a duplicate of the terminal one.
    expect(new Set(h.events.map((e) => e.id)).size).toBe(6);
    expect(h.emulator.stats()).toMatchObject({ eventsSent: 6, eventsReordered: 1, eventsDuplicated: 0 });
  });

  it("names the model by its ARN in batchModelId with arn-model-id=1, the caller's id otherwise", async () => {
    const h = await emulator({ faults: { 'arn-model-id': 1 } });
    await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: freshOutput() });
    await h.emulator.idle();
    expect(new Set(h.events.map((e) => e.detail.batchModelId))).toEqual(
      new Set(['arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0']),
    );
    expect(h.emulator.stats().eventsWithModelArn).toBe(h.events.length);
    const plain = await emulator({});
    await plain.create({ inputKey: await input(claudeRecords(100)), outputPrefix: freshOutput() });
    await plain.emulator.idle();
    expect(new Set(plain.events.map((e) => e.detail.batchModelId))).toEqual(new Set(['anthropic.claude-3-haiku-20240307-v1:0']));
    expect(plain.emulator.stats().eventsWithModelArn).toBe(0);
  });

  it('counts onEvent errors without disturbing the job, and idle() waits for slow handlers', async () => {
    let slowDone = 0;
    const h = await emulator({
      onEvent: async (e) => {
        if (e.detail.status === 'Validating') throw new Error('handler failed');
        await new Promise((r) => setTimeout(r, 30));
        slowDone++;
      },
    });
    const arn = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: freshOutput() });
    await h.emulator.idle();
    expect(slowDone).toBe(4);
    expect(h.emulator.stats()).toMatchObject({ eventErrors: 1, eventsSent: 5 });
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Completed');
  });
});

describe('Get, Stop and List', () => {
  it('keeps the tags a job was created with (ListTagsForResource); Get does not return them', async () => {
    const h = await emulator({ stepDelayMs: 10_000 });
    const tags = [
      { key: 'bedrock-batch:run', value: 'run-1' },
      { key: 'bedrock-batch:route', value: 'default' },
      { key: 'bedrock-batch:stack', value: 'BedrockBatch' },
    ];
    const tagged = await h.create({ clientRequestToken: 'tagged-1', tags });
    const untagged = await h.create({ clientRequestToken: 'untagged-1' });
    await expect(h.bedrock.send(new ListTagsForResourceCommand({ resourceARN: tagged }))).resolves.toMatchObject({ tags });
    await expect(h.bedrock.send(new ListTagsForResourceCommand({ resourceARN: untagged }))).resolves.toMatchObject({ tags: [] });
    expect(await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: tagged }))).not.toHaveProperty('tags');
    const unknown = await sdkError(() =>
      h.bedrock.send(new ListTagsForResourceCommand({ resourceARN: 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdefabcdef' })),
    );
    expect(unknown.name).toBe('ResourceNotFoundException');
  });

  it('accepts a bare id or a full ARN, rejects names and unknown jobs', async () => {
    const h = await emulator({ stepDelayMs: 10_000 });
    const arn = await h.create();
    await expect(h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }))).resolves.toMatchObject({ jobArn: arn });
    await expect(h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: jobIdOf(arn) }))).resolves.toMatchObject({ jobArn: arn });
    const byName = await sdkError(() => h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: 'test-job' })));
    expect(byName.name).toBe('ValidationException');
    const unknown = await sdkError(() => h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: 'abcdefabcdef' })));
    expect(unknown.name).toBe('ResourceNotFoundException');
    expect(unknown.$metadata?.httpStatusCode).toBe(404);
  });

  it('stops a job through Stopping to Stopped; stopping it again is a ValidationException', async () => {
    const h = await emulator({ stepDelayMs: 30 });
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: out });
    const res = await h.bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(res.$metadata.httpStatusCode).toBe(200);
    expect((await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }))).status).toBe('Stopping');
    await h.bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: arn }));
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Stopped');
    expect(job.endTime).toBeInstanceOf(Date);
    expect(h.statuses(arn)).toEqual(['Submitted', 'Stopping', 'Stopped']);
    const again = await sdkError(() => h.bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: arn })));
    expect(again.name).toBe('ValidationException');
    expect(await s3.keys(out)).toEqual([]);
  });

  it('stops a running job, keeping the output written so far', async () => {
    const h = await emulator({ stepDelayMs: 1 });
    const out = freshOutput();
    const arn = await h.create({ inputKey: await input(claudeRecords(20_000)), outputPrefix: out });
    for (;;) {
      const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
      if (job.status === 'InProgress') break;
      await new Promise((r) => setTimeout(r, 1));
    }
    await h.bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: arn }));
    await h.emulator.idle();
    const job = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    expect(job.status).toBe('Stopped');
    expect(h.statuses(arn)).toEqual(['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Stopping', 'Stopped']);
    expect(job.processedRecordCount).toBeLessThanOrEqual(20_000);
    const manifestKey = `${out}${jobIdOf(arn)}/manifest.json.out`;
    const manifest = JSON.parse(await s3.text(manifestKey)) as Record<string, number>;
    expect(manifest.processedRecordCount).toBe(job.processedRecordCount);
  });

  it('processes the records of at most `processingSlots` jobs at once; the others wait InProgress', async () => {
    for (const [slots, most] of [
      [2, 2],
      [undefined, 1],
    ] as const) {
      const h = await emulator({ stepDelayMs: 1, ...(slots ? { processingSlots: slots } : {}) });
      const keys = await Promise.all([1, 2, 3].map(() => input(claudeRecords(10_000))));
      const arns = await Promise.all(keys.map((inputKey) => h.create({ inputKey, outputPrefix: freshOutput() })));
      // Seen from outside: how many jobs had some but not all of their records processed at once.
      let overlap = 0;
      for (;;) {
        const jobs = await Promise.all(arns.map((arn) => h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }))));
        overlap = Math.max(overlap, jobs.filter((j) => j.processedRecordCount! > 0 && j.processedRecordCount! < 10_000).length);
        if (jobs.every((j) => j.status === 'Completed')) break;
        expect(jobs.map((j) => j.status)).not.toContain('Failed');
      }
      expect(overlap).toBeLessThanOrEqual(most);
      expect(h.emulator.stats().maxProcessingJobs).toBe(most);
      for (const arn of arns) {
        expect(await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }))).toMatchObject({
          status: 'Completed',
          processedRecordCount: 10_000,
        });
      }
    }
  });

  it('stops a job waiting for a processing slot at its next step, with nothing processed', async () => {
    const h = await emulator({ stepDelayMs: 1, processingSlots: 1 });
    const job = async (arn: string) => h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
    /** Waits until the job is in `status`; fails if it ends in another. */
    const reaches = async (arn: string, status: string) => {
      for (;;) {
        const now = (await job(arn)).status!;
        if (now === status) return;
        if (['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'].includes(now)) throw new Error(`${arn} ended ${now}, not ${status}`);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    const busy = await h.create({ inputKey: await input(claudeRecords(50_000)), outputPrefix: freshOutput() });
    await reaches(busy, 'InProgress');
    const waitingOut = freshOutput();
    const waiting = await h.create({ inputKey: await input(claudeRecords(100)), outputPrefix: waitingOut });
    await reaches(waiting, 'InProgress');
    await h.bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: waiting }));
    await reaches(waiting, 'Stopped');
    // Stopped while the busy job still held the only slot: 50,000 records take far longer than a few steps.
    expect(await job(busy)).toMatchObject({ status: 'InProgress' });
    expect(await job(waiting)).toMatchObject({ processedRecordCount: 0 });
    expect(await s3.keys(waitingOut)).toEqual([]);
    await h.emulator.idle();
    expect(await job(busy)).toMatchObject({ status: 'Completed', processedRecordCount: 50_000 });
    expect(h.emulator.stats().maxProcessingJobs).toBe(1);
  });

  it('lists jobs with filters, sort order and pagination', async () => {
    const h = await emulator({ stepDelayMs: 10_000 });
    // Sorting is by submit time: each job is created once the clock has passed the last one's.
    const clockPast = async (arn: string) => {
      const { submitTime } = await h.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
      for (let i = 0; i < 100 && Date.now() <= submitTime!.getTime(); i++) await new Promise((r) => setTimeout(r, 1));
    };
    const a = await h.create({ jobName: 'alpha-1' });
    await clockPast(a);
    const b = await h.create({ jobName: 'alpha-2' });
    await clockPast(b);
    const c = await h.create({ jobName: 'beta-1' });
    await h.bedrock.send(new StopModelInvocationJobCommand({ jobIdentifier: c }));
    const list = async (input: ListModelInvocationJobsCommandInput) => h.bedrock.send(new ListModelInvocationJobsCommand(input));

    expect((await list({})).invocationJobSummaries!.map((j) => j.jobArn)).toEqual([c, b, a]);
    expect((await list({ sortOrder: 'Ascending' })).invocationJobSummaries!.map((j) => j.jobArn)).toEqual([a, b, c]);
    expect((await list({ nameContains: 'alpha' })).invocationJobSummaries!.map((j) => j.jobName)).toEqual(['alpha-2', 'alpha-1']);
    expect((await list({ statusEquals: 'Stopping' })).invocationJobSummaries!.map((j) => j.jobArn)).toEqual([c]);
    expect((await list({ submitTimeAfter: new Date(Date.now() + 60_000) })).invocationJobSummaries).toEqual([]);
    expect((await list({ submitTimeBefore: new Date(Date.now() + 60_000) })).invocationJobSummaries).toHaveLength(3);

    const page1 = await list({ maxResults: 2, sortOrder: 'Ascending' });
    expect(page1.invocationJobSummaries!.map((j) => j.jobArn)).toEqual([a, b]);
    expect(page1.nextToken).toBeDefined();
    const page2 = await list({ maxResults: 2, sortOrder: 'Ascending', nextToken: page1.nextToken });
    expect(page2.invocationJobSummaries!.map((j) => j.jobArn)).toEqual([c]);
    expect(page2.nextToken).toBeUndefined();

    const summary = page1.invocationJobSummaries![0]!;
    expect(summary).toMatchObject({ jobName: 'alpha-1', modelId: CLAUDE, status: 'Submitted', totalRecordCount: 0, submitTime: expect.any(Date) });

    const bad = await sdkError(() => list({ maxResults: 0 }));
    expect(bad.name).toBe('ValidationException');
  });
});

describe('InvokeModel (bedrock-runtime)', () => {
  const invoke = (h: EmulatorHarness, modelId: string, body: unknown) =>
    h.runtime.send(new InvokeModelCommand({ modelId, body: JSON.stringify(body), contentType: 'application/json', accept: 'application/json' }));

  it('answers with the family output shape and token usage', async () => {
    const h = await emulator();
    const res = await invoke(h, CLAUDE, claudeRecord(1).modelInput);
    const body = JSON.parse(new TextDecoder().decode(res.body)) as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'message', role: 'assistant', usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) } });
    // Same input, same answer.
    const again = JSON.parse(new TextDecoder().decode((await invoke(h, CLAUDE, claudeRecord(1).modelInput)).body)) as unknown;
    expect(again).toEqual(body);

    const embed = await invoke(h, 'amazon.titan-embed-text-v2:0', { inputText: 'hello world', dimensions: 256 });
    const e = JSON.parse(new TextDecoder().decode(embed.body)) as { embedding: number[]; inputTextTokenCount: number; embeddingsByType: { float: number[] } };
    expect(e.embedding).toHaveLength(256);
    expect(e.embeddingsByType.float).toEqual(e.embedding);
    expect(e.inputTextTokenCount).toBeGreaterThan(0);

    const profile = await invoke(h, 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0', {
      messages: [{ role: 'user', content: [{ text: 'hi' }] }],
    });
    expect(JSON.parse(new TextDecoder().decode(profile.body))).toMatchObject({
      output: { message: { role: 'assistant' } },
      usage: { totalTokens: expect.any(Number) },
    });
    expect(h.emulator.stats().invokeModelCalls).toBe(4);
  });

  it.each([
    ['an unknown model of a known family', 'anthropic.claude-9-v1:0', /^The provided model identifier is invalid/],
    [
      'the bare id of a model served only through a profile',
      'anthropic.claude-sonnet-4-5-20250929-v1:0',
      /^Invocation of model ID anthropic\.claude-sonnet-4-5-20250929-v1:0 with on-demand throughput isn't supported\. Retry your request with the ID or ARN of an inference profile that contains this model\.$/,
    ],
  ])('refuses %s, as on-demand inference on AWS does', async (_label, modelId, message) => {
    const h = await emulator();
    const err = await sdkError(() => invoke(h, modelId, claudeRecord(1).modelInput));
    expect(err.name).toBe('ValidationException');
    expect(err.message).toMatch(message);
    // Through its profile, the same model answers.
    const ok = await invoke(h, 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', claudeRecord(1).modelInput);
    expect(ok.$metadata.httpStatusCode).toBe(200);
  });

  it('refuses a profile of another geography, as create does', async () => {
    const h = await emulator();
    const err = await sdkError(() => invoke(h, `eu.${CLAUDE}`, claudeRecord(1).modelInput));
    expect(err).toMatchObject({ name: 'ValidationException', message: 'The provided model identifier is invalid.' });
    const ok = await invoke(h, `us.${CLAUDE}`, claudeRecord(1).modelInput);
    expect(ok.$metadata.httpStatusCode).toBe(200);
  });

  it('rejects an invalid body with ValidationException', async () => {
    const h = await emulator();
    const err = await sdkError(() => invoke(h, CLAUDE, { messages: [] }));
    expect(err.name).toBe('ValidationException');
    expect(err.message).toContain('anthropic_version');
  });

  it('reports the modelled latency of a real model and waits its scaled share before answering', async () => {
    const h = await emulator({ invokeLatencyScale: 0.001 });
    const res = await invoke(h, CLAUDE, claudeRecord(1).modelInput);
    const body = JSON.parse(new TextDecoder().decode(res.body)) as { usage: { output_tokens: number } };
    const expected = invokeModelLatencyMs(body.usage.output_tokens);
    expect(expected).toBe(INVOKE_FIRST_TOKEN_MS + Math.round((body.usage.output_tokens * 1000) / INVOKE_OUTPUT_TOKENS_PER_SECOND));
    const stats = h.emulator.stats();
    expect(stats.invokeModelLatencyMs).toBe(expected);
    // Scaled: what the emulator waited, the model's latency times the scale.
    expect(stats.invokeModelWaitMs).toBe(Math.round(expected * 0.001));
  });

  it('answers at once by default (scale 0), still reporting the modelled latency', async () => {
    const h = await emulator();
    await invoke(h, CLAUDE, claudeRecord(1).modelInput);
    expect(h.emulator.stats().invokeModelLatencyMs).toBeGreaterThan(INVOKE_FIRST_TOKEN_MS);
    expect(h.emulator.stats().invokeModelWaitMs).toBe(0);
  });

  it('writes until max_tokens and stops there under the long-outputs fault', async () => {
    const h = await emulator({ faults: { 'long-outputs': 1 } });
    const modelInput = { ...(claudeRecord(1).modelInput as Record<string, unknown>), max_tokens: 3000 };
    const res = await invoke(h, CLAUDE, modelInput);
    const body = JSON.parse(new TextDecoder().decode(res.body)) as { stop_reason: string; usage: { output_tokens: number }; content: Array<{ text: string }> };
    expect(body.stop_reason).toBe('max_tokens');
    expect(body.usage.output_tokens).toBe(3000);
    expect(body.content[0]!.text.split(' ')).toHaveLength(3000);
    // Without the fault the same request ends on its own, well short of the limit.
    const plain = await emulator();
    const short = JSON.parse(new TextDecoder().decode((await invoke(plain, CLAUDE, modelInput)).body)) as {
      stop_reason: string;
      usage: { output_tokens: number };
    };
    expect(short.stop_reason).toBe('end_turn');
    expect(short.usage.output_tokens).toBeLessThanOrEqual(64);
  });

  it('throttles with the record-throttle fault', async () => {
    const h = await emulator({ faults: { 'record-throttle': 1 } });
    const err = await sdkError(() => invoke(h, CLAUDE, claudeRecord(1).modelInput));
    expect(err.name).toBe('ThrottlingException');
    expect(err.$metadata?.httpStatusCode).toBe(429);
  });
});

describe('emulator housekeeping', () => {
  it('writes stats as JSON and resolves idle() at once when nothing runs', async () => {
    const h = await emulator();
    await h.emulator.idle();
    const dir = await mkdtemp(join(tmpdir(), 'emulator-stats-'));
    try {
      const path = join(dir, 'nested', 'emulator.json');
      await h.emulator.writeStats(path);
      expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ jobsCreated: 0, maxConcurrentJobs: 0, jobsByStatus: {} });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stop() cancels timers of running jobs and closes the server', async () => {
    const timers = jest.spyOn(global, 'setTimeout');
    const em = new BedrockEmulator({ s3: s3.client, stepDelayMs: 60_000 });
    const { endpoint } = await em.start();
    const client = new BedrockClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
    await client.send(
      new CreateModelInvocationJobCommand({
        jobName: 'long',
        roleArn: ROLE_ARN,
        modelId: CLAUDE,
        inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${BUCKET}/in/` } },
        outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${BUCKET}/out/` } },
      }),
    );
    // The job waits on a 60 s step timer: stop() must clear it rather than wait it out.
    const stepTimers = timers.mock.calls.flatMap(([, ms], i) => (ms === 60_000 ? [timers.mock.results[i]!.value as NodeJS.Timeout] : []));
    expect(stepTimers).toHaveLength(1);
    const cleared = jest.spyOn(global, 'clearTimeout');
    await em.stop();
    await em.idle();
    expect(cleared.mock.calls.map(([t]) => t)).toEqual(expect.arrayContaining(stepTimers));
    timers.mockRestore();
    cleared.mockRestore();
    await expect(client.send(new ListModelInvocationJobsCommand({}))).rejects.toThrow();
    client.destroy();
  });
});
