/**
 * The measured phases of the benchmark and how the parent runs one: each phase runs alone in a
 * child process (scripts/bench/phase.ts) so that its peak RSS belongs to the pipeline code, not
 * to s3rver or the input generator living in the parent.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import type { PipelineEnvConfig } from '../../lambdas/shared/config';
import type { RunConfig } from '../../lambdas/shared/contracts';
import type { PrepareStats } from '../../lambdas/shared/outcomes';
import { machineBusySeconds, ownCpuSeconds } from './machine-load';

/** What a phase process is asked to do (passed as JSON in its first argument). */
export type PhaseRequest =
  | { readonly phase: 'raw-copy'; readonly bucket: string; readonly sourceKey: string; readonly targetKey: string }
  | {
      readonly phase: 'prepare';
      readonly bucket: string;
      readonly inputUri: string;
      readonly runId: string;
      readonly pipeline: PipelineEnvConfig;
      readonly maxRecordsPerJob: number;
      readonly minRecordsPerJob: number;
    }
  | { readonly phase: 'reconcile'; readonly run: RunConfig; readonly jobIds: readonly string[] };

export type PhaseName = PhaseRequest['phase'];

/** Time and memory of one phase, measured inside its process. */
export interface PhaseMeasurement {
  /** Wall-clock seconds of the measured call only (module loading and client setup excluded). */
  readonly seconds: number;
  /** Peak RSS before the measured call: Node, tsx and the SDK loaded, in MiB. */
  readonly startRssMB: number;
  /** Peak RSS of the process over its whole life (`process.resourceUsage().maxRSS`), in MiB. */
  readonly peakRssMB: number;
  /** Peaks of `process.memoryUsage()` sampled every 20 ms during the measured call, in MiB: where the RSS went. */
  readonly sampledPeaksMB: MemoryPeaks;
  /** CPU seconds (user + system, all threads) the phase process used during the measured call. */
  readonly cpuSeconds: number;
  /** CPU seconds the phase process used over its whole life, loading included. */
  readonly processCpuSeconds: number;
}

/** What the parent adds to a phase's own measurement. */
export interface PhaseContext {
  /**
   * CPU seconds other processes (not the benchmark's parent with s3rver, not the phase) used
   * while the phase process lived; null where it cannot be known (no /proc/stat).
   */
  readonly foreignCpuSeconds: number | null;
}

/** Peaks of the parts of a process's memory, MiB. */
export interface MemoryPeaks {
  /** V8 heap reserved (young and old generation). */
  readonly heapTotal: number;
  /** V8 heap in use by live and not yet collected objects. */
  readonly heapUsed: number;
  /** Memory outside the V8 heap held by JS objects: Buffers (see arrayBuffers) and native objects. */
  readonly external: number;
  /** Of external: ArrayBuffers and Buffers. */
  readonly arrayBuffers: number;
}

/** What each phase reports besides its measurement. */
export type PhaseOutcome =
  | { readonly phase: 'raw-copy'; readonly bytes: number }
  | {
      readonly phase: 'prepare';
      readonly run: RunConfig;
      readonly chunkCount: number;
      readonly stats: PrepareStats;
      /** `tail-N.jsonl` files left by a re-split tail: 0 when the chunks were balanced in one pass. */
      readonly tailFiles: number;
    }
  | {
      readonly phase: 'reconcile';
      readonly records: number;
      readonly succeeded: number;
      readonly failed: number;
      readonly retry: number;
      readonly unknownOutputRecords: number;
      readonly duplicateOutputRecords: number;
    };

export type PhaseReport<P extends PhaseName = PhaseName> = Extract<PhaseOutcome, { phase: P }> & PhaseMeasurement & PhaseContext;

/** How the parent starts phase processes. */
export interface PhaseRunnerOptions {
  /** Environment of the child: endpoints, credentials, checksum settings. */
  readonly env: NodeJS.ProcessEnv;
  /** When set, each child writes a V8 CPU profile (`<phase>-<label>.cpuprofile`) here. */
  readonly cpuProfDir?: string;
  /** Where the child's stdout and stderr (handler logs, warnings) go. @default process.stderr */
  readonly log?: NodeJS.WritableStream;
  /** Extra Node options for the child, e.g. `--max-old-space-size=256` to mimic a small function. @default none */
  readonly nodeOptions?: readonly string[];
  /** The phase script to run, e.g. in a snapshot of the code. @default ./phase.ts next to this file */
  readonly phaseScript?: string;
}

/**
 * Runs one phase in a fresh Node process with tsx's require hook and returns what it reported.
 *
 * @param label distinguishes CPU profiles of the same phase (e.g. the input size)
 */
export function runPhase<P extends PhaseName>(request: Extract<PhaseRequest, { phase: P }>, label: string, opts: PhaseRunnerOptions): Promise<PhaseReport<P>> {
  const execArgv = [...(opts.nodeOptions ?? []), '--require', require.resolve('tsx/cjs')];
  if (opts.cpuProfDir) execArgv.push('--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir, '--cpu-prof-name', `${request.phase}-${label}.cpuprofile`);
  const busyBefore = machineBusySeconds();
  const ownBefore = ownCpuSeconds();
  const child = fork(opts.phaseScript ?? join(__dirname, 'phase.ts'), [JSON.stringify(request)], {
    execArgv,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const log = opts.log ?? process.stderr;
  child.stdout?.pipe(log, { end: false });
  let stderrTail = '';
  child.stderr?.on('data', (d: Buffer) => {
    log.write(d);
    stderrTail = (stderrTail + d.toString('utf8')).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let report: (Extract<PhaseOutcome, { phase: P }> & PhaseMeasurement) | undefined;
    let failure: string | undefined;
    child.on('message', (m: { ok: true; report: Extract<PhaseOutcome, { phase: P }> & PhaseMeasurement } | { ok: false; error: string }) => {
      if (m.ok) report = m.report;
      else failure = m.error;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const busyAfter = machineBusySeconds();
      const foreign =
        busyBefore === undefined || busyAfter === undefined || !report
          ? null
          : Math.max(0, busyAfter - busyBefore - (ownCpuSeconds() - ownBefore) - report.processCpuSeconds);
      if (report && code === 0) resolve({ ...report, foreignCpuSeconds: foreign === null ? null : Math.round(foreign * 10) / 10 });
      else
        reject(
          new Error(`phase ${request.phase} (${label}) failed (exit ${code ?? signal}): ${failure ?? stderrTail.trim().split('\n').slice(-5).join('\n')}`),
        );
    });
  });
}
