/**
 * Test harness for the Bedrock emulator: a real s3rver in a temp folder, S3 and Bedrock SDK
 * clients pointed at it, and helpers to write inputs and read outputs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BedrockClient, CreateModelInvocationJobCommand, type CreateModelInvocationJobCommandInput } from '@aws-sdk/client-bedrock';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BedrockEmulator, type BedrockJobStateEvent, type EmulatorOptions } from '../../../local/emulator/bedrock-emulator';
import { localS3ClientConfig, startLocalS3, type LocalS3 as LocalS3Server } from '../../../local/services/s3';

export const BUCKET = 'test-bucket';
export const ROLE_ARN = 'arn:aws:iam::123456789012:role/BedrockBatchRole';
export const CLAUDE = 'anthropic.claude-3-haiku-20240307-v1:0';

/** A running s3rver with a client for it. */
export class LocalS3 {
  private server?: LocalS3Server;
  private dir = '';
  client!: S3Client;

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'bedrock-emulator-test-'));
    this.server = await startLocalS3({ directory: this.dir, buckets: [BUCKET] });
    this.client = new S3Client(localS3ClientConfig(this.server.endpoint));
  }

  async stop(): Promise<void> {
    this.client?.destroy();
    await this.server?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async putLines(key: string, lines: readonly string[]): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: lines.map((l) => `${l}\n`).join('') }));
  }

  async putRecords(key: string, records: readonly unknown[]): Promise<void> {
    await this.putLines(
      key,
      records.map((r) => JSON.stringify(r)),
    );
  }

  async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async text(key: string): Promise<string> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return (await res.Body?.transformToString('utf8')) ?? '';
  }

  async jsonLines(key: string): Promise<Record<string, unknown>[]> {
    return (await this.text(key))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** A Claude record of the pipeline's contract. */
export function claudeRecord(i: number, text = `Classify ticket number ${i}`): Record<string, unknown> {
  return {
    recordId: `rec-${String(i).padStart(6, '0')}`,
    modelInput: {
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 100,
      messages: [{ role: 'user', content: [{ type: 'text', text }] }],
    },
  };
}

export function claudeRecords(n: number, from = 0): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => claudeRecord(from + i));
}

/** An emulator on the harness's S3 with SDK clients for it; collects events. */
export class EmulatorHarness {
  readonly events: BedrockJobStateEvent[] = [];
  emulator!: BedrockEmulator;
  bedrock!: BedrockClient;
  runtime!: BedrockRuntimeClient;
  endpoint = '';

  constructor(
    private readonly s3: LocalS3,
    private readonly opts: Partial<EmulatorOptions> = {},
  ) {}

  async start(): Promise<this> {
    this.emulator = new BedrockEmulator({
      s3: this.s3.client,
      stepDelayMs: 2,
      onEvent: (e) => {
        this.events.push(e);
      },
      ...this.opts,
    });
    ({ endpoint: this.endpoint } = await this.emulator.start());
    const common = { endpoint: this.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 };
    this.bedrock = new BedrockClient(common);
    this.runtime = new BedrockRuntimeClient(common);
    return this;
  }

  async stop(): Promise<void> {
    this.bedrock?.destroy();
    this.runtime?.destroy();
    await this.emulator?.stop();
  }

  private createCount = 0;

  async create(overrides: Partial<CreateModelInvocationJobCommandInput> & { inputKey?: string; outputPrefix?: string } = {}): Promise<string> {
    const { inputKey = 'in/input.jsonl', outputPrefix = 'out/', ...rest } = overrides;
    const res = await this.bedrock.send(
      new CreateModelInvocationJobCommand({
        // Job names are unique in an account: each create gets its own unless a test names it.
        jobName: `test-job-${++this.createCount}`,
        roleArn: ROLE_ARN,
        modelId: CLAUDE,
        inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${BUCKET}/${inputKey}` } },
        outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${BUCKET}/${outputPrefix}` } },
        ...rest,
      }),
    );
    return res.jobArn!;
  }

  statuses(jobArn: string): string[] {
    return this.events.filter((e) => e.detail.batchJobArn === jobArn).map((e) => e.detail.status);
  }
}

/** Runs `fn`, expecting it to reject with an SDK error; returns that error. */
export async function sdkError(fn: () => Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { $metadata?: { httpStatusCode?: number } };
  }
  throw new Error('expected the call to fail');
}

export const jobIdOf = (jobArn: string): string => jobArn.slice(jobArn.lastIndexOf('/') + 1);

/**
 * One local S3 for a test file (started before its tests, stopped after), and emulators on it,
 * each stopped after the test that started it.
 */
export function emulatorsForFile(): { readonly s3: LocalS3; emulator(opts?: Partial<EmulatorOptions>): Promise<EmulatorHarness> } {
  const s3 = new LocalS3();
  let harnesses: EmulatorHarness[] = [];
  beforeAll(() => s3.start());
  afterAll(() => s3.stop());
  afterEach(async () => {
    await Promise.all(harnesses.map((h) => h.stop()));
    harnesses = [];
  });
  return {
    s3,
    emulator(opts = {}) {
      const h = new EmulatorHarness(s3, opts);
      harnesses.push(h);
      return h.start();
    },
  };
}
