/**
 * The handler-crash injector: a crash after write k lets writes 1..k reach the service and no
 * later one, and the invocation rejects with HandlerCrash; decisions depend only on seed and
 * identity. Real SDK clients against a recording HTTP server, so the requests are the SDK's own.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CrashInjector, type CrashRecord } from '../../local/crash-injector';
import { invocationKey, MAX_CRASHING_ATTEMPTS, seededCrashPlan, type InvocationIdentity } from '../../local/crash-plan';
import { classifyWrite } from '../../local/write-classifier';

interface Received {
  readonly method: string;
  readonly url: string;
}

let server: Server;
let endpoint: string;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!.split('?')[0]! });
      if (req.headers['x-amz-target']) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
      } else if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain', etag: '"e"' });
        res.end('hello');
      } else {
        res.writeHead(200, { etag: '"e"' });
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
});

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
function s3(): S3Client {
  // No SDK retries: a destroyed request of a crashed invocation would otherwise be retried (and destroyed again).
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED' });
}

const identity = (functionName = 'fake', attempt = 1): InvocationIdentity => ({ functionName, eventKey: 'k', attempt });

/** The fake handler: three writes in a row, then a result. */
async function threeWrites(client: S3Client, prefix = 'w'): Promise<string> {
  for (const n of [1, 2, 3]) await client.send(new PutObjectCommand({ Bucket: 'b', Key: `${prefix}${n}`, Body: `${n}` }));
  return 'done';
}

describe('CrashInjector', () => {
  let injector: CrashInjector | undefined;
  afterEach(() => injector?.uninstall());

  test('a crash decided after write 2: writes 1 and 2 reach the server, write 3 never does, the invocation rejects', async () => {
    const crashes: CrashRecord[] = [];
    injector = new CrashInjector(
      () => 2,
      (r) => crashes.push(r),
    );
    const client = s3();
    let handler!: Promise<string>;
    await expect(injector.run(identity('writer'), () => (handler = threeWrites(client)))).rejects.toMatchObject({ name: 'HandlerCrash' });
    // The handler's own promise chain goes on after the crash: its third write is refused unsent.
    await expect(handler).rejects.toMatchObject({ name: 'HandlerCrash' });
    expect(received.map((r) => `${r.method} ${r.url}`)).toEqual(['PUT /b/w1', 'PUT /b/w2']);
    expect(crashes).toEqual([{ functionName: 'writer', attempt: 1, afterWrite: 2, operation: 'S3 PutObject' }]);
    client.destroy();
  });

  test('reads are not writes: the crash comes after the planned write, reads before it pass', async () => {
    injector = new CrashInjector(() => 1);
    const client = s3();
    let handler!: Promise<void>;
    const invoke = async () => {
      await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'r1' }));
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'w1', Body: 'x' }));
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'w2', Body: 'x' }));
    };
    await expect(injector.run(identity(), () => (handler = invoke()))).rejects.toThrow(/crashed after write 1 \(S3 PutObject\)/);
    await expect(handler).rejects.toMatchObject({ name: 'HandlerCrash' });
    expect(received.map((r) => r.url)).toEqual(['/b/r1', '/b/w1']);
    client.destroy();
  });

  test('an invocation with fewer writes than planned crashes after its last one instead of returning', async () => {
    const crashes: CrashRecord[] = [];
    injector = new CrashInjector(
      () => 5,
      (r) => crashes.push(r),
    );
    const client = s3();
    await expect(injector.run(identity(), () => threeWrites(client))).rejects.toMatchObject({ name: 'HandlerCrash' });
    expect(received).toHaveLength(3);
    expect(crashes).toEqual([expect.objectContaining({ afterWrite: 3 })]);
    client.destroy();
  });

  test('no plan, or no writes: the invocation returns its result', async () => {
    injector = new CrashInjector((id) => (id.functionName === 'reader' ? 1 : undefined));
    const client = s3();
    await expect(injector.run(identity('spared'), () => threeWrites(client))).resolves.toBe('done');
    await expect(injector.run(identity('reader'), async () => (await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'r' })), 'read'))).resolves.toBe(
      'read',
    );
    expect(received).toHaveLength(4);
    client.destroy();
  });

  test('invocations running at the same time are independent: one crashes, the other finishes', async () => {
    injector = new CrashInjector((id) => (id.functionName === 'doomed' ? 1 : undefined));
    const client = s3();
    let doomedHandler!: Promise<string>;
    const [doomed, spared] = await Promise.allSettled([
      injector.run(identity('doomed'), () => (doomedHandler = threeWrites(client, 'd'))),
      injector.run(identity('spared'), () => threeWrites(client, 's')),
    ]);
    expect(doomed).toMatchObject({ status: 'rejected', reason: { name: 'HandlerCrash' } });
    await expect(doomedHandler).rejects.toMatchObject({ name: 'HandlerCrash' });
    expect(spared).toEqual({ status: 'fulfilled', value: 'done' });
    expect(received.map((r) => r.url).filter((u) => u.startsWith('/b/d'))).toEqual(['/b/d1']);
    expect(received.map((r) => r.url).filter((u) => u.startsWith('/b/s'))).toEqual(['/b/s1', '/b/s2', '/b/s3']);
    client.destroy();
  });

  test('DynamoDB writes count (awsJson, x-amz-target)', async () => {
    const crashes: CrashRecord[] = [];
    injector = new CrashInjector(
      () => 1,
      (r) => crashes.push(r),
    );
    const ddb = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
    const put = () => ddb.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'a' } } }));
    let handler!: Promise<unknown>;
    await expect(injector.run(identity(), () => (handler = (async () => (await put(), await put()))()))).rejects.toMatchObject({ name: 'HandlerCrash' });
    await expect(handler).rejects.toMatchObject({ name: 'HandlerCrash' });
    expect(received).toHaveLength(1);
    expect(crashes[0]!.operation).toBe('DynamoDB PutItem');
    ddb.destroy();
  });
});

