/**
 * The `bedrock-batch` command line, parsed by commander (MIT): the operator commands (`submit`,
 * `status`, `list`, `results`, `stop`, `estimate`) against a deployed stack (`--stack`) or a
 * running twin (`--local DIR`), `local up` to run that twin, and `local run` (one-shot, for the
 * demo and CI; local/cli.ts parses it). Exit 0 on success, 1 when a run (or the target) failed,
 * 2 for bad usage; errors are one line on stderr, never a stack trace.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { isValidRunId } from '../lambdas/shared/contracts';
import { KNOWN_FAMILIES_HINT, modelFamily } from '../lambdas/shared/model-family';
import { parseAccountQuotas, parseFaultSpec } from '../local/emulator';
import { main as localRun, parseLambdaTimeScale, USAGE as LOCAL_RUN_USAGE } from '../local/cli';
import { estimateFiles, formatEstimate } from './estimate';
import { localUp } from './local-up';
import { CommandInputError, downloadResults, listRuns, stopRun, submitRun, waitForRun } from './operate';
import { readRunView, RunNotFound, type RunView } from './run-view';
import { awsProblem, DEFAULT_STACK, resolveTarget, TargetError, type Target, type TargetFactories } from './target';
import { barPrinter, describeView, jobLines, linePrinter, listLines, type ViewPrinter } from './views';

/** Where the command line writes; a TTY `out` gets the live view of `--watch`. */
export interface CliIo {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly err: NodeJS.WritableStream;
}

