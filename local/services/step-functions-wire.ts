/**
 * The wire side of the twin's Step Functions endpoint: the awsJson1_0 protocol the SDK speaks
 * (a JSON request body, members checked as the real API checks them, timestamps as epoch
 * seconds, errors as `__type` with the `x-amzn-errortype` header), and the error the endpoint
 * and the local interpreter use to carry a Step Functions error name.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * An Error carrying a Step Functions error name; the local interpreter's Retry and Catch match
 * `name`, and the HTTP endpoint sends `name` as the error type.
 */
export class StepFunctionsError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Bigger than any valid request (256 KiB output plus JSON escaping). */
const MAX_BODY_BYTES = 2 * 1024 * 1024;

/**
 * A string member of a request, checked as the real API checks it (null, type, length). `bytes`:
 * the length is UTF-8 bytes, as for an execution's input and a task's output ("256 KiB of data
 * as a UTF-8 encoded string"), not characters.
 */
export function stringMember(body: Record<string, unknown>, key: string, maxLength: number, required = false, bytes = false): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (required)
      throw new StepFunctionsError(
        'ValidationException',
        `1 validation error detected: Value null at '${key}' failed to satisfy constraint: Member must not be null`,
      );
    return undefined;
  }
  if (typeof value !== 'string') throw new StepFunctionsError('SerializationException', `${key} must be a string`);
  if ((bytes ? Buffer.byteLength(value) : value.length) > maxLength || (required && value.length === 0)) {
    throw new StepFunctionsError(
      'ValidationException',
      `1 validation error detected: Value at '${key}' failed to satisfy constraint: Member must have length between ${required ? 1 : 0} and ${maxLength}`,
    );
  }
  return value;
}

/**
 * Characters an execution name must not contain (StartExecution's `name`, from the API reference
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html): white
 * space, brackets, wildcards, the special characters " # % \ ^ | ~ ` $ & , ; : /, control
 * characters, U+FFFE-FFFF and lone surrogates.
 */
// eslint-disable-next-line no-control-regex
const INVALID_NAME_CHARACTER = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f\ufffe\uffff\ud800-\udfff]/u;

/** An execution name as StartExecution checks it: 1 to 80 characters, none of them refused. */
export function executionName(body: Record<string, unknown>): string | undefined {
  const name = stringMember(body, 'name', 80);
  if (name !== undefined && (name === '' || INVALID_NAME_CHARACTER.test(name))) throw new StepFunctionsError('InvalidName', `Invalid Name: '${name}'`);
  return name;
}

/** The request's JSON object body (`{}` when empty). */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new StepFunctionsError('ValidationException', 'Request too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StepFunctionsError('SerializationException', 'Request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new StepFunctionsError('SerializationException', 'Request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** awsJson1_0 sends timestamps as epoch seconds. */
export function toWire(value: object): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
      const raw = this[key];
      return raw instanceof Date ? raw.getTime() / 1000 : v;
    }),
  ) as Record<string, unknown>;
}

/** Sends an awsJson1_0 response (an error when `errorType` is given). */
export function sendJson(res: ServerResponse, status: number, body: object, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomBytes(16).toString('hex'),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}

// The execution calls' requests and results, as the SDK sends and reads them.

/** Input of `StartExecution`, as the SDK sends it. */
export interface StartExecutionRequest {
  readonly stateMachineArn: string;
  readonly name?: string;
  readonly input?: string;
}

/** What a `StartExecution` delegate returns. */
export interface StartExecutionResult {
  readonly executionArn: string;
  readonly startDate: Date;
}

/** Input of `DescribeExecution`, as the SDK sends it. */
export interface DescribeExecutionRequest {
  readonly executionArn: string;
}

/** Input of `GetExecutionHistory`, as the SDK sends it (the members the twin uses). */
export interface GetExecutionHistoryRequest {
  readonly executionArn: string;
  readonly maxResults?: number;
  readonly reverseOrder?: boolean;
}

/** Input of `StopExecution`, as the SDK sends it. */
export interface StopExecutionRequest {
  readonly executionArn: string;
  readonly error?: string;
  readonly cause?: string;
}
