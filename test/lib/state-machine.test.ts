import { SLOT_WAIT_ATTEMPTS } from '../../lambdas/shared/contracts';
import { INVALID_RUN_INPUT_ERROR, SLOT_UNAVAILABLE_ERROR, SUBMIT_FINAL_ERRORS, SUBMIT_RETRYABLE_ERRORS, WORKFLOW_STATES } from '../../lib/state-machine';
import { runStateMachine, type TaskHandler } from '../../local/services/step-functions';
import { allStates, buildStack, FAKE, functionIdOf, onlyResource, workflowDefinition } from './helpers';

const S = WORKFLOW_STATES;
/** CDK's default Retry of every Lambda task (retryOnServiceExceptions). */
const LAMBDA_SERVICE_RETRY = {
  ErrorEquals: ['Lambda.ClientExecutionTimeoutException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException'],
  IntervalSeconds: 2,
  MaxAttempts: 6,
  BackoffRate: 2,
};
const TRANSIENT_RETRY = { ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 5, BackoffRate: 2, MaxAttempts: 3 };
const fnArn = (id: string) => `arn:aws:lambda:${FAKE.region}:${FAKE.account}:function:${id}`;

describe('BatchWorkflow definition', () => {
  const { template } = buildStack(); // maxConcurrentJobs 7, jobTimeoutHours 48
  const definition = workflowDefinition(template);
  const states = allStates(definition);
  const top = definition.States as Record<string, any>;
  const inner = top[S.processChunks].ItemProcessor.States as Record<string, any>;
  const fn = (name: string) => fnArn(functionIdOf(template, name));

  test('has exactly the states of docs/ARCHITECTURE.md, at the right level', () => {
    expect(definition.StartAt).toBe('Prepare');
    expect(Object.keys(top).sort()).toEqual(
      [
        'Prepare',
        'HasMoreChunks',
        'NextWindow',
        'Continued',
        'ContinuedInSuccessor',
        'ProcessChunks',
        'EndRound',
        'MoreRounds',
        'Finalize',
        'Done',
        'FinalizeFailed',
        'RunFailed',
      ].sort(),
    );
    expect(Object.keys(inner).sort()).toEqual(['AcquireSlot', 'SubmitJob', 'ReconcileChunk'].sort());
    expect(top[S.processChunks].ItemProcessor.StartAt).toBe('AcquireSlot');
    expect(Object.values(S).sort()).toEqual(Object.keys(states).sort());
  });

  test('JSONPath only: no JSONata, no variables, no distributed map or ItemReader', () => {
    const text = JSON.stringify(definition);
    expect(definition.QueryLanguage).toBeUndefined();
    expect(text).not.toMatch(/JSONata/i);
    expect(text).not.toContain('{%');
    expect(text).not.toContain('"Assign"');
    expect(text).not.toContain('"Arguments"');
    expect(text).not.toContain('"Output"');
    expect(text).not.toContain('ItemReader');
    expect(text).not.toContain('DISTRIBUTED');
    expect(top[S.processChunks].ItemProcessor.ProcessorConfig).toEqual({ Mode: 'INLINE' });
  });

  test('every Task has a timeout: 900 s, SubmitJob the job timeout plus 6 hours', () => {
    const tasks = Object.entries(states).filter(([, s]) => s.Type === 'Task');
    expect(tasks.map(([n]) => n).sort()).toEqual(
      ['Prepare', 'NextWindow', 'AcquireSlot', 'SubmitJob', 'ReconcileChunk', 'EndRound', 'Finalize', 'FinalizeFailed'].sort(),
    );
    for (const [name, state] of tasks) {
      expect(state.TimeoutSeconds).toBe(name === S.submitJob ? (48 + 6) * 3600 : 900);
    }
  });

  test('plain tasks invoke their function directly (payload response only)', () => {
    const expected: Record<string, string> = {
      Prepare: 'prepare',
      NextWindow: 'next-window',
      AcquireSlot: 'acquire-slot',
      ReconcileChunk: 'reconcile-chunk',
      EndRound: 'end-round',
      Finalize: 'finalize',
      FinalizeFailed: 'finalize',
    };
    for (const [state, handler] of Object.entries(expected)) expect(states[state].Resource).toBe(fn(handler));
  });

  test('Prepare gets the input with the execution name, ARN (for the run claim) and start time; its result is the state', () => {
    expect(top.Prepare.Parameters).toEqual({
      'input.$': '$',
      'executionName.$': '$$.Execution.Name',
      'executionArn.$': '$$.Execution.Id',
      'startTime.$': '$$.Execution.StartTime',
    });
    expect(top.Prepare.ResultPath).toBeUndefined();
    expect(top.Prepare.Next).toBe('HasMoreChunks');
  });

  test('HasMoreChunks and MoreRounds branch on the documented fields', () => {
    expect(top.HasMoreChunks).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.round.hasMoreChunks', BooleanEquals: true, Next: 'NextWindow' }],
      Default: 'EndRound',
    });
    expect(top.MoreRounds).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.done', BooleanEquals: true, Next: 'Finalize' }],
      Default: 'HasMoreChunks',
    });
  });

  test('EndRound takes the whole state and returns the next one', () => {
    expect(top.EndRound.Parameters).toBeUndefined();
    expect(top.EndRound.ResultPath).toBeUndefined();
    expect(top.EndRound.Next).toBe('MoreRounds');
  });

  test('NextWindow gets the run, the round and its execution ARN; a hand-over to a successor ends the execution', () => {
    expect(top.NextWindow.Parameters).toEqual({ 'run.$': '$.run', 'round.$': '$.round', 'executionArn.$': '$$.Execution.Id' });
    expect(top.NextWindow.ResultPath).toBeUndefined();
    expect(top.NextWindow.Next).toBe('Continued');
    expect(top.Continued.Choices).toEqual([{ Variable: '$.continued', BooleanEquals: true, Next: 'ContinuedInSuccessor' }]);
    expect(top.Continued.Default).toBe('ProcessChunks');
    expect(top.ContinuedInSuccessor.Type).toBe('Succeed');
  });

  test('ProcessChunks maps the window under the cap and discards its result', () => {
    expect(top.ProcessChunks).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.window.items',
      ItemSelector: { 'run.$': '$.run', 'round.$': '$.round.number', 'chunk.$': '$$.Map.Item.Value.chunk' },
      MaxConcurrency: 7,
      ResultPath: null,
      Next: 'HasMoreChunks',
    });
  });

  test('AcquireSlot waits for a slot with capped, jittered backoff a bounded number of times, then gives the chunk up to the next round', () => {
    expect(inner.AcquireSlot.ResultPath).toBeNull();
    expect(inner.AcquireSlot.Next).toBe('SubmitJob');
    const retry = (inner.AcquireSlot.Retry as any[]).find((r) => r.ErrorEquals.includes(SLOT_UNAVAILABLE_ERROR));
    expect(retry).toEqual({
      ErrorEquals: ['SlotUnavailable'],
      IntervalSeconds: 10,
      BackoffRate: 2,
      MaxDelaySeconds: 300,
      JitterStrategy: 'FULL',
      MaxAttempts: SLOT_WAIT_ATTEMPTS,
    });
    expect(inner.AcquireSlot.Catch).toEqual([{ ErrorEquals: ['SlotUnavailable'], ResultPath: '$.jobError', Next: 'ReconcileChunk' }]);
  });

  test('SubmitJob waits for a task token and puts the job outcome in $.job', () => {
    expect(inner.SubmitJob).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: {
        FunctionName: fn('submit-job'),
        Payload: { 'run.$': '$.run', 'round.$': '$.round', 'chunk.$': '$.chunk', 'taskToken.$': '$$.Task.Token' },
      },
      ResultPath: '$.job',
      Next: 'ReconcileChunk',
    });
  });

  test('SubmitJob retries Bedrock throttling and quota errors, and reconciles on any error', () => {
    const retry = (inner.SubmitJob.Retry as any[]).find((r) => r.ErrorEquals.includes('ThrottlingException'));
    expect(retry).toEqual({ ErrorEquals: SUBMIT_RETRYABLE_ERRORS, IntervalSeconds: 20, BackoffRate: 2, MaxAttempts: 8 });
    expect(SUBMIT_RETRYABLE_ERRORS).toEqual(['ThrottlingException', 'ServiceQuotaExceededException', 'InternalServerException']);
    expect(inner.SubmitJob.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.jobError', Next: 'ReconcileChunk' }]);
  });

  test('SubmitJob retries a crashed or failed handler (it is idempotent), but not a create Bedrock refuses for good', () => {
    // A handler that died after creating the job but before recording its ARN must run again:
    // the same clientRequestToken gives the job back and the ARN is recorded (otherwise the
    // Catch reconciles a chunk whose job runs on, billed, outside the cap, never stopped).
    expect(inner.SubmitJob.Retry).toEqual([
      LAMBDA_SERVICE_RETRY,
      { ErrorEquals: SUBMIT_RETRYABLE_ERRORS, IntervalSeconds: 20, BackoffRate: 2, MaxAttempts: 8 },
      { ErrorEquals: SUBMIT_FINAL_ERRORS, MaxAttempts: 0 },
      TRANSIENT_RETRY,
    ]);
    expect(SUBMIT_FINAL_ERRORS).toEqual(['ValidationException', 'AccessDeniedException', 'ResourceNotFoundException', 'ConflictException']);
  });

  test('every plain task retries a transient failure (States.TaskFailed, 5 s, backoff 2, 3 attempts) after its specific retriers', () => {
    const specific: Record<string, any[]> = {
      Prepare: [LAMBDA_SERVICE_RETRY, { ErrorEquals: [INVALID_RUN_INPUT_ERROR], MaxAttempts: 0 }],
      NextWindow: [LAMBDA_SERVICE_RETRY],
      AcquireSlot: [
        LAMBDA_SERVICE_RETRY,
        {
          ErrorEquals: ['SlotUnavailable'],
          IntervalSeconds: 10,
          BackoffRate: 2,
          MaxDelaySeconds: 300,
          JitterStrategy: 'FULL',
          MaxAttempts: SLOT_WAIT_ATTEMPTS,
        },
      ],
      ReconcileChunk: [LAMBDA_SERVICE_RETRY],
      EndRound: [LAMBDA_SERVICE_RETRY],
      Finalize: [LAMBDA_SERVICE_RETRY],
      FinalizeFailed: [LAMBDA_SERVICE_RETRY],
    };
    for (const [name, retriers] of Object.entries(specific)) {
      // Exactly in this order: only the first retrier that matches an error applies.
      expect({ name, retry: states[name].Retry }).toEqual({ name, retry: [...retriers, TRANSIENT_RETRY] });
    }
    // A bad execution input is deterministic: never retried (Step Functions allows MaxAttempts 0).
    expect(INVALID_RUN_INPUT_ERROR).toBe('InvalidRunInput');
  });

  test('ReconcileChunk ends the iteration and its result is discarded', () => {
    expect(inner.ReconcileChunk).toMatchObject({ End: true, ResultPath: null });
    expect(inner.ReconcileChunk.Parameters).toBeUndefined();
  });

  test('every top-level task (and the Map) fails into FinalizeFailed with the error in $.error', () => {
    for (const name of ['Prepare', 'NextWindow', 'ProcessChunks', 'EndRound', 'Finalize']) {
      expect(top[name].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'FinalizeFailed' }]);
    }
    expect(inner.ReconcileChunk.Catch).toBeUndefined();
  });

  test('Finalize and FinalizeFailed call finalize with the documented payloads', () => {
    expect(top.Finalize.Parameters).toEqual({
      'run.$': '$.run',
      outcome: 'Finished',
      'executionName.$': '$$.Execution.Name',
      'executionArn.$': '$$.Execution.Id',
    });
    expect(top.Finalize.Next).toBe('Done');
    expect(top.Done).toEqual({ Type: 'Succeed' });
    // The execution name gives a run that failed before Prepare resolved its config its run id.
    expect(top.FinalizeFailed.Parameters).toEqual({
      'state.$': '$',
      outcome: 'Failed',
      'executionName.$': '$$.Execution.Name',
      'executionArn.$': '$$.Execution.Id',
    });
    expect(top.FinalizeFailed.Next).toBe('RunFailed');
    expect(top.FinalizeFailed.Catch).toBeUndefined();
    // The run's own reason is the execution's cause (a refused execution writes no summary).
    expect(top.RunFailed).toEqual({ Type: 'Fail', Error: 'RunFailed', CausePath: '$.error.cause' });
  });
});

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

