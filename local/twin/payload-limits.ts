/**
 * Step Functions' payload limit in the twin: a state's input or output is at most 256 KiB
 * (262,144 bytes of UTF-8; the `output` of `TaskSucceededEventDetails`, the `output` of
 * `SendTaskSuccess`). A task whose input or result, or any state whose output (a Pass, a Map's
 * gathered results, a state inside an iteration), is larger fails the execution with
 * `States.DataLimitExceeded`, which neither `States.ALL` nor a retrier matches, so a handler
 * that returns too much fails here as it would on AWS instead of passing the twin.
 * Sources: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * (States.ALL cannot catch the terminal States.DataLimitExceeded), the 262,144-byte length of
 * `TaskSucceededEventDetails.output` in the API reference; the message is AWS's, as reported in
 * NASA-IMPACT/csdap-cumulus#296. The twin refuses it to a Catch naming it too (stricter than AWS).
 */
import { StepFunctionsError } from '../services/step-functions-wire';

/** The largest state input or output, in bytes of UTF-8. */
export const STATE_PAYLOAD_LIMIT_BYTES = 262_144;

/** `States.DataLimitExceeded`: terminal, never retried or caught (aws-local-stepfunctions reads these flags). */
export class DataLimitExceeded extends StepFunctionsError {
  readonly isRetryable = false;
  readonly isCatchable = false;
  constructor(resource: string, bytes: number, what: 'returned a result' | 'has an input' = 'returned a result') {
    super(
      'States.DataLimitExceeded',
      `The state/task '${resource}' ${what} with a size exceeding the maximum number of bytes service limit (${bytes} bytes, limit ${STATE_PAYLOAD_LIMIT_BYTES}).`,
    );
  }
}

/**
 * A Task state's input (after its Parameters) as Step Functions checks it before it calls the
 * resource: over the limit, the state fails with `States.DataLimitExceeded` and nothing runs.
 * @throws DataLimitExceeded when its JSON is over {@link STATE_PAYLOAD_LIMIT_BYTES}
 */
export function taskInput(state: string, input: unknown): void {
  withinLimit(state, input, 'has an input');
}

/**
 * A task's result as Step Functions receives it: JSON in and out (a handler's `undefined` is
 * `null`), refused when over the limit.
 * @throws DataLimitExceeded when its JSON is over {@link STATE_PAYLOAD_LIMIT_BYTES}
 */
export function taskResult(resource: string, result: unknown): unknown {
  return JSON.parse(withinLimit(resource, result));
}

/**
 * Any state's output as Step Functions checks it when the state ends (a Pass that builds a
 * large object, a Map's gathered results, a state inside an iteration): over the limit, the
 * state fails with `States.DataLimitExceeded` and the next state never runs.
 * @throws DataLimitExceeded when its JSON is over {@link STATE_PAYLOAD_LIMIT_BYTES}
 */
export function stateOutput(state: string, output: unknown): void {
  withinLimit(state, output);
}

/**
 * The JSON of `value` (`undefined` is `null`), when its UTF-8 is within the limit.
 * @throws DataLimitExceeded naming `name` when it is not
 */
function withinLimit(name: string, value: unknown, what?: 'returned a result' | 'has an input'): string {
  const json = JSON.stringify(value ?? null);
  const bytes = Buffer.byteLength(json);
  if (bytes > STATE_PAYLOAD_LIMIT_BYTES) throw new DataLimitExceeded(name, bytes, what);
  return json;
}
