import { createHash } from 'node:crypto';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { REMAINDER_INCOMPLETE_ERROR, SLOT_UNAVAILABLE_ERROR, SLOT_WAIT_ATTEMPTS } from '../lambdas/shared/contracts';
import { acknowledgeNag, nagResourceFinding } from './nag';

/**
 * The workflow's state names, as in docs/ARCHITECTURE.md ("The workflow, state by state").
 * The local twin binds its task handlers by these names.
 */
export const WORKFLOW_STATES = {
  prepare: 'Prepare',
  hasMoreChunks: 'HasMoreChunks',
  nextWindow: 'NextWindow',
  processChunks: 'ProcessChunks',
  acquireSlot: 'AcquireSlot',
  submitJob: 'SubmitJob',
  reconcileChunk: 'ReconcileChunk',
  endRound: 'EndRound',
  moreRounds: 'MoreRounds',
  continued: 'Continued',
  continuedInSuccessor: 'ContinuedInSuccessor',
  finalize: 'Finalize',
  done: 'Done',
  finalizeFailed: 'FinalizeFailed',
  runFailed: 'RunFailed',
} as const;

export { SLOT_UNAVAILABLE_ERROR };

/** Bedrock CreateModelInvocationJob errors worth retrying the submit for. */
export const SUBMIT_RETRYABLE_ERRORS = ['ThrottlingException', 'ServiceQuotaExceededException', 'InternalServerException'];

/**
 * Bedrock's answers to CreateModelInvocationJob that a retry cannot change (a bad request, a
 * missing grant or model, a name in use): SubmitJob goes straight to its Catch on them.
 */
export const SUBMIT_FINAL_ERRORS = ['JobRefused', 'ValidationException', 'AccessDeniedException', 'ResourceNotFoundException', 'ConflictException'];

/** The error Prepare throws for an execution input that can never start a run: not retried. */
export const INVALID_RUN_INPUT_ERROR = 'InvalidRunInput';

/**
 * The last retrier of every plain task: a transient failure the function's SDK retries did not
 * absorb (a DynamoDB or S3 throttle, a network error) is tried again instead of failing the run.
 * `States.TaskFailed` matches every task error except `States.Timeout`; only the first retrier
 * whose errors match applies, so the specific retriers before it keep their own settings.
 */
export const TRANSIENT_TASK_RETRY = { errors: ['States.TaskFailed'], interval: Duration.seconds(5), backoffRate: 2, maxAttempts: 3 } as const;

/** The functions behind the workflow's tasks. */
export interface WorkflowFunctions {
  readonly prepare: lambda.IFunction;
  readonly nextWindow: lambda.IFunction;
  readonly acquireSlot: lambda.IFunction;
  readonly submitJob: lambda.IFunction;
  readonly reconcileChunk: lambda.IFunction;
  readonly endRound: lambda.IFunction;
  readonly finalize: lambda.IFunction;
}

/** Properties of {@link BatchWorkflow}. */
export interface BatchWorkflowProps {
  /** The functions behind the tasks. */
  readonly functions: WorkflowFunctions;
  /** MaxConcurrency of the chunk Map (one run never has more jobs in flight). */
  readonly maxConcurrentJobs: number;
  /** The Bedrock job timeout; SubmitJob waits this plus {@link jobWaitMarginHours}. */
  readonly jobTimeoutHours: number;
  /**
   * Extra hours SubmitJob waits beyond the job timeout, for validation and queueing time
   * before Bedrock's own clock starts and for a late event or sweep. @default 6
   */
  readonly jobWaitMarginHours?: number;
  /** Timeout of every plain task (they are Lambda invocations of at most 15 minutes). @default Duration.seconds(900) */
  readonly taskTimeout?: Duration;
  /** How long execution logs are kept. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Execution log level. @default sfn.LogLevel.ALL */
  readonly logLevel?: sfn.LogLevel;
  /**
   * Log state inputs and outputs too. The state payload holds run settings and counters,
   * never record text; off keeps logs small. @default false
   */
  readonly includeExecutionData?: boolean;
  /** X-Ray tracing of executions. @default true */
  readonly tracingEnabled?: boolean;
}

