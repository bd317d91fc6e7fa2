/**
 * One big run through the local twin, measured: by default 80,000 records in 800 chunks of 100
 * (`--max-records-per-job 100 --min-records-per-job 100 --max-concurrent-jobs 20`), no faults.
 * Not part of `npm test` (it takes minutes). See docs/PERFORMANCE.md, "The 800-chunk run".
 *
 *   npm run -s big-run                       # the 800-chunk run; JSON on stdout
 *   npm run -s big-run -- --records 20000    # a smaller one (200 chunks)
 *
 * Options: `--records N` (default 80000), `--max-records-per-job N` (100), `--min-records-per-job N`
 * (100), `--max-concurrent-jobs N` (20), `--step-delay-ms N` (the twin's 20), `--seed N`, and
 * `--account-quota <spec>` (e.g. `min-records=20`), the emulated account's quotas as for
 * `local run`: by default the model catalog's, never the route's options (the default run's
 * chunks of exactly 100 records meet Claude 3 Haiku's minimum of 100).
 * Progress goes to stderr, the report (JSON) to stdout.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { checkConservation, missedDelays, round, slotUtilization, type ConservationCheck } from './big-run/measures';
import { logger } from '../lambdas/shared/logger';
import type { BusEvent } from '../local/services/event-bus';
import { parseAccountQuotas, type AccountQuotas } from '../local/emulator/account-quotas';
import { runLocal } from '../local/run-local';
import type { LocalTwin } from '../local/twin';

/** Options of {@link bigRun}. */
export interface BigRunOptions {
  /** Input records. @default 80000 */
  readonly records: number;
  /** @default 100 */
  readonly maxRecordsPerJob: number;
  /** @default 100 (Claude 3 Haiku's minimum) */
  readonly minRecordsPerJob: number;
  /** The job-slot cap. @default 20 */
  readonly maxConcurrentJobs: number;
  /** Duration of each emulated job status step. @default the twin's (20 ms) */
  readonly stepDelayMs?: number;
  readonly seed?: number;
  /** The emulated account's quotas. @default the model catalog's */
  readonly accountQuotas?: AccountQuotas;
}

const DEFAULTS: BigRunOptions = { records: 80_000, maxRecordsPerJob: 100, minRecordsPerJob: 100, maxConcurrentJobs: 20 };
const MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';
/** The sweeper's line for a job whose token it had to complete itself (lambdas/sweeper). */
const MISSED_EVENT_LINE = 'completed a job whose state event was missed';
/** Runs the measured run; returns the report printed by the command line. */
export async function bigRun(options: BigRunOptions): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'bb-big-run-'));
  const logCounts = new Map<string, number>();
  const missed: Array<{ jobArn: string; at: number }> = [];
  const restoreStdout = captureHandlerLogs(logCounts, missed);
  try {
    const inputIds = Array.from({ length: options.records }, (_, i) => `rec-${String(i).padStart(6, '0')}`);
    const input = join(dir, 'input.jsonl');
    // Written in pieces, so that the input never sits whole in this process's memory (its peak RSS is measured).
    const fd = openSync(input, 'w');
    for (let i = 0; i < inputIds.length; i += 1000) {
      const piece = inputIds.slice(i, i + 1000).map((id) => `${record(id)}\n`);
      writeSync(fd, piece.join(''));
    }
    closeSync(fd);

    let measured: { events: BusEvent[]; historyEvents: number; executions: number; failedDeliveries: number } | undefined;
    const started = Date.now();
    const outcome = await runLocal({
      files: [input],
      modelId: MODEL_ID,
      out: join(dir, 'out'),
      maxRecordsPerJob: options.maxRecordsPerJob,
      minRecordsPerJob: options.minRecordsPerJob,
      ...(options.accountQuotas ? { accountQuotas: options.accountQuotas } : {}),
      maxConcurrentJobs: options.maxConcurrentJobs,
      ...(options.stepDelayMs !== undefined ? { stepDelayMs: options.stepDelayMs } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      // The handlers run in sandboxes with their own loggers: INFO, for the lines counted below.
      logLevel: 'INFO',
      progress: (line) => process.stderr.write(`  ${line} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`),
      onSettled: (twin: LocalTwin) => {
        const executions = [...twin.executions.values()];
        measured = {
          events: [...twin.bus.events],
          historyEvents: executions.reduce((n, e) => n + e.events, 0),
          executions: executions.length,
          failedDeliveries: twin.bus.failedDeliveries.length,
        };
      },
    });
    const wallSeconds = round((Date.now() - started) / 1000);
    // Before the outputs are read back below (whole, into this process).
    const peakRssMB = round(process.resourceUsage().maxRSS / 1024, 1);
    const run = outcome.runs[0];
    const ids = (name: string) => readIds(join(run?.outDir ?? dir, name));
    const summary = run?.summary;
    const chunks = summary ? Object.values(summary.jobs).reduce((a, b) => a + b, 0) : 0;
    return {
      date: new Date().toISOString(),
      commit: gitCommit(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryGiB: round(totalmem() / 2 ** 30, 1),
        node: process.version,
        loadAverageAtEnd: loadavg().map((l) => round(l, 2)),
      },
      options: { ...options, modelId: MODEL_ID },
      status: run?.error ?? summary?.status ?? 'no run',
      wallSeconds,
      chunks,
      rounds: summary?.rounds,
      executions: measured?.executions,
      historyEvents: measured?.historyEvents,
      eventsPerChunk: measured && chunks > 0 ? round(measured.historyEvents / chunks, 1) : undefined,
      slots: measured ? slotUtilization(measured.events, options.maxConcurrentJobs) : undefined,
      missedJobStateEvents: { count: logCounts.get(MISSED_EVENT_LINE) ?? 0, ...(measured ? missedDelays(measured.events, missed) : {}) },
      failedEventDeliveries: measured?.failedDeliveries,
      emulator: outcome.emulator,
      // The twin's whole memory: its services, the interpreter and every Lambda sandbox (worker
      // threads of this one process), at their peak over the run.
      peakRssMB,
      lambda: outcome.lambda,
      handlerLogLines: Object.fromEntries([...logCounts].sort((a, b) => b[1] - a[1])),
      conservation: checkConservation(inputIds, {
        ...(summary ? { summary } : {}),
        results: ids('results.jsonl'),
        failed: ids('failed.jsonl'),
        rejected: ids('rejected.jsonl'),
      }),
    };
  } finally {
    restoreStdout();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The handlers log JSON lines (Powertools) on stdout, which is the report's: keep them off it,
 * and count them by message (the sweeper's missed-event line among them). The shared logger is
 * made before the twin sets the handlers' level to SILENT, so it keeps the level set here.
 */
function captureHandlerLogs(counts: Map<string, number>, missed: Array<{ jobArn: string; at: number }>): () => void {
  logger.setLogLevel('INFO');
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { message?: string; jobArn?: string; timestamp?: string };
        if (entry.message) counts.set(entry.message, (counts.get(entry.message) ?? 0) + 1);
        if (entry.message === MISSED_EVENT_LINE && entry.jobArn && entry.timestamp) missed.push({ jobArn: entry.jobArn, at: Date.parse(entry.timestamp) });
      } catch {
        // not a log line
      }
    }
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    done?.();
    return true;
  }) as typeof process.stdout.write;
  return () => {
    process.stdout.write = write;
  };
}

