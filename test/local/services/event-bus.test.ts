/**
 * The twin's event bus: routing, retries of a failed delivery, and duplicate deliveries
 * (the duplicate-invocation fault) that run independently of each other.
 */
import { LocalEventBus, type BusEvent } from '../../../local/services/event-bus';

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
