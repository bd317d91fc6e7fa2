/**
 * The local Step Functions endpoint of the twin: it issues task tokens and completes them when
 * a handler calls `SendTaskSuccess` / `SendTaskFailure` / `SendTaskHeartbeat` through the
 * unmodified `@aws-sdk/client-sfn` client, which reaches it through `AWS_ENDPOINT_URL_SFN`.
 *
 * aws-local-stepfunctions has no task-token API of its own (see
 * docs/TOOLCHAIN.md): a `.waitForTaskToken` task is played by a local handler
 * that returns {@link StepFunctionsApi.wait}, which settles when the token is completed here.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  executionName,
  readJsonBody,
  sendJson,
  stringMember,
  StepFunctionsError,
  toWire,
  type DescribeExecutionRequest,
  type GetExecutionHistoryRequest,
  type StartExecutionRequest,
  type StartExecutionResult,
  type StopExecutionRequest,
} from './step-functions-wire';

export { StepFunctionsError };
export type { DescribeExecutionRequest, GetExecutionHistoryRequest, StartExecutionRequest, StartExecutionResult, StopExecutionRequest };

/** Options of {@link StepFunctionsApi}. */
export interface StepFunctionsApiOptions {
  /**
   * Plays `StartExecution`. Throw an Error whose `name` is the Step Functions error
   * (`ExecutionAlreadyExists`, `StateMachineDoesNotExist`, `InvalidName`, ...) to return it to
   * the caller: every thrown error becomes a 400 with that name as its type.
   * @default undefined: `StartExecution` answers `UnknownOperationException`
   */
  readonly onStartExecution?: (input: StartExecutionRequest) => Promise<StartExecutionResult>;
  /**
   * Plays `DescribeExecution`; returns the response members (`executionArn`, `status`,
   * `startDate`, ...). `Date` values are sent as epoch seconds, as the real service does.
   * Errors are returned as for {@link onStartExecution} (`ExecutionDoesNotExist`, ...).
   * @default undefined: `DescribeExecution` answers `UnknownOperationException`
   */
  readonly onDescribeExecution?: (input: DescribeExecutionRequest) => Promise<Record<string, unknown>>;
  /**
   * Plays `GetExecutionHistory`; returns the response members (`events`: `{id, type,
   * timestamp}`, newest first when `reverseOrder`). Errors are returned as for
   * {@link onStartExecution} (`ExecutionDoesNotExist`, ...).
   * @default undefined: `GetExecutionHistory` answers `UnknownOperationException`
   */
  readonly onGetExecutionHistory?: (input: GetExecutionHistoryRequest) => Promise<Record<string, unknown>>;
  /**
   * Plays `StopExecution` (what `bedrock-batch stop` calls); returns the response members
   * (`stopDate`). Errors are returned as for {@link onStartExecution} (`ExecutionDoesNotExist`).
   * @default undefined: `StopExecution` answers `UnknownOperationException`
   */
  readonly onStopExecution?: (input: StopExecutionRequest) => Promise<Record<string, unknown>>;
}

// Limits of the real API (SendTaskSuccess / SendTaskFailure request members).
const MAX_TOKEN_LENGTH = 2048;
const MAX_OUTPUT_LENGTH = 262_144;
const MAX_ERROR_LENGTH = 256;
const MAX_CAUSE_LENGTH = 32_768;

type Outcome = { ok: true; output: unknown } | { ok: false; error: Error };

interface TokenEntry {
  outcome?: Outcome;
  waiter?: Promise<unknown>;
  settle?: (outcome: Outcome) => void;
  heartbeats: number;
}

/**
 * Issues task tokens and completes them through an awsJson1_0 HTTP endpoint that speaks the
 * Step Functions API (`SendTaskSuccess`, `SendTaskFailure`, `SendTaskHeartbeat`, and, if
 * delegated, `StartExecution` / `DescribeExecution`).
 *
 * A token is completed once: a second completion (or a completion after {@link expire})
 * answers `TaskTimedOut`, as AWS does for a closed token; a token never issued answers
 * `InvalidToken`. A completion that arrives before anyone waits is kept until
 * {@link wait} is called.
 */
