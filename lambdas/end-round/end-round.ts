/**
 * EndRound: gather the round's retryable records. While attempts remain they become the next
 * round (re-chunked, small remainder handled); after the last attempt they are failed with
 * their last error.
 */
import { runKeys, type RoundState, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import type { FailedRecord, RetryRecord } from '../shared/outcomes';
import { openRound, type RoundDeps } from '../shared/rounds';
import { JsonlWriter, listObjects, readJsonl } from '../shared/s3-jsonl';

export interface EndRoundEvent {
  readonly run: RunConfig;
  readonly round: RoundState;
}

export interface EndRoundResult {
  readonly run: RunConfig;
  readonly round: RoundState;
  readonly done: boolean;
}

/** The keys of the round's `retry.jsonl` parts. */
async function retryParts(deps: RoundDeps, run: RunConfig, round: number): Promise<string[]> {
  const objects = await listObjects(deps.s3, run.bucket, runKeys.roundPrefix(run.runId, round));
  return objects.map((o) => o.key).filter((k) => k.endsWith('/retry.jsonl'));
}

export async function endRound(deps: RoundDeps, event: EndRoundEvent): Promise<EndRoundResult> {
  const { run } = event;
  const round = event.round.number;
  const parts = await retryParts(deps, run, round);
  if (parts.length === 0) return { run, round: event.round, done: true };

  const lastAttempt = round >= run.maxAttempts;
  const writer = lastAttempt
    ? new JsonlWriter(deps.s3, run.bucket, runKeys.exhausted(run.runId, round))
    : new JsonlWriter(deps.s3, run.bucket, runKeys.roundPending(run.runId, round + 1));
  for (const key of parts) {
    for await (const r of readJsonl<RetryRecord>(deps.s3, run.bucket, key)) {
      if (lastAttempt) await writer.write({ recordId: r.recordId, error: r.lastError, attempts: round } satisfies FailedRecord);
      else await writer.write({ recordId: r.recordId, modelInput: r.modelInput });
    }
  }
  const count = await writer.close();
  logger.info(lastAttempt ? 'attempts used up' : 'resubmitting retryable records', { runId: run.runId, round, records: count });
  if (lastAttempt || count === 0) return { run, round: event.round, done: true };

  const next = await openRound(deps, run, round + 1, count, writer.maxLineBytes);
  return { run, round: next, done: false };
}
