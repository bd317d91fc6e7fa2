/**
 * The synthesized BatchWorkflow run in the twin's Step Functions interpreter: its retriers and
 * catches behave as the definition says. In the integration tier because it runs the twin's
 * interpreter; test/lib/state-machine.test.ts checks the definition itself.
 */
import { SLOT_WAIT_ATTEMPTS } from '../../lambdas/shared/contracts';
import { SLOT_UNAVAILABLE_ERROR } from '../../lib/state-machine';
import { runStateMachine, type TaskHandler } from '../../local/services/step-functions';
import { buildStack, workflowDefinition } from './helpers';

describe('BatchWorkflow retries in the local interpreter (the synthesized definition)', () => {
  const { template } = buildStack();
  const definition = workflowDefinition(template);
  const fail = (name: string, message = name) => Object.assign(new Error(message), { name });
  const RUN = { runId: 'run-1' };

  /** Handlers for every task; `calls` counts each state's invocations. */
  function harness(overrides: Record<string, TaskHandler> = {}) {
    const calls: Record<string, number> = {};
    const inputs: Record<string, any[]> = {};
    const base: Record<string, TaskHandler> = {
      Prepare: async () => ({ run: RUN, round: { number: 1, hasMoreChunks: true } }),
      NextWindow: async (i) => ({ run: i.run, round: { ...i.round, hasMoreChunks: false }, window: { items: [{ chunk: 0 }] }, continued: false }),
      AcquireSlot: async () => ({}),
      SubmitJob: async () => ({ jobArn: 'arn:job', status: 'Completed' }),
      ReconcileChunk: async () => ({}),
      EndRound: async (i) => ({ run: i.run, round: i.round, done: true }),
      Finalize: async () => ({ status: 'Succeeded' }),
      // finalize's Failed summary: its error is what the execution fails with (RunFailed's CausePath).
      FinalizeFailed: async (i: any) => ({ status: 'Failed', error: { error: i.state.error.Error, cause: i.state.error.Cause } }),
      ...overrides,
    };
    const taskHandlers = Object.fromEntries(
      Object.entries(base).map(([name, h]) => [
        name,
        async (input: unknown) => {
          calls[name] = (calls[name] ?? 0) + 1;
          (inputs[name] ??= []).push(input);
          return h(input);
        },
      ]),
    );
    const run = () => runStateMachine(definition, { inputs: ['s3://drop/a.jsonl'] }, { taskHandlers, newToken: () => 'token', retryIntervalMs: 0 });
    return { calls, inputs, run };
  }

  /** Throws `error` the first `times` calls, then answers with `then`. */
  function flaky(times: number, error: () => Error, then: TaskHandler): TaskHandler {
    let n = 0;
    return async (input) => {
      n += 1;
      if (n <= times) throw error();
      return then(input);
    };
  }

  test('the interpreter accepts the definition (MaxAttempts 0, MaxDelaySeconds, JitterStrategy) and runs it', async () => {
    const h = harness();
    const result = await h.run();
    expect(result.status).toBe('SUCCEEDED');
    expect(h.calls).toMatchObject({ Prepare: 1, AcquireSlot: 1, SubmitJob: 1, ReconcileChunk: 1, EndRound: 1, Finalize: 1 });
  });

  test('InvalidRunInput from Prepare is not retried: the run fails at once', async () => {
    const h = harness({ Prepare: async () => Promise.reject(fail('InvalidRunInput', 'inputs must be a non-empty array')) });
    const result = await h.run();
    expect(result).toMatchObject({ status: 'FAILED', error: 'RunFailed', cause: 'inputs must be a non-empty array' });
    expect(h.calls.Prepare).toBe(1);
    expect(h.inputs.FinalizeFailed![0].state.error).toEqual({ Error: 'InvalidRunInput', Cause: 'inputs must be a non-empty array' });
  });

  test('a transient failure of a plain task is retried and the run goes on', async () => {
    const throttled = () => fail('ProvisionedThroughputExceededException');
    const h = harness({
      Prepare: flaky(2, throttled, async () => ({ run: RUN, round: { number: 1, hasMoreChunks: true } })),
      NextWindow: flaky(1, throttled, async (i) => ({
        run: i.run,
        round: { ...i.round, hasMoreChunks: false },
        window: { items: [{ chunk: 0 }] },
        continued: false,
      })),
      AcquireSlot: flaky(3, throttled, async () => ({})),
      ReconcileChunk: flaky(
        1,
        () => fail('SlowDown'),
        async () => ({}),
      ),
      EndRound: flaky(1, throttled, async (i) => ({ run: i.run, round: i.round, done: true })),
      Finalize: flaky(2, throttled, async () => ({ status: 'Succeeded' })),
    });
    const result = await h.run();
    expect(result.status).toBe('SUCCEEDED');
    expect(h.calls).toMatchObject({ Prepare: 3, NextWindow: 2, AcquireSlot: 4, SubmitJob: 1, ReconcileChunk: 2, EndRound: 2, Finalize: 3 });
    expect(h.calls.FinalizeFailed).toBeUndefined();
  });

  test('a failure that outlasts the 3 retries fails the run through FinalizeFailed, which is retried too', async () => {
    const h = harness({
      EndRound: async () => Promise.reject(fail('InternalServerError')),
      FinalizeFailed: flaky(
        1,
        () => fail('ThrottlingException'),
        async () => ({ status: 'Failed', error: { error: 'InternalServerError', cause: 'end-round failed' } }),
      ),
    });
    const result = await h.run();
    expect(result).toMatchObject({ status: 'FAILED', error: 'RunFailed' });
    expect(h.calls.EndRound).toBe(1 + 3);
    expect(h.calls.FinalizeFailed).toBe(2);
  });

  test('SlotUnavailable keeps its own retrier and Catch: 40 retries, then the chunk is reconciled, never the generic retry', async () => {
    const h = harness({ AcquireSlot: async () => Promise.reject(fail(SLOT_UNAVAILABLE_ERROR, 'cap full')) });
    const result = await h.run();
    expect(result.status).toBe('SUCCEEDED');
    expect(h.calls.AcquireSlot).toBe(1 + SLOT_WAIT_ATTEMPTS);
    expect(h.calls.SubmitJob).toBeUndefined();
    expect(h.inputs.ReconcileChunk![0]).toMatchObject({ chunk: 0, jobError: { Error: 'SlotUnavailable', Cause: 'cap full' } });
  });

  test('SubmitJob is not retried on a generic failure: its Catch reconciles the chunk', async () => {
    const h = harness({ SubmitJob: async () => Promise.reject(fail('ValidationException', 'bad job')) });
    const result = await h.run();
    expect(result.status).toBe('SUCCEEDED');
    expect(h.calls.SubmitJob).toBe(1);
    expect(h.inputs.ReconcileChunk![0]).toMatchObject({ jobError: { Error: 'ValidationException', Cause: 'bad job' } });
  });
});
