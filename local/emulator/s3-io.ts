/**
 * The emulator's S3 access: find a job's input files, stream them line by line, and stream
 * output lines back. Memory stays bounded by a line (reads) or two upload parts (writes: one
 * filling, one in flight).
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

/** A bucket and a key (or key prefix, possibly empty). */
export interface S3Location {
  bucket: string;
  key: string;
}

/** Parses `s3://bucket`, `s3://bucket/` or `s3://bucket/key...` (the forms Bedrock's S3Uri admits). */
export function parseS3Location(uri: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/s.exec(uri);
  if (!m || !m[1]) throw new Error(`not an S3 URI: ${uri}`);
  return { bucket: m[1], key: m[2] ?? '' };
}

/** Joins key parts with single slashes (an empty prefix adds nothing). */
export function joinKey(...parts: readonly string[]): string {
  return parts
    .filter((p) => p !== '')
    .map((p, i) => (i === 0 ? p.replace(/\/+$/, '') : p.replace(/^\/+|\/+$/g, '')))
    .join('/');
}

/** One JSONL input file of a job. */
export interface InputFile {
  bucket: string;
  key: string;
  size: number;
  /** The name its output is written under: `{name}.out` (the path below the input prefix). */
  name: string;
}

/**
 * The `.jsonl` files an input S3Uri designates. Bedrock takes either a single file or a folder
 * and "processes all JSONL ... files at that S3 location" (docs/BEDROCK-FACTS.md §1). A URI that names an
 * existing object is a file; anything else is a prefix, searched recursively.
 * @returns the files, or a problem that fails the job (not an API error)
 */
export async function listInputFiles(s3: S3Client, uri: string): Promise<{ files: InputFile[] } | { problem: string }> {
  const { bucket, key } = parseS3Location(uri);
  const isPrefix = key === '' || key.endsWith('/');
  const objects = await listObjects(s3, bucket, key);
  if (!isPrefix) {
    const exact = objects.find((o) => o.key === key);
    if (exact) {
      if (!key.endsWith('.jsonl')) return { problem: `The input file ${uri} is not a .jsonl file.` };
      return { files: [{ bucket, key, size: exact.size, name: key.slice(key.lastIndexOf('/') + 1) }] };
    }
  }
  const prefix = isPrefix ? key : `${key}/`;
  const files = objects
    .filter((o) => o.key.startsWith(prefix) && o.key.endsWith('.jsonl'))
    .map((o) => ({ bucket, key: o.key, size: o.size, name: o.key.slice(prefix.length) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (files.length === 0) return { problem: `No .jsonl input files were found at ${uri}.` };
  return { files };
}

async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** True when the bucket exists and is reachable with the emulator's client. */
export async function bucketExists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch {
    return false;
  }
}

/** Streams an object's lines (without line terminators; a trailing CR is removed). */
export async function* readLines(s3: S3Client, bucket: string, key: string): AsyncGenerator<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = res.Body as Readable | undefined;
  if (!body) return;
  const lines = createInterface({ input: body, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } finally {
    lines.close();
    body.destroy();
  }
}

/** Upload parts in flight per output file (lib-storage's default is 4, each 5 MiB). */
const UPLOAD_QUEUE_SIZE = 1;

/** Size of the batches handed to the upload stream: fewer, larger writes. */
const WRITE_BATCH_CHARS = 256 * 1024;

/**
 * Streams lines into one S3 object through a multipart-capable upload. `write` applies
 * back-pressure; `close` finishes the object; `abort` drops it.
 */
export class S3LineWriter {
  private readonly stream = new PassThrough();
  private readonly upload: Upload;
  private readonly done: Promise<unknown>;
  private failure: unknown;
  private pending: string[] = [];
  private pendingChars = 0;

  constructor(s3: S3Client, bucket: string, key: string, contentType = 'application/jsonl') {
    this.upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: this.stream, ContentType: contentType },
      queueSize: UPLOAD_QUEUE_SIZE,
    });
    this.done = this.upload.done();
    this.done.catch((err: unknown) => {
      this.failure = err ?? new Error('upload failed');
      this.stream.destroy();
    });
  }

  /** Adds one line (a newline is appended). */
  async write(line: string): Promise<void> {
    this.pending.push(line, '\n');
    this.pendingChars += line.length + 1;
    if (this.pendingChars >= WRITE_BATCH_CHARS) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    if (!this.stream.write(chunk)) {
      await Promise.race([once(this.stream, 'drain'), this.done]);
    }
    if (this.failure) throw this.failure;
  }

  /** Writes what is buffered and completes the object. */
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await this.done;
  }

  /** Abandons the object (best effort). */
  async abort(): Promise<void> {
    this.pending = [];
    try {
      await this.upload.abort();
    } catch {
      // Nothing to clean up when the upload never started.
    }
    this.stream.destroy();
  }
}
