import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  concatJsonl,
  JsonlWriter,
  listObjects,
  readJsonl,
  readJsonObject,
  readObjectLines,
  splitLines,
  writeJsonObject,
} from '../../../lambdas/shared/s3-jsonl';
import { startTestS3, type TestS3 } from '../support/local-s3';

async function collect(pieces: Array<Buffer | Uint8Array | string>): Promise<string[]> {
  async function* source() {
    for (const p of pieces) yield p;
  }
  const out: string[] = [];
  for await (const line of splitLines(source())) out.push(line.toString('utf8'));
  return out;
}

describe('splitLines', () => {
  it('joins lines split across pieces', async () => {
    expect(await collect(['{"a":', '1}\n{"b"', ':2}\n'])).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('yields the last line without a trailing newline', async () => {
    expect(await collect(['a\nb'])).toEqual(['a', 'b']);
    expect(await collect(['a\n', 'b'])).toEqual(['a', 'b']);
  });

  it('keeps empty lines and a trailing CR, and yields nothing after a final newline', async () => {
    expect(await collect(['a\n\n', '\nb\r\n'])).toEqual(['a', '', '', 'b\r']);
    expect(await collect(['\n'])).toEqual(['']);
    expect(await collect([])).toEqual([]);
    expect(await collect([''])).toEqual([]);
  });

  it('carries a line over several pieces without newlines', async () => {
    expect(await collect(['ab', 'cd', 'ef\ngh', 'ij'])).toEqual(['abcdef', 'ghij']);
  });

  it('keeps a multi-byte character split between pieces intact', async () => {
    const bytes = Buffer.from('é€😀\nx');
    expect(await collect([bytes.subarray(0, 1), bytes.subarray(1, 4), new Uint8Array(bytes.subarray(4))])).toEqual(['é€😀', 'x']);
  });

  it('splits any text the same however it is cut into pieces', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('a', 'é', '😀', '\n', '\r', '{', '"'), { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (chars, cuts) => {
          const bytes = Buffer.from(chars.join(''));
          const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
          const pieces: Buffer[] = [];
          let at = 0;
          for (const p of [...points, bytes.length]) {
            pieces.push(bytes.subarray(at, p));
            at = p;
          }
          const expected = chars.join('').split('\n');
          if (expected[expected.length - 1] === '') expected.pop();
          expect(await collect(pieces)).toEqual(expected);
        },
      ),
    );
  });
});

describe('listObjects paging', () => {
  it('follows continuation tokens to the last page', async () => {
    const client = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(client);
    mock
      .on(ListObjectsV2Command, { Prefix: 'p/', ContinuationToken: undefined })
      .resolves({ Contents: [{ Key: 'p/a', Size: 1, ETag: '"e"' }, {}], IsTruncated: true, NextContinuationToken: 't1' })
      .on(ListObjectsV2Command, { ContinuationToken: 't1' })
      .resolves({ Contents: [{ Key: 'p/b', LastModified: new Date('2026-01-02T03:04:05Z') }], IsTruncated: false });
    expect(await listObjects(client, 'b', 'p/')).toEqual([
      { key: 'p/a', size: 1, etag: '"e"' },
      { key: 'p/b', size: 0, lastModified: new Date('2026-01-02T03:04:05Z') },
    ]);
    expect(mock.commandCalls(ListObjectsV2Command)).toHaveLength(2);
  });
});

describe('S3 JSONL helpers (s3rver)', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    await s3.stop();
  });

  it('writes lines through a multipart stream and reads them back', async () => {
    const w = new JsonlWriter(s3.client, s3.bucket, 'w/a.jsonl');
    await w.write({ a: 1 });
    await w.write('{"b":2}');
    expect(await w.close()).toBe(2);
    expect(w.bytes).toBe(Buffer.byteLength('{"a":1}\n{"b":2}\n'));
    expect(await s3.text('w/a.jsonl')).toBe('{"a":1}\n{"b":2}\n');
    const read: unknown[] = [];
    for await (const v of readJsonl(s3.client, s3.bucket, 'w/a.jsonl')) read.push(v);
    expect(read).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('creates no object for a lazy writer without lines, and an empty one otherwise', async () => {
    const lazy = new JsonlWriter(s3.client, s3.bucket, 'w/lazy.jsonl', { lazy: true });
    expect(await lazy.close()).toBe(0);
    expect(await s3.text('w/lazy.jsonl')).toBeUndefined();
    const eager = new JsonlWriter(s3.client, s3.bucket, 'w/eager.jsonl');
    expect(await eager.close()).toBe(0);
    expect(await s3.text('w/eager.jsonl')).toBe('');
  });

  it('streams a file larger than one part (8 MiB) byte-exact', async () => {
    const w = new JsonlWriter(s3.client, s3.bucket, 'w/big.jsonl');
    const line = JSON.stringify({ recordId: 'x', pad: 'y'.repeat(1000) });
    const n = 9000;
    for (let i = 0; i < n; i++) await w.write(line);
    await w.close();
    let count = 0;
    for await (const l of readObjectLines(s3.client, s3.bucket, 'w/big.jsonl')) {
      expect(l.toString()).toBe(line);
      count += 1;
    }
    expect(count).toBe(n);
  });

  it('lists keys with sizes, ETags and write times under a prefix', async () => {
    const before = Date.now();
    for (let i = 0; i < 3; i++) await s3.put(`list/k${i}.jsonl`, 'x'.repeat(i));
    const after = Date.now();
    await s3.put('listing/other', 'x');
    const md5 = (s: string) => `"${createHash('md5').update(s).digest('hex')}"`;
    expect(await listObjects(s3.client, s3.bucket, 'list/')).toEqual([
      { key: 'list/k0.jsonl', size: 0, etag: md5(''), lastModified: expect.any(Date) },
      { key: 'list/k1.jsonl', size: 1, etag: md5('x'), lastModified: expect.any(Date) },
      { key: 'list/k2.jsonl', size: 2, etag: md5('xx'), lastModified: expect.any(Date) },
    ]);
    // S3 keeps write times to the second.
    for (const o of await listObjects(s3.client, s3.bucket, 'list/')) {
      expect(o.lastModified!.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(o.lastModified!.getTime()).toBeLessThanOrEqual(after);
    }
  });

  it('reads and writes small JSON documents; undefined when missing', async () => {
    await writeJsonObject(s3.client, s3.bucket, 'doc/a.json', { a: [1] });
    expect(await readJsonObject(s3.client, s3.bucket, 'doc/a.json')).toEqual({ a: [1] });
    await writeJsonObject(s3.client, s3.bucket, 'doc/b.json', { a: 1 }, true);
    expect(await s3.text('doc/b.json')).toBe('{\n  "a": 1\n}\n');
    expect(await readJsonObject(s3.client, s3.bucket, 'doc/missing.json')).toBeUndefined();
  });

  it('concatenates parts, skipping blank lines', async () => {
    await s3.put('cat/1.jsonl', '{"a":1}\n\n{"a":2}');
    await s3.put('cat/2.jsonl', '{"a":3}\n');
    expect(await concatJsonl(s3.client, s3.bucket, ['cat/1.jsonl', 'cat/2.jsonl'], 'cat/out.jsonl')).toBe(3);
    expect(await s3.text('cat/out.jsonl')).toBe('{"a":1}\n{"a":2}\n{"a":3}\n');
    expect(await concatJsonl(s3.client, s3.bucket, [], 'cat/none.jsonl')).toBe(0);
    expect(await s3.text('cat/none.jsonl')).toBe('');
  });
});
