/**
 * Opening a round: write the round's records into job input files as they arrive
 * ({@link RoundChunkWriter}, balanced on an estimate of the records still to come, within the
 * route's limits and Bedrock's file quota), then hand what no job can take to the route's
 * small-remainder policy (small-remainder.ts). Used by prepare (round 1) and end-round (retries).
 */
import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { planChunks } from './chunk-plan';
import { readRemainderReady, type RemainderReady } from './committed-parts';
import { runKeys, type RoundState, type RunConfig } from './contracts';
import type { RoundPlan } from './outcomes';
import { JsonlWriter, readObjectLines, writeJsonObject } from './s3-jsonl';
import { applySmallRemainder } from './small-remainder';
import type { RunClaims } from './run-claims';
import { lambdaTimeBudget, type LambdaContext, type TimeBudget } from './time-budget';

/** The clients a round is opened with. */
export interface RoundDeps {
  readonly s3: S3Client;
  readonly bedrockRuntime: BedrockRuntimeClient;
  /** The invocation's time, for the on-demand remainder (small-remainder.ts). Absent: no limit. */
  readonly budget?: TimeBudget;
  /** The run's stop mark, for the on-demand remainder (small-remainder.ts). Absent: never stopped. */
  readonly stopRequested?: (runId: string) => Promise<boolean>;
}

/**
 * What Prepare's and EndRound's handlers open rounds with: their clients, the invocation's time
 * and the run's stop mark, so the on-demand remainder works within the one and stops calling at
 * the other (small-remainder.ts).
 */
export function invocationRoundDeps(
  clients: Pick<RoundDeps, 's3' | 'bedrockRuntime'>,
  claims: Pick<RunClaims, 'isStopped'>,
  context?: LambdaContext,
): RoundDeps {
  const budget = lambdaTimeBudget(context);
  return { s3: clients.s3, bedrockRuntime: clients.bedrockRuntime, ...(budget ? { budget } : {}), stopRequested: (runId) => claims.isStopped(runId) };
}

/**
 * Bedrock's input file and job size quotas (docs/BEDROCK-FACTS.md §7: 1 GB per file, 5 GB per job),
 * in bytes, kept a little under the limit.
 */
const MAX_JOB_INPUT_BYTES = 1_000_000_000 - 1_000_000;

/**
 * Estimates the records still to come from the source bytes not yet read, at the rate of
 * records per byte read so far; undefined while nothing is known (or the size is not).
 */
export class RecordsToCome {
  private readBytes = 0;
  private records = 0;

  /** @param totalBytes the size of every source together, when known */
  constructor(private readonly totalBytes: number | undefined) {}

  /** Counts one source line of `bytes` (without its newline) as read, and whether it became a record. */
  read(bytes: number, record: boolean): void {
    this.readBytes += bytes + 1;
    if (record) this.records += 1;
  }

  estimate(): number | undefined {
    if (this.totalBytes === undefined || this.readBytes === 0) return undefined;
    return (Math.max(0, this.totalBytes - this.readBytes) * this.records) / this.readBytes;
  }
}

/**
 * How much lower than estimated the records still to come are taken when a
 * {@link RoundChunkWriter} counts the jobs it needs: a round estimated within this fraction
 * above a multiple of the maximum gets one job fewer. When the count really was above it, the
 * later cuts (on fresher estimates) or, at worst, the tail re-split make up for it.
 */
export const ESTIMATE_SLACK = 0.02;

/** What one chunk file of a {@link RoundChunkWriter} holds. */
interface WrittenChunk {
  records: number;
  bytes: number;
  /** Cut by Bedrock's file size quota rather than the record count: not rebalanced. */
  cutByBytes: boolean;
}

export interface RoundChunkWriterOptions {
  /** The size quota of one job input file (Bedrock's, by default). */
  readonly maxFileBytes?: number;
  /**
   * An estimate of how many more records will be added after the one being added (prepare and
   * end-round derive it from the source bytes still unread, see {@link RecordsToCome}), or
   * undefined when unknown. With it, chunks
   * are balanced over the whole round as they are cut; without it, chunks are filled to the
   * maximum and only the tail is balanced.
   */
  readonly recordsToCome?: () => number | undefined;
}

