/**
 * Runs an Amazon States Language definition locally with aws-local-stepfunctions 3.0.0, every
 * Task bound to a local handler, `$$.Task.Token` supplied by the caller's token issuer.
 *
 * What the interpreter does with the constructs our workflow uses (checked in
 * test/local/services/step-functions.integration.test.ts):
 * - works as on AWS: Task, Pass, Choice (incl. `NumericLessThanPath` and the other `...Path`
 *   comparisons, `IsPresent`, `And`), Succeed, Fail (`Error`/`Cause` and `ErrorPath`/`CausePath`),
 *   inline Map (`ItemsPath`, `ItemSelector` with `$$.Map.Item.Value`/`Index`, `ItemProcessor`
 *   or `Iterator`, `MaxConcurrency` honoured), `Parameters`, `ResultSelector`, `ResultPath`
 *   (incl. `null` = discard), `OutputPath`, intrinsic functions, Retry on a custom error name
 *   with `retryIntervalOverrides`, Catch with `ResultPath`, `States.TaskFailed`, `States.ALL`,
 *   Task `TimeoutSeconds` (fails with `States.Timeout`).
 * - Retry, as on AWS: only the first retrier whose `ErrorEquals` matches applies (an exhausted
 *   one does not fall through to a later one); `MaxAttempts: 0` never retries;
 *   `MaxDelaySeconds` and `JitterStrategy: "FULL"` are honoured (the workflow's AcquireSlot
 *   retrier uses both). The twin overrides every retry interval anyway (`retryIntervalMs`,
 *   `retryIntervalOverrides`): an overridden wait is still capped by `MaxDelaySeconds` but not
 *   jittered, so neither changes how the twin runs.
 * - differs from AWS:
 *   - a Task without `TimeoutSeconds` times out after 60 s (AWS: never);
 *   - `ResultPath: "$"` (state or catcher) writes a key named `$` instead of replacing the
 *     input: {@link normalizeDefinition} removes it, which means the same;
 *   - a Pass state's `Result` that is falsy (`false`, `0`, `""`, `null`) is ignored and the
 *     input passes through;
 *   - inside a Map iteration `$$.Execution.Input` and `$$.Execution.StartTime` are the
 *     iteration's, not the execution's (`$$.Execution.Name` and other context given in
 *     `context` stay);
 *   - a Fail state without `Cause` fails with cause `Execution failed because of a Fail state`;
 *   - a caught error's `Cause` is the thrown Error's `message` (a Lambda on AWS gives a JSON
 *     text `{errorType, errorMessage, trace}`);
 *   - `HeartbeatSeconds` is ignored; JSONata, `Assign` and Distributed Map are not supported
 *     (see docs/TOOLCHAIN.md);
 *   - aborting stops the workflow, not the task handlers already running.
 * - task tokens: the interpreter has none; `$$.Task.Token` evaluates the getter this module puts
 *   in the run's context, once per evaluation of the Parameters (so once per task attempt).
 */
import { randomUUID } from 'node:crypto';
import type {
  ExecutionAbortedError as ExecutionAbortedErrorClass,
  ExecutionError as ExecutionErrorClass,
  ExecutionTimeoutError as ExecutionTimeoutErrorClass,
  StateMachine as StateMachineClass,
} from 'aws-local-stepfunctions';
import { installPromiseWithResolvers, installStateExitHook, STATE_EXITED, type StateExitCheck } from './interpreter-patches';
import { forEachState } from './asl-states';
import { HistoryCounter } from './history-events';

// aws-local-stepfunctions 3 declares Node >= 22 and calls Promise.withResolvers in every Task;
// on Node 20 it must exist before the library is loaded.
installPromiseWithResolvers();

// eslint-disable-next-line @typescript-eslint/no-require-imports
const asl = require('aws-local-stepfunctions') as {
  StateMachine: typeof StateMachineClass;
  ExecutionError: typeof ExecutionErrorClass;
  ExecutionAbortedError: typeof ExecutionAbortedErrorClass;
  ExecutionTimeoutError: typeof ExecutionTimeoutErrorClass;
};
installStateExitHook(asl.StateMachine);

/** A local stand-in for a Task state: gets the evaluated Parameters, returns the raw result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskHandler = (input: any) => Promise<any>;

/** One entry of the interpreter's event log (`type` is e.g. `StateEntered`, `MapIterationStarted`). */
export interface ExecutionEvent {
  readonly type: string;
  readonly timestamp: number;
  readonly [key: string]: unknown;
}

