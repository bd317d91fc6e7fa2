/**
 * What becomes of records: the lines of `results.jsonl` and `failed.jsonl`, and the counters
 * each step leaves in `work/` for finalize to add up.
 */
import type { RecordUsage } from './token-estimate';

/** A line of `results.jsonl`. */
export interface SucceededRecord {
  readonly recordId: string;
  readonly modelOutput: unknown;
  /**
   * Token usage: as the model output reports it, or estimated from the text where it reports
   * none (then `estimated: true`; see token-estimate.ts).
   */
  readonly usage?: RecordUsage;
  /** Set when the record was run through on-demand InvokeModel (small remainder). */
  readonly onDemand?: true;
  /** Set when the output stopped at the request's output token limit: it succeeded, cut off. */
  readonly truncated?: true;
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

/** The failure of a record a stopped run had not finished (stop-run, and a step that sees the stop mark). */
export function runStopped(recordId: string, attempts: number): FailedRecord {
  return { recordId, error: { code: 'RunStopped', message: 'the run was stopped before this record finished' }, attempts };
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
  /** The part of `input` and `output` estimated from the text (records whose output reports no counts). */
  estimated?: { input: number; output: number };
}

/**
 * One file a step wrote, as listed in the step's manifest (`stats.json`, `remainder-stats.json`).
 * Readers take a step's parts from its manifest only, never from a listing: a failed attempt can
 * leave a part the attempt that finished did not write (see ARCHITECTURE, "Every step can run
 * again").
 */
export interface PartFile {
  /** What the lines are: `succeeded` and `failed` are final, `retry` goes to the next round, `held` to the next sweep. */
  readonly kind: 'succeeded' | 'failed' | 'retry' | 'held';
  readonly key: string;
  readonly lines: number;
  /** The object's size, newlines included. */
  readonly bytes: number;
}

/**
 * Counters of one reconciled chunk (`work/<runId>/rNN/cNNNNN/stats.json`): written last, it is
 * the chunk's commit: the chunk counts as reconciled once it exists, with exactly the `parts` it
 * lists, and a reconcile that finds it returns it without writing anything.
 */
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
  /** The parts written (only those with lines). */
  readonly parts: readonly PartFile[];
  /** Succeeded records whose output stopped at the output token limit (absent when none). */
  readonly truncated?: number;
  /**
   * Set when Bedrock refused to create the chunk's job for a reason every job of the run shares
   * (the model, the role, a grant): its records were failed with this error, not retried.
   */
  readonly refused?: RecordError;
  /**
   * Set when stop-run reconciled the chunk: its job was stopped with its run, and the records it
   * had processed were kept (succeeded, or failed with their own error) instead of `RunStopped`.
   */
  readonly reconciledAfterStop?: true;
}

/**
 * Counters of a round's small remainder (`work/<runId>/rNN/remainder-stats.json`), written after
 * its parts; read only when the round's `plan.json` says the round has a remainder.
 */
export interface RemainderStats {
  readonly round: number;
  readonly policy: string;
  readonly records: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly held: number;
  readonly onDemandRecords: number;
  readonly tokens: TokenCounts;
  /** Succeeded records whose output stopped at the output token limit (absent when none). */
  readonly truncated?: number;
  /** The parts written (only those with lines), the held file included. */
  readonly parts: readonly PartFile[];
}

/**
 * A round's `work/<runId>/rNN/plan.json`, written last when a round is opened: the round's
 * manifest. Chunk files at or past `chunkCount` are not part of the round, nor is a remainder
 * when `remainder` is 0.
 */
export interface RoundPlan {
  readonly chunkCount: number;
  /** Records given to the small-remainder policy (its `remainder-stats.json` lists their parts). */
  readonly remainder: number;
}

/**
 * What stop-run failed (`work/<runId>/stopped.json`, written after `stopped.jsonl`). A step
 * that outlived the stop can commit after stop-run looked (a reconcile writing its
 * `stats.json`, an end-round its next round's `plan.json`); what it committed there was failed
 * `RunStopped` already, so the run's outputs take nothing of a round after `round`, nor of the
 * chunks (or remainder) of `round` listed here.
 */
export interface StoppedManifest {
  /** The round stop-run failed records of (0: no round was open). */
  readonly round: number;
  /** Chunks of `round` that had no `stats.json`: every record of theirs is in `stopped.jsonl`. */
  readonly unfinishedChunks: readonly number[];
  /** Whether the round's remainder had no stats, its records being in `stopped.jsonl`. */
  readonly unfinishedRemainder: boolean;
  /** `stopped.jsonl`. */
  readonly parts: readonly PartFile[];
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