const integer = (name: string, max: number) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${name} must be an integer in 1..${max}`);
  return Number(value);
};
const runIdArgument = (value: string) => {
  if (!isValidRunId(value)) throw new InvalidArgumentError('a run id is 1..40 letters, digits and single hyphens');
  return value;
};
const modelArgument = (value: string) => {
  if (!modelFamily(value)) throw new InvalidArgumentError(`unknown model family (known: ${KNOWN_FAMILIES_HINT})`);
  return value;
};
const timeScaleArgument = (value: string) => {
  try {
    return parseLambdaTimeScale(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
const spec =
  <T>(name: string, parse: (v: string) => T) =>
  (value: string) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
  };

interface TargetFlags {
  stack?: string;
  local?: string;
  region?: string;
  bucket?: string;
  stateMachine?: string;
  table?: string;
  keyPrefix?: string;
}

function targetOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--stack <name>', `the deployed stack (its outputs name the bucket, state machine and table) (default: "${DEFAULT_STACK}")`))
    .addOption(new Option('--local <dir>', "a twin started with 'bedrock-batch local up --state-dir <dir>'").conflicts('stack'))
    .option('--region <region>', "the stack's region (default: the AWS SDK's: AWS_REGION, the profile)")
    .option('--bucket <name>', 'with --state-machine and --table: a pipeline placed in a stack of your own, by its resources')
    .option('--state-machine <arn>', "that pipeline's state machine ARN")
    .option('--table <name>', "that pipeline's job table name")
    .option('--key-prefix <prefix>', "that pipeline's keyPrefix in its bucket, if it has one");
}

/** Builds the program; `factories` replaces the AWS clients in tests. */
export function buildProgram(io: CliIo, setCode: (code: number) => void, factories: TargetFactories = {}): Command {
  const write = (text: string) => io.out.write(text);
  const say = (line: string) => io.err.write(`  ${line}\n`);
  const withTarget = async (flags: TargetFlags, work: (target: Target) => Promise<number>) => {
    const target = await resolveTarget(flags, factories);
    try {
      setCode(await work(target));
    } catch (err) {
      // An SDK error (no credentials, access denied, ...) as one line naming where it happened.
      throw err instanceof CommandInputError || err instanceof RunNotFound || !(err as { $metadata?: unknown }).$metadata
        ? err
        : awsProblem(err, target.description);
    } finally {
      target.close();
    }
  };
  const printer = (json: boolean, watch: boolean): ViewPrinter => (watch && !json && io.out.isTTY ? barPrinter(io.out) : linePrinter(write, json));

  const program = new Command('bedrock-batch')
    .description('Amazon Bedrock batch inference: run files through a deployed pipeline or the local twin')
    .exitOverride()
    .configureOutput({
      writeOut: write,
      writeErr: (t) => io.err.write(t),
      outputError: (t, w) => w(`bedrock-batch: ${t.replace(/^error: /, '').replace(/\n(?=.)/g, ' ')}`),
    });

  targetOptions(program.command('submit').description('upload local .jsonl files (or name s3:// inputs of the bucket) and start a run; prints its run id'))
    .argument('<inputs...>', 'local .jsonl files (uploaded under uploads/<runId>/) or s3:// URIs in the pipeline bucket')
    .option('--route <route>', 'whose settings apply (default: the route of an inbox/<route>/ input, else "default")')
    .option('--run-id <id>', 'the run id (default: <first file>-<time>-<4 characters>)', runIdArgument)
    .option('--model <modelId>', "another route's model for this run", modelArgument)
    .option('--max-records-per-job <n>', "override the route's maximum", integer('--max-records-per-job', 50000))
    .option('--min-records-per-job <n>', "override the route's minimum", integer('--min-records-per-job', 50000))
    .option('--max-attempts <n>', "at most the route's", integer('--max-attempts', 10))
    .option('--max-concurrent-jobs <n>', "a lower share of the model's job cap", integer('--max-concurrent-jobs', 1000))
    .option('--job-timeout-hours <n>', 'a shorter Bedrock job timeout', integer('--job-timeout-hours', 168))
    .addOption(new Option('--small-remainder <policy>', 'what to do with records below the minimum').choices(['on-demand', 'hold', 'fail']))
    .option('--wait', 'then watch the run until it ends (exit 1 if it failed)')
    .option('--json', 'with --wait: one JSON object per change')
    .action(async (inputs: string[], o: Record<string, string | number | boolean | undefined> & TargetFlags) => {
      const overrides: Record<string, string | number> = {};
      const fields: Array<[string, string]> = [
        ['model', 'modelId'],
        ['maxRecordsPerJob', 'maxRecordsPerJob'],
        ['minRecordsPerJob', 'minRecordsPerJob'],
        ['maxAttempts', 'maxAttempts'],
        ['maxConcurrentJobs', 'maxConcurrentJobs'],
        ['jobTimeoutHours', 'jobTimeoutHours'],
        ['smallRemainder', 'smallRemainder'],
      ];
      for (const [flag, field] of fields) if (o[flag] !== undefined) overrides[field] = o[flag] as string | number;
      await withTarget(o, async (target) => {
        const started = await submitRun(
          target,
          { inputs, ...(o.route ? { route: String(o.route) } : {}), ...(o.runId ? { runId: String(o.runId) } : {}), overrides },
          { progress: say },
        );
        write(o.json && o.wait ? JSON.stringify({ runId: started.runId, executionArn: started.executionArn }) + '\n' : `${started.runId}\n`);
        if (!o.wait) return 0;
        const p = printer(o.json === true, true);
        const view = await waitForRun(target, started.runId, { onChange: (v) => p.update(v) });
        p.done();
        return endedWell(view) ? 0 : 1;
      });
    });

  targetOptions(program.command('status').description('where a run stands: records, jobs and their progress, slots, cost, time left'))
    .argument('<runId>', 'the run id', runIdArgument)
    .option('--watch', 'keep watching until the run ends (progress bars on a terminal, else one line per change)')
    .option('--json', 'one JSON object (with --watch: one per change)')
    .option('--interval <seconds>', 'seconds between looks with --watch', integer('--interval', 3600), 2)
    .action(async (runId: string, o: { watch?: boolean; json?: boolean; interval: number } & TargetFlags) => {
      await withTarget(o, async (target) => {
        if (!o.watch) {
          const view = await readRunView(target, runId);
          write(o.json ? JSON.stringify(view) + '\n' : [describeView(view), ...jobLines(view)].join('\n') + '\n');
          return 0;
        }
        const p = printer(o.json === true, true);
        const view = await waitForRun(target, runId, { intervalMs: o.interval * 1000, onChange: (v) => p.update(v) });
        p.done();
        // As submit --wait: a run that failed is exit 1.
        return endedWell(view) ? 0 : 1;
      });
    });

  targetOptions(program.command('list').description('recent runs, newest first, with status, counts and cost'))
    .option('--limit <n>', 'at most this many runs', integer('--limit', 1000), 20)
    .option('--json', 'a JSON array')
    .action(async (o: { limit: number; json?: boolean } & TargetFlags) => {
      await withTarget(o, async (target) => {
        const runs = await listRuns(target, o.limit);
        write(o.json ? JSON.stringify(runs) + '\n' : listLines(runs).join('\n') + '\n');
        return 0;
      });
    });

  targetOptions(program.command('results').description('download a finished run: results, failed, rejected and summary'))
    .argument('<runId>', 'the run id', runIdArgument)
    .option('--out <dir>', 'where to write them (default: ./bedrock-batch-out/<runId>)')
    .action(async (runId: string, o: { out?: string } & TargetFlags) => {
      await withTarget(o, async (target) => {
        const files = await downloadResults(target, runId, resolve(o.out ?? `bedrock-batch-out/${runId}`));
        for (const f of files) write(`${f}\n`);
        return 0;
      });
    });

  targetOptions(program.command('stop').description('stop a run and wait until the pipeline has wound it up (processed records are kept)'))
    .argument('<runId>', 'the run id', runIdArgument)
    .option('--json', 'print the final view as JSON')
    .option('--timeout <seconds>', 'give up waiting after this long', integer('--timeout', 86400), 1200)
    .action(async (runId: string, o: { json?: boolean; timeout: number } & TargetFlags) => {
      await withTarget(o, async (target) => {
        const { view, stopped } = await stopRun(target, runId, {
          timeoutMs: o.timeout * 1000,
          onChange: (v) => (v.final ? undefined : say(`${describeView(v)} (waiting for the pipeline to keep what its jobs processed)`)),
        });
        if (!stopped) say(`${runId} was not running: nothing to stop`);
        write((o.json ? JSON.stringify(view) : describeView(view)) + '\n');
        return 0;
      });
    });

  program
    .command('estimate')
    .description('before submitting: records, jobs, tokens and cost at batch and on-demand prices')
    .argument('<files...>', 'local .jsonl files')
    .requiredOption('--model <modelId>', 'the model the records would run on', modelArgument)
    .option('--max-records-per-job <n>', "the route's maximum records per job", integer('--max-records-per-job', 50000))
    .option('--min-records-per-job <n>', "the route's minimum records per job", integer('--min-records-per-job', 50000))
    .option('--json', 'one JSON object')
    .action(async (files: string[], o: { model: string; maxRecordsPerJob?: number; minRecordsPerJob?: number; json?: boolean }) => {
      const report = await estimateFiles(files, {
        modelId: o.model,
        ...(o.maxRecordsPerJob ? { maxRecordsPerJob: o.maxRecordsPerJob } : {}),
        ...(o.minRecordsPerJob ? { minRecordsPerJob: o.minRecordsPerJob } : {}),
      }).catch((err: Error) => {
        // Every refusal of estimate is about its input (a file, the model): usage, exit 2.
        throw new CommandInputError(err.message);
      });
      write(o.json ? JSON.stringify(report) + '\n' : formatEstimate(report).join('\n') + '\n');
      setCode(0);
    });

  const local = program.command('local').description('the local twin');
  local
    .command('up')
    .description('start the twin and keep it running until Ctrl-C (SIGINT) or SIGTERM; writes <dir>/endpoints.json when ready')
    .requiredOption('--state-dir <dir>', 'where endpoints.json (and access.json at the end) go; --local <dir> on other commands uses it')
    .requiredOption('--model <modelId>', "the default route's model", modelArgument)
    .option('--max-records-per-job <n>', "the default route's maximum", integer('--max-records-per-job', 50000))
    .option('--min-records-per-job <n>', "the default route's minimum", integer('--min-records-per-job', 50000))
    .option('--max-concurrent-jobs <n>', 'the job cap per model', integer('--max-concurrent-jobs', 1000))
    .option('--max-attempts <n>', 'rounds per record', integer('--max-attempts', 10))
    .addOption(new Option('--small-remainder <policy>', 'records below the minimum').choices(['on-demand', 'hold', 'fail']))
    .option('--account-quota <spec>', 'the emulated account quotas (e.g. min-records=20), as for local run', spec('--account-quota', parseAccountQuotas))
    .option('--faults <spec>', 'fault rates (name=rate,...), as for local run', spec('--faults', parseFaultSpec))
    .option('--seed <n>', 'fault seed', integer('--seed', 2 ** 31))
    .option('--step-delay-ms <n>', 'duration of each emulated job status step', integer('--step-delay-ms', 600000))
    .option('--lambda-time-scale <x>', "each function's time limit as a fraction of its Timeout, 0.001..1 (default 0.1)", timeScaleArgument)
    .option('--quiet', 'no progress lines')
    .action(async (o: Record<string, unknown>) => {
      await localUp({
        stateDir: String(o.stateDir),
        modelId: String(o.model),
        ...(o.maxRecordsPerJob !== undefined ? { maxRecordsPerJob: o.maxRecordsPerJob as number } : {}),
        ...(o.minRecordsPerJob !== undefined ? { minRecordsPerJob: o.minRecordsPerJob as number } : {}),
        ...(o.maxConcurrentJobs !== undefined ? { maxConcurrentJobs: o.maxConcurrentJobs as number } : {}),
        ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts as number } : {}),
        ...(o.smallRemainder !== undefined ? { smallRemainder: o.smallRemainder as 'on-demand' | 'hold' | 'fail' } : {}),
        ...(o.accountQuota !== undefined ? { accountQuotas: o.accountQuota as never } : {}),
        ...(o.faults !== undefined ? { faults: o.faults as never } : {}),
        ...(o.seed !== undefined ? { seed: o.seed as number } : {}),
        ...(o.stepDelayMs !== undefined ? { stepDelayMs: o.stepDelayMs as number } : {}),
        ...(o.lambdaTimeScale !== undefined ? { lambdaTimeScale: o.lambdaTimeScale as number } : {}),
        ...(o.quiet ? {} : { progress: say }),
      });
      setCode(0);
    });
  // Parsed by local/cli.ts (main() hands it over before commander sees it); listed here for --help.
  local.command('run').description('one-shot: run local files through a fresh twin and write the outputs (see local run --help)').helpOption(false);
  return program;
}

/** A run that ended as a run should: every record settled, or stopped on purpose. */
function endedWell(view: RunView): boolean {
  return ['Succeeded', 'CompletedWithFailures', 'Stopped'].includes(view.status);
}

/** Runs the command line; returns the exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = { out: process.stdout, err: process.stderr },
  factories: TargetFactories = {},
): Promise<number> {
  if (argv[0] === 'local' && argv[1] === 'run') {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.out.write(LOCAL_RUN_USAGE + '\n');
      return 0;
    }
    return localRun(argv, io);
  }
  let code = 0;
  const program = buildProgram(io, (c) => (code = c), factories);
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return 2;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const message = (err as Error).message?.split('\n')[0] ?? String(err);
    io.err.write(`bedrock-batch: ${message}\n`);
    if (err instanceof CommandInputError) return 2;
    if (err instanceof TargetError || err instanceof RunNotFound) return 1;
    return 1;
  }
}
