/**
 * `bedrock-batch local run`: one or more runs of the pipeline on the local twin, from local
 * JSONL files to the run's outputs in a local folder.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { loadPipelineConfig, type PipelineConfig } from '../lib/pipeline-config';
import { runKeys, UPLOADS_PREFIX, type SmallRemainderPolicy } from '../lambdas/shared/contracts';
import { downloadObject } from '../lambdas/shared/s3-jsonl';
import { runIdOfExecutionInput } from '../lambdas/shared/run-input';
import type { RunSummary } from '../lambdas/finalize/finalize';
import type { AccountQuotas, EmulatorStats, FaultSpec } from './emulator';
import { AppError, findPipelines, selectPipeline, synthesizeApp } from './app-template';
import type { CfnTemplate } from './services/template-intrinsics';
import { LocalTwin, type TwinFaultStats } from './twin';
import type { LambdaRuntimeStats } from './twin/lambda-runtime';

/** Bedrock's default minimum records per job (docs/BEDROCK-FACTS.md §7). */
export const BEDROCK_DEFAULT_MIN_RECORDS = 100;

/** Where files for console-style inputs go in the twin's bucket (defined with the pipeline's prefixes). */
export { UPLOADS_PREFIX };

/** The twin's key for a local file given with `executionInputs`: `uploads/<file name>`. */
export function uploadKey(file: string): string {
  return `${UPLOADS_PREFIX}${basename(file)}`;
}

export interface LocalRunRequest {
  readonly files: readonly string[];
  /** The `default` route's model (required unless `app` is given: then the app's routes name theirs). */
  readonly modelId?: string;
  /**
   * Run a consumer's own CDK app instead of the package's stack (`--app`): the command that
   * synthesizes it, which of its pipelines (`--pipeline`, needed when it has several) and the
   * route the files are dropped on (`--route`; default `default`, or the pipeline's only route).
   */
  readonly app?: { readonly command: string; readonly pipeline?: string; readonly route?: string };
  /** Output folder. @default ./bedrock-batch-out/<runId>/ (with several runs: <out>/<runId>/) */
  readonly out?: string;
  readonly maxRecordsPerJob?: number;
  /**
   * The route's minimum records per job (the pipeline's setting: Prepare plans with the stricter
   * of it and the model's quota). @default 100, or half of `maxRecordsPerJob` when that is under 200
   */
  readonly minRecordsPerJob?: number;
  /**
   * The emulated account's quotas, for every model, over the model catalog's documented defaults
   * (`--account-quota`): what the Bedrock emulator enforces and the twin's Service Quotas
   * serves. The only way to change the emulated account; the pipeline's options never do.
   */
  readonly accountQuotas?: AccountQuotas;
  readonly maxConcurrentJobs?: number;
  readonly maxAttempts?: number;
  readonly smallRemainder?: SmallRemainderPolicy;
  /** One execution per file, all at once, through the inbox drop path. */
  readonly oneRunPerFile?: boolean;
  /**
   * The run id of the one run started from `files` (checked by the pipeline as any
   * `runId`). @default `local-<time>-<4 characters>`, the execution's name
   */
  readonly runId?: string;
  /**
   * Execution inputs exactly as a user pastes them in the Step Functions console (the
   * README's schema), one execution each, all started at once in the one twin. `files` are
   * then uploaded first to `uploads/<file name>` ({@link uploadKey}), for the inputs to name
   * as `s3://bedrock-batch-local/uploads/<file name>`; an input without `runId` gets the run
   * id its execution name gives. Outputs go to `<out>/<runId>/` even for one input.
   */
  readonly executionInputs?: readonly Record<string, unknown>[];
  readonly faults?: FaultSpec;
  readonly seed?: number;
  readonly stepDelayMs?: number;
  /** The handlers' Powertools log level. @default 'SILENT' */
  readonly logLevel?: string;
  /** A function's time limit in the twin as a fraction of its `Timeout`. @default 0.1 */
  readonly lambdaTimeScale?: number;
  /** History events one execution may use before the run continues in a successor. @default 20000 */
  readonly historyEventBudget?: number;
  readonly progress?: (line: string) => void;
  /**
   * Called once every execution has settled, before the twin stops: for measurements of what
   * the twin saw (its bus's events, its executions' history counts), as scripts/big-run.ts does.
   */
  readonly onSettled?: (twin: LocalTwin) => void | Promise<void>;
}

