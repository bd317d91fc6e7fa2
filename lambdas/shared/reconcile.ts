/**
 * Reconciliation: join a job's output lines with the chunk's input records by `recordId`.
 * Every input record ends in exactly one of succeeded, failed (not retryable) or retry
 * (retryable, or missing from the output); output lines with unknown or repeated ids are counted,
 * never double-counted. Pure: the caller streams lines in and writes what comes out.
 */
import { usageOf, type ModelFamily } from './model-family';
import type { FailedRecord, RecordError, RetryRecord, SucceededRecord } from './outcomes';
import { isRetryableRecordError, missingRecordError } from './retry-policy';

export type ReconcileVerdict =
  | { readonly kind: 'succeeded'; readonly record: SucceededRecord }
  | { readonly kind: 'failed'; readonly record: FailedRecord }
  | { readonly kind: 'retry'; readonly record: RetryRecord }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'duplicate' };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Bedrock's per-record error (`{errorCode: 400, errorMessage}`) as this project reports it. */
function recordError(raw: unknown): RecordError & { retryable: boolean } {
  const e = isObject(raw) ? raw : {};
  const code = e.errorCode ?? e.code;
  const message = e.errorMessage ?? e.message;
  return {
    code: code === undefined ? 'Unknown' : String(code),
    message: typeof message === 'string' ? message : JSON.stringify(raw),
    retryable: isRetryableRecordError(code as number | string | undefined),
  };
}

export class ChunkReconciler {
  private readonly pending: Map<string, string>;
  private readonly tokens = { input: 0, output: 0 };
  unknownOutputRecords = 0;
  duplicateOutputRecords = 0;
  private readonly done = new Set<string>();

  /**
   * @param inputs the chunk's records: recordId -> the input line (`{"recordId","modelInput"}`)
   * @param round the round the records are in; a failed record's attempts
   */
  constructor(
    inputs: Map<string, string>,
    private readonly round: number,
    private readonly family: ModelFamily,
  ) {
    this.pending = inputs;
  }

  /** Token usage of the succeeded records so far. */
  get tokenUsage(): { input: number; output: number } {
    return { ...this.tokens };
  }

  /** Judges one line of a `.out` file. */
  accept(line: string): ReconcileVerdict {
    let out: unknown;
    try {
      out = JSON.parse(line);
    } catch {
      this.unknownOutputRecords += 1;
      return { kind: 'unknown' };
    }
    if (!isObject(out) || typeof out.recordId !== 'string') {
      this.unknownOutputRecords += 1;
      return { kind: 'unknown' };
    }
    const recordId = out.recordId;
    const input = this.pending.get(recordId);
    if (input === undefined) {
      if (this.done.has(recordId)) {
        this.duplicateOutputRecords += 1;
        return { kind: 'duplicate' };
      }
      this.unknownOutputRecords += 1;
      return { kind: 'unknown' };
    }
    this.pending.delete(recordId);
    this.done.add(recordId);

    if ('modelOutput' in out && !('error' in out && out.error)) {
      const usage = usageOf(this.family, out.modelOutput);
      this.tokens.input += usage.input;
      this.tokens.output += usage.output;
      return { kind: 'succeeded', record: { recordId, modelOutput: out.modelOutput, usage: { inputTokens: usage.input, outputTokens: usage.output } } };
    }
    const { retryable, ...error } = recordError(out.error);
    if (retryable) return { kind: 'retry', record: retryRecord(input, error) };
    return { kind: 'failed', record: { recordId, error, attempts: this.round } };
  }

  /** The records the output never mentioned, as retries; call once, after the last line. */
  *missing(jobStatus: string | undefined, detail?: string): Generator<ReconcileVerdict> {
    const error = missingRecordError(jobStatus, detail);
    for (const [recordId, input] of this.pending) {
      this.done.add(recordId);
      yield { kind: 'retry', record: retryRecord(input, error) };
    }
    this.pending.clear();
  }
}

function retryRecord(inputLine: string, lastError: RecordError): RetryRecord {
  const parsed = JSON.parse(inputLine) as { recordId: string; modelInput: unknown };
  return { recordId: parsed.recordId, modelInput: parsed.modelInput, lastError };
}