describe('classifyWrite', () => {
  const auth = (service: string) => `AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=x`;
  const req = (method: string, path: string, headers: Record<string, string>) => ({ method, path, getHeader: (n: string) => headers[n.toLowerCase()] });
  test.each([
    ['PUT', '/bucket/key', { authorization: auth('s3') }, 'S3 PutObject'],
    ['PUT', '/bucket/key?x-id=PutObject', { authorization: auth('s3'), 'x-amz-copy-source': 'bucket/src' }, 'S3 CopyObject'],
    ['PUT', '/bucket/key?partNumber=1&uploadId=u', { authorization: auth('s3') }, undefined],
    ['POST', '/bucket/key?uploadId=u', { authorization: auth('s3') }, 'S3 CompleteMultipartUpload'],
    ['POST', '/bucket/key?uploads', { authorization: auth('s3') }, undefined],
    ['GET', '/bucket/key', { authorization: auth('s3') }, undefined],
    ['HEAD', '/bucket/key', { authorization: auth('s3') }, undefined],
    ['POST', '/', { authorization: auth('dynamodb'), 'x-amz-target': 'DynamoDB_20120810.UpdateItem' }, 'DynamoDB UpdateItem'],
    ['POST', '/', { authorization: auth('dynamodb'), 'x-amz-target': 'DynamoDB_20120810.DeleteItem' }, 'DynamoDB DeleteItem'],
    ['POST', '/', { authorization: auth('dynamodb'), 'x-amz-target': 'DynamoDB_20120810.GetItem' }, undefined],
    ['POST', '/', { authorization: auth('states'), 'x-amz-target': 'AWSStepFunctions.SendTaskSuccess' }, 'SFN SendTaskSuccess'],
    ['POST', '/', { authorization: auth('states'), 'x-amz-target': 'AWSStepFunctions.StartExecution' }, 'SFN StartExecution'],
    ['POST', '/', { authorization: auth('states'), 'x-amz-target': 'AWSStepFunctions.GetExecutionHistory' }, undefined],
    ['POST', '/', { authorization: auth('events'), 'x-amz-target': 'AWSEvents.PutEvents' }, 'EventBridge PutEvents'],
    ['POST', '/model-invocation-job', { authorization: auth('bedrock') }, 'Bedrock CreateModelInvocationJob'],
    ['POST', '/model-invocation-job/abc123def456/stop', { authorization: auth('bedrock') }, 'Bedrock StopModelInvocationJob'],
    ['GET', '/model-invocation-job/abc123def456', { authorization: auth('bedrock') }, undefined],
    ['GET', '/model-invocation-jobs?maxResults=10', { authorization: auth('bedrock') }, undefined],
  ])('%s %s %j -> %s', (method, path, headers, expected) => {
    expect(classifyWrite(req(method, path, headers))).toBe(expected);
  });
});