describe('BatchWorkflow resource', () => {
  const { template } = buildStack();

  test('standard workflow, logs everything to its log group, traced', () => {
    const { resource } = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    expect(resource.Properties.StateMachineType).toBe('STANDARD');
    expect(resource.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(resource.Properties.LoggingConfiguration).toMatchObject({
      Level: 'ALL',
      IncludeExecutionData: false,
      Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [expect.stringMatching(/^WorkflowLogs/), 'Arn'] } } }],
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/TestStack-Workflow',
      RetentionInDays: 30,
    });
  });

  test('the role may invoke only the workflow functions', () => {
    const { resource } = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    const roleId = resource.Properties.RoleArn['Fn::GetAtt'][0];
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement as any[]);
    const invoke = statements.filter((s) => s.Action === 'lambda:InvokeFunction');
    const invoked = new Set(invoke.flatMap((s) => s.Resource).map((r: any) => (r['Fn::GetAtt'] ?? r['Fn::Join'][1][0]['Fn::GetAtt'])[0]));
    const expected = ['prepare', 'next-window', 'acquire-slot', 'submit-job', 'reconcile-chunk', 'end-round', 'finalize'].map((n) => functionIdOf(template, n));
    expect([...invoked].sort()).toEqual(expected.sort());
  });
});
