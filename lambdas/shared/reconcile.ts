/**
 * Reconciliation: join a job's output lines with the chunk's input records by `recordId`,
 * holding only the chunk's record ids in memory, never its records.
 *
 * Pass 1 streams the job's `.out` files through {@link ChunkReconciler.accept}: succeeded and
 * not-retryable records are settled at once (the output line has all they need); retryable
 * errors are remembered by id. Pass 2, only when something is unsettled, streams the chunk's
 * input through {@link ChunkReconciler.retryFor}, which turns every unsettled record (retryable,
 * or missing from the output) into a retry with its original `modelInput`. Every input record
 * ends in exactly one of succeeded, failed or retry; output lines with unknown or repeated ids
 * are counted, never double-counted. Pure: the caller streams lines in and writes what comes out.
 */
import { stoppedAtMaxTokens, type ModelFamily } from './model-family';
import type { FailedRecord, RecordError, RetryRecord, SucceededRecord, TokenCounts } from './outcomes';
import { isRetryableRecordError, missingRecordError } from './retry-policy';
import { addUsage, recordUsage } from './token-estimate';

export type ReconcileVerdict =
  | { readonly kind: 'succeeded'; readonly record: SucceededRecord }
  | { readonly kind: 'failed'; readonly record: FailedRecord }
  /** Retryable: the retry is written in pass 2, with the input's `modelInput`. */
  | { readonly kind: 'deferred' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'duplicate' };

/** Longest error message kept per deferred record (bounds memory on a chunk of 50,000 failures). */
const MAX_KEPT_MESSAGE = 1000;

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
    message: typeof message === 'string' ? message : raw === undefined ? 'the output line has neither modelOutput nor error' : JSON.stringify(raw),
    retryable: isRetryableRecordError(code as number | string | undefined),
  };
}

/**
 * The `recordId` of a job input line as this project writes them (`{"recordId":"…",…}`),
 * read without parsing the whole line; any other shape falls back to a full parse.
 */
export function leadingRecordId(line: string): string {
  const prefix = '{"recordId":"';
  if (line.startsWith(prefix)) {
    for (let i = prefix.length; i < line.length; i++) {
      const c = line.charCodeAt(i);
      if (c === 0x5c /* \ */) {
        i += 1;
        continue;
      }
      if (c === 0x22 /* " */) return JSON.parse(line.slice(prefix.length - 1, i + 1)) as string;
    }
  }
  const parsed = JSON.parse(line) as { recordId?: unknown };
  if (typeof parsed.recordId !== 'string') throw new Error('job input line has no recordId');
  return parsed.recordId;
}

/** A record's state in the join: not in the output yet, settled, or deferred with its retryable error. */
type RecordState = 'pending' | 'settled' | RecordError;

export class ChunkReconciler {
  private readonly states = new Map<string, RecordState>();
  private unsettled = 0;
  private readonly tokens: TokenCounts = { input: 0, output: 0 };
  unknownOutputRecords = 0;
  duplicateOutputRecords = 0;
  /** Succeeded records whose output stopped at the output token limit. */
  truncatedRecords = 0;

  /**
   * @param recordIds the chunk's record ids (unique: prepare rejects duplicates)
   * @param round the round the records are in; a failed record's attempts
   */
  constructor(
    recordIds: Iterable<string>,
    private readonly round: number,
    private readonly family: ModelFamily,
  ) {
    for (const id of recordIds) this.states.set(id, 'pending');
    this.unsettled = this.states.size;
  }

  /** Token usage of the succeeded records so far. */
  get tokenUsage(): TokenCounts {
    return { ...this.tokens, ...(this.tokens.estimated ? { estimated: { ...this.tokens.estimated } } : {}) };
  }

  /** Records not settled by the output (retryable or missing); pass 2 is needed when > 0. */
  get unsettledCount(): number {
    return this.unsettled;
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
    const state = this.states.get(recordId);
    if (state === undefined) {
      this.unknownOutputRecords += 1;
      return { kind: 'unknown' };
    }
    if (state !== 'pending') {
      this.duplicateOutputRecords += 1;
      return { kind: 'duplicate' };
    }

    if ('modelOutput' in out && !('error' in out && out.error)) {
      this.settle(recordId);
      // Bedrock echoes each record's modelInput in its output line: the text a missing count is estimated from.
      const usage = recordUsage(this.family, out.modelInput, out.modelOutput);
      addUsage(this.tokens, usage);
      const truncated = stoppedAtMaxTokens(this.family, out.modelOutput);
      if (truncated) this.truncatedRecords += 1;
      const record: SucceededRecord = { recordId, modelOutput: out.modelOutput, usage, ...(truncated ? { truncated: true as const } : {}) };
      return { kind: 'succeeded', record };
    }
    const { retryable, ...error } = recordError(out.error);
    if (retryable) {
      this.states.set(recordId, { code: error.code, message: error.message.slice(0, MAX_KEPT_MESSAGE) });
      return { kind: 'deferred' };
    }
    this.settle(recordId);
    return { kind: 'failed', record: { recordId, error, attempts: this.round } };
  }

  /**
   * Pass 2: the retry for a chunk input line whose record is unsettled (retryable error, or
   * missing from the output when the job ended `jobStatus`), or undefined when it is settled.
   */
  retryFor(inputLine: string, jobStatus: string | undefined, detail?: string): RetryRecord | undefined {
    const recordId = leadingRecordId(inputLine);
    const state = this.states.get(recordId);
    if (state === undefined || state === 'settled') return undefined;
    this.settle(recordId);
    const lastError = state === 'pending' ? missingRecordError(jobStatus, detail) : state;
    const parsed = JSON.parse(inputLine) as { modelInput: unknown };
    return { recordId, modelInput: parsed.modelInput, lastError };
  }

  private settle(recordId: string): void {
    this.states.set(recordId, 'settled');
    this.unsettled -= 1;
  }
}