export class StepFunctionsApi {
  private readonly tokens = new Map<string, TokenEntry>();
  private server?: Server;
  private sequence = 0;

  constructor(private readonly options: StepFunctionsApiOptions = {}) {}

  /** Starts the HTTP endpoint on 127.0.0.1 on a free port. */
  async start(): Promise<{ endpoint: string }> {
    if (this.server) throw new Error('StepFunctionsApi already started');
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return { endpoint: this.endpoint };
  }

  /** The endpoint URL; throws before {@link start}. */
  get endpoint(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('StepFunctionsApi not started');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Closes the endpoint (open connections too). Pending waits stay pending. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  }

  /** Issues a new, unique, opaque task token. */
  newToken(): string {
    this.sequence += 1;
    // Opaque like the real ones (which are long base64 strings); the sequence keeps it unique.
    const token = `${randomBytes(24).toString('base64url')}.${this.sequence.toString(36)}`;
    this.tokens.set(token, { heartbeats: 0 });
    return token;
  }

  /**
   * Waits for a token's completion: resolves with the parsed `output` of `SendTaskSuccess`,
   * rejects with a {@link StepFunctionsError} named after `error` whose message is `cause`
   * for `SendTaskFailure`. Calling it again for the same token returns the same promise.
   *
   * @throws (rejects with) `InvalidToken` for a token this service did not issue
   */
  wait(token: string): Promise<unknown> {
    const entry = this.tokens.get(token);
    if (!entry) return Promise.reject(new StepFunctionsError('InvalidToken', 'Invalid Token'));
    entry.waiter ??= new Promise<unknown>((resolve, reject) => {
      entry.settle = (outcome) => (outcome.ok ? resolve(outcome.output) : reject(outcome.error));
      if (entry.outcome) entry.settle(entry.outcome);
    });
    return entry.waiter;
  }

  /** Number of issued tokens not completed yet (neither success, failure nor expired). */
  pending(): number {
    let count = 0;
    for (const entry of this.tokens.values()) if (!entry.outcome) count += 1;
    return count;
  }

  /** Number of `SendTaskHeartbeat` calls accepted for a token (0 for an unknown token). */
  heartbeats(token: string): number {
    return this.tokens.get(token)?.heartbeats ?? 0;
  }

  /**
   * Completes a token successfully, as `SendTaskSuccess` does.
   *
   * @param output - the task's result (already parsed)
   * @throws StepFunctionsError `InvalidToken` (never issued) or `TaskTimedOut` (already closed)
   */
  sendTaskSuccess(token: string, output: unknown): void {
    this.complete(token, { ok: true, output });
  }

  /**
   * Fails a token, as `SendTaskFailure` does: the waiting task fails with `error` and `cause`.
   *
   * @throws StepFunctionsError `InvalidToken` (never issued) or `TaskTimedOut` (already closed)
   */
  sendTaskFailure(token: string, error?: string, cause?: string): void {
    // AWS lets both be omitted; the task then fails with an unnamed error, which
    // States.TaskFailed and States.ALL still catch. 'Error' is what the interpreter sees here.
    this.complete(token, { ok: false, error: new StepFunctionsError(error || 'Error', cause ?? '') });
  }

  /**
   * Closes a token without completing its task, as when the task timed out or its execution
   * stopped: later completions answer `TaskTimedOut`. A waiter rejects with `States.Timeout`.
   * Does nothing for an unknown or already closed token.
   */
  expire(token: string): void {
    const entry = this.tokens.get(token);
    if (!entry || entry.outcome) return;
    entry.outcome = { ok: false, error: new StepFunctionsError('States.Timeout', 'Task token expired') };
    // Nobody may ever wait on an expired token: keep its rejection from being unhandled.
    entry.waiter?.catch(() => undefined);
    entry.settle?.(entry.outcome);
  }

