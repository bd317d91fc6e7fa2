/**
 * The local twin: the CloudFormation template synthesized from the CDK stack, run on this
 * machine. Local S3 (s3rver), DynamoDB (dynalite), the Bedrock emulator, a task-token endpoint
 * and an event bus start in-process on loopback; the synthesized state machine runs in
 * aws-local-stepfunctions with every Task bound to the real handler code; the handlers reach
 * the local services only through `AWS_ENDPOINT_URL_<SERVICE>`.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { PipelineConfig } from '../lib/pipeline-config';
import type { RunSummary } from '../lambdas/finalize/finalize';
import { CrashInjector, invocationKey, seededCrashPlan, type CrashRecord } from './crash-injector';
import { BedrockEmulator, type AccountQuotas, type EmulatorStats, type FaultSpec } from './emulator';
import { FaultDecider } from './emulator/faults';
import { LocalServiceQuotas } from './services/service-quotas';
import { startLocalDynamo, createTablesFromTemplate } from './services/dynamodb';
import { LocalEventBus, type BusEvent } from './services/event-bus';
import { localS3ClientConfig, startLocalS3 } from './services/s3';
import { runStateMachine, type ExecutionResult } from './services/step-functions';
import { StepFunctionsError, TaskTokenService, type StartExecutionRequest } from './services/task-tokens';
import {
  eventRules,
  fakeResolver,
  lambdaFunctions,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  stateMachineDefinition,
  type CfnTemplate,
  type TemplateRuleTarget,
} from './services/template';
import { cachedPipelineTemplate } from './template-cache';

/** How the twin's clock is sped up: a `rate(5 minutes)` schedule runs every 300 ms. */
const SCHEDULE_SPEEDUP = 1000;
/** Retry pauses of the workflow, in ms, instead of the definition's seconds. */
const RETRY_INTERVAL_MS = 20;
/**
 * AcquireSlot's pause in ms: its tries are bounded (SLOT_WAIT_ATTEMPTS), so the twin's wait for
 * a slot must be long enough, in all, to outlast a few emulated jobs (40 x 250 ms = 10 s).
 */
const SLOT_RETRY_INTERVAL_MS = 250;

export interface TwinOptions {
  /** The pipeline configuration the stack is synthesized with. */
  readonly config: PipelineConfig;
  /**
   * The emulated account's quotas, over the model catalog's defaults: what the Bedrock emulator
   * enforces and the twin's Service Quotas serves. Never the pipeline's own settings.
   */
  readonly accountQuotas?: AccountQuotas;
  readonly faults?: FaultSpec;
  readonly seed?: number;
  /** Duration of each emulated job status step. @default 20 */
  readonly stepDelayMs?: number;
  /** Called with one-line progress reports. */
  readonly progress?: (line: string) => void;
  /** The handlers' Powertools log level (the template says INFO). @default 'SILENT' */
  readonly logLevel?: string;
}

/** One execution of the state machine in the twin. */
export interface TwinExecution {
  readonly name: string;
  /** History events so far (the local interpreter's event log, coarser than AWS's history). */
  events: number;
  readonly arn: string;
  readonly input: unknown;
  readonly startDate: Date;
  result?: ExecutionResult;
  readonly done: Promise<ExecutionResult>;
  /** Stops the execution, as StopExecution does. */
  readonly abort: AbortController;
}

type Handler = (event: unknown) => Promise<unknown>;

/** A template function bound to its handler code. */
interface LocalFunction {
  /** The handler name, `lambdas/<name>/handler.ts`. */
  readonly name: string;
  readonly handler: Handler;
}

/** What the twin's own faults (`handler-crash`, `duplicate-invocation`) did. */
export interface TwinFaultStats {
  /** Invocations crashed after one of their writes. */
  handlerCrash: number;
  /** Rule deliveries made twice. */
  duplicateInvocation: number;
  /** Crashes by where they happened: `<function> after write <n> (<operation>)` -> count. */
  crashPoints: Record<string, number>;
  /** Every crash in order: where, and what the invocation was about. */
  crashes: Array<{ point: string; attempt: number; subject: string }>;
}

