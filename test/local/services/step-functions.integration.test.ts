import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { normalizeDefinition, runStateMachine, taskStateNames } from '../../../local/services/step-functions';
import { StepFunctionsApi } from '../../../local/services/step-functions-api';

const fn = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:${name}`;

/** A miniature of the pipeline's workflow, in the shape CDK emits. */
const definition = {
  StartAt: 'Prepare',
  States: {
    Prepare: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: fn('Prepare'), Payload: { 'input.$': '$', 'executionName.$': '$$.Execution.Name' } },
      ResultSelector: { 'run.$': '$.Payload.run', 'items.$': '$.Payload.items', 'count.$': '$.Payload.count', 'limit.$': '$.Payload.limit' },
      Next: 'ProcessChunks',
    },
    ProcessChunks: {
      Type: 'Map',
      ItemsPath: '$.items',
      MaxConcurrency: 2,
      ItemSelector: { 'run.$': '$.run', 'chunk.$': '$$.Map.Item.Value', 'index.$': '$$.Map.Item.Index' },
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'AcquireSlot',
        States: {
          AcquireSlot: {
            Type: 'Task',
            Resource: 'arn:aws:states:::lambda:invoke',
            Parameters: { FunctionName: fn('AcquireSlot'), 'Payload.$': '$' },
            ResultPath: null,
            Retry: [{ ErrorEquals: ['SlotUnavailable'], IntervalSeconds: 30, BackoffRate: 1.5, MaxAttempts: 5 }],
            Next: 'SubmitJob',
          },
          SubmitJob: {
            Type: 'Task',
            Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
            Parameters: { FunctionName: fn('SubmitJob'), Payload: { 'chunk.$': '$.chunk', 'taskToken.$': '$$.Task.Token' } },
            TimeoutSeconds: 30,
            ResultPath: '$.job',
            Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.jobError', Next: 'ReconcileChunk' }],
            Next: 'ReconcileChunk',
          },
          ReconcileChunk: {
            Type: 'Task',
            Resource: 'arn:aws:states:::lambda:invoke',
            Parameters: { FunctionName: fn('ReconcileChunk'), 'Payload.$': '$' },
            ResultSelector: { 'outcome.$': '$.Payload.outcome' },
            End: true,
          },
        },
      },
      ResultPath: null,
      Next: 'UnderLimit',
    },
    UnderLimit: {
      Type: 'Choice',
      Choices: [{ Variable: '$.count', NumericLessThanPath: '$.limit', Next: 'Finalize' }],
      Default: 'TooMany',
    },
    Finalize: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: fn('Finalize'), 'Payload.$': '$' },
      OutputPath: '$.Payload',
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
    TooMany: { Type: 'Fail', Error: 'TooMany', Cause: 'count is not under limit' },
  },
};

const lambda = <T>(payload: T) => ({ Payload: payload, StatusCode: 200 });

describe('runStateMachine', () => {
  const tokens = new StepFunctionsApi();
  let sfn: SFNClient;

  beforeAll(async () => {
    const { endpoint } = await tokens.start();
    sfn = new SFNClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  });

  afterAll(async () => {
    sfn.destroy();
    await tokens.stop();
  });

  /** Handlers that play the pipeline, completing the job wait through the SFN API as job-state would. */
  function pipelineHandlers(opts: { count: number; limit: number }) {
    const seen = { acquireCalls: new Map<number, number>(), tokens: [] as string[], liveJobs: 0, maxLiveJobs: 0, reconciled: [] as unknown[] };
    const handlers = {
      Prepare: async (input: { FunctionName: string; Payload: { input: { chunks: string[] }; executionName: string } }) => {
        expect(input.FunctionName).toBe(fn('Prepare'));
        return lambda({ run: { runId: input.Payload.executionName }, items: input.Payload.input.chunks, count: opts.count, limit: opts.limit });
      },
      AcquireSlot: async (input: { Payload: { index: number } }) => {
        const calls = (seen.acquireCalls.get(input.Payload.index) ?? 0) + 1;
        seen.acquireCalls.set(input.Payload.index, calls);
        if (input.Payload.index === 0 && calls <= 2) {
          throw Object.assign(new Error('cap reached'), { name: 'SlotUnavailable' });
        }
        return lambda({ acquired: true });
      },
      SubmitJob: async (input: { Payload: { chunk: string; taskToken: string } }) => {
        const { chunk, taskToken } = input.Payload;
        seen.tokens.push(taskToken);
        seen.liveJobs += 1;
        seen.maxLiveJobs = Math.max(seen.maxLiveJobs, seen.liveJobs);
        // The job "runs", then the job-state handler completes the token through the SFN API.
        setTimeout(() => {
          const command =
            chunk === 'c2'
              ? new SendTaskFailureCommand({ taskToken, error: 'JobFailed', cause: 'Bedrock job Failed' })
              : new SendTaskSuccessCommand({ taskToken, output: JSON.stringify({ jobArn: `arn:job/${chunk}`, status: 'Completed' }) });
          // The job-state handler runs on its own, not inside SubmitJob: nothing here waits for it.
          void sfn.send(command as SendTaskSuccessCommand);
        }, 20);
        try {
          return await tokens.wait(taskToken);
        } finally {
          seen.liveJobs -= 1;
        }
      },
      ReconcileChunk: async (input: { Payload: Record<string, unknown> }) => {
        seen.reconciled.push(input.Payload);
        return lambda({ outcome: input.Payload.jobError ? 'failed' : 'ok', ignored: 'x' });
      },
      Finalize: async (input: { Payload: unknown }) => lambda({ finalized: input.Payload }),
    };
    return { handlers, seen };
  }

  it('runs the Map under MaxConcurrency with Retry, Catch, task tokens and ResultPath null', async () => {
    const issued: string[] = [];
    const newToken = () => {
      const t = tokens.newToken();
      issued.push(t);
      return t;
    };
    const { handlers, seen } = pipelineHandlers({ count: 1, limit: 2 });
    const chunks = ['c0', 'c1', 'c2', 'c3', 'c4'];

    const result = await runStateMachine(
      definition,
      { chunks },
      {
        taskHandlers: handlers,
        newToken,
        retryIntervalOverrides: { AcquireSlot: 0 },
        context: { Execution: { Name: 'exec-42' } },
      },
    );

    expect(result.status).toBe('SUCCEEDED');
    // ResultPath: null on the Map kept the Prepare output; OutputPath took the Payload.
    expect(result.output).toEqual({ finalized: { run: { runId: 'exec-42' }, items: chunks, count: 1, limit: 2 } });
    // Every SubmitJob got its own token, each issued once and each completed.
    expect(seen.tokens).toHaveLength(5);
    expect(new Set(seen.tokens).size).toBe(5);
    expect(issued.sort()).toEqual([...seen.tokens].sort());
    expect([...result.issuedTokens].sort()).toEqual(issued);
    expect(tokens.pending()).toBe(0);
    // MaxConcurrency: 2 kept at most two jobs waiting at once (and used both).
    expect(seen.maxLiveJobs).toBe(2);
    // Retry on the custom error: chunk 0 acquired on its third attempt.
    expect(seen.acquireCalls.get(0)).toBe(3);
    expect(result.eventCounts.StateRetried).toBe(2);
    // Catch: the failed job reached ReconcileChunk with the error, the others with the job.
    const failed = seen.reconciled.find((p) => (p as { chunk: string }).chunk === 'c2');
    expect(failed).toMatchObject({ jobError: { Error: 'JobFailed', Cause: 'Bedrock job Failed' } });
    expect(seen.reconciled.find((p) => (p as { chunk: string }).chunk === 'c1')).toMatchObject({
      job: { jobArn: 'arn:job/c1', status: 'Completed' },
      index: 1,
      run: { runId: 'exec-42' },
    });
    expect(result.eventCounts.StateCaught).toBe(1);
    expect(result.eventCounts.MapIterationStarted).toBe(5);
    expect(result.eventCount).toBe(Object.values(result.eventCounts).reduce((a, b) => a + b, 0));
    expect(result.eventCount).toBeGreaterThan(50);
  });

  it('takes the Choice default on NumericLessThanPath false and reports the Fail state', async () => {
    const { handlers } = pipelineHandlers({ count: 2, limit: 2 });
    const result = await runStateMachine(
      definition,
      { chunks: ['c1'] },
      {
        taskHandlers: handlers,
        newToken: () => tokens.newToken(),
        retryIntervalOverrides: { AcquireSlot: 0 },
      },
    );
    expect(result).toMatchObject({ status: 'FAILED', error: 'TooMany', cause: 'count is not under limit' });
  });

  it('fails with the handler error name and message when nothing catches it', async () => {
    const { handlers } = pipelineHandlers({ count: 1, limit: 2 });
    const result = await runStateMachine(
      definition,
      { chunks: ['c1'] },
      {
        taskHandlers: {
          ...handlers,
          ReconcileChunk: async () => {
            throw Object.assign(new Error('output missing'), { name: 'ReconcileError' });
          },
        },
        newToken: () => tokens.newToken(),
        retryIntervalMs: 0,
      },
    );
    expect(result).toMatchObject({ status: 'FAILED', error: 'ReconcileError', cause: 'output missing' });
    expect(result.output).toBeUndefined();
  });

  it('fails when retries are used up', async () => {
    const def = {
      StartAt: 'T',
      States: { T: { Type: 'Task', Resource: fn('T'), Retry: [{ ErrorEquals: ['Busy'], MaxAttempts: 2 }], End: true } },
    };
    let calls = 0;
    const result = await runStateMachine(
      def,
      {},
      {
        taskHandlers: {
          T: async () => {
            calls += 1;
            throw Object.assign(new Error('busy'), { name: 'Busy' });
          },
        },
        newToken: () => 'unused',
        retryIntervalOverrides: { T: [0] },
      },
    );
    expect(calls).toBe(3);
    expect(result).toMatchObject({ status: 'FAILED', error: 'Busy', cause: 'busy' });
  });

  it('applies retryIntervalMs to every Retry and gives the execution context', async () => {
    const def = {
      StartAt: 'T',
      States: {
        T: {
          Type: 'Task',
          Resource: fn('T'),
          Parameters: { 'id.$': '$$.Execution.Id', 'name.$': '$$.Execution.Name', 'role.$': '$$.Execution.RoleArn' },
          Retry: [{ ErrorEquals: ['Busy'], IntervalSeconds: 600, MaxAttempts: 1 }],
          End: true,
        },
      },
    };
    let calls = 0;
    // Watch the timers instead of the clock: the definition's 600 s interval is never waited.
    // (60 s timers are the task timeout the interpreter sets on every Task.)
    const timers = jest.spyOn(global, 'setTimeout');
    const result = await runStateMachine(
      def,
      {},
      {
        taskHandlers: {
          T: async (input: unknown) => {
            calls += 1;
            if (calls === 1) throw Object.assign(new Error('busy'), { name: 'Busy' });
            return input;
          },
        },
        newToken: () => 'unused',
        retryIntervalMs: 0,
        execution: { Id: 'arn:aws:states:us-east-1:123456789012:execution:M:run-7', Name: 'run-7', RoleArn: 'arn:role' },
      },
    );
    const longWaits = timers.mock.calls.filter(([, ms]) => ms === 600_000);
    timers.mockRestore();
    expect(calls).toBe(2);
    expect(longWaits).toEqual([]);
    expect(result).toMatchObject({
      status: 'SUCCEEDED',
      output: { id: 'arn:aws:states:us-east-1:123456789012:execution:M:run-7', name: 'run-7', role: 'arn:role' },
    });
  });

  it('gives a default execution name and id', async () => {
    const def = { StartAt: 'P', States: { P: { Type: 'Pass', Parameters: { 'id.$': '$$.Execution.Id', 'name.$': '$$.Execution.Name' }, End: true } } };
    const result = await runStateMachine(def, {}, { taskHandlers: {}, newToken: () => 'x' });
    expect(result.output.id).toBe(`arn:aws:states:us-east-1:123456789012:execution:LocalStateMachine:${result.output.name}`);
  });

  it('catches States.Timeout of a task token wait that is never completed', async () => {
    const def = {
      StartAt: 'Wait',
      States: {
        Wait: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: fn('W'), Payload: { 'token.$': '$$.Task.Token' } },
          TimeoutSeconds: 1,
          Catch: [{ ErrorEquals: ['States.Timeout'], ResultPath: '$.timeout', Next: 'After' }],
          End: true,
        },
        After: { Type: 'Pass', End: true },
      },
    };
    let token = '';
    const result = await runStateMachine(
      def,
      { a: 1 },
      {
        taskHandlers: {
          Wait: async (input: { Payload: { token: string } }) => {
            token = input.Payload.token;
            return tokens.wait(token);
          },
        },
        newToken: () => tokens.newToken(),
      },
    );
    expect(result).toMatchObject({ status: 'SUCCEEDED', output: { a: 1, timeout: { Error: 'States.Timeout' } } });
    // The runner closes the token, so a late completion gets what AWS answers.
    tokens.expire(token);
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' }))).rejects.toMatchObject({ name: 'TaskTimedOut' });
  });

  it('aborts on the abort signal', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timersBefore = timers();
    const controller = new AbortController();
    const def = { StartAt: 'Hang', States: { Hang: { Type: 'Task', Resource: fn('H'), TimeoutSeconds: 30, End: true } } };
    const running = runStateMachine(
      def,
      {},
      {
        taskHandlers: {
          Hang: () => {
            setTimeout(() => controller.abort(), 10);
            return new Promise(() => undefined);
          },
        },
        newToken: () => 'unused',
        abortSignal: controller.signal,
      },
    );
    await expect(running).resolves.toMatchObject({ status: 'ABORTED', eventCounts: { ExecutionAborted: 1 } });
    // The hanging task was settled, so its 30 s timeout timer does not hold the process open. The
    // count is process-wide: give a short-lived timer of something else a second to go.
    for (let i = 0; i < 50 && timers() > timersBefore; i++) await new Promise((r) => setTimeout(r, 20));
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });

  it('settles tasks still waiting when a sibling Map iteration fails, and never calls their handler again', async () => {
    const def = {
      StartAt: 'M',
      States: {
        M: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: {
            ProcessorConfig: { Mode: 'INLINE' },
            StartAt: 'Work',
            States: { Work: { Type: 'Task', Resource: fn('W'), TimeoutSeconds: 30, Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 3 }], End: true } },
          },
          End: true,
        },
      },
    };
    const calls: number[] = [];
    const result = await runStateMachine(
      def,
      { items: [0, 1] },
      {
        taskHandlers: {
          Work: async (item: number) => {
            calls.push(item);
            if (item === 0) throw Object.assign(new Error('bad item'), { name: 'BadItem' });
            return new Promise(() => undefined);
          },
        },
        newToken: () => 'x',
        retryIntervalMs: 0,
      },
    );
    expect(result).toMatchObject({ status: 'FAILED', error: 'BadItem' });
    // A retry at interval 0 runs on the next turns of the event loop: give it twenty turns
    // (a count, not a time) to show up.
    for (let turn = 0; turn < 20; turn++) await new Promise((r) => setImmediate(r));
    expect(calls.filter((c) => c === 1)).toHaveLength(1);
  });

  it('reports TIMED_OUT when the execution TimeoutSeconds elapses', async () => {
    const def = { TimeoutSeconds: 1, StartAt: 'Hang', States: { Hang: { Type: 'Task', Resource: fn('H'), TimeoutSeconds: 30, End: true } } };
    const result = await runStateMachine(def, {}, { taskHandlers: { Hang: () => new Promise(() => undefined) }, newToken: () => 'x' });
    expect(result).toMatchObject({ status: 'TIMED_OUT', error: 'States.Timeout' });
  });

  it('refuses to run a Task state without a local handler', async () => {
    await expect(runStateMachine(definition, {}, { taskHandlers: { Prepare: async () => ({}) }, newToken: () => 'x' })).rejects.toThrow(
      /No local handler for Task state\(s\): AcquireSlot, SubmitJob, ReconcileChunk, Finalize/,
    );
  });

  it('refuses an invalid definition', async () => {
    await expect(runStateMachine({ StartAt: 'Nope', States: {} }, {}, { taskHandlers: {}, newToken: () => 'x' })).rejects.toThrow(/invalid/);
  });
});

describe('normalizeDefinition', () => {
  it('removes ResultPath "$" from states and catchers, nested ones too, without touching the input', () => {
    const def = {
      StartAt: 'M',
      States: {
        M: {
          Type: 'Map',
          ResultPath: '$',
          Iterator: {
            StartAt: 'T',
            States: { T: { Type: 'Task', Resource: 'x', ResultPath: '$', Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$', Next: 'T' }], End: true } },
          },
          End: true,
        },
      },
    };
    const normalized = normalizeDefinition(def);
    expect(normalized.States.M).not.toHaveProperty('ResultPath');
    expect(normalized.States.M.Iterator.States.T).not.toHaveProperty('ResultPath');
    expect(normalized.States.M.Iterator.States.T.Catch[0]).not.toHaveProperty('ResultPath');
    expect(def.States.M.ResultPath).toBe('$');
  });

  it('makes ResultPath "$" replace the state input, as on AWS', async () => {
    const def = { StartAt: 'T', States: { T: { Type: 'Task', Resource: fn('T'), ResultPath: '$', End: true } } };
    const result = await runStateMachine(def, { old: true }, { taskHandlers: { T: async () => ({ fresh: true }) }, newToken: () => 'x' });
    expect(result.output).toEqual({ fresh: true });
  });
});

describe('interpreter differences documented in step-functions.ts', () => {
  const run = (def: object, input: unknown = { in: true }) => runStateMachine(def, input, { taskHandlers: {}, newToken: () => 'x' });

  it('ignores a falsy Pass Result (AWS would output it)', async () => {
    const result = await run({ StartAt: 'P', States: { P: { Type: 'Pass', Result: false, End: true } } });
    expect(result.output).toEqual({ in: true });
  });

  it('gives a Map iteration its own $$.Execution.Input but keeps $$.Execution.Name', async () => {
    const def = {
      StartAt: 'M',
      States: {
        M: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: {
            ProcessorConfig: { Mode: 'INLINE' },
            StartAt: 'P',
            States: { P: { Type: 'Pass', Parameters: { 'input.$': '$$.Execution.Input', 'name.$': '$$.Execution.Name' }, End: true } },
          },
          End: true,
        },
      },
    };
    const result = await runStateMachine(def, { items: ['a'] }, { taskHandlers: {}, newToken: () => 'x', execution: { Name: 'n1' } });
    expect(result.output).toEqual([{ input: 'a', name: 'n1' }]);
  });

  it('fails a Fail state without Cause with a default cause', async () => {
    const result = await run({ StartAt: 'F', States: { F: { Type: 'Fail', Error: 'Boom' } } });
    expect(result).toMatchObject({ status: 'FAILED', error: 'Boom', cause: 'Execution failed because of a Fail state' });
  });
});

describe('taskStateNames', () => {
  it('finds Task states in Map iterators and Parallel branches', () => {
    expect(
      taskStateNames({
        States: {
          A: { Type: 'Task' },
          P: { Type: 'Parallel', Branches: [{ States: { B: { Type: 'Task' } } }, { States: { C: { Type: 'Pass' } } }] },
          M: { Type: 'Map', Iterator: { States: { D: { Type: 'Task' } } } },
        },
      }),
    ).toEqual(['A', 'B', 'D']);
  });
});
