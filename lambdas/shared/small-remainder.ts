/**
 * The small-remainder policies: what happens to the records of a round that no valid job can
 * take (fewer than the route's minimum per job). `on-demand` runs each through InvokeModel,
 * `hold` keeps them for the route's next sweep, `fail` fails them with the reason.
 */
import { InvokeModelCommand, type BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { S3Client } from '@aws-sdk/client-s3';
import { REMAINDER_INCOMPLETE_ERROR, runKeys, s3Uri, type RunConfig } from './contracts';
import { modelFamily, stoppedAtMaxTokens } from './model-family';
import { addUsage, recordUsage } from './token-estimate';
import { runStopped, type FailedRecord, type PartFile, type RemainderStats, type SucceededRecord, type TokenCounts } from './outcomes';
import { logger } from './logger';
import { leadingRecordId } from './reconcile';
import { isRetryableRecordError } from './retry-policy';
import { CallClock, type TimeBudget } from './time-budget';
import { getObjectStream, JsonlWriter, objectExists, readObjectLines, splitLines, writeJsonObject } from './s3-jsonl';

/** The clients the policies use: S3 for the parts, Bedrock Runtime for `on-demand`. */
export interface SmallRemainderDeps {
  readonly s3: S3Client;
  /** For `on-demand` (not needed to close a stopped run's remainder). */
  readonly bedrockRuntime?: BedrockRuntimeClient;
  /** The invocation's time: on demand, what cannot finish within it is left for the step's retry. Absent: no limit. */
  readonly budget?: TimeBudget;
  /** Whether the run was stopped (its claim's stop mark): on demand, no call starts after it. Absent: never. */
  readonly stopRequested?: (runId: string) => Promise<boolean>;
}

/**
 * Thrown when an on-demand remainder could not be finished within the invocation: the outcomes
 * so far are written, and the retried step invokes only the records still without one.
 */
export class RemainderIncomplete extends Error {
  override readonly name = REMAINDER_INCOMPLETE_ERROR;
}

/** How many on-demand InvokeModel calls run at once for a small remainder. */
const ON_DEMAND_CONCURRENCY = 4;

/** The lines of an object, or none when it does not exist (probed by a listing, see objectExists). */
async function* linesIfPresent(s3: S3Client, bucket: string, key: string): AsyncGenerator<Buffer> {
  if (!(await objectExists(s3, bucket, key))) return;
  yield* splitLines(await getObjectStream(s3, bucket, key));
}

/** The failure of a record held in `held/<route>/<runId>-rNN.jsonl` for the route's next sweep (stop-run says the same). */
export function heldForNextSweep(run: RunConfig, round: number, recordId: string): FailedRecord {
  const uri = s3Uri(run.bucket, runKeys.held(run.route, run.runId, round));
  const message = `held in ${uri} for the route's next sweep (fewer records than the minimum of ${run.minRecordsPerJob} per job)`;
  return { recordId, error: { code: 'HeldForNextSweep', message }, attempts: round };
}

/**
 * Applies the route's policy to the round's remainder file:
 * `on-demand` runs each record through InvokeModel (priced on demand), `hold` moves the records
 * to `held/<route>/` for the next sweep, `fail` fails them with the reason. Never drops a record.
 *
 * Safe to run again after failing anywhere: the parts are written first and
 * `remainder-stats.json`, listing them, last. An InvokeModel is billed, so on demand the
 * outcomes an earlier attempt already wrote (either part, whether or not its stats were) are
 * read back and kept, and only the records in neither are invoked: a retried step ends with the
 * same records succeeded and failed, and the same counts, as one that ran once. `hold` and
 * `fail` cost nothing and are deterministic: they are simply done again.
 */
export async function applySmallRemainder(
  deps: SmallRemainderDeps,
  run: RunConfig,
  round: number,
  opts: {
    /**
     * Close the remainder of a stopped run (stop-run, once no step runs): keep the outcomes an
     * attempt wrote, fail the other records `RunStopped`, invoke nothing (hold: hold only what an
     * earlier attempt's held file already holds).
     */
    readonly stopped?: boolean;
  } = {},
): Promise<RemainderStats> {
  const remainderKey = runKeys.roundRemainder(run.runId, round);
  const succeeded = new JsonlWriter(deps.s3, run.bucket, runKeys.roundPart(run.runId, round, 'succeeded'), { lazy: true });
  const failed = new JsonlWriter(deps.s3, run.bucket, runKeys.roundPart(run.runId, round, 'failed'), { lazy: true });
  const heldKey = runKeys.held(run.route, run.runId, round);
  const held = new JsonlWriter(deps.s3, run.bucket, heldKey, { lazy: true });
  const tokens: TokenCounts = { input: 0, output: 0 };
  let records = 0;
  let onDemandRecords = 0;
  let truncated = 0;

  // Read back (and copied into the new parts, before these replace the old ones at close) only
  // for records still in the remainder: its content is the step's, but a part of an attempt
  // that saw other input must not bring in a record the round no longer has.
  const settled = new Set<string>();
  // On demand, the remainder's lines (fewer than a job's minimum) are read first and kept: a
  // stream left paused while calls run for minutes could be reset under it.
  let onDemandLines: Buffer[] | undefined;
  if (run.smallRemainder === 'on-demand') {
    onDemandLines = [];
    for await (const raw of readObjectLines(deps.s3, run.bucket, remainderKey)) if (raw.length > 0) onDemandLines.push(raw);
    const remainderIds = new Set(onDemandLines.map((raw) => leadingRecordId(raw.toString('utf8'))));
    for (const writer of [succeeded, failed]) {
      for await (const raw of linesIfPresent(deps.s3, run.bucket, writer.key)) {
        if (raw.length === 0) continue;
        const done = JSON.parse(raw.toString('utf8')) as Partial<SucceededRecord>;
        if (typeof done.recordId !== 'string' || !remainderIds.has(done.recordId) || settled.has(done.recordId)) continue;
        settled.add(done.recordId);
        addUsage(tokens, done.usage);
        if (done.truncated) truncated += 1;
        await writer.write(raw);
      }
    }
  }

  const fail = (recordId: string, code: string, message: string): Promise<void> =>
    failed.write({ recordId, error: { code, message }, attempts: round } satisfies FailedRecord);

  // On demand, within the invocation's time: what cannot start or finish in it is left for the
  // step's retry, which keeps what this attempt wrote.
  const clock = deps.budget && run.smallRemainder === 'on-demand' ? new CallClock(deps.budget) : undefined;
  const abort = new AbortController();
  const abortTimer = clock ? setTimeout(() => abort.abort(), clock.untilAbortMs()) : undefined;
  let unfinished = 0;
  let stopped = false;
  // Checked before each call: a stopped run's calls would be billed for nothing. A check that
  // fails (a throttled read) is taken as no stop: ending the attempt there would lose its answers.
  const stopSeen = async (): Promise<boolean> => {
    if (stopped || !deps.stopRequested) return stopped;
    try {
      stopped = await deps.stopRequested(run.runId);
    } catch (err) {
      logger.warn('could not read the stop mark; going on', { runId: run.runId, error: (err as Error).message });
    }
    return stopped;
  };

  // Hold, decided once: not once the run was stopped (a held file written now would have the
  // next sweep run records stop-run failed), unless an earlier attempt's held file exists: the
  // sweep runs that one anyway, so its records are held, as stop-run also says.
  const holds = run.smallRemainder === 'hold' && (!(opts.stopped || (await stopSeen())) || (await objectExists(deps.s3, run.bucket, heldKey)));
  const inFlight = new Set<Promise<unknown>>();
  const failures: unknown[] = [];
  try {
    for await (const raw of onDemandLines ?? readObjectLines(deps.s3, run.bucket, remainderKey)) {
      if (failures.length > 0) break;
      if (raw.length === 0) continue;
      records += 1;
      const line = raw.toString('utf8');
      const record = JSON.parse(line) as { recordId: string; modelInput: unknown };
      switch (run.smallRemainder) {
        case 'fail':
          await fail(
            record.recordId,
            'BelowMinimumRecordsPerJob',
            `left in a set of fewer records than the minimum of ${run.minRecordsPerJob} per job, and the route's small-remainder policy is 'fail'`,
          );
          break;
        case 'hold':
          if (!holds) {
            await failed.write(runStopped(record.recordId, round));
            break;
          }
          await held.write(line);
          await failed.write(heldForNextSweep(run, round, record.recordId));
          break;
        case 'on-demand': {
          onDemandRecords += 1;
          if (settled.has(record.recordId)) break;
          if (opts.stopped) {
            await failed.write(runStopped(record.recordId, round));
            break;
          }
          if (abort.signal.aborted || (clock && !clock.mayStart()) || (await stopSeen())) {
            unfinished += 1;
            break;
          }
          if (!deps.bedrockRuntime) throw new Error('an on-demand remainder needs a Bedrock Runtime client');
          const task = invokeOnDemand(deps.bedrockRuntime, run, record, abort.signal, clock ? () => clock.now() : Date.now).then(async (outcome) => {
            if ('aborted' in outcome) {
              if (!clock?.neverFits(outcome.ms)) {
                unfinished += 1;
                return;
              }
              await fail(
                record.recordId,
                'OnDemandTimeout',
                `on-demand InvokeModel gave no answer in ${Math.round(outcome.ms / 1000)} s, nearly all of its function's time: a retry would have no more`,
              );
              return;
            }
            clock?.observe(outcome.ms);
            if ('modelOutput' in outcome.result) {
              addUsage(tokens, outcome.result.usage);
              if (outcome.result.truncated) truncated += 1;
              await succeeded.write(outcome.result);
            } else {
              await fail(record.recordId, outcome.result.code, outcome.result.message);
            }
          });
          // A settled-flag wrapper: a failing write must reach Promise.all below, not be unhandled.
          const tracked: Promise<unknown> = task.then(
            () => inFlight.delete(tracked),
            (err: unknown) => {
              inFlight.delete(tracked);
              failures.push(err);
            },
          );
          inFlight.add(tracked);
          if (inFlight.size >= ON_DEMAND_CONCURRENCY) await Promise.race(inFlight);
          break;
        }
      }
    }
    await Promise.all(inFlight);
  } finally {
    clearTimeout(abortTimer);
    // Calls still running after a failure (an S3 write) would be billed for nothing.
    abort.abort();
  }
  if (failures.length > 0) throw failures[0];
  if (unfinished > 0) {
    // The outcomes so far, for the retry to keep; no stats, so the round is not done.
    await succeeded.close();
    await failed.close();
    const done = `${onDemandRecords - unfinished} of the ${onDemandRecords} on-demand records of round ${round} have an outcome; `;
    throw new RemainderIncomplete(
      stopped
        ? `${done}the run was stopped, so the other ${unfinished} were not invoked`
        : `${done}${unfinished} did not fit this invocation's time and run when the step is retried (those done are kept, not invoked again)`,
    );
  }
  // The held file before the failed part that points to it.
  const heldLines = await held.close();
  const succeededLines = await succeeded.close();
  const failedLines = await failed.close();
  const parts: PartFile[] = (
    [
      ['succeeded', succeeded],
      ['failed', failed],
      ['held', held],
    ] as const
  )
    .filter(([, w]) => w.lines > 0)
    .map(([kind, w]) => ({ kind, key: w.key, lines: w.lines, bytes: w.bytes }));
  const stats: RemainderStats = {
    round,
    policy: run.smallRemainder,
    records,
    succeeded: succeededLines,
    failed: failedLines,
    held: heldLines,
    onDemandRecords,
    tokens,
    ...(truncated > 0 ? { truncated } : {}),
    parts,
  };
  await writeJsonObject(deps.s3, run.bucket, runKeys.remainderStats(run.runId, round), stats);
  return stats;
}

/** How many times an on-demand record is tried when the error is transient. */
const ON_DEMAND_ATTEMPTS = 3;

async function invokeOnDemand(
  client: BedrockRuntimeClient,
  run: RunConfig,
  record: { recordId: string; modelInput: unknown },
  signal: AbortSignal,
  now: () => number,
): Promise<{ result: SucceededRecord | { code: string; message: string }; ms: number } | { aborted: true; ms: number }> {
  const family = modelFamily(run.modelId)!;
  const started = now();
  let last: { code: string; message: string } = { code: 'Unknown', message: 'not attempted' };
  for (let attempt = 1; attempt <= ON_DEMAND_ATTEMPTS; attempt++) {
    try {
      const res = await client.send(
        new InvokeModelCommand({
          modelId: run.modelId,
          body: JSON.stringify(record.modelInput),
          contentType: 'application/json',
          accept: 'application/json',
        }),
        { abortSignal: signal },
      );
      const modelOutput = JSON.parse(Buffer.from(res.body ?? new Uint8Array()).toString('utf8')) as unknown;
      const result: SucceededRecord = {
        recordId: record.recordId,
        modelOutput,
        usage: recordUsage(family, record.modelInput, modelOutput),
        onDemand: true,
        ...(stoppedAtMaxTokens(family, modelOutput) ? { truncated: true as const } : {}),
      };
      return { result, ms: now() - started };
    } catch (err) {
      if (signal.aborted) return { aborted: true, ms: now() - started };
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode;
      last = { code: e.name || String(status ?? 'Error'), message: `on-demand InvokeModel failed: ${e.message}` };
      if (!isRetryableRecordError(status)) break;
    }
  }
  return { result: last, ms: now() - started };
}