/**
 * Writes a round's chunk files in one pass, as records arrive (prepare for round 1, end-round
 * for retry rounds), without waiting for the total count. A chunk is cut when it reaches its
 * share of the records it holds plus the estimated records still to come, balanced over as few
 * jobs as the maximum allows (asked afresh before every record, so the estimate only has to be
 * good near the cut), the route's maximum records, or Bedrock's file size quota. A good
 * estimate gives the chunks of {@link planChunks} over the whole round in one pass. When the
 * estimate was wrong (or missing) the tail is fixed at the end: when the last chunk is under the
 * minimum, or under half of the one before it, the last two (or three) are re-split by
 * {@link planChunks} (through temporary files copied over them), so there is never a full chunk
 * followed by a sliver, and what no valid job can take goes to the small-remainder policy. A
 * chunk file left past the final count is not part of the round (`plan.json` says how many are).
 */
export class RoundChunkWriter {
  private readonly chunks: WrittenChunk[] = [];
  private current: JsonlWriter | undefined;
  private readonly maxFileBytes: number;
  private readonly limits: { maxRecordsPerJob: number; minRecordsPerJob: number };
  /** Tail re-splits made by {@link finish}: 0 when the estimate balanced the round. */
  tailRewrites = 0;

  constructor(
    private readonly deps: RoundDeps,
    private readonly run: RunConfig,
    private readonly round: number,
    private readonly opts: RoundChunkWriterOptions = {},
  ) {
    this.maxFileBytes = opts.maxFileBytes ?? MAX_JOB_INPUT_BYTES;
    this.limits = { maxRecordsPerJob: run.maxRecordsPerJob, minRecordsPerJob: Math.min(run.minRecordsPerJob, run.maxRecordsPerJob) };
  }