export interface LocalRunReport {
  readonly runId: string;
  readonly executionName: string;
  readonly executionStatus: string;
  readonly summary?: RunSummary;
  readonly outDir: string;
  /** Executions the run took: more than one when it continued in successors (history budget). */
  readonly executions: number;
  /** Why the run failed, in one line. */
  readonly error?: string;
}

export interface LocalRunOutcome {
  readonly runs: LocalRunReport[];
  readonly emulator: EmulatorStats;
  /** What the twin's own faults did (`handler-crash`, `duplicate-invocation`). */
  readonly faults: TwinFaultStats;
  /** What the Lambda sandboxes did, and their time limits as a fraction of each `Timeout`. */
  readonly lambda: LambdaRuntimeStats;
  /** 0 when every run finished (records may have failed), 1 when a run itself failed. */
  readonly exitCode: 0 | 1;
}

/** The pipeline the twin runs: one `default` route on `modelId` with the request's settings. */
export function localPipelineConfig(
  req: Pick<
    LocalRunRequest,
    'modelId' | 'maxRecordsPerJob' | 'minRecordsPerJob' | 'maxConcurrentJobs' | 'historyEventBudget' | 'maxAttempts' | 'smallRemainder'
  >,
): PipelineConfig {
  if (!req.modelId) throw new Error("a model id is required for the package's own stack");
  const maxRecordsPerJob = req.maxRecordsPerJob ?? 50000;
  const minRecordsPerJob = req.minRecordsPerJob ?? Math.min(BEDROCK_DEFAULT_MIN_RECORDS, Math.max(1, Math.floor(maxRecordsPerJob / 2)));
  return loadPipelineConfig({
    ...(req.maxConcurrentJobs !== undefined ? { maxConcurrentJobs: req.maxConcurrentJobs } : {}),
    ...(req.historyEventBudget !== undefined ? { historyEventBudget: req.historyEventBudget } : {}),
    routes: {
      default: {
        modelId: req.modelId,
        maxRecordsPerJob,
        minRecordsPerJob,
        ...(req.maxAttempts !== undefined ? { maxAttempts: req.maxAttempts } : {}),
        ...(req.smallRemainder !== undefined ? { smallRemainder: req.smallRemainder } : {}),
      },
    },
  });
}

