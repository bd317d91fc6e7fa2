/**
 * Step Functions' 256 KiB state payload limit in the twin: a task result over it fails the
 * execution with States.DataLimitExceeded, which a Catch on States.ALL does not catch.
 */
import { runStateMachine } from '../../../local/services/step-functions';
import { STATE_PAYLOAD_LIMIT_BYTES, taskResult } from '../../../local/twin/payload-limits';
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

test("a task's input over the limit fails the execution before the function runs, uncaught and unretried", async () => {
  let invoked = 0;
  const handlers = taskHandlers(definition, {
    invoke: async () => {
      invoked += 1;
      return 'ok';
    },
    waitForToken: async () => undefined,
  });
  const run = (input: unknown) => runStateMachine(definition, input, { taskHandlers: handlers, newToken: () => 't', retryIntervalMs: 0 });
  // The task's input is `{FunctionName, Payload}`: its JSON is the execution input plus 60-odd bytes.
  expect((await run({ text: 'x'.repeat(STATE_PAYLOAD_LIMIT_BYTES - 200) })).status).toBe('SUCCEEDED');
  expect(invoked).toBe(1);
  const over = await run({ text: 'x'.repeat(STATE_PAYLOAD_LIMIT_BYTES) });
  expect(over).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
  expect(over.cause).toMatch(/^The state\/task 'Big' has an input with a size exceeding the maximum number of bytes service limit/);
  expect(invoked).toBe(1);
});
