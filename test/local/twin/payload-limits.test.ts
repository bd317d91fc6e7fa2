/**
 * Step Functions' 256 KiB state payload limit in the twin: a task result over it fails the
 * execution with States.DataLimitExceeded, which a Catch on States.ALL does not catch.
 */
import { runStateMachine } from '../../../local/services/step-functions';
import { STATE_PAYLOAD_LIMIT_BYTES, stateOutput, taskResult } from '../../../local/twin/payload-limits';
import { taskHandlers } from '../../../local/twin/task-bindings';

const FN = 'arn:aws:lambda:us-east-1:123456789012:function:Big';
const definition = {
  StartAt: 'Big',
  States: {
    Big: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: FN, 'Payload.$': '$' },
      Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 2, IntervalSeconds: 1 }],
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }],
      End: true,
    },
    Caught: { Type: 'Pass', Result: 'caught', End: true },
  },
};

/** A result whose JSON is exactly `bytes` long (a JSON string: two quotes around the text). */
const resultOf = (bytes: number) => 'x'.repeat(bytes - 2);

test('a result at the limit passes, one byte over fails the execution uncaught and unretried', async () => {
  let calls = 0;
  const run = (bytes: number) =>
    runStateMachine(
      definition,
      {},
      {
        taskHandlers: {
          Big: async () => {
            calls += 1;
            return taskResult(FN, resultOf(bytes));
          },
        },
        newToken: () => 't',
        retryIntervalMs: 0,
      },
    );
  const ok = await run(STATE_PAYLOAD_LIMIT_BYTES);
  expect(ok.status).toBe('SUCCEEDED');
  calls = 0;
  const over = await run(STATE_PAYLOAD_LIMIT_BYTES + 1);
  expect(over).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
  expect(over.cause).toMatch(
    /^The state\/task 'arn:aws:lambda:us-east-1:123456789012:function:Big' returned a result with a size exceeding the maximum number of bytes service limit/,
  );
  expect(calls).toBe(1);
});

test('the limit counts UTF-8 bytes, not characters, and a handler returning nothing gives null', () => {
  // 'é' is two bytes: 131,072 of them is 262,144 bytes of text, over the limit with the quotes.
  expect(() => taskResult(FN, 'é'.repeat(131_072))).toThrow(/States|size exceeding/);
  expect(taskResult(FN, undefined)).toBeNull();
  expect(taskResult(FN, { a: [1, 'b'] })).toEqual({ a: [1, 'b'] });
});

/** The definition's task handlers, each function answering 'ok', and how many calls they got. */
function countingHandlers(of: Record<string, unknown>) {
  const calls = { invoked: 0 };
  const handlers = taskHandlers(of, {
    invoke: async () => {
      calls.invoked += 1;
      return 'ok';
    },
    waitForToken: async () => undefined,
  });
  return { handlers, calls };
}

test("a task's input over the limit fails the execution before the function runs, uncaught and unretried", async () => {
  const { handlers, calls } = countingHandlers(definition);
  const run = (input: unknown) => runStateMachine(definition, input, { taskHandlers: handlers, newToken: () => 't', retryIntervalMs: 0 });
  // The task's input is `{FunctionName, Payload}`: its JSON is the execution input plus 60-odd bytes.
  expect((await run({ text: 'x'.repeat(STATE_PAYLOAD_LIMIT_BYTES - 200) })).status).toBe('SUCCEEDED');
  expect(calls.invoked).toBe(1);
  const over = await run({ text: 'x'.repeat(STATE_PAYLOAD_LIMIT_BYTES) });
  expect(over).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
  expect(over.cause).toMatch(/^The state\/task 'Big' has an input with a size exceeding the maximum number of bytes service limit/);
  expect(calls.invoked).toBe(1);
});

describe('every state output, not only task results (Pass, Map and a Map iteration)', () => {
  const FN_NEXT = 'arn:aws:lambda:us-east-1:123456789012:function:Next';
  /** A Task after the state under test, whose Parameters drop that state's output. */
  const next = {
    Type: 'Task',
    Resource: 'arn:aws:states:::lambda:invoke',
    Parameters: { FunctionName: FN_NEXT, Payload: {} },
    End: true,
  };
  const runWith = async (definition: Record<string, unknown>, input: unknown) => {
    const { handlers, calls } = countingHandlers(definition);
    const result = await runStateMachine(definition, input, { taskHandlers: handlers, newToken: () => 't', retryIntervalMs: 0, onStateExited: stateOutput });
    return { result, invoked: calls.invoked };
  };

  test('a Pass state whose output is over the limit fails the execution before the next state runs', async () => {
    const definition = {
      StartAt: 'Double',
      States: {
        Double: { Type: 'Pass', Parameters: { 'a.$': '$.text', 'b.$': '$.text' }, Next: 'After' },
        After: next,
      },
    };
    const half = Math.floor(STATE_PAYLOAD_LIMIT_BYTES / 2);
    const ok = await runWith(definition, { text: 'x'.repeat(half - 20) });
    expect(ok.result.status).toBe('SUCCEEDED');
    expect(ok.invoked).toBe(1);
    const over = await runWith(definition, { text: 'x'.repeat(half) });
    expect(over.result).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(over.result.cause).toMatch(/^The state\/task 'Double' returned a result with a size exceeding/);
    expect(over.invoked).toBe(0);
  });

  test("a Map state's gathered output over the limit fails it, uncaught, and the next state never runs", async () => {
    const item = 'y'.repeat(1000);
    const definition = {
      StartAt: 'Gather',
      States: {
        Gather: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: { StartAt: 'One', States: { One: { Type: 'Pass', Result: item, End: true } } },
          Catch: [{ ErrorEquals: ['States.ALL'], Next: 'After' }],
          Next: 'After',
        },
        After: next,
      },
    };
    const items = (n: number) => ({ items: Array.from({ length: n }, (_, i) => i) });
    // 1,003 bytes per item (quotes and comma): 200 items fit, 300 do not.
    const ok = await runWith(definition, items(200));
    expect(ok.result.status).toBe('SUCCEEDED');
    expect(ok.invoked).toBe(1);
    const over = await runWith(definition, items(300));
    expect(over.result).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(over.result.cause).toMatch(/^The state\/task 'Gather' returned a result/);
    expect(over.invoked).toBe(0);
  });

  test("a Map iteration's state over the limit fails the Map, uncaught", async () => {
    const definition = {
      StartAt: 'Each',
      States: {
        Each: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemSelector: { 'text.$': '$.text' },
          ItemProcessor: {
            StartAt: 'Inner',
            States: { Inner: { Type: 'Pass', Parameters: { 'a.$': '$.text', 'b.$': '$.text' }, End: true } },
          },
          ResultPath: null,
          Catch: [{ ErrorEquals: ['States.ALL'], Next: 'After' }],
          Next: 'After',
        },
        After: next,
      },
    };
    const over = await runWith(definition, { items: [1], text: 'z'.repeat(STATE_PAYLOAD_LIMIT_BYTES / 2) });
    expect(over.result).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(over.result.cause).toMatch(/^The state\/task 'Inner' returned a result/);
    expect(over.invoked).toBe(0);
  });
});