/** Runs the files through the pipeline on a fresh twin and collects the outputs. */
export async function runLocal(req: LocalRunRequest): Promise<LocalRunOutcome> {
  const app = req.app ? await appPipeline(req.app) : undefined;
  const route = app?.route ?? 'default';
  const twin = await LocalTwin.start({
    ...(app ? { template: app.template } : { config: localPipelineConfig(req) }),
    ...(req.accountQuotas ? { accountQuotas: req.accountQuotas } : {}),
    ...(req.faults ? { faults: req.faults } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    ...(req.stepDelayMs !== undefined ? { stepDelayMs: req.stepDelayMs } : {}),
    ...(req.logLevel ? { logLevel: req.logLevel } : {}),
    ...(req.lambdaTimeScale !== undefined ? { lambdaTimeScale: req.lambdaTimeScale } : {}),
    ...(req.progress ? { progress: req.progress } : {}),
  });
  try {
    const keys = inboxKeys(req.files, route);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const executionName = `local-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
    if (req.executionInputs) {
      for (const file of req.files) await twin.upload(file, uploadKey(file));
      // Named apart, started together: they share the one emulator and the one job cap.
      for (const [i, input] of req.executionInputs.entries()) twin.startExecution({ name: `${executionName}-${i + 1}`, input: JSON.stringify(input) });
    } else if (req.oneRunPerFile) {
      if (twin.sendsObjectEvents instanceof Error) throw new AppError(`--one-run-per-file: ${twin.sendsObjectEvents.message}`);
      if (!twin.sendsObjectEvents) {
        throw new AppError(
          '--one-run-per-file drops the files into the inbox, but the drop bucket does not send its events to EventBridge (NotificationConfiguration.EventBridgeConfiguration): on AWS no run would start',
        );
      }
      for (const [i, file] of req.files.entries()) await twin.drop(file, route, keys[i]);
    } else {
      const inputs: string[] = [];
      for (const [i, file] of req.files.entries()) inputs.push(await twin.upload(file, keys[i]!));
      twin.startExecution({ name: executionName, input: JSON.stringify({ inputs, runId: req.runId ?? executionName }) });
    }
    const executions = await twin.settle();
    await req.onSettled?.(twin);
    const emulator = twin.emulatorStats();
    const faults = twin.faultStats();
    const lambda = twin.lambdaStats();

    // The run id the pipeline gives an execution (what its summary says): the input's, or
    // one derived from the execution's name (prepare's rule).
    const runIdOf = (execution: { name: string; input: unknown }) => runIdOfExecutionInput(execution.name, execution.input);
    const runIds = new Set(executions.map(runIdOf));
    const folderPerRun = req.executionInputs !== undefined || runIds.size > 1;
    const runs: LocalRunReport[] = [];
    for (const execution of executions) {
      // An execution that handed its run to a successor (history budget) is not the run's end.
      if ((execution.result?.output as { continued?: boolean } | undefined)?.continued === true) continue;
      const runId = runIdOf(execution);
      const outDir = resolve(req.out ? (folderPerRun ? join(req.out, runId) : req.out) : join('bedrock-batch-out', runId));
      await mkdir(outDir, { recursive: true });
      const summary = await downloadObject(twin.s3, twin.bucket, runKeys.results(runId, 'summary.json'), join(outDir, 'summary.json')).then(async (ok) =>
        ok ? (JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as RunSummary) : undefined,
      );
      const resultKeys = summary?.outputs.results.map((uri) => uri.slice(`s3://${twin.bucket}/`.length)) ?? [runKeys.results(runId, 'results.jsonl')];
      for (const key of [...resultKeys, runKeys.results(runId, 'failed.jsonl'), runKeys.results(runId, 'rejected.jsonl')]) {
        await downloadObject(twin.s3, twin.bucket, key, join(outDir, basename(key)));
      }
      await writeFile(join(outDir, 'emulator.json'), JSON.stringify({ ...emulator, faults, lambda }, null, 2) + '\n');
      // IAM in the twin: every call the handlers made, checked against their roles' policies.
      await writeFile(join(outDir, 'access.json'), JSON.stringify(twin.accessReport(), null, 2) + '\n');
      const result = execution.result!;
      // Another execution's summary (this one was refused the run id it asked for) is not this one's outcome.
      const own = summary !== undefined && (result.status === 'SUCCEEDED' || summary.status === (result.status === 'ABORTED' ? 'Stopped' : 'Failed'));
      const failed = result.status !== 'SUCCEEDED' || summary?.status === 'Failed';
      runs.push({
        runId,
        executionName: execution.name,
        executionStatus: result.status,
        ...(own ? { summary } : {}),
        outDir,
        executions: executions.filter((e) => runIdOf(e) === runId).length,
        ...(failed
          ? { error: own && summary?.error ? `${summary.error.error}: ${summary.error.cause}` : `${result.error ?? 'execution failed'}: ${result.cause ?? ''}` }
          : {}),
      });
    }
    return { runs, emulator, faults, lambda, exitCode: runs.some((r) => r.error !== undefined) || runs.length === 0 ? 1 : 0 };
  } finally {
    await twin.stop();
  }
}

/** `inbox/<route>/<name>` for each file, numbered when two files share a name. */
function inboxKeys(files: readonly string[], route: string): string[] {
  const names = files.map((f) => basename(f));
  return names.map((name, i) => `inbox/${route}/${names.indexOf(name) === i ? name : `${i + 1}-${name}`}`);
}

/** The consumer's pipeline `--app` names, and the route its files are dropped on. */
async function appPipeline(app: NonNullable<LocalRunRequest['app']>): Promise<{ template: CfnTemplate; route: string }> {
  const pipeline = selectPipeline(findPipelines(await synthesizeApp(app.command)), app.pipeline);
  const routes = Object.keys(pipeline.routes);
  const route = app.route ?? (routes.includes('default') || routes.length !== 1 ? 'default' : routes[0]!);
  if (!routes.includes(route)) {
    throw new AppError(`${app.route ? `--route ${route}` : 'no --route given'}: the pipeline ${pipeline.path} has routes ${routes.join(', ') || '(none)'}`);
  }
  return { template: pipeline.template, route };
}
