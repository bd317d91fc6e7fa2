/**
 * The local twin: the CloudFormation template synthesized from the CDK stack, run on this
 * machine. Local S3 (s3rver), DynamoDB (dynalite), the Bedrock emulator, a Step Functions API
 * and an event bus start in-process on loopback (twin/services.ts); the synthesized state
 * machine runs in aws-local-stepfunctions with every Task bound to its function
 * (twin/task-bindings.ts) and every rule routed to its target (twin/rule-bindings.ts). Each
 * invocation runs the real handler code in a Lambda sandbox of its own, a worker thread with the
 * function's environment, memory and time limit (twin/lambda-runtime.ts); the handlers reach
 * the local services only through `AWS_ENDPOINT_URL_<SERVICE>`.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { PipelineConfig } from '../lib/pipeline-config';
import type { RunSummary } from '../lambdas/finalize/finalize';
import { invocationKey, seededCrashPlan, type CrashPlan } from './crash-plan';
import type { AccountQuotas, BedrockEmulator, EmulatorStats, FaultSpec } from './emulator';
import type { LocalEventBus } from './services/event-bus';
import { runStateMachine, type ExecutionResult } from './services/step-functions';
import { MAX_HISTORY_EVENTS } from './services/history-events';
import { StepFunctionsError, type StartExecutionRequest } from './services/step-functions-api';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './services/fake-arns';
import { executionCalls } from './twin/execution-calls';
import { describeEvent, executionStatusEvent, objectCreatedEvent, scheduledEvent } from './twin/events';
import { stateOutput, taskResult } from './twin/payload-limits';
import { RunProgress } from './twin/progress';
import { bindRules, ruleTargetInput, type BoundRules } from './twin/rule-bindings';
import { startTwinServices, stopServices, type TwinServices } from './twin/services';
import type { AccessReport } from './twin/access-checks';
import type { LambdaRuntimeStats } from './twin/lambda-runtime';
import { copyFaultStats, countCrash, newFaultStats, type TwinFaultStats } from './twin/fault-stats';
import { taskHandlers, type LocalFunction } from './twin/task-bindings';
import type { CfnTemplate } from './services/template-intrinsics';

/** Retry pauses of the workflow, in ms, instead of the definition's seconds. */
const RETRY_INTERVAL_MS = 20;
/**
 * AcquireSlot's pause in ms: its tries are bounded (SLOT_WAIT_ATTEMPTS), so the twin's wait for
 * a slot must be long enough, in all, to outlast a few emulated jobs (40 x 250 ms = 10 s).
 */
const SLOT_RETRY_INTERVAL_MS = 250;

export interface TwinOptions {
  /** The pipeline configuration the stack is synthesized with (unless `template` is given). */
  readonly config?: PipelineConfig;
  /**
   * The emulated account's quotas, over the model catalog's defaults: what the Bedrock emulator
   * enforces and the twin's Service Quotas serves. Never the pipeline's own settings.
   */
  readonly accountQuotas?: AccountQuotas;
  /** The template to run instead of `config`'s (e.g. with a grant removed). @default synthesized from `config` */
  readonly template?: CfnTemplate;
  readonly faults?: FaultSpec;
  readonly seed?: number;
  /** Which invocations die after which write (crash-plan.ts), instead of `handler-crash`'s seeded plan. */
  readonly crashPlan?: CrashPlan;
  /** Duration of each emulated job status step. @default 20 */
  readonly stepDelayMs?: number;
  /** Called with one-line progress reports. */
  readonly progress?: (line: string) => void;
  /** The handlers' Powertools log level (the template says INFO). @default 'SILENT' */
  readonly logLevel?: string;
  /** A function's time limit in the twin as a fraction of its `Timeout`. @default LAMBDA_TIME_SCALE (0.1) */
  readonly lambdaTimeScale?: number;
  /** Lambda sandboxes alive at once (lambda-runtime.ts). @default 10 */
  readonly maxSandboxes?: number;
}

/** One execution of the state machine in the twin. */
export interface TwinExecution {
  readonly name: string;
  /** History events so far, counted as AWS counts them (services/history-events.ts). */
  events: number;
  readonly arn: string;
  readonly input: unknown;
  readonly startDate: Date;
  result?: ExecutionResult;
  readonly done: Promise<ExecutionResult>;
  /** Stops the execution, as StopExecution does. */
  readonly abort: AbortController;
}

