/**
 * The command line: `bedrock-batch local run <file.jsonl>... --model <modelId> [options]`.
 * Exit 0 when every run finished (records may have failed), 1 when a run itself failed (or
 * was refused), 2 for bad usage; 1 and 2 come with one line per reason.
 */
import { access, readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { isValidRunId, type SmallRemainderPolicy } from '../lambdas/shared/contracts';
import { KNOWN_FAMILIES_HINT, modelFamily } from '../lambdas/shared/model-family';
import { AppError } from './app-template';
import { parseAccountQuotas, parseFaultSpec, type AccountQuotas, type FaultSpec } from './emulator';
import type { LocalRunRequest } from './run-local';
import { describeOutcome, failureLines } from './run-lines';
import { USAGE } from './cli-usage';

export { describeOutcome, failureLines, USAGE };

/** Bad usage: exit 2 with this message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

interface ParsedArgs {
  readonly request: LocalRunRequest;
  readonly quiet: boolean;
  /** `--input-json` files, in order, read by {@link loadExecutionInputs}. */
  readonly inputJson: readonly string[];
}

const VALUE_OPTIONS = new Set([
  '--model',
  '--out',
  '--max-records-per-job',
  '--min-records-per-job',
  '--max-concurrent-jobs',
  '--max-attempts',
  '--small-remainder',
  '--faults',
  '--account-quota',
  '--seed',
  '--step-delay-ms',
  '--lambda-time-scale',
  '--run-id',
  '--input-json',
  '--app',
  '--pipeline',
  '--route',
]);
/** Options that may be given more than once, each value kept. */
const REPEATABLE_OPTIONS = new Set(['--input-json']);
const FLAG_OPTIONS = new Set(['--one-run-per-file', '--quiet']);

function positiveInt(name: string, value: string, max = 1_000_000): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UsageError(`${name} must be an integer in 1..${max}, got '${value}'`);
  return n;
}

/**
 * A `--lambda-time-scale` value: a decimal number in 0.001..1.
 * @throws UsageError naming the value
 */
export function parseLambdaTimeScale(text: string): number {
  const value = Number(text);
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text) || !(value >= 0.001 && value <= 1)) {
    throw new UsageError(`--lambda-time-scale must be a number in 0.001..1, got '${text}'`);
  }
  return value;
}