/** The twin's running services and the executions started in it. */
export class LocalTwin {
  readonly executions = new Map<string, TwinExecution>();
  private sweepTimers: NodeJS.Timeout[] = [];
  /** Targets of cron schedules (the nightly sweeps), run on request by {@link sweep}. */
  private readonly cronTargets: Array<{ ruleId: string; target: TemplateRuleTarget; handler: Handler }> = [];
  private readonly progressByRun = new Map<string, { round: number; chunks: number; reconciled: number }>();
  /** Invocations so far by function and event key: the attempt number of the next one. */
  private readonly invocationCounts = new Map<string, number>();
  private readonly faultCounts: TwinFaultStats = { handlerCrash: 0, duplicateInvocation: 0, crashPoints: {}, crashes: [] };
  private readonly crashes?: CrashInjector;

  private constructor(
    readonly bucket: string,
    readonly s3: S3Client,
    readonly emulator: BedrockEmulator,
    readonly bus: LocalEventBus,
    private readonly tokens: TaskTokenService,
    private readonly definition: Record<string, unknown>,
    private readonly stateMachineArn: string,
    private readonly handlers: Map<string, LocalFunction>,
    private readonly stops: Array<() => Promise<void>>,
    private readonly options: TwinOptions,
  ) {
    const rate = options.faults?.['handler-crash'] ?? 0;
    if (rate > 0) this.crashes = new CrashInjector(seededCrashPlan(rate, options.seed ?? 1), (crash) => this.countCrash(crash));
  }

