/**
 * Throughput and memory benchmark of prepare and reconcile on the local twin's S3 (s3rver),
 * against a raw S3 copy of the same bytes through the same client. See docs/PERFORMANCE.md.
 *
 *   npm run bench -- [--json] [--sizes 100,1024] [--keep] [--cpu-prof <dir>]
 *
 * For each size: generate a JSONL input of ~1 KB Anthropic records (streamed), then run in a
 * child process each: raw copy, prepare, and (after writing the job output Bedrock would write)
 * reconcile of every chunk. Progress goes to stderr; the result goes to stdout.
 */
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PipelineEnvConfig } from '../lambdas/shared/config';
import { s3Uri } from '../lambdas/shared/contracts';
import { LOCAL_S3_CREDENTIALS, localS3ClientConfig, localS3Environment, startLocalS3 } from '../local/services/s3';
import { startBedrockStub } from './bench/bedrock-stub';
import { snapshotCode } from './bench/code-version';
import { BENCH_MODEL_ID, uploadInputFile } from './bench/input-records';
import { writeJobOutputs } from './bench/job-output';
import { runPhase, type PhaseName, type PhaseReport, type PhaseRequest, type PhaseRunnerOptions } from './bench/phases';
import { disturbedPhases, loadAverage, machine, sizeResult, TARGETS, verdicts, type BenchReport, type SizeResult } from './bench/report';

/** Command-line options of the benchmark. */
export interface BenchOptions {
  /** Print only the JSON report on stdout. @default false */
  readonly json: boolean;
  /** Input sizes in MiB. @default [100, 1024] */
  readonly sizes: readonly number[];
  /** Keep the temporary directory (s3rver's data) and print its path. @default false */
  readonly keep: boolean;
  /** Runs of each phase per size (each in a fresh process); the median time is reported. @default 1 */
  readonly repeat: number;
  /** Write a V8 CPU profile of every phase process into this directory. */
  readonly cpuProfDir?: string;
  /** Extra Node options for the phase processes (e.g. `--max-old-space-size=256`). @default none */
  readonly nodeOptions?: readonly string[];
}

const USAGE = 'usage: npm run bench -- [--json] [--sizes 100,1024] [--repeat 1] [--keep] [--cpu-prof <dir>] [--node-options "<options>"]';
const MiB = 1024 * 1024;
const ROOT = resolve(__dirname, '..');
const BUCKET = 'bench';
/** Bedrock's default records-per-job quota and minimum, as the default route has them. */
const MAX_RECORDS_PER_JOB = 50000;
const MIN_RECORDS_PER_JOB = 100;

/** Parses the command line; throws with the usage on anything unknown. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let json = false;
  let keep = false;
  let sizes: number[] = [100, 1024];
  let repeat = 1;
  let cpuProfDir: string | undefined;
  let nodeOptions: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--json') json = true;
    else if (arg === '--keep') keep = true;
    else if (arg === '--sizes') {
      sizes = value()
        .split(',')
        .map((s) => Number(s.trim()));
      if (sizes.length === 0 || sizes.some((n) => !Number.isFinite(n) || n <= 0))
        throw new Error(`--sizes must be positive numbers of MiB, e.g. 100,1024\n${USAGE}`);
    } else if (arg === '--repeat') {
      repeat = Number(value());
      if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer\n${USAGE}`);
    } else if (arg === '--cpu-prof') cpuProfDir = resolve(value());
    else if (arg === '--node-options') nodeOptions = value().split(/\s+/).filter(Boolean);
    else throw new Error(`unknown option ${arg}\n${USAGE}`);
  }
  return { json, keep, sizes, repeat, ...(cpuProfDir ? { cpuProfDir } : {}), ...(nodeOptions ? { nodeOptions } : {}) };
}

const started = Date.now();
function progress(message: string): void {
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

/** The pipeline configuration the phases run with: one default route on Claude 3 Haiku. */
const PIPELINE: PipelineEnvConfig = {
  maxConcurrentJobs: 20,
  jobTimeoutHours: 24,
  routes: {
    default: {
      modelId: BENCH_MODEL_ID,
      maxRecordsPerJob: MAX_RECORDS_PER_JOB,
      minRecordsPerJob: MIN_RECORDS_PER_JOB,
      maxAttempts: 3,
      smallRemainder: 'on-demand',
      trigger: 'immediate',
    },
  },
};