/** The twin's running services and the executions started in it. */
export class LocalTwin {
  readonly executions = new Map<string, TwinExecution>();
  readonly bucket: string;
  readonly s3: S3Client;
  readonly emulator: BedrockEmulator;
  readonly bus: LocalEventBus;
  /** Whether S3 announces a dropped file on EventBridge (the bucket's setting), or why the twin cannot tell. */
  readonly sendsObjectEvents: boolean | Error;
  private readonly rules: BoundRules;
  /** Invocations so far by function and event key: the attempt number of the next one. */
  private readonly invocationCounts = new Map<string, number>();
  private readonly crashPlan: CrashPlan | undefined;
  private readonly progress?: RunProgress;
  /** Handler invocations under way, awaited by {@link stop}. */
  private readonly inFlight = new Set<Promise<unknown>>();

  private constructor(
    private readonly services: TwinServices,
    private readonly faultCounts: TwinFaultStats,
    options: TwinOptions,
  ) {
    ({ bucket: this.bucket, s3: this.s3, emulator: this.emulator, bus: this.bus, objectEvents: this.sendsObjectEvents } = services);
    const rate = options.faults?.['handler-crash'] ?? 0;
    this.crashPlan = options.crashPlan ?? (rate > 0 ? seededCrashPlan(rate, options.seed ?? 1) : undefined);
    if (options.progress) this.progress = new RunProgress(options.progress);
    this.rules = bindRules(services.rules, services.functions, services.bus, {
      call: (fn, event) => this.call(fn, event),
      track: (invocation) => this.track(invocation),
    });
  }

  /** Starts every local service and binds the template's functions, rules and workflow. */
  static async start(options: TwinOptions): Promise<LocalTwin> {
    const faultCounts = newFaultStats();
    // Assigned once the services run: the Step Functions API answers `StateMachineDoesNotExist` until then.
    let twin: LocalTwin | undefined;
    const services = await startTwinServices(options, {
      onDuplicateDelivery: () => void (faultCounts.duplicateInvocation += 1),
      onCrash: (crash) => countCrash(faultCounts, crash),
      stepFunctions: executionCalls(() => twin),
    });
    try {
      twin = new LocalTwin(services, faultCounts, options);
      return twin;
    } catch (err) {
      await stopServices(services.stops);
      throw err;
    }
  }

  /** Every AWS call the handlers made, checked against their roles' policies (`access.json`). */
  accessReport(): AccessReport {
    return this.services.access.report();
  }

  /** The state machine's ARN. */
  get stateMachineArn(): string {
    return this.services.stateMachineArn;
  }

  /** The job table's name and where each service listens: what `local up` writes to `endpoints.json`. */
  get endpoints(): TwinServices['endpoints'] & { readonly tableName: string } {
    return { ...this.services.endpoints, tableName: this.services.tableName };
  }

