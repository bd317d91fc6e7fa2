/**
 * What the operator commands do to a deployed pipeline (or a running twin): start a run from
 * local files or S3 inputs, stop one and wait for it to wind up, fetch its outputs, list runs.
 * Each takes a {@link Target}; the command line (cli/main.ts) parses and prints.
 */
import { StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { isValidRunId, keyPrefix, runKeys, UPLOADS_PREFIX } from '../lambdas/shared/contracts';
import { downloadObject } from '../lambdas/shared/s3-jsonl';
import type { RunSummary } from '../lambdas/finalize/run-summary';
import { describeExecution, readClaim, readJson, readRunView, type RunView, type ViewCache } from './run-view';
import type { Target } from './target';

/** A wrong input to a command that the user can fix: one line, exit 2. */
export class CommandInputError extends Error {
  override readonly name = 'CommandInputError';
}

/** What `submit` starts. */
export interface SubmitRequest {
  /** Local `.jsonl` files (uploaded) and `s3://` URIs of the pipeline's bucket (named as they are). */
  readonly inputs: readonly string[];
  readonly route?: string;
  readonly runId?: string;
  /** Fields of the console input that override the route's settings for this run (`modelId`, `maxAttempts`, ...). */
  readonly overrides?: Readonly<Record<string, string | number>>;
}

/** A run id for a submit that names none: the first input's name, the time and 4 random characters. */
export function defaultRunId(firstInput: string, now: Date, random = Math.random): string {
  const stem = (
    basename(firstInput)
      .replace(/\.jsonl$/i, '')
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'run'
  )
    .slice(0, 19)
    .replace(/-+$/, '');
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const suffix = Math.floor(random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0');
  return `${stem || 'run'}-${stamp}-${suffix}`;
}

/**
 * Uploads the local inputs under `uploads/<runId>/` and starts the run with the console input
 * the README documents; returns the run id and the execution.
 */
export async function submitRun(
  target: Target,
  req: SubmitRequest,
  opts: { now?: Date; progress?: (line: string) => void } = {},
): Promise<{ runId: string; executionArn: string; inputs: string[] }> {
  if (req.inputs.length === 0) throw new CommandInputError('no input given: name local .jsonl files or s3:// URIs');
  const runId = req.runId ?? defaultRunId(req.inputs[0]!, opts.now ?? new Date());
  if (!isValidRunId(runId))
    throw new CommandInputError(`--run-id must be 1..40 letters, digits and single hyphens, starting and ending with a letter or digit, got '${runId}'`);
  const seen = new Set<string>();
  for (const input of req.inputs) {
    const same = input.startsWith('s3://') ? input : resolve(input);
    if (seen.has(same)) throw new CommandInputError(`${input} is given twice: each input is read once per run`);
    seen.add(same);
    if (input.startsWith('s3://')) {
      if (!input.startsWith(`s3://${target.bucket}/`))
        throw new CommandInputError(`${input} is not in the pipeline's bucket (s3://${target.bucket}/): copy it there first`);
      continue;
    }
    const info = await stat(input).catch(() => undefined);
    if (!info) throw new CommandInputError(`file not found: ${input}`);
    if (!info.isFile()) throw new CommandInputError(`not a file: ${input}`);
  }
  if (await readClaim(target, runId)) throw new CommandInputError(`run id ${runId} is taken (a run owns its id): choose another --run-id`);

  const inputs: string[] = [];
  const inputETags: Record<string, string> = {};
  const used = new Set<string>();
  for (const input of req.inputs) {
    if (input.startsWith('s3://')) {
      inputs.push(input);
      continue;
    }
    // Two files named alike (a/x.jsonl, b/x.jsonl) get x.jsonl and 2-x.jsonl, never one key.
    const name = basename(input);
    let unique = name;
    for (let n = 2; used.has(unique); n++) unique = `${n}-${name}`;
    used.add(unique);
    const key = `${keyPrefix()}${UPLOADS_PREFIX}${runId}/${unique}`;
    opts.progress?.(`uploading ${input} to s3://${target.bucket}/${key}`);
    const uploaded = await new Upload({ client: target.s3, params: { Bucket: target.bucket, Key: key, Body: createReadStream(input) } }).done();
    const uri = `s3://${target.bucket}/${key}`;
    inputs.push(uri);
    // The run reads the file only while it is this upload (README, inputETags): a second submit
    // racing for the same run id cannot swap its file in under this run.
    if (uploaded.ETag) inputETags[uri] = uploaded.ETag;
  }
  const input = {
    inputs,
    runId,
    ...(req.route !== undefined ? { route: req.route } : {}),
    ...(Object.keys(inputETags).length > 0 ? { inputETags } : {}),
    ...req.overrides,
  };
  const started = await target.sfn.send(new StartExecutionCommand({ stateMachineArn: target.stateMachineArn, name: runId, input: JSON.stringify(input) }));
  return { runId, executionArn: started.executionArn!, inputs };
}

/** Options of {@link waitForRun}. */
export interface WaitOptions {
  /** Called with each view that differs from the last one. */
  readonly onChange?: (view: RunView) => void;
  readonly intervalMs?: number;
  /** Gives up after this long (ms). @default no limit */
  readonly timeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => Date;
}

/** Polls the run until it has ended (its view is `final`); returns the final view. */
export function waitForRun(target: Target, runId: string, opts: WaitOptions = {}): Promise<RunView> {
  return pollUntilFinal(target, runId, opts, new Map(), opts.timeoutMs, (view, seconds) => `run ${runId} is still ${view.status} after ${seconds} s`);
}

/**
 * Stops the run's execution (its current one, after a hand-over) and waits until the pipeline
 * has wound it up: `summary.json` is its last write (stop-run's, or the run's own if it ended
 * first). Waits at most `timeoutMs` (default 20 minutes: stop-run's own budget is 15).
 */
export async function stopRun(target: Target, runId: string, wait: WaitOptions = {}): Promise<{ view: RunView; stopped: boolean }> {
  const cache: ViewCache = new Map();
  const first = await readRunView(target, runId, wait.now, cache);
  if (first.final) return { view: first, stopped: false };
  const execution = await describeExecution(target, first.executionArn!);
  let stopped = false;
  if (execution?.status === 'RUNNING') {
    await target.sfn.send(new StopExecutionCommand({ executionArn: first.executionArn!, error: 'RunStopped', cause: 'stopped with bedrock-batch stop' }));
    stopped = true;
  }
  const view = await pollUntilFinal(
    target,
    runId,
    wait,
    cache,
    wait.timeoutMs ?? 20 * 60_000,
    (_view, seconds) => `the pipeline has not written run ${runId}'s summary after ${seconds} s (is its stop-run function failing? see docs/OPERATIONS.md)`,
  );
  return { view, stopped };
}

/** Reads the run's view every `intervalMs` until it is final, telling `onChange` of each change; throws `timedOut`'s message after `timeoutMs`. */
async function pollUntilFinal(
  target: Target,
  runId: string,
  opts: WaitOptions,
  cache: ViewCache,
  timeoutMs: number | undefined,
  timedOut: (view: RunView, seconds: number) => string,
): Promise<RunView> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? (() => new Date());
  const started = now().getTime();
  let last = '';
  for (;;) {
    const view = await readRunView(target, runId, now, cache);
    // Elapsed and time left change on every look: a change is anything else.
    const key = JSON.stringify({ ...view, elapsedSeconds: undefined, etaSeconds: undefined });
    if (key !== last) opts.onChange?.(view);
    last = key;
    if (view.final) return view;
    if (timeoutMs !== undefined && now().getTime() - started > timeoutMs) throw new Error(timedOut(view, Math.round(timeoutMs / 1000)));
    await sleep(opts.intervalMs ?? 2000);
  }
}

/** Downloads the run's outputs (summary, results, failed, rejected) to `dir`; returns the files written. */
export async function downloadResults(target: Target, runId: string, dir: string): Promise<string[]> {
  const summary = await readJson<RunSummary>(target, runKeys.results(runId, 'summary.json'));
  if (!summary) {
    const view = await readRunView(target, runId);
    throw new Error(`run ${runId} has not ended (it is ${view.status}): its results appear when it does ('bedrock-batch status ${runId} --watch')`);
  }
  await mkdir(dir, { recursive: true });
  const prefix = `s3://${target.bucket}/`;
  const keys = [
    ...summary.outputs.results.map((u) => u.slice(prefix.length)),
    runKeys.results(runId, 'failed.jsonl'),
    runKeys.results(runId, 'rejected.jsonl'),
  ];
  const written: string[] = [];
  for (const key of [runKeys.results(runId, 'summary.json'), ...keys]) {
    const path = join(dir, basename(key));
    if (await downloadObject(target.s3, target.bucket, key, path)) written.push(path);
  }
  return written;
}

/** One line of `list`. */
export interface RunListing {
  readonly runId: string;
  readonly status: string;
  readonly claimedAt?: string;
  readonly records?: RunSummary['records'];
  readonly costUsd?: number | null;
}

/** Recent runs, newest first: every run claim in the table, with its summary when it has ended. */
export async function listRuns(target: Target, limit = 20): Promise<RunListing[]> {
  const claims: Array<{ runId: string; owner?: string; claimedAt?: string; stopRequestedAt?: string }> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await target.ddb.send(
      new ScanCommand({
        TableName: target.tableName,
        FilterExpression: 'begins_with(pk, :run)',
        ExpressionAttributeValues: { ':run': 'RUN#' },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) claims.push({ ...(item as (typeof claims)[number]), runId: String(item.pk).slice('RUN#'.length) });
    start = page.LastEvaluatedKey;
  } while (start);
  claims.sort((a, b) => (b.claimedAt ?? '').localeCompare(a.claimedAt ?? '') || a.runId.localeCompare(b.runId));
  return Promise.all(
    claims.slice(0, limit).map(async (c): Promise<RunListing> => {
      const summary = await readJson<RunSummary>(target, runKeys.results(c.runId, 'summary.json'));
      if (summary)
        return {
          runId: c.runId,
          status: summary.status,
          ...(c.claimedAt ? { claimedAt: c.claimedAt } : {}),
          records: summary.records,
          costUsd: summary.cost ? summary.cost.batchUsd + summary.cost.onDemandUsd : null,
        };
      const execution = c.owner ? await describeExecution(target, c.owner) : undefined;
      const status =
        execution?.status === 'ABORTED' || c.stopRequestedAt ? 'Stopping' : execution?.status === 'RUNNING' || !execution ? 'Running' : execution.status!;
      return { runId: c.runId, status, ...(c.claimedAt ? { claimedAt: c.claimedAt } : {}) };
    }),
  );
}