/** Parses `local run ...` arguments; throws {@link UsageError} with a one-line reason. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const [group, command, ...rest] = argv;
  if (group !== 'local' || command !== 'run') throw new UsageError(`unknown command '${[group, command].filter(Boolean).join(' ')}' (expected 'local run')`);
  const files: string[] = [];
  const values = new Map<string, string>();
  const repeated = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('--')) {
      files.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (FLAG_OPTIONS.has(name)) {
      if (eq !== -1) throw new UsageError(`${name} takes no value`);
      flags.add(name);
    } else if (VALUE_OPTIONS.has(name)) {
      const value = eq === -1 ? rest[++i] : arg.slice(eq + 1);
      if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) throw new UsageError(`${name} needs a value`);
      if (REPEATABLE_OPTIONS.has(name)) repeated.set(name, [...(repeated.get(name) ?? []), value]);
      else values.set(name, value);
    } else {
      throw new UsageError(`unknown option ${name}`);
    }
  }
  const inputJson = repeated.get('--input-json') ?? [];
  // --input-json alone is a run: its inputs name what they name (the pipeline says if nothing is there).
  if (files.length === 0 && inputJson.length === 0) throw new UsageError('no input file given');
  const runId = values.get('--run-id');
  if (runId !== undefined) {
    if (inputJson.length > 0) throw new UsageError('--run-id cannot be combined with --input-json: give each input its runId');
    if (flags.has('--one-run-per-file'))
      throw new UsageError("--run-id cannot be combined with --one-run-per-file: a dropped file's run id comes from its execution name");
    if (files.length !== 1)
      throw new UsageError(`--run-id needs exactly one input file, got ${files.length} (for several runs, use --input-json with a runId in each)`);
    if (!isValidRunId(runId))
      throw new UsageError(`--run-id must be 1..40 letters, digits and single hyphens, starting and ending with a letter or digit, got '${runId}'`);
  }
  if (inputJson.length > 0) {
    if (flags.has('--one-run-per-file')) throw new UsageError('--input-json cannot be combined with --one-run-per-file');
    const names = files.map((f) => basename(f));
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined)
      throw new UsageError(`two input files are named ${twice}: with --input-json each is uploaded to uploads/<file name>, so names must differ`);
  }
  const appCommand = values.get('--app');
  const modelId = values.get('--model');
  if (appCommand !== undefined) {
    const routeOptions = ['--model', '--max-records-per-job', '--min-records-per-job', '--max-concurrent-jobs', '--max-attempts', '--small-remainder'];
    const given = routeOptions.filter((o) => values.has(o));
    if (given.length > 0) throw new UsageError(`${given.join(', ')} cannot be combined with --app: the app's own routes set them`);
  } else {
    for (const o of ['--pipeline', '--route'])
      if (values.has(o)) throw new UsageError(`${o} needs --app (this package's own stack has one pipeline and one route, default)`);
    if (!modelId) throw new UsageError('--model <modelId> is required');
    if (!modelFamily(modelId)) throw new UsageError(`unknown model family for '${modelId}' (known: ${KNOWN_FAMILIES_HINT})`);
  }

  let faults: FaultSpec | undefined;
  if (values.has('--faults')) {
    try {
      faults = parseFaultSpec(values.get('--faults')!);
    } catch (err) {
      throw new UsageError(`--faults: ${(err as Error).message}`);
    }
  }
  let accountQuotas: AccountQuotas | undefined;
  if (values.has('--account-quota')) {
    try {
      accountQuotas = parseAccountQuotas(values.get('--account-quota')!);
    } catch (err) {
      throw new UsageError(`--account-quota: ${(err as Error).message}`);
    }
  }
  const smallRemainder = values.get('--small-remainder');
  if (smallRemainder !== undefined && !['on-demand', 'hold', 'fail'].includes(smallRemainder)) {
    throw new UsageError(`--small-remainder must be on-demand, hold or fail, got '${smallRemainder}'`);
  }
  const num = (name: string, max?: number) => (values.has(name) ? positiveInt(name, values.get(name)!, max) : undefined);
  const maxRecordsPerJob = num('--max-records-per-job', 50000);
  const minRecordsPerJob = num('--min-records-per-job', 50000);
  if (minRecordsPerJob !== undefined && minRecordsPerJob > (maxRecordsPerJob ?? 50000)) {
    throw new UsageError(`--min-records-per-job (${minRecordsPerJob}) must not exceed --max-records-per-job (${maxRecordsPerJob ?? 50000})`);
  }
  const seedText = values.get('--seed');
  if (seedText !== undefined && !/^\d+$/.test(seedText)) throw new UsageError(`--seed must be a non-negative integer, got '${seedText}'`);
  const request: LocalRunRequest = {
    files,
    ...(modelId !== undefined ? { modelId } : {}),
    ...(appCommand !== undefined
      ? {
          app: {
            command: appCommand,
            ...(values.has('--pipeline') ? { pipeline: values.get('--pipeline')! } : {}),
            ...(values.has('--route') ? { route: values.get('--route')! } : {}),
          },
        }
      : {}),
    ...(values.has('--out') ? { out: values.get('--out')! } : {}),
    ...(maxRecordsPerJob !== undefined ? { maxRecordsPerJob } : {}),
    ...(minRecordsPerJob !== undefined ? { minRecordsPerJob } : {}),
    ...(values.has('--max-concurrent-jobs') ? { maxConcurrentJobs: num('--max-concurrent-jobs', 1000)! } : {}),
    ...(values.has('--max-attempts') ? { maxAttempts: num('--max-attempts', 10)! } : {}),
    ...(smallRemainder !== undefined ? { smallRemainder: smallRemainder as SmallRemainderPolicy } : {}),
    ...(flags.has('--one-run-per-file') ? { oneRunPerFile: true } : {}),
    ...(runId !== undefined ? { runId } : {}),
    ...(faults ? { faults } : {}),
    ...(accountQuotas ? { accountQuotas } : {}),
    ...(seedText !== undefined ? { seed: Number(seedText) } : {}),
    ...(values.has('--step-delay-ms') ? { stepDelayMs: num('--step-delay-ms', 60000)! } : {}),
    ...(values.has('--lambda-time-scale') ? { lambdaTimeScale: parseLambdaTimeScale(values.get('--lambda-time-scale')!) } : {}),
  };
  return { request, quiet: flags.has('--quiet'), inputJson };
}

/**
 * Reads the `--input-json` files: each must hold one JSON object, the execution input as a
 * user pastes it in the console (the pipeline checks its fields, as on AWS).
 * @throws UsageError naming the file and what is wrong with it
 */
export async function loadExecutionInputs(files: readonly string[]): Promise<Record<string, unknown>[]> {
  const inputs: Record<string, unknown>[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(
        `--input-json ${file}: cannot read it (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : firstLine((err as Error).message)})`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`--input-json ${file}: not JSON (${firstLine((err as Error).message)})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      throw new UsageError(`--input-json ${file}: not a JSON object (an execution input looks like {"inputs": ["s3://..."]}), got ${got}`);
    }
    inputs.push(value as Record<string, unknown>);
  }
  return inputs;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

async function checkFiles(files: readonly string[]): Promise<void> {
  for (const file of files) {
    try {
      await access(file);
    } catch {
      throw new UsageError(`file not found: ${file}`);
    }
    if (!(await stat(file)).isFile()) throw new UsageError(`not a file: ${file}`);
  }
}

/** Runs the CLI; returns the exit code. */
export async function main(
  argv: readonly string[],
  io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream } = { out: process.stdout, err: process.stderr },
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    (argv.length === 0 ? io.err : io.out).write(USAGE + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  let parsed: ParsedArgs;
  let request: LocalRunRequest;
  try {
    parsed = parseArgs(argv);
    await checkFiles(parsed.request.files);
    request = parsed.inputJson.length > 0 ? { ...parsed.request, executionInputs: await loadExecutionInputs(parsed.inputJson) } : parsed.request;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(`bedrock-batch: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const started = Date.now();
  try {
    if (!parsed.quiet) io.err.write('  starting the local twin (synthesizing the stack, starting local services)...\n');
    // Loaded only now: the CDK and SDK modules take seconds to load, usage errors should not wait.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runLocal } = require('./run-local') as typeof import('./run-local');
    const outcome = await runLocal({
      ...request,
      ...(parsed.quiet ? {} : { progress: (line: string) => io.err.write(`  ${line} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`) }),
    });
    for (const line of describeOutcome(outcome)) io.out.write(line + '\n');
    for (const line of failureLines(outcome)) io.err.write(line + '\n');
    return outcome.exitCode;
  } catch (err) {
    if (err instanceof AppError) {
      io.err.write(`bedrock-batch: ${err.message.split('\n')[0]}\n`);
      return 2;
    }
    io.err.write(`bedrock-batch: run failed: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}
