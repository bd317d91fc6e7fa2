/**
 * ListObjectsV2 paging on the twin's S3, with the real SDK: S3 answers at most 1,000 keys a page
 * (fewer with MaxKeys), counts common prefixes toward MaxKeys and KeyCount, lists in UTF-8
 * binary order, and resumes from an opaque NextContinuationToken. s3rver 3.7.1 as published
 * fails every truncated listing with a 500; patches/s3rver+3.7.1.patch makes it page like S3.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { listObjects } from '../../../lambdas/shared/s3-jsonl';
import { localS3ClientConfig, startLocalS3, type LocalS3 } from '../../../local/services/s3';

const BUCKET = 'paging';
/** More keys than one page of S3 holds (1,000), under one prefix. */
const MANY = 2500;
const manyKey = (i: number) => `many/k${String(i).padStart(5, '0')}.jsonl`;

/**
 * Keys whose S3 order (UTF-8 bytes) differs from the order s3rver's folder walk yields them in:
 * `t/a-c` sorts before `t/a/b` ('-' < '/'), `t/a` before `t/a-` and `t/a.b`, and a 4-byte
 * character after U+FFFD (UTF-16 would put it first).
 */
const TRICKY = ['t/a', 't/a-', 't/a-c', 't/a.b', 't/a/b', 't/a/c/d', 't/ab', 't/b/x', 't/b/y', 't/c', 't/\uFFFD', 't/\u{1F600}'];