  /** Starts an execution of the state machine, as `StartExecution` does. */
  startExecution(req: Omit<StartExecutionRequest, 'stateMachineArn'>): { executionArn: string; startDate: Date } {
    const name = req.name ?? `exec-${Date.now()}-${this.executions.size + 1}`;
    if (this.executions.has(name)) throw new StepFunctionsError('ExecutionAlreadyExists', `Execution Already Exists: '${name}'`);
    const arn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:${this.stateMachineArn.split(':').pop()}:${name}`;
    const input = req.input ? JSON.parse(req.input) : {};
    const startDate = new Date();
    const abort = new AbortController();
    const execution: TwinExecution = {
      name,
      events: 0,
      arn,
      input,
      startDate,
      abort,
      done: runStateMachine(this.services.definition, input, {
        abortSignal: abort.signal,
        taskHandlers: taskHandlers(this.services.definition, {
          invoke: (state, functionArn, payload) => this.invoke(state, functionArn, payload),
          waitForToken: (token) => this.services.stepFunctions.wait(token),
          closeToken: (token) => this.services.stepFunctions.expire(token),
        }),
        newToken: () => this.services.stepFunctions.newToken(),
        execution: { Id: arn, Name: name, StartTime: startDate.toISOString(), RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/local` },
        retryIntervalMs: RETRY_INTERVAL_MS,
        retryIntervalOverrides: { AcquireSlot: SLOT_RETRY_INTERVAL_MS },
        onStateExited: stateOutput,
        onEvent: (_, historyEvents) => void (execution.events = historyEvents),
        maxHistoryEvents: MAX_HISTORY_EVENTS,
      }).then((result) => {
        // The execution is over, and with it every task it ran: a late SendTaskSuccess on one of
        // its tokens answers TaskTimedOut, as on AWS (completed tokens are left as they are).
        for (const token of result.issuedTokens) this.services.stepFunctions.expire(token);
        execution.result = result;
        // Step Functions announces a stopped execution on the default bus (the stop-run rule's source).
        if (result.status === 'ABORTED') this.bus.publish(executionStatusEvent(execution, this.stateMachineArn, 'ABORTED', req.input ?? '{}'));
        return result;
      }),
    };
    this.executions.set(name, execution);
    return { executionArn: arn, startDate };
  }

  /** Stops a running execution, as `StopExecution` (or the console's Stop button) does. */
  stopExecution(name: string): void {
    const execution = this.executions.get(name);
    if (!execution) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${name}'`);
    execution.abort.abort();
  }

  /** Uploads a file to `inbox/<route>/` and, if the bucket sends events, announces it as S3 would (`Object Created`). */
  async drop(file: string, route = 'default', key = `inbox/${route}/${basename(file)}`): Promise<string> {
    if (this.sendsObjectEvents instanceof Error) throw this.sendsObjectEvents;
    const size = (await stat(file)).size;
    const put = await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(file), ContentLength: size }));
    if (this.sendsObjectEvents) this.bus.publish(objectCreatedEvent(this.bucket, key, size, put.ETag ?? ''));
    return `s3://${this.bucket}/${key}`;
  }

  /** Uploads a local file without announcing it (for console-style starts). */
  async upload(file: string, key: string): Promise<string> {
    const size = (await stat(file)).size;
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(file), ContentLength: size }));
    return `s3://${this.bucket}/${key}`;
  }

  /**
   * Fires the nightly schedule of `route`, as its cron rule would: a `Scheduled Event` whose
   * `time` is `at`, passed through the rule target's input transformer. Firing twice with the
   * same `at` is a redelivery of one tick.
   */
  async sweep(route: string, at: Date = new Date()): Promise<unknown> {
    const fired = this.rules.cronTargets
      .map((t) => ({ ...t, input: ruleTargetInput(t.target, scheduledEvent(t.ruleId, at)) }))
      .find((t) => (t.input as { sweep?: { route?: string } } | undefined)?.sweep?.route === route);
    if (!fired) throw new Error(`no nightly schedule for route ${route} in the template`);
    return this.call(fired.fn, fired.input);
  }

  /** Waits until every execution started so far (and any they start) has finished. */
  async settle(): Promise<TwinExecution[]> {
    for (;;) {
      await this.bus.drain();
      const pending = [...this.executions.values()].filter((e) => !e.result);
      if (pending.length === 0) break;
      await Promise.all(pending.map((e) => e.done));
    }
    return [...this.executions.values()];
  }

  /** The emulator's counters. */
  emulatorStats(): EmulatorStats {
    return this.emulator.stats();
  }

  /** What the Lambda sandboxes did (invocations, cold starts, timeouts ...). */
  lambdaStats(): LambdaRuntimeStats {
    return this.services.lambda.stats();
  }

  /** What the twin's own faults did (`handler-crash`, `duplicate-invocation`). */
  faultStats(): TwinFaultStats {
    return copyFaultStats(this.faultCounts);
  }

  /** Stops every service. */
  async stop(): Promise<void> {
    for (const t of this.rules.timers) clearInterval(t);
    // A handler still running (an aborted execution's task, a sweep) must not outlive the
    // services it calls: let every invocation finish before they close.
    await this.bus.drain();
    await Promise.allSettled([...this.inFlight]);
    await stopServices(this.services.stops);
    this.s3.destroy();
  }

  /**
   * One invocation of a function, in a sandbox as Lambda runs it: under the \`handler-crash\`
   * fault it may die after one of its writes. Its identity for that decision is the function,
   * the event's stable key and how many times this function has had this event before (the attempt).
   */
  private call(fn: LocalFunction, event: unknown): Promise<unknown> {
    if (!this.crashPlan) return this.services.lambda.invoke(fn, event);
    const eventKey = invocationKey(event);
    const countKey = `${fn.name}\u0000${eventKey}`;
    const attempt = (this.invocationCounts.get(countKey) ?? 0) + 1;
    this.invocationCounts.set(countKey, attempt);
    const identity = { functionName: fn.name, eventKey, attempt, subject: describeEvent(event) };
    const after = this.crashPlan(identity);
    return this.services.lambda.invoke(fn, event, after === undefined ? undefined : { after, identity });
  }

  private track<T>(invocation: Promise<T>): Promise<T> {
    this.inFlight.add(invocation);
    const forget = () => this.inFlight.delete(invocation);
    invocation.then(forget, forget);
    return invocation;
  }

  /** A Task state's invocation of a function: JSON in and out, as Lambda's boundary is. */
  private async invoke(state: string, functionArn: string, payload: unknown): Promise<unknown> {
    const fn = this.services.functions.get(functionArn.replace(/:\$LATEST$/, ''));
    if (!fn) throw new StepFunctionsError('Lambda.ResourceNotFoundException', `${state}: no local handler for ${functionArn}`);
    const result = await this.track(this.call(fn, payload ?? null));
    const out = taskResult(functionArn, result);
    this.progress?.report(state, out);
    return out;
  }
}

export type { RunSummary, TwinFaultStats };