/** Runs the benchmark and returns its report. */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const loadAtStart = loadAverage();
  if ((loadAtStart[0] ?? 0) > 0.5) progress(`WARNING: load average ${loadAtStart.join(' ')}: other work on this machine will skew the numbers`);
  const directory = mkdtempSync(join(tmpdir(), 'bedrock-batch-bench-'));
  // The phases run from a copy of the code: the checkout may be edited during a long run.
  const snapshot = snapshotCode(ROOT, join(directory, 'code'));
  const s3Local = await startLocalS3({ directory: join(directory, 's3'), buckets: [BUCKET] });
  const bedrock = await startBedrockStub();
  const s3 = new S3Client(localS3ClientConfig(s3Local.endpoint));
  if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });
  const runner: PhaseRunnerOptions = {
    env: {
      ...process.env,
      ...localS3Environment(s3Local.endpoint),
      AWS_ENDPOINT_URL_BEDROCK: bedrock.endpoint,
      // Nothing here should call the runtime (no small remainder); if it did, the stub says so.
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // Packages of the snapshot's imports resolve from the checkout.
      NODE_PATH: snapshot.nodePath,
    },
    phaseScript: snapshot.phaseScript,
    ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
    ...(opts.nodeOptions ? { nodeOptions: opts.nodeOptions } : {}),
  };
  /** Runs a phase `opts.repeat` times, each in a fresh process. */
  const repeated = async <P extends PhaseName>(
    request: Extract<PhaseRequest, { phase: P }>,
    label: string,
    after?: () => Promise<void>,
  ): Promise<Array<PhaseReport<P>>> => {
    const runs: Array<PhaseReport<P>> = [];
    for (let i = 1; i <= opts.repeat; i++) {
      runs.push(await runPhase(request, opts.repeat > 1 ? `${label}-${i}` : label, runner));
      await after?.();
      progress(`${label}: ${request.phase} ${runs[runs.length - 1]!.seconds.toFixed(2)} s${opts.repeat > 1 ? ` (run ${i}/${opts.repeat})` : ''}`);
    }
    return runs;
  };
  progress(`s3rver on ${s3Local.endpoint}, data in ${directory}, code snapshot of lambdas/ ${snapshot.version.lambdasHash}`);

  // Ctrl-C or a kill in the middle of a 1 GB run must not leave gigabytes in the temp folder.
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal}: removing ${directory}`);
    if (!opts.keep) rmSync(directory, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  const sizes: SizeResult[] = [];
  const problems: string[] = [];
  try {
    for (const inputMB of opts.sizes) {
      const label = `${inputMB}mb`;
      const inputKey = `bench/input-${label}.jsonl`;
      progress(`${label}: generating input`);
      const input = await uploadInputFile(s3, BUCKET, inputKey, Math.round(inputMB * MiB), {
        onProgress: (bytes) => progress(`${label}: generated ${Math.round(bytes / MiB)} MiB`),
      });
      progress(`${label}: ${input.records} records, ${input.bytes} bytes; raw copy`);

      const copyKey = `bench/copy-${label}.jsonl`;
      const rawCopy = await repeated({ phase: 'raw-copy', bucket: BUCKET, sourceKey: inputKey, targetKey: copyKey }, label, async () => {
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: copyKey }));
      });

      // Runs after the first rewrite the same keys (same run id): prepare is idempotent.
      const prepares = await repeated(
        {
          phase: 'prepare',
          bucket: BUCKET,
          inputUri: s3Uri(BUCKET, inputKey),
          runId: `bench-${label.replace(/\./g, '-')}`,
          pipeline: PIPELINE,
          maxRecordsPerJob: MAX_RECORDS_PER_JOB,
          minRecordsPerJob: MIN_RECORDS_PER_JOB,
        },
        label,
      );
      const prepare = prepares[prepares.length - 1]!;
      progress(`${label}: ${prepare.chunkCount} chunks; writing job outputs`);

      const outputs = await writeJobOutputs(s3, prepare.run, prepare.chunkCount, (c) =>
        progress(`${label}: job output of chunk ${c + 1}/${prepare.chunkCount} written`),
      );
      progress(`${label}: ${Math.round(outputs.bytes / MiB)} MiB of job output; reconcile`);
      const callsBefore = bedrock.getJobCalls();
      const reconcile = await repeated({ phase: 'reconcile', run: prepare.run, jobIds: outputs.jobIds }, label);

      const { result, problems: found } = sizeResult({
        inputMB,
        inputBytes: input.bytes,
        records: input.records,
        rawCopy,
        prepare: prepares,
        reconcile,
        outputBytes: outputs.bytes,
      });
      sizes.push(result);
      problems.push(...found);
      if (outputs.records !== input.records) problems.push(`${label}: job outputs hold ${outputs.records} records of ${input.records}`);
      const jobReads = bedrock.getJobCalls() - callsBefore;
      if (jobReads !== prepare.chunkCount * opts.repeat)
        problems.push(`${label}: reconcile read ${jobReads} jobs, ${prepare.chunkCount * opts.repeat} expected`);
    }
    for (const request of bedrock.unexpected()) problems.push(`unexpected Bedrock request: ${request}`);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    s3.destroy();
    await s3Local.stop();
    await bedrock.stop();
    if (opts.keep) progress(`kept ${directory}`);
    else rmSync(directory, { recursive: true, force: true });
  }
  const warnings = disturbedPhases(sizes);
  for (const w of warnings) progress(`WARNING: ${w}`);
  return { machine: machine(loadAtStart), code: snapshot.version, sizes, targets: TARGETS, met: verdicts(sizes), problems, warnings };
}

/** A few lines for a person reading the terminal. */
function humanSummary(report: BenchReport): string {
  const lines = [
    `node ${report.machine.node}, ${report.machine.cpus} CPUs (${report.machine.cpuModel}), ${report.machine.totalMemGB} GB, load ${report.machine.loadAverage.start[0]} -> ${report.machine.loadAverage.end[0]}`,
    `code ${report.code.commit ?? 'unknown commit'}${report.code.uncommittedLambdas.length > 0 ? ` + uncommitted changes in ${report.code.uncommittedLambdas.join(', ')}` : ''}`,
  ];
  for (const s of report.sizes) {
    lines.push(`${s.inputMB} MiB (${s.records} records):`);
    const row = (name: string, f: SizeResult['rawCopy'], extra = '') =>
      `  ${name.padEnd(10)} ${String(f.MBps).padStart(6)} MiB/s  ${f.seconds} s (CPU ${f.cpuSeconds} s)  peak RSS ${f.peakRssMB} MiB${extra}`;
    lines.push(row('raw copy', s.rawCopy));
    lines.push(row('prepare', s.prepare, `  ratio ${s.prepare.ratioToRawCopy} (target ${TARGETS.prepareRatio})`));
    lines.push(row('reconcile', s.reconcile, `  ratio ${s.reconcile.ratioToRawCopy} (target ${TARGETS.reconcileRatio})`));
  }
  lines.push(`targets met: ${JSON.stringify(report.met)}`);
  for (const p of report.problems) lines.push(`PROBLEM: ${p}`);
  for (const w of report.warnings) lines.push(`WARNING: ${w}`);
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const report = await runBench(opts);
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${humanSummary(report)}\n\n${JSON.stringify(report, null, 2)}\n`);
  return report.problems.length > 0 ? 1 : 0;
}

if (require.main === module) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    },
  );
}
