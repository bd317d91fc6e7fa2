/**
 * EndRound: gather the round's retryable records. While attempts remain they become the next
 * round (re-chunked, small remainder handled); after the last attempt they are failed with
 * their last error.
 */
import { partsOf, readRoundChunkStats } from '../shared/committed-parts';
import { runKeys, type RoundState, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import type { FailedRecord, PartFile, RetryRecord } from '../shared/outcomes';
import { RecordsToCome, resumeRound, RoundChunkWriter, type RoundDeps } from '../shared/round-chunk-writer';
import { JsonlWriter, readObjectLines } from '../shared/s3-jsonl';

export interface EndRoundEvent {
  readonly run: RunConfig;
  readonly round: RoundState;
}

export interface EndRoundResult {
  readonly run: RunConfig;
  readonly round: RoundState;
  readonly done: boolean;
}

/**
 * The round's `retry.jsonl` parts, with their sizes, as the chunks' `stats.json` list them (never
 * from a listing: a reconcile that failed and ran again can leave a retry part its final
 * attempt did not write). Every chunk of the round has its stats by now (the Map ends only when
 * every chunk is reconciled); one that does not is an error rather than records lost.
 */
async function retryParts(deps: RoundDeps, run: RunConfig, round: RoundState): Promise<PartFile[]> {
  const stats = await readRoundChunkStats(deps.s3, run.bucket, run.runId, round.number, round.chunkCount);
  return stats.flatMap((s, chunk) => {
    const key = runKeys.chunkStats(run.runId, round.number, chunk);
    if (!s) throw new Error(`chunk ${chunk} of round ${round.number} was not reconciled: ${key} does not exist`);
    return partsOf(s, 'retry', key);
  });
}

/** Every retry record of the parts, with the size of its line. */
async function* retryRecords(deps: RoundDeps, run: RunConfig, parts: ReadonlyArray<{ key: string }>): AsyncGenerator<{ record: RetryRecord; bytes: number }> {
  for (const { key } of parts) {
    for await (const raw of readObjectLines(deps.s3, run.bucket, key)) {
      if (raw.length > 0) yield { record: JSON.parse(raw.toString('utf8')) as RetryRecord, bytes: raw.length };
    }
  }
}

/**
 * Ends a round. Safe to run again after failing anywhere: it reads only what the round's
 * chunks committed (fixed once their `stats.json` exists), so a second attempt writes the same
 * next round (chunk files, re-split tail, remainder, `plan.json` last) or the same
 * `exhausted.jsonl`; the remainder's on-demand outcomes of a first attempt are kept, not
 * invoked again (`applySmallRemainder`).
 */
export async function endRound(deps: RoundDeps, event: EndRoundEvent): Promise<EndRoundResult> {
  const { run } = event;
  const round = event.round.number;
  const parts = await retryParts(deps, run, event.round);
  if (parts.length === 0) return { run, round: event.round, done: true };

  if (round >= run.maxAttempts) {
    const exhausted = new JsonlWriter(deps.s3, run.bucket, runKeys.exhausted(run.runId, round));
    for await (const { record: r } of retryRecords(deps, run, parts)) {
      await exhausted.write({ recordId: r.recordId, error: r.lastError, attempts: round } satisfies FailedRecord);
    }
    logger.info('attempts used up', { runId: run.runId, round, records: await exhausted.close() });
    return { run, round: event.round, done: true };
  }

  // A retry after the next round was written (its on-demand remainder ran out of time) goes on
  // with that round's remainder.
  const resumed = await resumeRound(deps, run, round + 1);
  if (resumed) return { run, round: resumed, done: false };

  // The next round's job input lines (no lastError), written straight into its chunk files,
  // balanced on the estimate the parts' sizes give.
  const toCome = new RecordsToCome(parts.reduce((n, p) => n + p.bytes, 0));
  const chunks = new RoundChunkWriter(deps, run, round + 1, { recordsToCome: () => toCome.estimate() });
  let count = 0;
  for await (const { record: r, bytes } of retryRecords(deps, run, parts)) {
    toCome.read(bytes, true);
    count += 1;
    await chunks.add(JSON.stringify({ recordId: r.recordId, modelInput: r.modelInput }));
  }
  logger.info('resubmitting retryable records', { runId: run.runId, round, records: count });
  if (count === 0) return { run, round: event.round, done: true };
  return { run, round: await chunks.finish(), done: false };
}