  /** Starts every local service and binds the template's functions, rules and workflow. */
  static async start(options: TwinOptions): Promise<LocalTwin> {
    const template = cachedPipelineTemplate(options.config) as CfnTemplate;
    const resources = template.Resources ?? {};
    const bucketId = Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::S3::Bucket' && !/log/i.test(id));
    const tableId = Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::DynamoDB::Table');
    if (!bucketId || !tableId) throw new Error('the synthesized template has no drop bucket or job table');
    const bucket = 'bedrock-batch-local';
    const table = 'bedrock-batch-jobs';
    const resolve = fakeResolver(template, { names: { [bucketId]: bucket, [tableId]: table } });

    const stops: Array<() => Promise<void>> = [];
    const stopAll = async () => {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
    };
    try {
      const dataDir = await mkdtemp(join(tmpdir(), 'bedrock-batch-s3-'));
      stops.push(() => rm(dataDir, { recursive: true, force: true }));
      const s3Server = await startLocalS3({ directory: dataDir, buckets: [bucket] });
      stops.push(() => s3Server.stop());
      const dynamo = await startLocalDynamo();
      stops.push(() => dynamo.stop());
      const ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
      await createTablesFromTemplate(template, ddb, (id) => (id === tableId ? table : id));
      ddb.destroy();

      const s3 = new S3Client(localS3ClientConfig(s3Server.endpoint));
      // duplicate-invocation: a rule target gets the same event twice, each delivery on its own.
      const duplicates = new FaultDecider(options.faults, options.seed ?? 1);
      // Assigned once the twin is built (below); the closures that read it are made before that.
      // eslint-disable-next-line prefer-const
      let twinForBus: LocalTwin | undefined;
      const bus = new LocalEventBus(LOCAL_ACCOUNT, LOCAL_REGION, {
        copies: (rule, event) => {
          if (duplicates.rate('duplicate-invocation') === 0 || !duplicates.fires('duplicate-invocation', rule, invocationKey(event))) return 1;
          if (twinForBus) twinForBus.faultCounts.duplicateInvocation += 1;
          return 2;
        },
      });
      const busEndpoint = await bus.start();
      stops.push(() => bus.stop());
      // Assigned once the twin is built (below); the callbacks that read it are made before that.
      // eslint-disable-next-line prefer-const
      let twin: LocalTwin | undefined;
      const executionByArn = (arn: string) => [...(twin?.executions.values() ?? [])].find((e) => e.arn === arn);
      const tokens = new TaskTokenService({
        onStartExecution: async (req) => {
          if (!twin) throw new StepFunctionsError('StateMachineDoesNotExist', 'the twin is starting');
          return twin.startExecution(req);
        },
        onDescribeExecution: async (req) => {
          const execution = executionByArn(req.executionArn);
          if (!execution) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${req.executionArn}'`);
          return {
            executionArn: execution.arn,
            stateMachineArn: twin!.stateMachineArn,
            name: execution.name,
            status: execution.result?.status ?? 'RUNNING',
            startDate: execution.startDate,
            input: JSON.stringify(execution.input),
          };
        },
        onGetExecutionHistory: async (req) => {
          const execution = executionByArn(req.executionArn);
          if (!execution) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${req.executionArn}'`);
          // The newest event only (what next-window asks for): its id is the history length.
          return { events: [{ id: execution.events, type: 'LocalEvent', timestamp: new Date() }] };
        },
      });
      const tokenEndpoint = await tokens.start();
      stops.push(() => tokens.stop());
      const emulator = new BedrockEmulator({
        s3,
        region: LOCAL_REGION,
        accountId: LOCAL_ACCOUNT,
        ...(options.accountQuotas ? { accountQuotas: options.accountQuotas } : {}),
        ...(options.faults ? { faults: options.faults } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        stepDelayMs: options.stepDelayMs ?? 20,
        onEvent: (event) => bus.publish(event as unknown as BusEvent),
      });
      const bedrockEndpoint = await emulator.start();
      stops.push(() => emulator.stop());
      const serviceQuotas = new LocalServiceQuotas({ region: LOCAL_REGION, accountId: LOCAL_ACCOUNT, accountQuotas: options.accountQuotas ?? {} });
      const serviceQuotasEndpoint = await serviceQuotas.start();
      stops.push(() => serviceQuotas.stop());

      // What a deployed function has: its template environment, plus endpoints for the SDK.
      const functions = lambdaFunctions(template, resolve);
      const environment: Record<string, string> = {};
      for (const fn of functions) Object.assign(environment, fn.environment);
      Object.assign(process.env, environment, {
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
        AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
        AWS_ENDPOINT_URL_S3: s3Server.endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        AWS_ENDPOINT_URL_BEDROCK: bedrockEndpoint.endpoint,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockEndpoint.endpoint,
        AWS_ENDPOINT_URL_SFN: tokenEndpoint.endpoint,
        AWS_ENDPOINT_URL_EVENTBRIDGE: busEndpoint.endpoint,
        AWS_ENDPOINT_URL_SERVICE_QUOTAS: serviceQuotasEndpoint.endpoint,
        POWERTOOLS_LOG_LEVEL: options.logLevel ?? 'SILENT',
      });

      const handlers = new Map<string, LocalFunction>();
      for (const fn of functions) handlers.set(fn.arn, { name: fn.handlerName, handler: loadHandler(fn.handlerName) });

      const machineId = Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::StepFunctions::StateMachine')!;
      const stateMachineArn = resolve({ Ref: machineId });
      const definition = stateMachineDefinition(template, resolve);

      twin = new LocalTwin(bucket, s3, emulator, bus, tokens, definition, stateMachineArn, handlers, stops, options);
      twinForBus = twin;
      twin.bindRules(eventRules(template, resolve));
      return twin;
    } catch (err) {
      await stopAll();
      throw err;
    }
  }

  /** Routes the template's event rules: patterns through the bus, rate schedules on a fast clock. */
  private bindRules(rules: ReturnType<typeof eventRules>): void {
    for (const rule of rules) {
      if (rule.state !== 'ENABLED') continue;
      for (const target of rule.targets) {
        const fn = this.handlers.get(target.arn);
        if (!fn) continue;
        if (rule.eventPattern) {
          this.bus.addRule({
            name: rule.logicalId,
            eventPattern: rule.eventPattern,
            deliver: async (event) => void (await this.call(fn, ruleTargetInput(target, event))),
          });
        }
        const rate = rule.scheduleExpression ? parseRateMs(rule.scheduleExpression) : undefined;
        if (rule.scheduleExpression && rate === undefined) {
          this.cronTargets.push({ ruleId: rule.logicalId, target, handler: fn.handler });
        }
        if (rate !== undefined) {
          // Nightly cron rules are not run by the clock: sweeps are started on request (sweep()).
          const timer = setInterval(
            () => {
              // Nothing waits for a tick (stop() does, through track()); a failed tick is dropped, as
              // the rule fires again at the next one.
              void this.track(this.call(fn, ruleTargetInput(target, scheduledEvent(rule.logicalId)))).catch(() => undefined);
            },
            Math.max(50, rate / SCHEDULE_SPEEDUP),
          );
          timer.unref();
          this.sweepTimers.push(timer);
        }
      }
    }
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
      done: runStateMachine(this.definition, input, {
        abortSignal: abort.signal,
        taskHandlers: this.taskHandlers(),
        newToken: () => this.tokens.newToken(),
        execution: { Id: arn, Name: name, StartTime: startDate.toISOString(), RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/local` },
        retryIntervalMs: RETRY_INTERVAL_MS,
        retryIntervalOverrides: { AcquireSlot: SLOT_RETRY_INTERVAL_MS },
        onEvent: () => {
          execution.events += 1;
        },
      }).then((result) => {
        execution.result = result;
        // Step Functions announces a stopped execution on the default bus (the stop-run rule's source).
        if (result.status === 'ABORTED') this.bus.publish(this.executionStatusEvent(execution, 'ABORTED', req.input ?? '{}'));
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

  private executionStatusEvent(execution: TwinExecution, status: string, input: string): BusEvent {
    return busEvent('aws.states', 'Step Functions Execution Status Change', [execution.arn], {
      executionArn: execution.arn,
      stateMachineArn: this.stateMachineArn,
      name: execution.name,
      status,
      startDate: execution.startDate.getTime(),
      stopDate: Date.now(),
      input,
      output: null,
    });
  }

  /** Uploads a local file to `inbox/<route>/` and announces it as S3 would (`Object Created`). */
  async drop(file: string, route = 'default', key = `inbox/${route}/${basename(file)}`): Promise<string> {
    const size = (await stat(file)).size;
    const put = await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(file), ContentLength: size }));
    this.bus.publish(objectCreatedEvent(this.bucket, key, size, put.ETag ?? ''));
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
    const fired = this.cronTargets
      .map((t) => ({ ...t, input: ruleTargetInput(t.target, scheduledEvent(t.ruleId, at)) }))
      .find((t) => (t.input as { sweep?: { route?: string } } | undefined)?.sweep?.route === route);
    if (!fired) throw new Error(`no nightly schedule for route ${route} in the template`);
    return fired.handler(fired.input);
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

  /** What the twin's own faults did (`handler-crash`, `duplicate-invocation`). */
  faultStats(): TwinFaultStats {
    return { ...this.faultCounts, crashPoints: { ...this.faultCounts.crashPoints }, crashes: [...this.faultCounts.crashes] };
  }

  private countCrash(crash: CrashRecord): void {
    this.faultCounts.handlerCrash += 1;
    const point = `${crash.functionName} after write ${crash.afterWrite} (${crash.operation})`;
    this.faultCounts.crashPoints[point] = (this.faultCounts.crashPoints[point] ?? 0) + 1;
    this.faultCounts.crashes.push({ point, attempt: crash.attempt, subject: crash.subject ?? '' });
  }

  /**
   * One invocation of a function, as Lambda runs it: under the \`handler-crash\` fault it may
   * die after one of its writes. Its identity for that decision is the function, the event's
   * stable key and how many times this function has had this event before (the attempt).
   */
  private call(fn: LocalFunction, event: unknown): Promise<unknown> {
    if (!this.crashes) return fn.handler(event);
    const eventKey = invocationKey(event);
    const countKey = `${fn.name}\u0000${eventKey}`;
    const attempt = (this.invocationCounts.get(countKey) ?? 0) + 1;
    this.invocationCounts.set(countKey, attempt);
    return this.crashes.run({ functionName: fn.name, eventKey, attempt, subject: describeEvent(event) }, () => fn.handler(event));
  }

  /** Stops every service. */
  async stop(): Promise<void> {
    for (const t of this.sweepTimers) clearInterval(t);
    // A handler still running (an aborted execution's task, a sweep) must not outlive the
    // services it calls: let every invocation finish before they close.
    await this.bus.drain();
    await Promise.allSettled([...this.inFlight]);
    for (const stop of this.stops.reverse()) await stop().catch(() => undefined);
    this.crashes?.uninstall();
    this.s3.destroy();
  }

  /** Task state name -> local handler, playing each Task's resource as AWS would. */
  private taskHandlers(): Record<string, (input: unknown) => Promise<unknown>> {
    const out: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [name, state] of taskStates(this.definition)) {
      const resource = String(state.Resource ?? '');
      out[name] = async (input: unknown) => {
        const params = (input ?? {}) as { FunctionName?: string; Payload?: unknown };
        if (resource === 'arn:aws:states:::lambda:invoke') {
          const payload = await this.invoke(name, String(params.FunctionName), params.Payload);
          return { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
        }
        if (resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken') {
          const token = (params.Payload as { taskToken?: string } | undefined)?.taskToken;
          if (!token) throw new StepFunctionsError('States.Runtime', `${name}: the payload carries no taskToken`);
          await this.invoke(name, String(params.FunctionName), params.Payload);
          return this.tokens.wait(token);
        }
        return this.invoke(name, resource, input);
      };
    }
    return out;
  }

  /** Handler invocations under way, awaited by {@link stop}. */
  private readonly inFlight = new Set<Promise<unknown>>();

  private track<T>(invocation: Promise<T>): Promise<T> {
    this.inFlight.add(invocation);
    invocation.then(
      () => this.inFlight.delete(invocation),
      () => this.inFlight.delete(invocation),
    );
    return invocation;
  }

  private async invoke(state: string, functionArn: string, payload: unknown): Promise<unknown> {
    const fn = this.handlers.get(functionArn.replace(/:\$LATEST$/, ''));
    if (!fn) throw new StepFunctionsError('Lambda.ResourceNotFoundException', `${state}: no local handler for ${functionArn}`);
    // A Lambda invocation crosses a JSON boundary both ways.
    const result = await this.track(this.call(fn, JSON.parse(JSON.stringify(payload ?? null))));
    const out = result === undefined ? null : JSON.parse(JSON.stringify(result));
    this.reportProgress(state, out);
    return out;
  }

  private reportProgress(state: string, out: unknown): void {
    const progress = this.options.progress;
    if (!progress) return;
    const o = out as { run?: { runId: string }; round?: { number: number; chunkCount: number }; done?: boolean } | null;
    if ((state === 'Prepare' || state === 'EndRound') && o?.run && o.round) {
      if (state === 'EndRound' && o.done) return;
      this.progressByRun.set(o.run.runId, { round: o.round.number, chunks: o.round.chunkCount, reconciled: 0 });
      progress(`${o.run.runId}: round ${o.round.number}, ${o.round.chunkCount} job(s) to run`);
    } else if (state === 'ReconcileChunk') {
      for (const [runId, p] of this.progressByRun) {
        if (p.reconciled < p.chunks) {
          p.reconciled += 1;
          progress(`${runId}: round ${p.round}, ${p.reconciled}/${p.chunks} job(s) reconciled`);
          break;
        }
      }
    }
  }
}

/** What an invocation's event is about, in a few words (for crash reports). */
function describeEvent(event: unknown): string {
  const e = (event ?? {}) as {
    run?: { runId?: string };
    round?: number | { number?: number };
    chunk?: number;
    'detail-type'?: string;
    detail?: { status?: string; batchJobArn?: string; object?: { key?: string } };
    sweep?: { route?: string };
  };
  if (e['detail-type'] !== undefined) {
    const d = e.detail ?? {};
    return [e['detail-type'], d.batchJobArn?.split('/').pop(), d.status, d.object?.key].filter((p) => p !== undefined).join(' ');
  }
  const round = typeof e.round === 'number' ? e.round : e.round?.number;
  return [
    e.run?.runId !== undefined ? `run ${e.run.runId}` : undefined,
    round !== undefined ? `round ${round}` : undefined,
    e.chunk !== undefined ? `chunk ${e.chunk}` : undefined,
    e.sweep ? 'sweep' : undefined,
  ]
    .filter((p) => p !== undefined)
    .join(' ');
}

/** The handler function of `lambdas/<name>/handler.ts`, loaded once. */
function loadHandler(name: string): Handler {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad handler name in template metadata: ${name}`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(join(__dirname, '..', 'lambdas', name, 'handler')) as { handler?: Handler };
  if (typeof mod.handler !== 'function') throw new Error(`lambdas/${name}/handler has no exported handler`);
  return mod.handler;
}

/** Every Task state of a definition, Map and Parallel branches included. */
function taskStates(definition: Record<string, unknown>): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = [];
  const walk = (states: Record<string, Record<string, unknown>> | undefined) => {
    for (const [name, state] of Object.entries(states ?? {})) {
      if (state.Type === 'Task') out.push([name, state]);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States?: Record<string, Record<string, unknown>> } | undefined;
      walk(processor?.States);
      for (const branch of (state.Branches as Array<{ States?: Record<string, Record<string, unknown>> }> | undefined) ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, Record<string, unknown>>);
  return out;
}

/** `rate(5 minutes)` -> 300000; undefined for cron expressions. */
export function parseRateMs(expression: string): number | undefined {
  const m = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!m) return undefined;
  const unit = m[2]!.startsWith('minute') ? 60_000 : m[2]!.startsWith('hour') ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}

/** An event in EventBridge's envelope, as an AWS service puts it on the default bus. */
function busEvent(source: string, detailType: string, resources: string[], detail: unknown): BusEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': detailType,
    source,
    account: LOCAL_ACCOUNT,
    time: new Date().toISOString(),
    region: LOCAL_REGION,
    resources,
    detail,
  };
}

/** The event EventBridge sends a scheduled rule's targets. */
function scheduledEvent(ruleId: string, at: Date = new Date()): BusEvent {
  const event = busEvent('aws.events', 'Scheduled Event', [`arn:aws:events:${LOCAL_REGION}:${LOCAL_ACCOUNT}:rule/${ruleId}`], {});
  return { ...event, time: at.toISOString() };
}

/** The value at a JSONPath of the simple form EventBridge targets use (`$`, `$.a.b`). */
function eventPath(event: unknown, path: string): unknown {
  if (!/^\$(\.[A-Za-z0-9_-]+)*$/.test(path)) throw new Error(`the twin supports only $.a.b paths in rule targets (got ${path})`);
  let value: unknown = event;
  for (const part of path.split('.').slice(1)) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  return value;
}

/**
 * What EventBridge gives a rule target for `event`: its constant `Input`, the part at its
 * `InputPath`, its `InputTransformer` applied (a placeholder `<name>` becomes the JSON value at
 * `InputPathsMap.name`, so a string placed unquoted in a JSON template arrives quoted), or the
 * event itself.
 */
export function ruleTargetInput(target: TemplateRuleTarget, event: BusEvent): unknown {
  if (target.input !== undefined) return JSON.parse(target.input);
  if (target.inputPath !== undefined) return eventPath(event, target.inputPath);
  const transformer = target.inputTransformer;
  if (transformer === undefined) return event;
  const paths = transformer.InputPathsMap ?? {};
  const text = transformer.InputTemplate.replace(/<([A-Za-z0-9_.-]+)>/g, (placeholder, name: string) =>
    name in paths ? JSON.stringify(eventPath(event, paths[name]!) ?? null) : placeholder,
  );
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`rule target input template did not give JSON (the twin supports JSON templates only): ${text}`);
  }
}

/** The EventBridge event S3 sends for a new object. */
function objectCreatedEvent(bucket: string, key: string, size: number, etag: string): BusEvent {
  return busEvent('aws.s3', 'Object Created', [`arn:aws:s3:::${bucket}`], {
    version: '0',
    bucket: { name: bucket },
    object: { key, size, etag: etag.replace(/"/g, ''), sequencer: Date.now().toString(16) },
    'request-id': 'local',
    requester: LOCAL_ACCOUNT,
    reason: 'PutObject',
  });
}

/** Where a run's outputs go locally. */
export async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

export type { RunSummary };
