/**
 * What becomes of records: the lines of `results.jsonl` and `failed.jsonl`, and the counters
 * each step leaves in `work/` for finalize to add up.
 */

/** A line of `results.jsonl`. */
export interface SucceededRecord {
  readonly recordId: string;
  readonly modelOutput: unknown;
  /** Token usage, where the model family reports it. */
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
  /** Set when the record was run through on-demand InvokeModel (small remainder). */
  readonly onDemand?: true;
}

/** An error as reported per record. */
export interface RecordError {
  readonly code: string;
  readonly message: string;
}

/** A line of `failed.jsonl`. */
export interface FailedRecord {
  readonly recordId: string;
  readonly error: RecordError;
  /** Rounds the record took part in. */
  readonly attempts: number;
}

/** A line of a chunk's `retry.jsonl`: a job input line plus why it must be tried again. */
export interface RetryRecord {
  readonly recordId: string;
  readonly modelInput: unknown;
  readonly lastError: RecordError;
}

export interface TokenCounts {
  input: number;
  output: number;
}

/** Counters of one reconciled chunk (`work/<runId>/rNN/cNNNNN/stats.json`). */
export interface ChunkStats {
  readonly round: number;
  readonly chunk: number;
  readonly jobArn?: string;
  /** The job's terminal status, or `NotSubmitted` when no job could be created. */
  readonly jobStatus: string;
  readonly records: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly retry: number;
  readonly tokens: TokenCounts;
  /** Output lines whose recordId was not in the chunk. */
  readonly unknownOutputRecords: number;
  /** Output lines repeating a recordId already reconciled (counted once). */
  readonly duplicateOutputRecords: number;
}

/** Counters of a round's small remainder (`work/<runId>/rNN/remainder-stats.json`). */
export interface RemainderStats {
  readonly round: number;
  readonly policy: string;
  readonly records: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly held: number;
  readonly onDemandRecords: number;
  readonly tokens: TokenCounts;
}

/** Counters of prepare (`work/<runId>/run-stats.json`). */
export interface PrepareStats {
  readonly inputFiles: number;
  /** Non-blank input lines: the left side of the conservation invariant. */
  readonly inputLines: number;
  readonly blankLines: number;
  readonly valid: number;
  readonly rejected: number;
  readonly inputs: readonly string[];
}
