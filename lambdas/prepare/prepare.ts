/**
 * Prepare: resolve the run input, stream every input file through validation, write rejected
 * lines with their reasons, and open round 1 with the valid records.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PipelineEnvConfig } from '../shared/config';
import { isValidRunId, parseS3Uri, runKeys, type RoundState, type RunConfig } from '../shared/contracts';
import { logger } from '../shared/logger';
import { modelFamily } from '../shared/model-family';
import { planningQuotas, type ModelQuotaReader } from '../shared/model-quotas';
import type { PrepareStats } from '../shared/outcomes';
import type { ResumeInput } from '../next-window/next-window';
import { RecordIdIndex } from '../shared/record-id-index';
import { fileStemOf, judgeLine, uniqueStem } from '../shared/records';
import { readRemainderReady } from '../shared/committed-parts';
import { openRound, RecordsToCome, RoundChunkWriter, type RoundDeps } from '../shared/round-chunk-writer';
import { executionNameOf, type RunClaims } from '../shared/run-claims';
import { withRunStep } from '../shared/run-steps';
import { InvalidRunInput, resolveRunConfig } from '../shared/run-input';
import { JsonlWriter, listObjects, readJsonObject, readObjectLineBatches, writeJsonObject } from '../shared/s3-jsonl';

/** The workflow's payload to Prepare. */
export interface PrepareEvent {
  readonly input: unknown;
  readonly executionName: string;
  /** `$$.Execution.Id`: the ARN the run's claim records. */
  readonly executionArn: string;
  readonly startTime: string;
}

/** What prepare needs besides its clients. */
export interface PrepareEnv {
  readonly bucket: string;
  readonly pipeline: PipelineEnvConfig;
  readonly claims: RunClaims;
  /**
   * Reads the model's quotas (Service Quotas, lambdas/shared/model-quotas.ts): the run plans with
   * the stricter of each quota and the route's setting. Unset only where no quotas exist to read
   * (benchmarks of the planning code): the route's settings are then used as they are.
   */
  readonly readQuotas?: ModelQuotaReader;
}

export interface PrepareResult {
  readonly run: RunConfig;
  readonly round: RoundState;
}

/** One input file of a run, with its size when known. */
export interface InputFile {
  readonly uri: string;
  /** Size in bytes; undefined when it could not be read (the read itself then reports why). */
  readonly bytes: number | undefined;
}

/**
 * Expands prefix inputs (ending in `/`) into the `.jsonl` objects under them, with the sizes
 * the listing gives; a single-file input's size comes from HeadObject.
 */
export async function expandInputs(s3: S3Client, inputs: readonly string[]): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const uri of inputs) {
    const { bucket, key } = parseS3Uri(uri);
    if (!uri.endsWith('/')) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
      out.push({ uri, bytes: head?.ContentLength });
      continue;
    }
    const objects = await listObjects(s3, bucket, key);
    out.push(...objects.filter((o) => o.key.endsWith('.jsonl')).map((o) => ({ uri: `s3://${bucket}/${o.key}`, bytes: o.size })));
  }
  return out;
}

/** An ETag as an If-Match header value: quoted (S3's events give it bare). */
function quotedETag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/** True for the input of a successor execution (see next-window): the run is prepared already. */
function isResume(input: unknown): input is { resume: unknown } {
  return typeof input === 'object' && input !== null && Object.prototype.hasOwnProperty.call(input, 'resume');
}

/**
 * A successor execution's start. Its `resume` input is not believed: the run must have been
 * handed over to this very execution (the claim names it), and the run's configuration and round
 * come from the run's own files and claim, so a forged `resume` can neither name another run nor
 * change a run's model, limits or position.
 */