describe('local S3 paging (ListObjectsV2 as S3 pages it)', () => {
  let dir: string;
  let s3: LocalS3;
  let client: S3Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'local-s3-paging-'));
    s3 = await startLocalS3({ directory: dir, buckets: [BUCKET] });
    client = new S3Client({ ...localS3ClientConfig(s3.endpoint), maxAttempts: 1 });
    const keys = [...Array.from({ length: MANY }, (_, i) => manyKey(i)), ...TRICKY, 'd/x/1', 'd/x/2', 'd/y', 'd/z/1', 'd/zz'];
    // A few puts at a time: s3rver writes each object as three files.
    for (let i = 0; i < keys.length; i += 25) {
      await Promise.all(keys.slice(i, i + 25).map((Key) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }))));
    }
  });

  afterAll(async () => {
    client.destroy();
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const list = (input: Omit<ConstructorParameters<typeof ListObjectsV2Command>[0], 'Bucket'>) =>
    client.send(new ListObjectsV2Command({ Bucket: BUCKET, ...input }));

  /** Every page of a listing, following NextContinuationToken. */
  async function pages(
    input: Omit<ConstructorParameters<typeof ListObjectsV2Command>[0], 'Bucket' | 'ContinuationToken'>,
  ): Promise<ListObjectsV2CommandOutput[]> {
    const out: ListObjectsV2CommandOutput[] = [];
    let token: string | undefined;
    do {
      const page = await list({ ...input, ContinuationToken: token });
      out.push(page);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated) expect(token).toBeTruthy();
    } while (token);
    return out;
  }

  it('answers a prefix of more than 1,000 keys with a first page of exactly 1,000 and a token', async () => {
    const page = await list({ Prefix: 'many/' });
    expect(page.KeyCount).toBe(1000);
    expect(page.Contents).toHaveLength(1000);
    expect(page.IsTruncated).toBe(true);
    expect(page.MaxKeys).toBe(1000);
    expect(page.Contents![999]!.Key).toBe(manyKey(999));
    // Opaque: not the key itself.
    expect(page.NextContinuationToken).not.toContain(manyKey(999));
  });

  it('pages through every key once, in order, 1,000 at a time', async () => {
    const all = await pages({ Prefix: 'many/' });
    expect(all.map((p) => p.KeyCount)).toEqual([1000, 1000, 500]);
    expect(all.map((p) => p.IsTruncated)).toEqual([true, true, false]);
    expect(all[2]!.NextContinuationToken).toBeUndefined();
    expect(all.flatMap((p) => p.Contents!.map((o) => o.Key))).toEqual(Array.from({ length: MANY }, (_, i) => manyKey(i)));
    // The request's token is echoed back.
    expect(all[1]!.ContinuationToken).toBe(all[0]!.NextContinuationToken);
  });

  it('clamps MaxKeys above 1,000 to 1,000 keys a page', async () => {
    const page = await list({ Prefix: 'many/', MaxKeys: 5000 });
    expect(page.Contents).toHaveLength(1000);
    expect(page.IsTruncated).toBe(true);
  });

  it('pages with a small MaxKeys, ending exactly on the last key', async () => {
    const all = await pages({ Prefix: 'many/k0000', MaxKeys: 3 }); // k00000 .. k00009
    expect(all.map((p) => p.KeyCount)).toEqual([3, 3, 3, 1]);
    expect(all.flatMap((p) => p.Contents!.map((o) => o.Key))).toEqual(Array.from({ length: 10 }, (_, i) => manyKey(i)));
    const exact = await pages({ Prefix: 'many/k0000', MaxKeys: 5 });
    expect(exact.map((p) => [p.KeyCount, p.IsTruncated])).toEqual([
      [5, true],
      [5, false],
    ]);
  });

  it('lists in UTF-8 binary order, page after page', async () => {
    const whole = (await list({ Prefix: 't/' })).Contents!.map((o) => o.Key);
    expect(whole).toEqual([...TRICKY].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(whole).toEqual(TRICKY);
    const paged = (await pages({ Prefix: 't/', MaxKeys: 2 })).flatMap((p) => p.Contents!.map((o) => o.Key));
    expect(paged).toEqual(TRICKY);
  });

  it('starts after StartAfter, and echoes it', async () => {
    const page = await list({ Prefix: 't/', StartAfter: 't/a-c', MaxKeys: 2 });
    expect(page.Contents!.map((o) => o.Key)).toEqual(['t/a.b', 't/a/b']);
    expect(page.StartAfter).toBe('t/a-c');
    expect(page.IsTruncated).toBe(true);
    const rest = await list({ Prefix: 't/', ContinuationToken: page.NextContinuationToken });
    expect(rest.Contents!.map((o) => o.Key)).toEqual(TRICKY.slice(TRICKY.indexOf('t/a/c/d')));
  });

  it('counts common prefixes toward MaxKeys and KeyCount, and never repeats one across pages', async () => {
    // Under d/ with '/': d/x/ (2 keys), d/y, d/z/ (1 key), d/zz -> 4 items in S3 order.
    const whole = await list({ Prefix: 'd/', Delimiter: '/' });
    expect(whole.Contents!.map((o) => o.Key)).toEqual(['d/y', 'd/zz']);
    expect(whole.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['d/x/', 'd/z/']);
    expect(whole.KeyCount).toBe(4);

    const all = await pages({ Prefix: 'd/', Delimiter: '/', MaxKeys: 1 });
    expect(all.map((p) => [p.KeyCount, p.IsTruncated])).toEqual([
      [1, true],
      [1, true],
      [1, true],
      [1, false],
    ]);
    // Each page ends on its one item; a page that ends on a prefix resumes after all its keys.
    expect(all.map((p) => [...(p.Contents ?? []).map((o) => o.Key), ...(p.CommonPrefixes ?? []).map((c) => c.Prefix)])).toEqual([
      ['d/x/'],
      ['d/y'],
      ['d/z/'],
      ['d/zz'],
    ]);
  });

  it('pages a delimited listing of the whole bucket without repeats', async () => {
    const all = await pages({ Delimiter: '/', MaxKeys: 2 });
    const items = all.flatMap((p) => [...(p.Contents ?? []).map((o) => o.Key), ...(p.CommonPrefixes ?? []).map((c) => c.Prefix)]);
    expect(items.sort()).toEqual(['d/', 'many/', 't/']);
    expect(all.every((p) => (p.KeyCount ?? 0) <= 2)).toBe(true);
  });

  it('rejects a continuation token it did not issue, or one of another bucket, with InvalidArgument', async () => {
    await expect(list({ Prefix: 'many/', ContinuationToken: 'bm90LWEtdG9rZW4=' })).rejects.toMatchObject({
      name: 'InvalidArgument',
      $metadata: { httpStatusCode: 400 },
    });
    const other = Buffer.from(JSON.stringify({ v: 1, bucket: 'elsewhere', after: 'many/k00001.jsonl' })).toString('base64');
    await expect(list({ Prefix: 'many/', ContinuationToken: other })).rejects.toMatchObject({ name: 'InvalidArgument' });
  });

  it('still pages the version 1 listing with markers (NextMarker with a delimiter)', async () => {
    const first = await client.send(new ListObjectsCommand({ Bucket: BUCKET, Prefix: 'd/', Delimiter: '/', MaxKeys: 1 }));
    expect(first.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['d/x/']);
    expect(first.IsTruncated).toBe(true);
    expect(first.NextMarker).toBe('d/x/');
    const second = await client.send(new ListObjectsCommand({ Bucket: BUCKET, Prefix: 'd/', Delimiter: '/', MaxKeys: 1, Marker: first.NextMarker }));
    expect(second.Contents!.map((o) => o.Key)).toEqual(['d/y']);
  });

  it("the pipeline's listObjects returns every one of 2,500 keys once, in order", async () => {
    const listed = await listObjects(client, BUCKET, 'many/');
    expect(listed.map((o) => o.key)).toEqual(Array.from({ length: MANY }, (_, i) => manyKey(i)));
    expect(listed.every((o) => o.size === o.key.length && /^"[0-9a-f]{32}"$/.test(o.etag ?? ''))).toBe(true);
  });
});