  private complete(token: string, outcome: Outcome): void {
    const entry = this.open(token);
    entry.outcome = outcome;
    entry.settle?.(outcome);
  }

  private open(token: string): TokenEntry {
    const entry = this.tokens.get(token);
    if (!entry) throw new StepFunctionsError('InvalidToken', 'Invalid Token');
    if (entry.outcome) throw new StepFunctionsError('TaskTimedOut', 'Task Timed Out: Provided task does not exist anymore');
    return entry;
  }

  private heartbeat(token: string): void {
    this.open(token).heartbeats += 1;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method !== 'POST') throw new StepFunctionsError('UnknownOperationException', `${req.method} not supported`);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
      const body = await readJsonBody(req);
      const result = await this.dispatch(operation, body);
      sendJson(res, 200, result);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const type = error.name === 'Error' || !error.name ? 'InternalServerError' : error.name;
      sendJson(res, type === 'InternalServerError' ? 500 : 400, { __type: type, message: error.message }, type);
    }
  }

  private async dispatch(operation: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (operation) {
      case 'SendTaskSuccess': {
        const token = tokenOf(body);
        const output = stringMember(body, 'output', MAX_OUTPUT_LENGTH, true, true)!;
        let parsed: unknown;
        try {
          parsed = JSON.parse(output);
        } catch {
          throw new StepFunctionsError('InvalidOutput', 'Invalid State Machine Execution Output');
        }
        this.sendTaskSuccess(token, parsed);
        return {};
      }
      case 'SendTaskFailure': {
        const token = tokenOf(body);
        this.sendTaskFailure(token, stringMember(body, 'error', MAX_ERROR_LENGTH), stringMember(body, 'cause', MAX_CAUSE_LENGTH));
        return {};
      }
      case 'SendTaskHeartbeat':
        this.heartbeat(tokenOf(body));
        return {};
      case 'StartExecution': {
        if (!this.options.onStartExecution) break;
        const request: StartExecutionRequest = {
          stateMachineArn: stringMember(body, 'stateMachineArn', 2048, true)!,
          name: executionName(body),
          input: stringMember(body, 'input', MAX_OUTPUT_LENGTH, false, true),
        };
        return toWire(await this.options.onStartExecution(request));
      }
      case 'GetExecutionHistory': {
        if (!this.options.onGetExecutionHistory) break;
        return toWire(
          await this.options.onGetExecutionHistory({
            executionArn: stringMember(body, 'executionArn', 2048, true)!,
            ...(typeof body.maxResults === 'number' ? { maxResults: body.maxResults } : {}),
            ...(typeof body.reverseOrder === 'boolean' ? { reverseOrder: body.reverseOrder } : {}),
          }),
        );
      }
      case 'StopExecution': {
        if (!this.options.onStopExecution) break;
        return toWire(
          await this.options.onStopExecution({
            executionArn: stringMember(body, 'executionArn', 2048, true)!,
            error: stringMember(body, 'error', MAX_ERROR_LENGTH),
            cause: stringMember(body, 'cause', MAX_CAUSE_LENGTH),
          }),
        );
      }
      case 'DescribeExecution': {
        if (!this.options.onDescribeExecution) break;
        const executionArn = stringMember(body, 'executionArn', 2048, true)!;
        return toWire(await this.options.onDescribeExecution({ executionArn }));
      }
    }
    throw new StepFunctionsError('UnknownOperationException', `Operation '${operation}' is not served locally`);
  }
}

/** Environment variables that point an unmodified SFN client at the local endpoint. */
export function stepFunctionsApiEnvironment(endpoint: string): Record<string, string> {
  return { AWS_ENDPOINT_URL_SFN: endpoint };
}

function tokenOf(body: Record<string, unknown>): string {
  return stringMember(body, 'taskToken', MAX_TOKEN_LENGTH, true)!;
}
