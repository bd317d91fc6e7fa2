/**
 * A run's outputs under `results/<runId>/`: the parts its steps committed (never a part found
 * by listing alone), concatenated into `results.jsonl` (or `results-NNNNN.jsonl` parts),
 * `failed.jsonl` and `rejected.jsonl`.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { partsOf, readCommittedRounds } from '../shared/committed-parts';
import { runKeys, S3_PREFIXES } from '../shared/contracts';
import type { ChunkStats, PartFile, RemainderStats, StoppedManifest } from '../shared/outcomes';
import { concatJsonl, concatJsonlParts, JsonlWriter, listObjects, readJsonObject } from '../shared/s3-jsonl';

/** Results larger than this are split into `results-00001.jsonl`, ... parts of at most this size. */
export const RESULTS_PART_MAX_BYTES = 512 * 1024 * 1024;

/**
 * What the run's steps committed: the stats of every reconciled chunk and handled remainder of
 * its opened rounds, and the parts their manifests list (never a part found by listing, which
 * can be a leftover of a failed attempt), plus each round's `exhausted.jsonl` (one object,
 * rewritten whole by a retry) and what stop-run's `stopped.json` lists.
 */
export async function committedOutputs(
  s3: S3Client,
  bucket: string,
  runId: string,
): Promise<{
  chunkStats: ChunkStats[];
  remainderStats: RemainderStats[];
  rounds: number;
  resultSources: PartFile[];
  failedSources: string[];
  rejectedSources: string[];
}> {
  const keys = new Set((await listObjects(s3, bucket, `${S3_PREFIXES.work}${runId}/`)).map((o) => o.key));
  // A stopped run: what stop-run failed is not also taken from a step that committed later.
  const stopped = keys.has(runKeys.stoppedManifest(runId)) ? await readJsonObject<StoppedManifest>(s3, bucket, runKeys.stoppedManifest(runId)) : undefined;
  const committed = await readCommittedRounds(s3, bucket, runId, keys, stopped?.round);
  const failedByStop = (round: number, chunk?: number) =>
    stopped !== undefined && round === stopped.round && (chunk === undefined ? stopped.unfinishedRemainder : stopped.unfinishedChunks.includes(chunk));
  const chunkStats: ChunkStats[] = [];
  const remainderStats: RemainderStats[] = [];
  const resultSources: PartFile[] = [];
  const failedSources: string[] = [];
  const take = (manifest: ChunkStats | RemainderStats, where: string) => {
    resultSources.push(...partsOf(manifest, 'succeeded', where));
    failedSources.push(...partsOf(manifest, 'failed', where).map((p) => p.key));
  };
  for (const { round, chunks, remainder } of committed) {
    for (const [chunk, stats] of chunks.entries()) {
      if (!stats || failedByStop(round, chunk)) continue;
      chunkStats.push(stats);
      take(stats, runKeys.chunkStats(runId, round, chunk));
    }
    if (remainder && !failedByStop(round)) {
      remainderStats.push(remainder);
      take(remainder, runKeys.remainderStats(runId, round));
    }
    if (keys.has(runKeys.exhausted(runId, round))) failedSources.push(runKeys.exhausted(runId, round));
  }
  if (stopped) failedSources.push(...partsOf(stopped, 'failed', runKeys.stoppedManifest(runId)).map((p) => p.key));
  const rejectedSources = keys.has(runKeys.workRejected(runId)) ? [runKeys.workRejected(runId)] : [];
  return { chunkStats, remainderStats, rounds: committed.length, resultSources, failedSources, rejectedSources };
}

/** The results files under `results/<runId>/` now: `results.jsonl` and `results-NNNNN.jsonl`. */
async function resultFiles(s3: S3Client, bucket: string, runId: string): Promise<string[]> {
  const prefix = `${S3_PREFIXES.results}${runId}/`;
  return (await listObjects(s3, bucket, prefix)).map((o) => o.key).filter((k) => /^results(-\d{5})?\.jsonl$/.test(k.slice(prefix.length)));
}

/** What {@link writeRunOutputs} wrote: the output keys and their record counts. */
export interface WrittenOutputs {
  /** `results.jsonl`, or its parts when split. */
  readonly resultKeys: string[];
  readonly failedKey: string;
  readonly rejectedKey: string;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
}

/**
 * Concatenates the committed parts into the run's output files. Results over `partMaxBytes`
 * are split into parts; a results file an earlier finalize wrote and this one did not is
 * emptied (never deleted), so a reader taking every file under `results/` counts no record twice.
 */
export async function writeRunOutputs(
  s3: S3Client,
  bucket: string,
  runId: string,
  sources: Pick<Awaited<ReturnType<typeof committedOutputs>>, 'resultSources' | 'failedSources' | 'rejectedSources'>,
  partMaxBytes: number,
): Promise<WrittenOutputs> {
  const failedKey = runKeys.results(runId, 'failed.jsonl');
  const rejectedKey = runKeys.results(runId, 'rejected.jsonl');
  const split = sources.resultSources.reduce((sum, p) => sum + p.bytes, 0) > partMaxBytes;
  const earlierResults = await resultFiles(s3, bucket, runId);
  const results = await concatJsonlParts(
    s3,
    bucket,
    sources.resultSources.map((p) => p.key),
    (n) => (split ? runKeys.resultsPart(runId, n) : runKeys.results(runId, 'results.jsonl')),
    split ? partMaxBytes : Number.POSITIVE_INFINITY,
  );
  // An earlier finalize of the run (a retried attempt, or the workflow's before stop-run's) may
  // have split its results differently; nothing here may delete, so a results file this one did
  // not write is emptied: a reader taking every file under results/ counts no record twice.
  for (const key of earlierResults.filter((k) => !results.keys.includes(k))) await new JsonlWriter(s3, bucket, key).close();
  const failed = await concatJsonl(s3, bucket, sources.failedSources, failedKey);
  const rejected = await concatJsonl(s3, bucket, sources.rejectedSources, rejectedKey);
  return { resultKeys: results.keys, failedKey, rejectedKey, succeeded: results.lines, failed, rejected };
}