/**
 * The run workflow of docs/ARCHITECTURE.md as a standard Step Functions state machine:
 * Prepare -> windows of chunks through an inline Map (AcquireSlot -> SubmitJob, waiting for a
 * task token -> ReconcileChunk) -> EndRound -> more rounds or Finalize. JSONPath only, inline
 * Map, no JSONata, no variables: the local twin runs this exact definition.
 */
export class BatchWorkflow extends Construct {
  /** The state machine. */
  readonly stateMachine: sfn.StateMachine;
  /** Where executions log. */
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BatchWorkflowProps) {
    super(scope, id);
    const f = props.functions;
    const S = WORKFLOW_STATES;
    const taskTimeout = sfn.Timeout.duration(props.taskTimeout ?? Duration.seconds(900));

    /** A plain task: the function's return value is the result. */
    const invoke = (stateName: string, fn: lambda.IFunction, extra: Partial<tasks.LambdaInvokeJsonPathProps> = {}) =>
      tasks.LambdaInvoke.jsonPath(this, stateName, { lambdaFunction: fn, payloadResponseOnly: true, taskTimeout, ...extra });

    // --- top level -------------------------------------------------------------------------
    const prepare = invoke(S.prepare, f.prepare, {
      payload: sfn.TaskInput.fromObject({
        input: sfn.JsonPath.entirePayload,
        executionName: sfn.JsonPath.executionName,
        // The run claim records the execution that owns the run (lambdas/shared/run-claims.ts).
        executionArn: sfn.JsonPath.executionId,
        startTime: sfn.JsonPath.executionStartTime,
      }),
    });
    const hasMoreChunks = sfn.Choice.jsonPath(this, S.hasMoreChunks);
    // The execution's ARN lets NextWindow measure its history and start a successor before the
    // 25,000-event limit (see lambdas/next-window).
    const nextWindow = invoke(S.nextWindow, f.nextWindow, {
      payload: sfn.TaskInput.fromObject({
        run: sfn.JsonPath.objectAt('$.run'),
        round: sfn.JsonPath.objectAt('$.round'),
        executionArn: sfn.JsonPath.executionId,
      }),
    });
    const continued = sfn.Choice.jsonPath(this, S.continued);
    const continuedInSuccessor = sfn.Succeed.jsonPath(this, S.continuedInSuccessor, {
      comment: 'The run goes on in a successor execution (named <runId>-r<round>-c<chunk>-<8 random hex>), which finalizes it.',
    });
    const endRound = invoke(S.endRound, f.endRound);
    const moreRounds = sfn.Choice.jsonPath(this, S.moreRounds);
    const finalize = invoke(S.finalize, f.finalize, {
      payload: sfn.TaskInput.fromObject({
        run: sfn.JsonPath.objectAt('$.run'),
        outcome: 'Finished',
        executionName: sfn.JsonPath.executionName,
        executionArn: sfn.JsonPath.executionId,
      }),
    });
    const done = sfn.Succeed.jsonPath(this, S.done);
    const finalizeFailed = invoke(S.finalizeFailed, f.finalize, {
      payload: sfn.TaskInput.fromObject({
        state: sfn.JsonPath.entirePayload,
        outcome: 'Failed',
        executionName: sfn.JsonPath.executionName,
        executionArn: sfn.JsonPath.executionId,
      }),
    });
    // The cause is the run's own reason (the summary FinalizeFailed returns), so a refused
    // execution (a runId in use, a forged resume), whose summary is written nowhere, says why.
    const runFailed = sfn.Fail.jsonPath(this, S.runFailed, {
      error: 'RunFailed',
      causePath: '$.error.cause',
    });

    // --- one chunk, inside the Map ---------------------------------------------------------
    const acquireSlot = invoke(S.acquireSlot, f.acquireSlot, { resultPath: sfn.JsonPath.DISCARD });
    // Waits for a slot with backoff, a bounded number of times: every try costs 3 history events.
    acquireSlot.addRetry({
      errors: [SLOT_UNAVAILABLE_ERROR],
      interval: Duration.seconds(10),
      backoffRate: 2,
      maxDelay: Duration.minutes(5),
      jitterStrategy: sfn.JitterType.FULL,
      maxAttempts: SLOT_WAIT_ATTEMPTS,
    });

    const jobWaitHours = props.jobTimeoutHours + (props.jobWaitMarginHours ?? 6);
    const submitJob = tasks.LambdaInvoke.jsonPath(this, S.submitJob, {
      lambdaFunction: f.submitJob,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject({
        run: sfn.JsonPath.objectAt('$.run'),
        round: sfn.JsonPath.numberAt('$.round'),
        chunk: sfn.JsonPath.numberAt('$.chunk'),
        taskToken: sfn.JsonPath.taskToken,
      }),
      resultPath: '$.job',
      taskTimeout: sfn.Timeout.duration(Duration.hours(jobWaitHours)),
    });
    submitJob.addRetry({ errors: SUBMIT_RETRYABLE_ERRORS, interval: Duration.seconds(20), backoffRate: 2, maxAttempts: 8 });
    submitJob.addRetry({ errors: SUBMIT_FINAL_ERRORS, maxAttempts: 0 });
    // Any other failure of the handler (it died after creating the job and before recording its
    // ARN, a DynamoDB error) is run again: the submit is idempotent (same clientRequestToken, the
    // job comes back and its ARN is recorded). Without this the Catch would reconcile a chunk
    // with no known job while that job runs on, billed and outside the cap.
    submitJob.addRetry({ ...TRANSIENT_TASK_RETRY, errors: [...TRANSIENT_TASK_RETRY.errors] });

    const reconcileChunk = invoke(S.reconcileChunk, f.reconcileChunk, { resultPath: sfn.JsonPath.DISCARD });
    // Whatever ends the wait (job failure, timeout, exhausted retries), the chunk is reconciled:
    // its records become succeeded, failed or retryable; none is lost with the job.
    submitJob.addCatch(reconcileChunk, { errors: [sfn.Errors.ALL], resultPath: '$.jobError' });
    // A chunk that never got a slot gives up its turn: its records are retried next round.
    acquireSlot.addCatch(reconcileChunk, { errors: [SLOT_UNAVAILABLE_ERROR], resultPath: '$.jobError' });

    const processChunks = sfn.Map.jsonPath(this, S.processChunks, {
      itemsPath: '$.window.items',
      itemSelector: {
        run: sfn.JsonPath.objectAt('$.run'),
        round: sfn.JsonPath.numberAt('$.round.number'),
        chunk: sfn.JsonPath.numberAt('$$.Map.Item.Value.chunk'),
      },
      maxConcurrency: props.maxConcurrentJobs,
      resultPath: sfn.JsonPath.DISCARD,
    });
    processChunks.itemProcessor(acquireSlot.next(submitJob).next(reconcileChunk));

    // --- retries of the plain tasks ---------------------------------------------------------
    // After the specific retriers (CDK's Lambda service errors, AcquireSlot's SlotUnavailable),
    // which must come first: the first retrier that matches an error is the only one applied.
    // A bad execution input fails the same way every time: MaxAttempts 0 = never retried.
    prepare.addRetry({ errors: [INVALID_RUN_INPUT_ERROR], maxAttempts: 0 });
    // An on-demand remainder longer than one invocation: each attempt settles its first 4 calls.
    const remainderRetry = { errors: [REMAINDER_INCOMPLETE_ERROR], interval: Duration.seconds(1), backoffRate: 1, maxAttempts: 25 };
    for (const task of [prepare, endRound]) task.addRetry(remainderRetry);
    // (SubmitJob has its own, above.)
    for (const task of [prepare, nextWindow, acquireSlot, reconcileChunk, endRound, finalize, finalizeFailed]) {
      task.addRetry({ ...TRANSIENT_TASK_RETRY, errors: [...TRANSIENT_TASK_RETRY.errors] });
    }

    // --- wiring ----------------------------------------------------------------------------
    prepare.next(hasMoreChunks);
    hasMoreChunks.when(sfn.Condition.booleanEquals('$.round.hasMoreChunks', true), nextWindow).otherwise(endRound);
    nextWindow.next(continued);
    continued.when(sfn.Condition.booleanEquals('$.continued', true), continuedInSuccessor).otherwise(processChunks);
    processChunks.next(hasMoreChunks);
    endRound.next(moreRounds);
    moreRounds.when(sfn.Condition.booleanEquals('$.done', true), finalize).otherwise(hasMoreChunks);
    finalize.next(done);
    finalizeFailed.next(runFailed);
    // Every top-level state that can fail (the Map fails when an iteration does) ends the run
    // through FinalizeFailed, so a failed run still gets its summary.
    for (const state of [prepare, nextWindow, processChunks, endRound, finalize]) {
      state.addCatch(finalizeFailed, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
    }

    // Under /aws/vendedlogs/ so CloudWatch Logs' resource policy does not grow per state machine.
    // Destroyed with the stack: its name is fixed, and a retained group would block a re-deploy.
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: executionLogGroupName(this),
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(prepare),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'bedrock-batch run: prepare, submit chunks under the global job cap, reconcile, resubmit, finalize',
      logs: {
        destination: this.logGroup,
        level: props.logLevel ?? sfn.LogLevel.ALL,
        includeExecutionData: props.includeExecutionData ?? false,
      },
      tracingEnabled: props.tracingEnabled ?? true,
    });

    const taskFunctions = [...new Set(Object.values(f))];
    acknowledgeNag(
      this.stateMachine.role,
      'AwsSolutions-IAM5',
      "CDK grants lambda:InvokeFunction on each task function and on its versions and aliases (<function ARN>:*); only the workflow's own functions are listed.",
      taskFunctions.map((fn) => nagResourceFinding(this, `${fn.functionArn}:*`)),
    );
    acknowledgeNag(
      this.stateMachine.role,
      'AwsSolutions-IAM5',
      'X-Ray PutTraceSegments/PutTelemetryRecords/GetSampling* and the CloudWatch Logs delivery actions (CreateLogDelivery, PutResourcePolicy, ...) support no resource-level permissions; AWS requires "*".',
      ['Resource::*'],
    );
  }
}

/**
 * The execution log group's name: `/aws/vendedlogs/states/<stack name>-<construct path in the
 * stack>`, e.g. `/aws/vendedlogs/states/BedrockBatch-Workflow` or `.../MyStack-Tickets/Workflow`,
 * so two pipelines in one stack never share it. CDK's hidden `Default` ids are left out, as in
 * logical ids. Characters a log group name may not hold become `-`, and a hash of the path is then
 * added so that two paths cannot end up with one name.
 */
export function executionLogGroupName(workflow: Construct): string {
  const stack = Stack.of(workflow);
  const components = workflow.node.scopes
    .slice(stack.node.scopes.length)
    .map((c) => c.node.id)
    .filter((c) => c !== 'Default');
  const path = components.join('/');
  const safe = path.replace(/[^A-Za-z0-9._/#-]/g, '-');
  const suffix = safe === path ? '' : `-${createHash('sha256').update(path).digest('hex').slice(0, 8)}`;
  return `/aws/vendedlogs/states/${stack.stackName}-${safe}${suffix}`;
}
