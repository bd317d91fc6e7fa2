/**
 * Streaming JSONL over S3: read an object line by line, write one through a multipart upload,
 * list keys, and small JSON documents. Written once here and used by every handler (and, for
 * downloads to local files, by the command line and the twin).
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createWriteStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const NEWLINE = 0x0a;
const NEWLINE_BYTES = Buffer.from([NEWLINE]);
/** The multipart upload settings of every JsonlWriter: part size (S3's minimum is 5 MiB) and parts in flight. */
export const UPLOAD_PART_BYTES = 5 * 1024 * 1024;
export const UPLOAD_QUEUE_SIZE = 2;
/** How many bytes of lines a JsonlWriter gathers before handing them to the upload stream. */
const WRITE_BATCH_BYTES = 64 * 1024;

/**
 * Splits a byte stream into lines (without the `\n`; a trailing `\r` is kept for the caller to
 * judge), yielded in batches: the lines that end in one piece of the stream, so that a caller
 * handling many short lines pays for one await per piece, not per line. The last line is yielded
 * even without a final newline. Works on Buffers so that invalid UTF-8 can be reported per line
 * instead of being silently replaced.
 */
export async function* splitLineBatches(stream: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<Buffer[]> {
  let carry: Buffer | undefined;
  for await (const piece of stream) {
    const buf = typeof piece === 'string' ? Buffer.from(piece) : Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
    let start = 0;
    let nl = buf.indexOf(NEWLINE, start);
    if (nl === -1) {
      carry = carry ? Buffer.concat([carry, buf]) : buf;
      continue;
    }
    const lines: Buffer[] = [];
    while (nl !== -1) {
      const part = buf.subarray(start, nl);
      lines.push(carry ? Buffer.concat([carry, part]) : part);
      carry = undefined;
      start = nl + 1;
      nl = buf.indexOf(NEWLINE, start);
    }
    if (start < buf.length) carry = Buffer.from(buf.subarray(start));
    yield lines;
  }
  if (carry && carry.length > 0) yield [carry];
}

/** {@link splitLineBatches}, a line at a time. */
export async function* splitLines(stream: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<Buffer> {
  for await (const batch of splitLineBatches(stream)) yield* batch;
}

/** The body of an S3 object as a Node stream. */
export async function getObjectStream(s3: S3Client, bucket: string, key: string, ifMatch?: string): Promise<Readable> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}) }));
  if (!res.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  return res.Body as Readable;
}

/** The lines of an S3 object, as Buffers, streamed. */
export async function* readObjectLines(s3: S3Client, bucket: string, key: string): AsyncGenerator<Buffer> {
  yield* splitLines(await getObjectStream(s3, bucket, key));
}

/**
 * The lines of an S3 object, as Buffers, streamed in batches (see {@link splitLineBatches}).
 * With `ifMatch`, S3 refuses (`PreconditionFailed`) an object whose ETag is another.
 */
export async function* readObjectLineBatches(s3: S3Client, bucket: string, key: string, ifMatch?: string): AsyncGenerator<Buffer[]> {
  yield* splitLineBatches(await getObjectStream(s3, bucket, key, ifMatch));
}

/** Parsed JSON values of a JSONL object, skipping blank lines. For files this project wrote. */
export async function* readJsonl<T>(s3: S3Client, bucket: string, key: string): AsyncGenerator<T> {
  for await (const line of readObjectLines(s3, bucket, key)) {
    if (line.length === 0) continue;
    yield JSON.parse(line.toString('utf8')) as T;
  }
}

/** An object of a listing. */
export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly etag?: string;
  /** When the object was last written (S3's `LastModified`). */
  readonly lastModified?: Date;
}

/** Every key under `prefix`, in S3's (lexicographic) order, with sizes, ETags and write times. */
export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of res.Contents ?? []) {
      if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, ...(o.ETag ? { etag: o.ETag } : {}), ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
    }
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/**
 * The object stored under exactly `key` (its ETag, unquoted), or undefined, by a listing of that
 * exact prefix: allowed by a ListBucket grant limited to the key's prefix, whereas a GetObject
 * of a missing key answers 404 only to a caller that may list the bucket without such a
 * condition (403 otherwise).
 */
export async function listedObject(s3: S3Client, bucket: string, key: string): Promise<{ etag: string } | undefined> {
  // The key itself sorts before every longer key it is a prefix of.
  const first = (await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 }))).Contents?.[0];
  return first?.Key === key ? { etag: (first.ETag ?? '').replace(/"/g, '') } : undefined;
}

/** Whether `key` exists ({@link listedObject}). */
export async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  return (await listedObject(s3, bucket, key)) !== undefined;
}

/** Reads a small JSON document; undefined when it does not exist. */
export async function readJsonObject<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString()) as T;
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

