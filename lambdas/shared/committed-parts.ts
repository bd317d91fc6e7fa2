/**
 * Reading what a run's steps committed. Every step that writes parts writes its manifest last
 * (a round's `plan.json`, a chunk's `stats.json`, a remainder's `remainder-stats.json`), and every
 * reader (end-round, finalize, stop-run) takes parts from the manifests only, never from a
 * listing: a step that failed after some writes and ran again can leave a file the attempt that
 * finished did not write (a `retry.jsonl` of a job outcome seen the first time, a part of a
 * remainder that is no longer there), and such a file must not count.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { runKeys, type RunConfig } from './contracts';
import type { ChunkStats, PartFile, RemainderStats, RoundPlan } from './outcomes';
import { objectExists, readJsonObject } from './s3-jsonl';

/** How many `stats.json` documents are read at once. */
const STATS_READ_CONCURRENCY = 16;

function isPartList(v: unknown): v is PartFile[] {
  return (
    Array.isArray(v) &&
    v.every((p) => typeof p === 'object' && p !== null && typeof (p as PartFile).key === 'string' && typeof (p as PartFile).kind === 'string')
  );
}

/**
 * A manifest's parts of `kind`. A manifest without a part list was written by a version that
 * did not keep one: an error, rather than a guess from a listing.
 */
export function partsOf(manifest: { readonly parts?: readonly PartFile[] }, kind: PartFile['kind'], where: string): PartFile[] {
  if (!isPartList(manifest.parts)) throw new Error(`${where} lists no parts: it was written by an older version of bedrock-batch`);
  return manifest.parts.filter((p) => p.kind === kind);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The round's `plan.json`, or undefined when the round was not opened (not yet, or not at all). */
export async function readRoundPlan(s3: S3Client, bucket: string, runId: string, round: number): Promise<RoundPlan | undefined> {
  const key = runKeys.roundPlan(runId, round);
  const plan = await readJsonObject<Partial<RoundPlan>>(s3, bucket, key);
  if (plan === undefined) return undefined;
  if (!isCount(plan.chunkCount) || !isCount(plan.remainder)) {
    throw new Error(`${key} is not a round plan {"chunkCount","remainder"}: it was written by an older version of bedrock-batch`);
  }
  return { chunkCount: plan.chunkCount, remainder: plan.remainder };
}

/**
 * The `stats.json` of chunks `0 .. chunkCount - 1` of a round, undefined for a chunk not
 * reconciled. `exists`, when given (a listing the caller made), spares a read of a stats file
 * the listing did not have.
 */
export async function readRoundChunkStats(
  s3: S3Client,
  bucket: string,
  runId: string,
  round: number,
  chunkCount: number,
  exists?: (key: string) => boolean,
): Promise<Array<ChunkStats | undefined>> {
  const out = new Array<ChunkStats | undefined>(chunkCount).fill(undefined);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chunkCount) {
      const chunk = next++;
      const key = runKeys.chunkStats(runId, round, chunk);
      if (exists && !exists(key)) continue;
      out[chunk] = await readJsonObject<ChunkStats>(s3, bucket, key);
    }
  };
  await Promise.all(Array.from({ length: Math.min(STATS_READ_CONCURRENCY, chunkCount) }, worker));
  return out;
}

/** What one opened round committed. */
export interface CommittedRound {
  readonly round: number;
  readonly plan: RoundPlan;
  /** Per chunk below `plan.chunkCount`: its stats, or undefined when it was not reconciled. */
  readonly chunks: ReadonlyArray<ChunkStats | undefined>;
  /** The remainder's stats when the plan has a remainder and its policy finished. */
  readonly remainder?: RemainderStats;
}

/**
 * Every round of a run that has a `plan.json` among `keys` (a listing of the run's work prefix),
 * up to `lastRound` when given, in order, with what its chunks and its remainder committed.
 */
export async function readCommittedRounds(
  s3: S3Client,
  bucket: string,
  runId: string,
  keys: ReadonlySet<string>,
  lastRound = Number.POSITIVE_INFINITY,
): Promise<CommittedRound[]> {
  const rounds: CommittedRound[] = [];
  for (let round = 1; round <= lastRound && keys.has(runKeys.roundPlan(runId, round)); round++) {
    const plan = await readRoundPlan(s3, bucket, runId, round);
    if (!plan) break;
    const chunks = await readRoundChunkStats(s3, bucket, runId, round, plan.chunkCount, (k) => keys.has(k));
    const remainder = plan.remainder > 0 ? await readJsonObject<RemainderStats>(s3, bucket, runKeys.remainderStats(runId, round)) : undefined;
    rounds.push({ round, plan, chunks, ...(remainder ? { remainder } : {}) });
  }
  return rounds;
}

/** `remainder-ready.json`: the round's plan, and the start of the execution whose step wrote it. */
export interface RemainderReady extends RoundPlan {
  readonly startedAt: string;
}

/**
 * The round's `remainder-ready.json` when this execution wrote it (its chunks and remainder are
 * final); undefined when not. The execution's start time tells an earlier attempt of this
 * step from an execution of the same name long before (Step Functions lets a name be used
 * again 90 days after its execution closed): that one's files are not this run's.
 */
export async function readRemainderReady(s3: S3Client, run: RunConfig, round: number): Promise<RoundPlan | undefined> {
  const key = runKeys.remainderReady(run.runId, round);
  if (!(await objectExists(s3, run.bucket, key))) return undefined;
  const ready = await readJsonObject<Partial<RemainderReady>>(s3, run.bucket, key);
  if (!ready || ready.startedAt !== run.startedAt || !isCount(ready.chunkCount) || !isCount(ready.remainder)) return undefined;
  return { chunkCount: ready.chunkCount, remainder: ready.remainder };
}