async function resumeRun(deps: RoundDeps, env: PrepareEnv, event: PrepareEvent): Promise<PrepareResult> {
  const resume = (event.input as { resume: unknown }).resume as Partial<ResumeInput['resume']> | null;
  const runId = (resume?.run as { runId?: unknown } | undefined)?.runId;
  if (typeof runId !== 'string' || !isValidRunId(runId)) throw new InvalidRunInput('resume.run.runId must be a valid run id');
  const claim = await env.claims.get(runId);
  if (!claim || claim.owner !== event.executionArn || !claim.round) {
    throw new InvalidRunInput(
      `resume is accepted only from the pipeline's own hand-over: run ${runId} was not handed over to execution ${event.executionName}` +
        (claim ? ` (it is owned by ${executionNameOf(claim.owner)})` : ' (no such run)'),
    );
  }
  if (claim.stopRequestedAt) throw new InvalidRunInput(`run ${runId} was stopped: it is not resumed`);
  const run = await readJsonObject<RunConfig>(deps.s3, env.bucket, runKeys.runConfig(runId));
  if (!run) throw new InvalidRunInput(`run ${runId} has no run.json: it cannot be resumed`);
  logger.info('resuming the run in a successor execution', { runId, executionName: event.executionName });
  return { run, round: claim.round };
}

/** Runs prepare for one execution; a successor execution resumes where its predecessor stopped. */
export async function prepareRun(deps: RoundDeps, env: PrepareEnv, event: PrepareEvent): Promise<PrepareResult> {
  if (isResume(event.input)) return resumeRun(deps, env, event);
  const { run, inputs, inputETags } = resolveRunConfig(event.input, {
    executionName: event.executionName,
    startTime: event.startTime,
    bucket: env.bucket,
    pipeline: env.pipeline,
  });
  // The run owns its id before it writes anything under it; a retried Prepare claims again.
  await env.claims.claim(run.runId, event.executionArn);
  return withRunStep(
    env.claims,
    run.runId,
    'prepare',
    async () => {
      // A retry after the input pass (its on-demand remainder ran out of time) goes on with the
      // run as that pass planned it.
      const resumed = await resumeRemainder(deps, run);
      return resumed ?? prepareClaimedRun(deps, await boundByQuotas(env, run), inputs, inputETags ?? {});
    },
    deps.budget,
  );
}

/** Round 1 of a run whose earlier Prepare attempt got to its remainder, or undefined. */
async function resumeRemainder(deps: RoundDeps, run: RunConfig): Promise<PrepareResult | undefined> {
  // The marker first: it is missing on a first attempt, and nothing else is read then.
  const ready = await readRemainderReady(deps.s3, run, 1);
  if (!ready) return undefined;
  const planned = await readJsonObject<RunConfig>(deps.s3, run.bucket, runKeys.runConfig(run.runId));
  if (planned?.startedAt !== run.startedAt) throw new Error(`${runKeys.runConfig(run.runId)} is not this execution's, though round 1's remainder was ready`);
  logger.appendKeys({ runId: run.runId });
  logger.info('prepare resumed at its remainder');
  return { run: planned, round: await openRound(deps, planned, 1, ready) };
}

/**
 * The run with the model's quotas applied: the stricter of each quota and the route's setting,
 * and where each came from (`run.quotas`, for the summary). Read once, here: later rounds and
 * successor executions plan with the run configuration written to run.json.
 * @throws InvalidRunInput when the model's minimum job size is above the largest job the run may make
 */
async function boundByQuotas(env: PrepareEnv, run: RunConfig): Promise<RunConfig> {
  if (!env.readQuotas) return run;
  const quotas = planningQuotas(run, await env.readQuotas(run.modelId));
  const { minRecordsPerJob: min, maxRecordsPerJob: max, maxConcurrentJobs } = quotas.values;
  for (const w of quotas.warnings) logger.warn(w);
  if (min.value > max.value) {
    throw new InvalidRunInput(
      `no job of this run could be valid: the minimum of ${min.value} records per job (${min.source}) for ${run.modelId} is above the maximum of ${max.value} (${max.source}); ` +
        `raise maxRecordsPerJob to at least ${min.value}`,
    );
  }
  logger.info('planning with quotas', { quotas: quotas.values });
  return { ...run, minRecordsPerJob: min.value, maxRecordsPerJob: max.value, maxConcurrentJobs: maxConcurrentJobs.value, quotas };
}

