import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { localS3ClientConfig, localS3Environment, startLocalS3, type LocalS3 } from '../../../local/services/s3';
import { until } from '../../support/until';

const BUCKET = 'drop-bucket';

describe('startLocalS3', () => {
  let dir: string;
  let s3: LocalS3;
  let client: S3Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'local-s3-'));
    s3 = await startLocalS3({ directory: dir, buckets: [BUCKET, 'other'] });
    client = new S3Client(localS3ClientConfig(s3.endpoint));
  });

  afterAll(async () => {
    client.destroy();
    await s3.stop();
    await s3.stop(); // idempotent
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 with a free port', () => {
    expect(s3.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('creates the configured buckets', async () => {
    await client.send(new PutObjectCommand({ Bucket: 'other', Key: 'a/b.txt', Body: 'hello' }));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'other' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['a/b.txt']);
  });

  it('round-trips a streamed multipart upload byte-exact', async () => {
    // 3 parts of 5 MiB + a tail, streamed (unknown length) so lib-storage uses multipart.
    const total = 16 * 1024 * 1024 + 12345;
    const data = randomBytes(total);
    const body = new PassThrough();
    const upload = new Upload({
      client,
      params: { Bucket: BUCKET, Key: 'big/stream.bin', Body: body },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    const done = upload.done();
    Readable.from(chunks(data, 64 * 1024)).pipe(body);
    await done;

    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'big/stream.bin' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(bytes.length).toBe(total);
    expect(sha256(bytes)).toBe(sha256(data));
  });

  it('round-trips a streamed single PutObject byte-exact', async () => {
    const data = Buffer.from('{"recordId":"1"}\n'.repeat(1000));
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'inbox/default/small.jsonl',
        Body: Readable.from(chunks(data, 1000)),
        ContentLength: data.length,
      }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'inbox/default/small.jsonl' }));
    expect(await got.Body!.transformToString()).toBe(data.toString());
  });

  it('documents the trap: SDK default checksums make s3rver store a streamed body corrupted', async () => {
    // If this starts failing, s3rver or the SDK changed and WHEN_REQUIRED may no longer be needed.
    const { requestChecksumCalculation: _a, responseChecksumValidation: _b, ...defaults } = localS3ClientConfig(s3.endpoint);
    const defaultClient = new S3Client(defaults);
    try {
      const data = randomBytes(100_000);
      await defaultClient.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'trap.bin', Body: Readable.from(chunks(data, 50_000)), ContentLength: data.length }),
      );
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'trap.bin' }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      expect(bytes.equals(data)).toBe(false);
    } finally {
      defaultClient.destroy();
    }
  });

  it('serves the whole old object while an overwrite of it is still uploading, as S3 does', async () => {
    // S3 is atomic per object: a GET sees the old object or the new one, never a part. s3rver
    // 3.7.1 truncated the object's file when an upload began, so a read during a rewrite (two
    // copies of one handler writing the same JSON, in the twin's parallel sandboxes) got an
    // empty or partial body and the reader failed "Unexpected end of JSON input".
    const key = 'work/overwrite/state.json';
    const oldBody = JSON.stringify({ version: 'old', pad: 'x'.repeat(50_000) });
    const newBody = JSON.stringify({ version: 'new', pad: 'y'.repeat(60_000) });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: oldBody }));
    const folder = join(dir, BUCKET, 'work', 'overwrite');
    const before = new Map(readdirSync(folder).map((f) => [f, statSync(join(folder, f)).size]));

    const body = new PassThrough();
    const put = client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: newBody.length }));
    body.write(newBody.slice(0, 20_000));
    // Wait until the server has begun storing the upload: a new file, or one whose size changed.
    await waitFor(() => readdirSync(folder).some((f) => before.get(f) !== statSync(join(folder, f)).size));

    const during = await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
    expect({ length: during.length, same: during === oldBody }).toEqual({ length: oldBody.length, same: true });

    body.end(newBody.slice(20_000));
    await put;
    const after = await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
    expect({ length: after.length, same: after === newBody }).toEqual({ length: newBody.length, same: true });
    // Nothing of the upload is left beside the object.
    expect(readdirSync(folder).sort()).toEqual([...before.keys()].sort());
  });

  it('closes and removes an upload that is aborted halfway, and the file of a read refused by If-Match', async () => {
    // Sandboxes that time out or crash abort their uploads; each leaked descriptor would stay
    // open for the twin's whole run.
    // This process's descriptors open on files of the bucket (sockets and others come and go).
    const openFiles = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(join('/proc/self/fd', fd)).startsWith(join(dir, BUCKET));
        } catch {
          return false; // closed meanwhile
        }
      }).length;
    const folder = join(dir, BUCKET, 'work', 'aborted');
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'work/aborted/seed.json', Body: '{}' }));
    const before = openFiles();
    for (let i = 0; i < 5; i += 1) {
      const body = new PassThrough();
      const abort = new AbortController();
      const put = client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'work/aborted/part.json', Body: body, ContentLength: 100_000 }), {
        abortSignal: abort.signal,
      });
      body.write('x'.repeat(10_000));
      await waitFor(() => readdirSync(folder).some((f) => f.includes('.upload-')));
      abort.abort();
      await expect(put).rejects.toThrow();
      await waitFor(() => !readdirSync(folder).some((f) => f.includes('.upload-')));
    }
    for (let i = 0; i < 5; i += 1) {
      await expect(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'work/aborted/seed.json', IfMatch: '"not-its-etag"' }))).rejects.toMatchObject({
        name: 'PreconditionFailed',
      });
    }
    // A stream's destroy() closes its descriptor a moment after the server has answered (the
    // client can see the 412 first, on a loaded machine): wait for it, within a bound, so that
    // a descriptor never closed still fails the test.
    await until('the aborted uploads and refused reads to close their files', () => (openFiles() === before ? true : undefined), 100, 20);
    expect(before).toBe(0);
    expect(readdirSync(folder).filter((f) => f.startsWith('part.json'))).toEqual([]);
  });

  it('serves a client configured only through the environment variables', async () => {
    const env = localS3Environment(s3.endpoint);
    const saved = { ...process.env };
    Object.assign(process.env, env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });
    const envClient = new S3Client({});
    try {
      const data = randomBytes(200_000);
      await new Upload({ client: envClient, params: { Bucket: BUCKET, Key: 'env.bin', Body: Readable.from(chunks(data, 7000)) } }).done();
      const got = await envClient.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'env.bin' }));
      expect(sha256(Buffer.from(await got.Body!.transformToByteArray()))).toBe(sha256(data));
    } finally {
      envClient.destroy();
      process.env = saved;
    }
  });
});

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** Resolves once `condition` holds, checking on every turn of the event loop. */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
