/**
 * A `rate(...)` schedule on the twin's sped-up clock (local/twin/rule-bindings.ts): a tick that
 * comes while the rule's previous invocation still runs is skipped. The clock fires a
 * `rate(5 minutes)` sweep every 300 ms; on a loaded machine one sweep takes longer, and
 * queued ticks piled up (92 invocations waiting for a sandbox in one run) until the whole twin
 * crawled. Driven with jest's fake timers and invocations the test settles itself.
 */
import { bindRules, type RuleRuntime } from '../../../local/twin/rule-bindings';
import type { LocalFunction } from '../../../local/twin/task-bindings';
import type { LocalEventBus } from '../../../local/services/event-bus';

const SWEEPER: LocalFunction = {
  name: 'sweeper',
  arn: 'arn:aws:lambda:us-east-1:123456789012:function:Sweeper',
  environment: {},
  memoryMb: 256,
  timeoutSeconds: 900,
};
const RULE = {
  logicalId: 'SweepSchedule',
  scheduleExpression: 'rate(5 minutes)',
  state: 'ENABLED',
  eventBusName: 'default',
  targets: [{ arn: SWEEPER.arn }],
};

afterEach(() => jest.useRealTimers());

test('a schedule tick is skipped while the previous invocation of its rule still runs, and fires again once it ended', async () => {
  jest.useFakeTimers();
  const pending: Array<() => void> = [];
  const runtime: RuleRuntime = {
    call: jest.fn(() => new Promise<unknown>((done) => pending.push(() => done(undefined)))),
    track: (invocation) => invocation,
  };
  const bound = bindRules([RULE], new Map([[SWEEPER.arn, SWEEPER]]), {} as LocalEventBus, runtime);
  try {
    // Ten ticks of 300 ms while the first sweep runs: one invocation, not ten.
    jest.advanceTimersByTime(3000);
    expect(runtime.call).toHaveBeenCalledTimes(1);
    pending.shift()!();
    await Promise.resolve(); // let the ended invocation settle
    await Promise.resolve();
    jest.advanceTimersByTime(300);
    expect(runtime.call).toHaveBeenCalledTimes(2);
    expect(pending).toHaveLength(1);
  } finally {
    for (const timer of bound.timers) clearInterval(timer);
  }
});

test('a failed invocation frees the schedule for the next tick', async () => {
  jest.useFakeTimers();
  let fail: (err: Error) => void = () => undefined;
  const runtime: RuleRuntime = {
    call: jest.fn(() => new Promise<unknown>((_, reject) => (fail = reject))),
    track: (invocation) => invocation,
  };
  const bound = bindRules([RULE], new Map([[SWEEPER.arn, SWEEPER]]), {} as LocalEventBus, runtime);
  try {
    jest.advanceTimersByTime(900);
    expect(runtime.call).toHaveBeenCalledTimes(1);
    fail(new Error('Sandbox.Timedout'));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    jest.advanceTimersByTime(300);
    expect(runtime.call).toHaveBeenCalledTimes(2);
  } finally {
    for (const timer of bound.timers) clearInterval(timer);
  }
});
