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
    ...(options.progress ? { progress: options.progress } : {}),
  });
  const file = join(dir, ENDPOINTS_FILE);
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
    await untilStopped(options.signal);
    options.progress?.('stopping the twin');
  } finally {
    await rm(file, { force: true });
    for (const execution of twin.executions.values()) if (!execution.result) execution.abort.abort();
    await Promise.allSettled([...twin.executions.values()].map((e) => e.done));
    await writeFile(join(dir, 'access.json'), JSON.stringify(twin.accessReport(), null, 2) + '\n').catch(() => undefined);
    await twin.stop();
  }
}

function untilStopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((done) => {
    if (signal) {
      if (signal.aborted) return done();
      signal.addEventListener('abort', () => done(), { once: true });
      return;
    }
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