/** Prepare's work for a run this execution owns. */
async function prepareClaimedRun(deps: RoundDeps, run: RunConfig, inputs: string[], inputETags: Readonly<Record<string, string>>): Promise<PrepareResult> {
  logger.appendKeys({ runId: run.runId });
  await writeJsonObject(deps.s3, run.bucket, runKeys.runConfig(run.runId), run);
  const family = modelFamily(run.modelId)!;
  const files = await expandInputs(deps.s3, inputs);

  let inputLines = 0;
  let blankLines = 0;
  let valid = 0;
  let base = 0;

  // Valid records go straight into round 1's chunk files: one pass over the input, with the
  // chunks balanced on the estimate of what is still to come.
  const totalBytes = files.every((f) => f.bytes !== undefined) ? files.reduce((n, f) => n + f.bytes!, 0) : undefined;
  const toCome = new RecordsToCome(totalBytes);
  const chunks = new RoundChunkWriter(deps, run, 1, { recordsToCome: () => toCome.estimate() });
  const rejected = new JsonlWriter(deps.s3, run.bucket, runKeys.workRejected(run.runId));
  // Ids as compact hashes, each with the ordinal of the line it was first seen on (file base +
  // line), in a table sized for the estimated count.
  const seen = new RecordIdIndex(undefined, () => {
    const toComeNow = toCome.estimate();
    return toComeNow === undefined ? undefined : valid + toComeNow;
  });
  const fileBases: Array<{ base: number; stem: string }> = [];
  const firstSeenAt = (ordinal: number): string => {
    const file = fileBases.findLast((f) => f.base < ordinal)!;
    return `${file.stem}:${ordinal - file.base}`;
  };
  const stems = new Set<string>();

  for (const { uri: file } of files) {
    const { bucket, key } = parseS3Uri(file);
    const fileStem = uniqueStem(fileStemOf(key), stems);
    fileBases.push({ base, stem: fileStem });
    let line = 0;
    try {
      for await (const batch of readObjectLineBatches(deps.s3, bucket, key, quotedETag(inputETags[file]))) {
        for (const raw of batch) {
          line += 1;
          let verdict = judgeLine(raw, { file, fileStem, line, family });
          if (verdict.kind === 'record') {
            const { recordId } = verdict.record;
            const first = seen.firstSeen(recordId, base + line);
            if (first !== undefined)
              verdict = { kind: 'rejected', rejection: { file, line, recordId, reason: `duplicate recordId (first seen at ${firstSeenAt(first)})` } };
          }
          toCome.read(raw.length, verdict.kind === 'record');
          if (verdict.kind === 'blank') {
            blankLines += 1;
            continue;
          }
          inputLines += 1;
          if (verdict.kind === 'rejected') {
            await rejected.write(verdict.rejection);
          } else {
            valid += 1;
            await chunks.add(verdict.record.json);
          }
        }
      }
    } catch (err) {
      const e = err as Error;
      if (e.name === 'PreconditionFailed') {
        // Not retried: the file was replaced after its event; the new content has its own run.
        throw new InvalidRunInput(
          `input ${file} changed after the run was started (it no longer has ETag ${inputETags[file]}): its new content runs in the run its own upload started`,
        );
      }
      if (e.name === 'NoSuchKey' || e.name === 'NoSuchBucket' || e.name === 'AccessDenied') {
        throw Object.assign(new Error(`cannot read input ${file}: ${e.name}`), { name: 'InputUnreadable' });
      }
      throw err;
    }
    base += line;
  }

  const rejectedCount = await rejected.close();
  const stats: PrepareStats = { inputFiles: files.length, inputLines, blankLines, valid, rejected: rejectedCount, inputs: files.map((f) => f.uri) };
  await writeJsonObject(deps.s3, run.bucket, runKeys.runStats(run.runId), stats);
  const round = await chunks.finish();
  logger.info('prepared run', {
    inputFiles: files.length,
    inputLines,
    valid,
    rejected: rejectedCount,
    chunks: round.chunkCount,
    tailRewrites: chunks.tailRewrites,
  });
  return { run, round };
}
