/**
 * `bedrock-batch local up --state-dir DIR`: the twin as a long-running service. It starts every
 * local service, writes `DIR/endpoints.json` once they are all ready (what `--local DIR` reads),
 * and keeps running in the foreground until SIGINT or SIGTERM; then it stops the executions
 * still running, writes `DIR/access.json` (every AWS call of the handlers, checked against their
 * roles) and stops cleanly, removing `endpoints.json`.
 */
import { rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AccountQuotas, FaultSpec } from '../local/emulator';
import { LOCAL_REGION } from '../local/services/fake-arns';
import type { LocalRunRequest } from '../local/run-local';
import { ENDPOINTS_FILE, readEndpoints, TargetError, type LocalEndpoints } from './target';

/** What `local up` runs: the pipeline's settings (as `local run` takes them) and the emulated account. */
export interface LocalUpOptions extends Pick<
  LocalRunRequest,
  'modelId' | 'maxRecordsPerJob' | 'minRecordsPerJob' | 'maxConcurrentJobs' | 'maxAttempts' | 'smallRemainder'
> {
  readonly stateDir: string;
  readonly accountQuotas?: AccountQuotas;
  readonly faults?: FaultSpec;
  readonly seed?: number;
  readonly stepDelayMs?: number;
  /** Each function's time limit as a fraction of its `Timeout`. @default the twin's (0.1) */
  readonly lambdaTimeScale?: number;
  readonly progress?: (line: string) => void;
  /** Stops the twin when aborted. @default SIGINT or SIGTERM */
  readonly signal?: AbortSignal;
}

/** Runs the twin until `signal` (or SIGINT / SIGTERM); resolves once it has stopped. */
export async function localUp(options: LocalUpOptions): Promise<void> {
  const dir = resolve(options.stateDir);
  await mkdir(dir, { recursive: true });
  const running = await readEndpoints(dir).catch(() => undefined);
  if (running) throw new TargetError(`a twin is already running in ${dir} (process ${running.pid}): stop it first, or give another --state-dir`);
  // Loaded only now: the CDK and SDK modules take seconds to load, usage errors should not wait.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { LocalTwin } = require('../local/twin') as typeof import('../local/twin');
  const { localPipelineConfig } = require('../local/run-local') as typeof import('../local/run-local');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const twin = await LocalTwin.start({
    config: localPipelineConfig(options),
    ...(options.accountQuotas ? { accountQuotas: options.accountQuotas } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.stepDelayMs !== undefined ? { stepDelayMs: options.stepDelayMs } : {}),
    ...(options.lambdaTimeScale !== undefined ? { lambdaTimeScale: options.lambdaTimeScale } : {}),
    ...(options.progress ? { progress: options.progress } : {}),
  });
  const file = join(dir, ENDPOINTS_FILE);
  const stop = stopSignals(options.signal, () => options.progress?.('already stopping (Ctrl-\\ ends it at once)'));
  try {
    const { tableName, ...endpoints } = twin.endpoints;
    const content: LocalEndpoints = {
      version: 1,
      pid: process.pid,
      region: LOCAL_REGION,
      bucket: twin.bucket,
      stateMachineArn: twin.stateMachineArn,
      tableName,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      endpoints,
    };
    // Written whole and then renamed: a reader never sees half a file.
    await writeFile(`${file}.tmp`, JSON.stringify(content, null, 2) + '\n');
    await rename(`${file}.tmp`, file);
    options.progress?.(`twin ready: ${file} (stop with Ctrl-C)`);
    await stop.stopped;
    options.progress?.('stopping the twin');
  } finally {
    await rm(file, { force: true });
    for (const execution of twin.executions.values()) if (!execution.result) execution.abort.abort();
    await Promise.allSettled([...twin.executions.values()].map((e) => e.done));
    await writeFile(join(dir, 'access.json'), JSON.stringify(twin.accessReport(), null, 2) + '\n').catch(() => undefined);
    try {
      await twin.stop();
    } finally {
      stop.release();
    }
  }
}

/**
 * Resolves `stopped` when `signal` aborts or, without one, on the first SIGINT or SIGTERM. The
 * handlers stay until `release()`, which the caller calls once the twin has stopped: a repeat
 * while it stops calls `repeated` and is otherwise a no-op, instead of ending the process with
 * the twin half-stopped. On Linux a signal sent to the command's whole process group (by a
 * supervisor, `pkill`, `timeout`) reaches the twin twice: directly and through the command's
 * parent (bin/relaunch.js).
 */
export function stopSignals(
  signal: AbortSignal | undefined,
  repeated: () => void = () => undefined,
  signals: Pick<NodeJS.EventEmitter, 'on' | 'off'> = process,
): { stopped: Promise<void>; release(): void } {
  if (signal) {
    const stopped = new Promise<void>((done) => (signal.aborted ? done() : signal.addEventListener('abort', () => done(), { once: true })));
    return { stopped, release: () => undefined };
  }
  let first = true;
  let done: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (done = resolve));
  const onSignal = () => {
    if (first) done();
    else repeated();
    first = false;
  };
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  return {
    stopped,
    release: () => {
      signals.off('SIGINT', onSignal);
      signals.off('SIGTERM', onSignal);
    },
  };
}
