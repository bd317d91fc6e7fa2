/**
 * The twin counts an execution's history as Step Functions does, and fails it at the limit:
 * driven through the real interpreter.
 */
import { historyWeigher, MAX_HISTORY_EVENTS } from '../../../local/services/history-events';
import { runStateMachine } from '../../../local/services/step-functions';

const LAMBDA = 'arn:aws:states:::lambda:invoke';

const machine = {
  StartAt: 'A',
  States: {
    A: { Type: 'Task', Resource: LAMBDA, Retry: [{ ErrorEquals: ['Boom'], MaxAttempts: 2, IntervalSeconds: 1 }], Next: 'C' },
    C: { Type: 'Choice', Choices: [{ Variable: '$.go', BooleanEquals: true, Next: 'M' }], Default: 'Done' },
    M: {
      Type: 'Map',
      ItemsPath: '$.items',
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'T',
        States: { T: { Type: 'Task', Resource: `${LAMBDA}.waitForTaskToken`, Parameters: { 'token.$': '$$.Task.Token' }, End: true } },
      },
      ResultPath: null,
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
  },
};

async function run(failuresOfA: number): Promise<number> {
  let failures = failuresOfA;
  const result = await runStateMachine(
    machine,
    {},
    {
      taskHandlers: {
        A: async () => {
          if (failures-- > 0) throw Object.assign(new Error('again'), { name: 'Boom' });
          return { go: true, items: [1, 2] };
        },
        T: async () => ({}),
      },
      newToken: () => 'token',
      retryIntervalMs: 1,
    },
  );
  expect(result.status).toBe('SUCCEEDED');
  return result.historyEvents;
}

test("counts a run's history as AWS writes it: a task 5 events, a token task 6, a Map 4 and 2 an iteration", async () => {
  // ExecutionStarted 1; A: Entered, Scheduled, Started, Succeeded, Exited 5; Choice 2;
  // Map: Entered, Started, Succeeded, Exited 4, and per item IterationStarted/Succeeded 2 and T
  // (with TaskSubmitted) 6; Succeed 2; ExecutionSucceeded 1.
  expect(await run(0)).toBe(1 + 5 + 2 + (4 + 2 * (2 + 6)) + 2 + 1);
  // A failed attempt then its retry: TaskFailed, TaskScheduled, TaskStarted.
  expect(await run(1)).toBe(1 + 5 + 3 + 2 + (4 + 2 * (2 + 6)) + 2 + 1);
});

test('fails an execution whose history reaches the limit with States.Runtime, as Step Functions does', async () => {
  const loop = {
    StartAt: 'Spin',
    States: {
      Spin: { Type: 'Pass', Next: 'Check' },
      Check: { Type: 'Choice', Choices: [{ Variable: '$.stop', BooleanEquals: true, Next: 'End' }], Default: 'Spin' },
      End: { Type: 'Succeed' },
    },
  };
  const seen: number[] = [];
  const result = await runStateMachine(
    loop,
    { stop: false },
    { taskHandlers: {}, newToken: () => 't', maxHistoryEvents: 500, onEvent: (_, n) => void seen.push(n) },
  );
  expect(result).toMatchObject({ status: 'FAILED', error: 'States.Runtime', cause: 'The execution reached the maximum number of history events (500).' });
  expect(seen.at(-1)).toBeGreaterThanOrEqual(499);
  // The counts only grow, one AWS event at a time for Pass and Choice states.
  expect(seen.every((n, i) => i === 0 || n - seen[i - 1]! >= 0)).toBe(true);
});

test('the limit is the Standard workflow quota, and unknown event types count nothing', () => {
  expect(MAX_HISTORY_EVENTS).toBe(25_000);
  expect(historyWeigher(machine)({ type: 'ParallelBranchStarted', timestamp: 0 })).toBe(0);
});
