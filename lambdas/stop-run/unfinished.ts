/**
 * What stop-run fails of a stopped run: the records of its last round that no step settled,
 * in `work/<runId>/stopped.jsonl`, and what it failed, in `stopped.json` (stop-run.ts).
 */
import { partsOf, readRoundChunkStats, readRoundPlan } from '../shared/committed-parts';
import { runKeys, S3_PREFIXES, type RunConfig } from '../shared/contracts';
import { runStopped, type RetryRecord, type StoppedManifest } from '../shared/outcomes';
import { leadingRecordId } from '../shared/reconcile';
import { applySmallRemainder, heldForNextSweep } from '../shared/small-remainder';
import { JsonlWriter, listObjects, objectExists, readJsonl, readObjectLines, writeJsonObject } from '../shared/s3-jsonl';
import type { StopRunDeps } from './stop-run';

/** What the functions below use of stop-run's deps. */
type Deps = Pick<StopRunDeps, 's3' | 'claims'>;

/** The keys under the run's work prefix, and the run's last round with a `plan.json` (0: none). */
export async function workFiles(deps: Deps, run: RunConfig): Promise<{ keys: Set<string>; lastRound: number }> {
  const keys = (await listObjects(deps.s3, run.bucket, `${S3_PREFIXES.work}${run.runId}/`)).map((o) => o.key);
  const rounds = keys.flatMap((k) => {
    const m = /\/r(\d+)\/plan\.json$/.exec(k);
    return m ? [Number(m[1])] : [];
  });
  return { keys: new Set(keys), lastRound: rounds.length > 0 ? Math.max(...rounds) : 0 };
}

/**
 * Writes `work/<runId>/stopped.jsonl`: the records of the run's last round that no step
 * settled. A chunk that was reconciled (it has its `stats.json`) has settled all but the
 * retries its stats list; a chunk that was not has settled nothing, whatever parts a failed
 * attempt left; a remainder of the plan without its stats was not handled (on demand, once no
 * step runs, it is closed here instead: the answers an attempt wrote are kept).
 */
export async function failUnfinished(deps: Deps, run: RunConfig): Promise<number> {
  const { keys: has, lastRound: round } = await workFiles(deps, run);
  const writer = new JsonlWriter(deps.s3, run.bucket, runKeys.stopped(run.runId));
  const unfinishedChunks: number[] = [];
  let unfinishedRemainder = false;
  // Last, after stopped.jsonl: what it failed, so that finalize does not also take what a step
  // that outlived the stop commits for the same records afterwards.
  const commit = async (): Promise<number> => {
    const lines = await writer.close();
    const manifest: StoppedManifest = {
      round,
      unfinishedChunks,
      unfinishedRemainder,
      parts: lines > 0 ? [{ kind: 'failed', key: writer.key, lines, bytes: writer.bytes }] : [],
    };
    await writeJsonObject(deps.s3, run.bucket, runKeys.stoppedManifest(run.runId), manifest);
    return lines;
  };
  if (round === 0 || has.has(runKeys.exhausted(run.runId, round))) return commit();
  const fail = (recordId: string) => writer.write(runStopped(recordId, round));

  // Only the round's planned chunks: a chunk file past the count was re-split into others.
  const plan = await readRoundPlan(deps.s3, run.bucket, run.runId, round);
  const stats = await readRoundChunkStats(deps.s3, run.bucket, run.runId, round, plan?.chunkCount ?? 0, (k) => has.has(k));
  for (const [chunk, chunkStats] of stats.entries()) {
    if (chunkStats) {
      for (const part of partsOf(chunkStats, 'retry', runKeys.chunkStats(run.runId, round, chunk))) {
        for await (const r of readJsonl<RetryRecord>(deps.s3, run.bucket, part.key)) await fail(r.recordId);
      }
    } else {
      unfinishedChunks.push(chunk);
      for await (const raw of readObjectLines(deps.s3, run.bucket, runKeys.chunkInput(run.runId, round, chunk)))
        if (raw.length > 0) await fail(leadingRecordId(raw.toString('utf8')));
    }
  }
  if ((plan?.remainder ?? 0) > 0 && !has.has(runKeys.remainderStats(run.runId, round))) {
    // On demand, once no step runs (none can write it any more), the remainder is closed here:
    // the answers an attempt wrote (billed) are kept, the other records fail RunStopped.
    if (run.smallRemainder === 'on-demand' && !(await deps.claims.hasRunningSteps(run.runId))) {
      await applySmallRemainder({ s3: deps.s3 }, run, round, { stopped: true });
      return commit();
    }
    unfinishedRemainder = true;
    // A held file its step wrote before dying (ahead of its stats): the route's next sweep runs
    // its records, so they are held, as the step would have said, not stopped.
    const heldKey = runKeys.held(run.route, run.runId, round);
    const held = run.smallRemainder === 'hold' && (await objectExists(deps.s3, run.bucket, heldKey));
    for await (const raw of readObjectLines(deps.s3, run.bucket, runKeys.roundRemainder(run.runId, round))) {
      if (raw.length === 0) continue;
      const recordId = leadingRecordId(raw.toString('utf8'));
      await (held ? writer.write(heldForNextSweep(run, round, recordId)) : fail(recordId));
    }
  }
  return commit();
}