/** Options of {@link runStateMachine}. */
export interface RunStateMachineOptions {
  /**
   * A handler for every Task state, by state name (Map iterations included). A Task without
   * one would make the interpreter call real AWS Lambda, so the run refuses to start.
   */
  readonly taskHandlers: Record<string, TaskHandler>;
  /** Issues a task token; called each time a state's Parameters read `$$.Task.Token`. */
  readonly newToken: () => string;
  /** Milliseconds to wait before each retry, by state name (one number, or one per retrier). */
  readonly retryIntervalOverrides?: Record<string, number | number[]>;
  /**
   * Milliseconds to wait before every retry of every state that has a `Retry`, unless
   * `retryIntervalOverrides` names the state. @default the definition's own intervals
   */
  readonly retryIntervalMs?: number;
  /** Milliseconds a Wait state waits, by state name. */
  readonly waitTimeOverrides?: Record<string, number>;
  /** Aborts the execution (status `ABORTED`); running task handlers are not interrupted. */
  readonly abortSignal?: AbortSignal;
  /**
   * Context object fields, e.g. `{ Execution: { Name, Id }, StateMachine: { Id, Name } }`.
   * The interpreter sets `Execution.Input` and `Execution.StartTime` itself; `Task` is ours.
   * @default `{ Execution: { Name: <random UUID>, Id: <fake execution ARN with that name> } }`
   */
  readonly context?: Record<string, unknown>;
  /**
   * Shorthand for `context.Execution` (merged over it), e.g. `{ Id, Name, RoleArn }`.
   * `StartTime` is always set by the interpreter to the moment the run starts.
   */
  readonly execution?: Record<string, unknown>;
  /**
   * Checks each state's output as the state ends, before the next begins (Map iterations
   * included); what it throws fails the state (see interpreter-patches.ts).
   */
  readonly onStateExited?: StateExitCheck;
  /** Sees each event of the execution's event log as it happens, with the AWS history events so far (history-events.ts). */
  readonly onEvent?: (event: ExecutionEvent, historyEvents: number) => void;
  /**
   * Fails the execution as Step Functions does when its history would pass this many events
   * (counted as AWS counts them: history-events.ts): `States.Runtime`. @default no limit
   */
  readonly maxHistoryEvents?: number;
  /** Validate the definition with asl-validator before running. @default true */
  readonly validate?: boolean;
}

/** How an execution ended. */
export interface RunStateMachineResult {
  /** `TIMED_OUT` when the definition's top-level `TimeoutSeconds` elapsed. */
  readonly status: 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';
  /** The execution's output, when it succeeded. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly output?: any;
  /** Error name, when it failed (e.g. `States.TaskFailed`, a handler's Error `name`) or timed out. */
  readonly error?: string;
  /** Error cause, when it failed. */
  readonly cause?: string;
  /** Number of events in the interpreter's event log (not the same as AWS history events). */
  readonly eventCount: number;
  /** The events AWS's history would hold (history-events.ts). */
  readonly historyEvents: number;
  /** Events of the log by type. */
  readonly eventCounts: Record<string, number>;
  /**
   * Task tokens issued to this execution, in order. When it did not succeed, some may still
   * be open: the caller may expire them so late completions answer `TaskTimedOut`.
   */
  readonly issuedTokens: string[];
}

/** Alias of {@link RunStateMachineResult}. */
export type ExecutionResult = RunStateMachineResult;

/**
 * Runs a state machine definition to its end with local task handlers.
 *
 * @param definition - an ASL definition (JSONPath), e.g. from `stateMachineDefinition()`;
 *   it is normalized with {@link normalizeDefinition} first
 * @param input - the execution input
 * @throws Error when a Task state has no handler or the definition is invalid; an execution
 *   that fails is not thrown but returned with status `FAILED`
 */
