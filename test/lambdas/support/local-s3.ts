/**
 * A real S3 for handler tests: s3rver in-process on a free port, one bucket, and small helpers to
 * put and read objects. Checksums are `WHEN_REQUIRED` (s3rver corrupts aws-chunked uploads).
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localS3ClientConfig, startLocalS3 } from '../../../local/services/s3';

export interface TestS3 {
  /** `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_S3`. */
  readonly endpoint: string;
  readonly client: S3Client;
  readonly bucket: string;
  put(key: string, body: string | Buffer): Promise<void>;
  /** The object's text, or undefined when it does not exist. */
  text(key: string): Promise<string | undefined>;
  /** Parsed non-blank lines of a JSONL object; [] when it does not exist. */
  jsonl<T = Record<string, unknown>>(key: string): Promise<T[]>;
  json<T = Record<string, unknown>>(key: string): Promise<T | undefined>;
  keys(prefix: string): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startTestS3(bucket = 'bucket'): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'lambdas-s3-'));
  const server = await startLocalS3({ directory, buckets: [bucket] });
  const client = new S3Client(localS3ClientConfig(server.endpoint));

  const text = async (key: string): Promise<string | undefined> => {
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await res.Body!.transformToString();
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') return undefined;
      throw err;
    }
  };
  return {
    endpoint: server.endpoint,
    client,
    bucket,
    async put(key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body) }));
    },
    text,
    async jsonl<T>(key: string) {
      const t = await text(key);
      if (t === undefined) return [];
      return t
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as T);
    },
    async json<T>(key: string) {
      const t = await text(key);
      return t === undefined ? undefined : (JSON.parse(t) as T);
    },
    async keys(prefix) {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key);
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async stop() {
      client.destroy();
      await server.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