function record(recordId: string): string {
  return JSON.stringify({
    recordId,
    modelInput: {
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 64,
      messages: [{ role: 'user', content: [{ type: 'text', text: `Summarize item ${recordId}.` }] }],
    },
  });
}

function readIds(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => String((JSON.parse(l) as { recordId?: unknown }).recordId));
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lambdas', 'local'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} (with uncommitted changes in lambdas/ or local/)` : commit;
  } catch {
    return 'unknown';
  }
}

/** Parses the command line; throws with the usage on anything unknown. */
export function parseBigRunArgs(argv: readonly string[]): BigRunOptions {
  const usage =
    'usage: npm run -s big-run -- [--records N] [--max-records-per-job N] [--min-records-per-job N] [--max-concurrent-jobs N] [--step-delay-ms N] [--seed N] [--account-quota name=N,...]';
  const names: Record<string, keyof BigRunOptions> = {
    '--records': 'records',
    '--max-records-per-job': 'maxRecordsPerJob',
    '--min-records-per-job': 'minRecordsPerJob',
    '--max-concurrent-jobs': 'maxConcurrentJobs',
    '--step-delay-ms': 'stepDelayMs',
    '--seed': 'seed',
  };
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--account-quota' && argv[i + 1] !== undefined) {
      try {
        out.accountQuotas = parseAccountQuotas(argv[++i]!);
      } catch (err) {
        throw new Error(`${usage}\n--account-quota: ${(err as Error).message}`, { cause: err });
      }
      continue;
    }
    const name = names[argv[i]!];
    const value = argv[++i];
    if (!name || value === undefined || !/^\d+$/.test(value) || (name !== 'seed' && Number(value) < 1)) throw new Error(usage);
    out[name] = Number(value);
  }
  if ((out.minRecordsPerJob as number) > (out.maxRecordsPerJob as number))
    throw new Error(`${usage}\n--min-records-per-job must not exceed --max-records-per-job`);
  return out as unknown as BigRunOptions;
}

if (require.main === module) {
  let options: BigRunOptions;
  try {
    options = parseBigRunArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  bigRun(options)
    .then((report) => {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      process.exit((report.conservation as ConservationCheck).ok ? 0 : 1);
    })
    .catch((err: unknown) => {
      process.stderr.write(`big-run failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
}