/** Copies an object to a local file (the command line's and the twin's downloads); false when it does not exist (nothing is written then). */
export async function downloadObject(s3: S3Client, bucket: string, key: string, path: string): Promise<boolean> {
  let body: Readable;
  try {
    body = await getObjectStream(s3, bucket, key);
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return false;
    throw err;
  }
  await pipeline(body, createWriteStream(path));
  return true;
}

/** Writes a small JSON document. */
export async function writeJsonObject(s3: S3Client, bucket: string, key: string, value: unknown, pretty = false): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(value, null, pretty ? 2 : undefined) + (pretty ? '\n' : ''),
      ContentType: 'application/json',
    }),
  );
}

/**
 * Writes a JSONL object through a streamed multipart upload, honouring backpressure, so memory
 * stays bounded whatever the size. With `lazy`, no object is created until the first line.
 */
export class JsonlWriter {
  private body: PassThrough | undefined;
  private upload: Promise<unknown> | undefined;
  private failure: Error | undefined;
  /** Lines written so far. */
  lines = 0;
  /** Bytes written so far, newlines included. */
  bytes = 0;

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly key: string,
    opts: { lazy?: boolean } = {},
  ) {
    if (!opts.lazy) this.open();
  }

  private open(): PassThrough {
    if (this.body) return this.body;
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    this.body = body;
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: this.key, Body: body, ContentType: 'application/x-ndjson' },
      queueSize: UPLOAD_QUEUE_SIZE,
      partSize: UPLOAD_PART_BYTES,
    });
    this.upload = upload.done().catch((err: Error) => {
      this.failure = err;
      body.destroy();
      throw err;
    });
    // Surface failures through close(); keep an unobserved rejection from crashing the process.
    this.upload.catch(() => undefined);
    return body;
  }

  /**
   * Writes one line: a string or the raw bytes of a line (without newline), or a value to
   * serialize compactly. Raw bytes are copied as they are, without decoding and encoding again.
   * Lines are gathered and handed to the upload stream {@link WRITE_BATCH_BYTES} at a time.
   */
  async write(line: string | Buffer | object): Promise<void> {
    if (this.failure) throw this.failure;
    let size: number;
    if (Buffer.isBuffer(line)) {
      this.batch.push(line, NEWLINE_BYTES);
      this.batchHasBytes = true;
      size = line.length + 1;
    } else {
      const text = (typeof line === 'string' ? line : JSON.stringify(line)) + '\n';
      this.batch.push(text);
      size = Buffer.byteLength(text);
    }
    this.lines += 1;
    this.bytes += size;
    this.batchBytes += size;
    if (this.batchBytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  private batch: Array<string | Buffer> = [];
  private batchBytes = 0;
  private batchHasBytes = false;

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const data = this.batchHasBytes ? Buffer.concat(this.batch.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))) : (this.batch as string[]).join('');
    this.batch = [];
    this.batchBytes = 0;
    this.batchHasBytes = false;
    const body = this.open();
    if (!body.write(data)) await new Promise<void>((resolve) => body.once('drain', resolve));
  }

  /** Finishes the upload; returns the number of lines written. */
  async close(): Promise<number> {
    await this.flush();
    if (this.failure) throw this.failure;
    if (!this.body) return 0;
    this.body.end();
    await this.upload;
    return this.lines;
  }
}

/** Copies every line of `sourceKeys` into one new object, streamed; returns the line count. */
export async function concatJsonl(s3: S3Client, bucket: string, sourceKeys: readonly string[], targetKey: string): Promise<number> {
  return (await concatJsonlParts(s3, bucket, sourceKeys, () => targetKey, Number.POSITIVE_INFINITY)).lines;
}

/**
 * Copies every line of `sourceKeys` into objects of at most `maxBytes` each (a line is never
 * split; a single longer line gets an object of its own), named by `keyFor(1)`, `keyFor(2)`, ...
 * Returns the line count and the keys written (at least one, possibly empty).
 */
export async function concatJsonlParts(
  s3: S3Client,
  bucket: string,
  sourceKeys: readonly string[],
  keyFor: (part: number) => string,
  maxBytes: number,
): Promise<{ lines: number; keys: string[] }> {
  const keys = [keyFor(1)];
  let writer = new JsonlWriter(s3, bucket, keys[0]!);
  let lines = 0;
  for (const key of sourceKeys) {
    for await (const line of readObjectLines(s3, bucket, key)) {
      if (line.length === 0) continue;
      if (writer.lines > 0 && writer.bytes + line.length + 1 > maxBytes) {
        await writer.close();
        keys.push(keyFor(keys.length + 1));
        writer = new JsonlWriter(s3, bucket, keys[keys.length - 1]!);
      }
      await writer.write(line);
      lines += 1;
    }
  }
  await writer.close();
  return { lines, keys };
}