export async function runStateMachine(definition: object, input: unknown, opts: RunStateMachineOptions): Promise<RunStateMachineResult> {
  const normalized = normalizeDefinition(definition);
  const unbound = taskStateNames(normalized).filter((name) => !opts.taskHandlers[name]);
  if (unbound.length > 0) throw new Error(`No local handler for Task state(s): ${unbound.join(', ')}`);

  const machine = new asl.StateMachine(normalized as never, {
    validationOptions: opts.validate === false ? { noValidate: true } : { checkArn: true, checkPaths: true },
  });
  const newToken = opts.newToken;
  const issuedTokens: string[] = [];
  // When the execution ends (aborted, timed out, failed in a sibling Map iteration), tasks may
  // still be waiting; the interpreter keeps each one's TimeoutSeconds timer (hours for a job
  // wait) until the handler settles, which would hold the process open. Settle them at the end.
  // The interpreter also goes on retrying in aborted branches: never call a handler once ended.
  const endedError = Object.assign(new Error('The execution has ended'), { name: 'ExecutionEnded' });
  let hasEnded = false;
  let endRun!: () => void;
  const ended = new Promise<never>((_, reject) => {
    endRun = () => {
      hasEnded = true;
      reject(endedError);
    };
  });
  ended.catch(() => undefined);
  const handlers = Object.fromEntries(
    Object.entries(opts.taskHandlers).map(([name, handler]) => [
      name,
      (input: unknown) => (hasEnded ? Promise.reject(endedError) : Promise.race([handler(input), ended])),
    ]),
  );
  const contextExecution = { ...(opts.context?.Execution as Record<string, unknown> | undefined), ...opts.execution };
  const executionName = typeof contextExecution.Name === 'string' ? contextExecution.Name : randomUUID();
  const execution = machine.run(input as never, {
    ...(opts.onStateExited ? { [STATE_EXITED]: opts.onStateExited } : {}),
    overrides: {
      taskResourceLocalHandlers: handlers as never,
      retryIntervalOverrides: retryOverrides(normalized, opts),
      waitTimeOverrides: opts.waitTimeOverrides,
    },
    context: {
      ...opts.context,
      // AWS always has these; a definition reading $$.Execution.Name fails without them.
      Execution: {
        Name: executionName,
        Id: `arn:aws:states:us-east-1:123456789012:execution:LocalStateMachine:${executionName}`,
        ...contextExecution,
      },
      // A getter, so every task (attempt) that reads $$.Task.Token gets its own token.
      Task: {
        get Token() {
          const token = newToken();
          issuedTokens.push(token);
          return token;
        },
      },
    },
  });

  const eventCounts: Record<string, number> = {};
  let eventCount = 0;
  const history = new HistoryCounter(definition, opts.maxHistoryEvents);
  const drained = (async () => {
    for await (const event of execution.eventLogs) {
      eventCount += 1;
      eventCounts[event.type] = (eventCounts[event.type] ?? 0) + 1;
      if (history.add(event as unknown as ExecutionEvent)) execution.abort();
      opts.onEvent?.(event as unknown as ExecutionEvent, history.events);
    }
  })();

  const onAbort = (): void => execution.abort();
  if (opts.abortSignal?.aborted) onAbort();
  else opts.abortSignal?.addEventListener('abort', onAbort, { once: true });

  let outcome: Omit<RunStateMachineResult, 'eventCount' | 'historyEvents' | 'eventCounts' | 'issuedTokens'>;
  try {
    outcome = { status: 'SUCCEEDED', output: await execution.result };
  } catch (err) {
    if (err instanceof asl.ExecutionAbortedError) {
      outcome = history.failure ?? { status: 'ABORTED' };
    } else if (err instanceof asl.ExecutionTimeoutError) {
      outcome = { status: 'TIMED_OUT', error: 'States.Timeout', cause: 'The execution timed out' };
    } else if (err instanceof asl.ExecutionError) {
      const cause = (err as Error).cause;
      outcome =
        cause instanceof Error
          ? { status: 'FAILED', error: cause.name, cause: cause.message }
          : { status: 'FAILED', error: 'States.Runtime', cause: String(cause) };
    } else {
      throw err;
    }
  } finally {
    opts.abortSignal?.removeEventListener('abort', onAbort);
    endRun();
  }
  await drained;
  return { ...outcome, eventCount, historyEvents: history.events, eventCounts, issuedTokens };
}

type Json = Record<string, unknown>;

function retryOverrides(definition: object, opts: RunStateMachineOptions): Record<string, number | number[]> | undefined {
  if (opts.retryIntervalMs === undefined) return opts.retryIntervalOverrides;
  const all: Record<string, number | number[]> = {};
  forEachState(definition as Json, (state, name) => {
    if (Array.isArray(state.Retry)) all[name] = opts.retryIntervalMs!;
  });
  return { ...all, ...opts.retryIntervalOverrides };
}

/**
 * Rewrites a definition around the interpreter's gaps without changing its meaning on AWS:
 * removes `ResultPath: "$"` from states and catchers (the default, which the interpreter
 * mishandles). Returns a copy; nested Map and Parallel definitions included.
 */
export function normalizeDefinition<T extends object>(definition: T): T {
  const copy = JSON.parse(JSON.stringify(definition)) as Json;
  forEachState(copy, (state) => {
    if (state.ResultPath === '$') delete state.ResultPath;
    for (const catcher of (state.Catch as Json[] | undefined) ?? []) {
      if (catcher.ResultPath === '$') delete catcher.ResultPath;
    }
  });
  return copy as T;
}

/** Names of every Task state, Map iterations and Parallel branches included. */
export function taskStateNames(definition: object): string[] {
  const names: string[] = [];
  forEachState(definition as Json, (state, name) => {
    if (state.Type === 'Task') names.push(name);
  });
  return names;
}
