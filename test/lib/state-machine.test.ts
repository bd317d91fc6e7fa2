import { SLOT_WAIT_ATTEMPTS } from '../../lambdas/shared/contracts';
import { INVALID_RUN_INPUT_ERROR, SLOT_UNAVAILABLE_ERROR, SUBMIT_FINAL_ERRORS, SUBMIT_RETRYABLE_ERRORS, WORKFLOW_STATES } from '../../lib/state-machine';
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
/** An on-demand remainder that did not fit one invocation: retried at once, each attempt going on from the last. */
const REMAINDER_RETRY = { ErrorEquals: ['RemainderIncomplete'], IntervalSeconds: 1, BackoffRate: 1, MaxAttempts: 25 };
const fnArn = (id: string) => `arn:aws:lambda:${FAKE.region}:${FAKE.account}:function:${id}`;

/** One synthesis for the whole file (maxConcurrentJobs 7, jobTimeoutHours 48); no test changes it. */
const { template } = buildStack();

describe('BatchWorkflow definition', () => {
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
    expect(SUBMIT_FINAL_ERRORS).toEqual(['JobRefused', 'ValidationException', 'AccessDeniedException', 'ResourceNotFoundException', 'ConflictException']);
  });

  test('every plain task retries a transient failure (States.TaskFailed, 5 s, backoff 2, 3 attempts) after its specific retriers', () => {
    const specific: Record<string, any[]> = {
      Prepare: [LAMBDA_SERVICE_RETRY, { ErrorEquals: [INVALID_RUN_INPUT_ERROR], MaxAttempts: 0 }, REMAINDER_RETRY],
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
      EndRound: [LAMBDA_SERVICE_RETRY, REMAINDER_RETRY],
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

describe('BatchWorkflow resource', () => {
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
