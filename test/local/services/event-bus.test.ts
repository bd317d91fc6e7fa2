/**
 * The twin's event bus: routing, retries of a failed delivery, and duplicate deliveries
 * (the duplicate-invocation fault) that run independently of each other.
 */
import { LocalEventBus, type BusEvent } from '../../../local/services/event-bus';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';

function event(key: string): BusEvent {
  return {
    version: '0',
    id: `id-${key}`,
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '123456789012',
    time: '2025-01-01T00:00:00Z',
    region: 'us-east-1',
    resources: [],
    detail: { object: { key } },
  };
}

const pattern = { source: ['aws.s3'], detail: { object: { key: [{ prefix: 'inbox/' }] } } };

test('an event matching a rule is delivered once; a failed delivery is tried 3 times in all', async () => {
  const bus = new LocalEventBus();
  const calls: string[] = [];
  bus.addRule({
    name: 'r',
    eventPattern: pattern,
    deliver: async (e) => {
      const key = (e.detail as { object: { key: string } }).object.key;
      calls.push(key);
      if (key.endsWith('bad')) throw new Error('boom');
    },
  });
  bus.publish(event('inbox/a'));
  bus.publish(event('inbox/bad'));
  bus.publish(event('uploads/a'));
  await bus.drain();
  expect(calls.filter((k) => k === 'inbox/a')).toHaveLength(1);
  expect(calls.filter((k) => k === 'inbox/bad')).toHaveLength(3);
  expect(calls.filter((k) => k === 'uploads/a')).toHaveLength(0);
  expect(bus.failedDeliveries).toEqual([{ rule: 'r', error: 'Error: boom' }]);
});

test('copies: a duplicated event reaches the target twice, each copy retried on its own', async () => {
  const bus = new LocalEventBus('123456789012', 'us-east-1', {
    copies: (rule, e) => (rule === 'r' && (e.detail as { object: { key: string } }).object.key === 'inbox/dup' ? 2 : 1),
  });
  let deliveries = 0;
  bus.addRule({
    name: 'r',
    eventPattern: pattern,
    deliver: async () => {
      deliveries += 1;
      // The first try of one copy fails: that copy is tried again, the other is not.
      if (deliveries === 1) throw new Error('first try fails');
    },
  });
  bus.publish(event('inbox/dup'));
  await bus.drain();
  expect(deliveries).toBe(3);
  expect(bus.failedDeliveries).toEqual([]);
  bus.publish(event('inbox/single'));
  await bus.drain();
  expect(deliveries).toBe(4);
});

describe('PutEvents: refused as EventBridge refuses it', () => {
  let bus: LocalEventBus;
  let client: EventBridgeClient;
  const published: BusEvent[] = [];
  beforeAll(async () => {
    bus = new LocalEventBus();
    bus.addRule({ name: 'all', eventPattern: { source: [{ prefix: '' }] }, deliver: async (e) => void published.push(e) });
    const { endpoint } = await bus.start();
    client = new EventBridgeClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  });
  afterAll(async () => {
    client.destroy();
    await bus.stop();
  });
  const entry = (over: Record<string, unknown> = {}) => ({ Source: 'bedrock-batch', DetailType: 'Batch Run Completed', Detail: '{"runId":"r"}', ...over });

  it('answers each entry: required fields, a JSON object Detail, no aws. source', async () => {
    published.length = 0;
    const res = await client.send(
      new PutEventsCommand({
        Entries: [
          entry(),
          entry({ Source: undefined }),
          entry({ DetailType: undefined }),
          entry({ Detail: undefined }),
          entry({ Detail: '[1,2]' }),
          entry({ Detail: '{not json' }),
          entry({ Source: 'aws.s3' }),
        ],
      }),
    );
    expect(res.FailedEntryCount).toBe(6);
    expect(res.Entries!.map((e) => e.ErrorCode ?? 'ok')).toEqual([
      'ok',
      'InvalidArgument',
      'InvalidArgument',
      'InvalidArgument',
      'MalformedDetail',
      'MalformedDetail',
      'NotAuthorizedForSourceException',
    ]);
    expect(res.Entries![1]!.ErrorMessage).toMatch(/Source is a required argument/);
    await bus.drain();
    expect(published).toHaveLength(1);
  });

  it('refuses the whole request over 10 entries or 256 KB (counted as EventBridge counts an entry)', async () => {
    published.length = 0;
    const tooMany = await client.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry()) })).catch((e: unknown) => e);
    expect(tooMany).toMatchObject({ name: 'ValidationException' });
    // Detail bytes, not characters: 100,000 three-byte characters are 300,000 bytes.
    const wide = await client
      .send(new PutEventsCommand({ Entries: [entry({ Detail: JSON.stringify({ text: '日'.repeat(100_000) }) })] }))
      .catch((e: unknown) => e);
    expect(wide).toMatchObject({ name: 'ValidationException' });
    const none = await client.send(new PutEventsCommand({ Entries: [] })).catch((e: unknown) => e);
    expect(none).toMatchObject({ name: 'ValidationException' });
    await bus.drain();
    expect(published).toHaveLength(0);
  });
});