describe('decisions', () => {
  test('invocationKey ignores key order, task tokens, envelope ids and times, timestamps', () => {
    const a = { run: { runId: 'r', startedAt: '2025-01-01T00:00:00.000Z' }, chunk: 1, taskToken: 'tok-1' };
    const b = { taskToken: 'tok-2', chunk: 1, run: { startedAt: '2026-02-02T10:11:12.345Z', runId: 'r' } };
    expect(invocationKey(a)).toBe(invocationKey(b));
    expect(invocationKey({ ...a, chunk: 2 })).not.toBe(invocationKey(a));
    const envelope = (id: string, time: string) => ({
      id,
      time,
      'detail-type': 'Object Created',
      source: 'aws.s3',
      detail: { object: { key: 'inbox/default/a.jsonl' } },
    });
    expect(invocationKey(envelope('1', '2025-01-01T00:00:00Z'))).toBe(invocationKey(envelope('2', '2025-01-01T00:00:05Z')));
  });

  test('seededCrashPlan: same seed and identity, same plan; each attempt decided anew; rate 0 never', () => {
    const plan = seededCrashPlan(0.5, 7);
    const ids = Array.from({ length: 400 }, (_, i) => ({ functionName: `f${i % 7}`, eventKey: `k${i}`, attempt: 1 + (i % MAX_CRASHING_ATTEMPTS) }));
    expect(ids.map(plan)).toEqual(ids.map(seededCrashPlan(0.5, 7)));
    expect(ids.map(plan)).not.toEqual(ids.map(seededCrashPlan(0.5, 8)));
    const crashes = ids.map(plan).filter((k) => k !== undefined);
    expect(crashes.length).toBeGreaterThan(150);
    expect(crashes.length).toBeLessThan(250);
    // Later writes too, each less often than the one before.
    const count = (k: number) => crashes.filter((c) => c === k).length;
    expect(count(1)).toBeGreaterThan(count(2));
    expect(count(2)).toBeGreaterThan(0);
    expect(crashes.some((c) => c! >= 3)).toBe(true);
    // A retry is decided anew: some identity crashing at attempt 1 is spared at attempt 2.
    const first = Array.from({ length: 50 }, (_, i) => ({ functionName: 'f', eventKey: `e${i}`, attempt: 1 }));
    expect(first.some((id) => plan(id) !== undefined && plan({ ...id, attempt: 2 }) === undefined)).toBe(true);
    expect(ids.map(seededCrashPlan(0, 7)).every((k) => k === undefined)).toBe(true);
  });

  test('seededCrashPlan: attempts after MAX_CRASHING_ATTEMPTS never crash, even at rate 1, so a retried step gets through', () => {
    const always = seededCrashPlan(1, 3);
    const id = { functionName: 'reconcile-chunk', eventKey: 'k', attempt: 1 };
    for (let attempt = 1; attempt <= MAX_CRASHING_ATTEMPTS; attempt++) expect(always({ ...id, attempt })).toBeGreaterThanOrEqual(1);
    expect(always({ ...id, attempt: MAX_CRASHING_ATTEMPTS + 1 })).toBeUndefined();
    expect(always({ ...id, attempt: MAX_CRASHING_ATTEMPTS + 5 })).toBeUndefined();
  });
});