  /** Adds one valid record line. */
  async add(line: string | Buffer): Promise<void> {
    const bytes = (typeof line === 'string' ? Buffer.byteLength(line) : line.length) + 1;
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || this.cutBefore(chunk, bytes)) {
      // The finished chunk's upload completes while the next one fills (one at a time).
      if (this.current) await this.closeInBackground(this.current);
      this.current = new JsonlWriter(this.deps.s3, this.run.bucket, runKeys.chunkInput(this.run.runId, this.round, this.chunks.length));
      chunk = { records: 0, bytes: 0, cutByBytes: false };
      this.chunks.push(chunk);
    }
    await this.current!.write(line);
    chunk.records += 1;
    chunk.bytes += bytes;
  }

  /** True when `chunk` is complete and a record of `bytes` must start the next one. */
  private cutBefore(chunk: WrittenChunk, bytes: number): boolean {
    if (chunk.bytes + bytes > this.maxFileBytes) {
      if (chunk.records < this.limits.maxRecordsPerJob) chunk.cutByBytes = true;
      return true;
    }
    return chunk.records >= this.limits.maxRecordsPerJob || chunk.records >= this.targetFor(chunk.records);
  }

  /**
   * The size a chunk holding `records` should be cut at, asked before every record: the records
   * it holds, the one being added and the estimated records to come, spread over as few jobs as
   * the maximum allows. The estimate is taken {@link ESTIMATE_SLACK} low when counting jobs, so
   * that a slight overestimate (longer lines later in a file, as with growing ids) does not cost
   * an extra job; the maximum when one job takes the rest (the end is near: fill up rather than
   * cut early on an estimate), when the balanced size would be under the minimum, or when
   * nothing is known.
   */
  private targetFor(records: number): number {
    const { maxRecordsPerJob: max, minRecordsPerJob: min } = this.limits;
    const toCome = this.opts.recordsToCome?.();
    if (toCome === undefined || !Number.isFinite(toCome) || toCome < 0) return max;
    const jobs = Math.ceil((records + 1 + toCome * (1 - ESTIMATE_SLACK)) / max);
    if (jobs <= 1) return max;
    const size = Math.ceil((records + 1 + toCome) / jobs);
    return size >= min ? Math.min(max, size) : max;
  }

  private closing: Promise<unknown> | undefined;

  private async closeInBackground(writer: JsonlWriter): Promise<void> {
    await this.closing;
    const closing = writer.close();
    closing.catch(() => undefined); // awaited by the next chunk or by finish()
    this.closing = closing;
  }

  /** Closes the last chunk, balances the tail, applies the small-remainder policy; returns the round. */
  async finish(): Promise<RoundState> {
    await this.closing;
    await this.current?.close();
    const { run, round, limits } = this;
    let chunkCount = this.chunks.length;
    let remainder = 0;
    const last = this.chunks[chunkCount - 1];
    const before = this.chunks[chunkCount - 2];
    if (last) {
      const underMinimum = last.records < limits.minRecordsPerJob;
      const sliver = underMinimum || (before !== undefined && last.records * 2 < before.records);
      // Under the minimum, the last three are re-split (310 records at 100..150 fit three jobs,
      // not two and a remainder); a sliver, the last two. Chunks cut by size are not re-split.
      let from = chunkCount - 1;
      while (from > Math.max(0, chunkCount - (underMinimum ? 3 : 2)) && !this.chunks[from - 1]!.cutByBytes && !last.cutByBytes) from -= 1;
      // A re-split by count keeps every chunk within the file quota if the whole tail fits one.
      const tailBytes = (start: number) => this.chunks.slice(start).reduce((n, c) => n + c.bytes, 0);
      while (from < chunkCount - 1 && tailBytes(from) > this.maxFileBytes) from += 1;
      if (sliver && (from < chunkCount - 1 || underMinimum)) {
        const count = this.chunks.slice(from).reduce((n, c) => n + c.records, 0);
        const plan = from === chunkCount - 1 ? { sizes: [], remainder: count } : planChunks(count, limits);
        await this.rewriteTail(from, plan.sizes, plan.remainder);
        chunkCount = from + plan.sizes.length;
        remainder = plan.remainder;
        this.tailRewrites += 1;
      }
    }
    if (remainder > 0) {
      // The chunks and the remainder are final: a step retried while its remainder runs (on
      // demand, it may take more than one invocation) goes on from here (resumeRound).
      const ready: RemainderReady = { chunkCount, remainder, startedAt: run.startedAt };
      await writeJsonObject(this.deps.s3, run.bucket, runKeys.remainderReady(run.runId, round), ready);
    }
    return openRound(this.deps, run, round, { chunkCount, remainder });
  }

  /**
   * Re-splits chunk files `from`.. into chunks of `sizes` and a remainder of `remainder` records:
   * written to temporary files first (a chunk is never read and overwritten at once), then
   * copied over the chunk files; then the small-remainder policy runs on the remainder.
   */
  private async rewriteTail(from: number, sizes: readonly number[], remainder: number): Promise<void> {
    const { deps, run, round } = this;
    const targets = [
      ...sizes.map((size, n) => ({ key: runKeys.roundTail(run.runId, round, n), size })),
      { key: runKeys.roundRemainder(run.runId, round), size: remainder },
    ];
    let target = 0;
    let writer = new JsonlWriter(deps.s3, run.bucket, targets[0]!.key);
    for (let chunk = from; chunk < this.chunks.length; chunk++) {
      for await (const line of readObjectLines(deps.s3, run.bucket, runKeys.chunkInput(run.runId, round, chunk))) {
        if (line.length === 0) continue;
        while (writer.lines >= targets[target]!.size && target < targets.length - 1) {
          await writer.close();
          target += 1;
          writer = new JsonlWriter(deps.s3, run.bucket, targets[target]!.key);
        }
        await writer.write(line);
      }
    }
    await writer.close();
    for (const [n] of sizes.entries()) {
      await deps.s3.send(
        new CopyObjectCommand({
          Bucket: run.bucket,
          Key: runKeys.chunkInput(run.runId, round, from + n),
          // URL-encoded, path separators kept (as S3 expects CopySource).
          CopySource: `${run.bucket}/${runKeys.roundTail(run.runId, round, n).split('/').map(encodeURIComponent).join('/')}`,
        }),
      );
    }
  }
}

/**
 * Applies the small-remainder policy (when the round has a remainder), then writes the round's
 * manifest. Until `plan.json` exists the round is not open, so whatever an attempt that failed
 * before it left (more chunk files, tail files, a remainder's parts) counts for nothing.
 */
export async function openRound(deps: RoundDeps, run: RunConfig, round: number, plan: RoundPlan): Promise<RoundState> {
  if (plan.remainder > 0) await applySmallRemainder(deps, run, round);
  await writeJsonObject(deps.s3, run.bucket, runKeys.roundPlan(run.runId, round), plan satisfies RoundPlan);
  return { number: round, chunkCount: plan.chunkCount, nextChunk: 0, hasMoreChunks: plan.chunkCount > 0 };
}

/**
 * A retried step whose earlier attempt got as far as the round's remainder
 * (`remainder-ready.json`) goes on from there, without its pass over the input: its time goes
 * to the remainder, whose on-demand outcomes so far are kept. Undefined when no attempt got
 * that far (the step then does its whole work again).
 */
export async function resumeRound(deps: RoundDeps, run: RunConfig, round: number): Promise<RoundState | undefined> {
  const ready = await readRemainderReady(deps.s3, run, round);
  return ready ? openRound(deps, run, round, ready) : undefined;
}
