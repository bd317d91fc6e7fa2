/**
 * The benchmark's result: the one JSON object `npm run bench -- --json` prints, the targets of
 * the issue, and which of them each size met. Pure, so the shape is decided in one place.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import type { CodeVersion } from './code-version';
import type { MemoryPeaks, PhaseName, PhaseReport } from './phases';

/** The targets, from the issue that asked for this benchmark. */
export const TARGETS = {
  /** Prepare's throughput over the raw copy's. */
  prepareRatio: 0.6,
  /** Reconcile's throughput over the raw copy's. */
  reconcileRatio: 0.5,
  /** Peak RSS of the prepare and reconcile processes, MiB. */
  peakRssMB: 300,
  /**
   * "About the same for 100 MB and 1 GB": the largest size's peak RSS may exceed the smallest
   * size's by at most this fraction (per phase).
   */
  peakRssGrowth: 0.25,
} as const;

const MiB = 1024 * 1024;

/** Timing and memory of one phase, as reported (over `--repeat` runs, each in a fresh process). */
export interface PhaseFigures {
  /** Wall-clock seconds of the fastest run: other work on the machine only ever adds time. */
  readonly seconds: number;
  /** Throughput in MiB/s of the fastest run, of the phase's reference bytes (input for copy and prepare, `.out` files for reconcile). */
  readonly MBps: number;
  /** CPU seconds the phase process used in the fastest run (above `seconds`: more than one thread was busy). */
  readonly cpuSeconds: number;
  /** Highest peak RSS of the runs' processes, MiB. */
  readonly peakRssMB: number;
  /** RSS once Node, tsx and the SDK are loaded, before the measured call, MiB (lowest of the runs). */
  readonly startRssMB: number;
  /** Highest sampled peaks of the V8 heap and of Buffers, MiB: what the peak RSS is made of. */
  readonly sampledPeaksMB: MemoryPeaks;
  /** Seconds of every run, in order. */
  readonly runsSeconds: readonly number[];
  /** CPU seconds used by other processes of the machine during every run, in order (null: unknown). */
  readonly foreignCpuSeconds: ReadonlyArray<number | null>;
}

/** Everything measured for one input size. */
export interface SizeResult {
  /** The requested size, MiB. */
  readonly inputMB: number;
  readonly inputBytes: number;
  readonly records: number;
  readonly rawCopy: PhaseFigures;
  readonly prepare: PhaseFigures & {
    readonly ratioToRawCopy: number;
    readonly validRecords: number;
    readonly rejected: number;
    readonly chunks: number;
    readonly tailFiles: number;
  };
  readonly reconcile: PhaseFigures & {
    readonly ratioToRawCopy: number;
    /** Size of the job output (`.out`) files reconcile read, MiB. */
    readonly outputMB: number;
    readonly records: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly retry: number;
  };
}

/** Which targets one size met. */
export interface SizeVerdict {
  readonly inputMB: number;
  readonly prepareRatio: boolean;
  readonly reconcileRatio: boolean;
  /** Both prepare's and reconcile's peak RSS within the target. */
  readonly peakRss: boolean;
}

/** The benchmark's output. */
export interface BenchReport {
  readonly machine: {
    readonly node: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly totalMemGB: number;
    readonly platform: string;
    /** `os.loadavg()` (1, 5, 15 min) when the run started and ended: other work on the machine skews every number. */
    readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  };
  /** The code measured: every phase ran from a snapshot of it taken when the run started. */
  readonly code: CodeVersion;
  readonly sizes: readonly SizeResult[];
  readonly targets: typeof TARGETS;
  readonly met: {
    readonly sizes: readonly SizeVerdict[];
    /** Peak RSS of prepare and of reconcile grew by at most `targets.peakRssGrowth` from the smallest to the largest size; null with one size. */
    readonly peakRssFlat: boolean | null;
  };
  /** Record counts that disagree (a broken benchmark, not a slow one); empty when all agree. */
  readonly problems: readonly string[];
  /** Phases whose fastest run shared the CPUs with other work (see {@link disturbedPhases}); their numbers are pessimistic. */
  readonly warnings: readonly string[];
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Figures of a phase's runs whose throughput is `bytes` over the fastest run's time. */
export function phaseFigures(runs: readonly PhaseReport[], bytes: number): PhaseFigures {
  if (runs.length === 0) throw new Error('no runs to summarize');
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const seconds = best.seconds;
  const peak = (k: keyof MemoryPeaks) => round(Math.max(...runs.map((r) => r.sampledPeaksMB[k])), 1);
  return {
    seconds: round(seconds, 3),
    MBps: round(bytes / MiB / seconds, 1),
    cpuSeconds: round(best.cpuSeconds, 2),
    peakRssMB: round(Math.max(...runs.map((r) => r.peakRssMB)), 1),
    startRssMB: round(Math.min(...runs.map((r) => r.startRssMB)), 1),
    sampledPeaksMB: { heapTotal: peak('heapTotal'), heapUsed: peak('heapUsed'), external: peak('external'), arrayBuffers: peak('arrayBuffers') },
    runsSeconds: runs.map((r) => round(r.seconds, 3)),
    foreignCpuSeconds: runs.map((r) => r.foreignCpuSeconds),
  };
}

/** The measured phases of one size, before they are put side by side. */
export interface SizeMeasurements {
  readonly inputMB: number;
  readonly inputBytes: number;
  readonly records: number;
  readonly rawCopy: ReadonlyArray<PhaseReport<'raw-copy'>>;
  readonly prepare: ReadonlyArray<PhaseReport<'prepare'>>;
  readonly reconcile: ReadonlyArray<PhaseReport<'reconcile'>>;
  readonly outputBytes: number;
}

const last = <P extends PhaseName>(runs: ReadonlyArray<PhaseReport<P>>): PhaseReport<P> => runs[runs.length - 1]!;

/** Puts one size's phases side by side and lists any record count that does not add up. */
export function sizeResult(m: SizeMeasurements): { result: SizeResult; problems: string[] } {
  const rawCopy = phaseFigures(m.rawCopy, m.inputBytes);
  const prepare = phaseFigures(m.prepare, m.inputBytes);
  const reconcile = phaseFigures(m.reconcile, m.outputBytes);
  const result: SizeResult = {
    inputMB: m.inputMB,
    inputBytes: m.inputBytes,
    records: m.records,
    rawCopy,
    prepare: {
      ...prepare,
      ratioToRawCopy: round(prepare.MBps / rawCopy.MBps, 3),
      validRecords: last(m.prepare).stats.valid,
      rejected: last(m.prepare).stats.rejected,
      chunks: last(m.prepare).chunkCount,
      tailFiles: last(m.prepare).tailFiles,
    },
    reconcile: {
      ...reconcile,
      ratioToRawCopy: round(reconcile.MBps / rawCopy.MBps, 3),
      outputMB: round(m.outputBytes / MiB, 1),
      records: last(m.reconcile).records,
      succeeded: last(m.reconcile).succeeded,
      failed: last(m.reconcile).failed,
      retry: last(m.reconcile).retry,
    },
  };
  const problems: string[] = [];
  const at = `${m.inputMB} MB`;
  // Every run must account for every record, not only the one whose counts are reported.
  for (const r of m.rawCopy) if (r.bytes !== m.inputBytes) problems.push(`${at}: raw copy read ${r.bytes} bytes of ${m.inputBytes}`);
  for (const r of m.prepare) {
    if (r.stats.valid !== m.records) problems.push(`${at}: prepare found ${r.stats.valid} valid records of ${m.records}`);
    if (r.chunkCount !== last(m.prepare).chunkCount) problems.push(`${at}: prepare runs made ${r.chunkCount} and ${last(m.prepare).chunkCount} chunks`);
  }
  for (const r of m.reconcile) {
    if (r.records !== m.records) problems.push(`${at}: reconcile saw ${r.records} input records of ${m.records}`);
    if (r.succeeded !== m.records) problems.push(`${at}: reconcile succeeded ${r.succeeded} records of ${m.records}`);
    if (r.unknownOutputRecords + r.duplicateOutputRecords > 0) problems.push(`${at}: reconcile found unknown or duplicate output records`);
  }
  return { result, problems };
}

/** The verdicts of every size and of the size-independence of memory. */
export function verdicts(sizes: readonly SizeResult[]): BenchReport['met'] {
  const perSize = sizes.map((s) => ({
    inputMB: s.inputMB,
    prepareRatio: s.prepare.ratioToRawCopy >= TARGETS.prepareRatio,
    reconcileRatio: s.reconcile.ratioToRawCopy >= TARGETS.reconcileRatio,
    peakRss: Math.max(s.prepare.peakRssMB, s.reconcile.peakRssMB) <= TARGETS.peakRssMB,
  }));
  if (sizes.length < 2) return { sizes: perSize, peakRssFlat: null };
  const bySize = [...sizes].sort((a, b) => a.inputBytes - b.inputBytes);
  const smallest = bySize[0]!;
  const largest = bySize[bySize.length - 1]!;
  const flat = (['prepare', 'reconcile'] as const).every((p) => largest[p].peakRssMB <= smallest[p].peakRssMB * (1 + TARGETS.peakRssGrowth));
  return { sizes: perSize, peakRssFlat: flat };
}

/** The current load average, rounded. */
export function loadAverage(): number[] {
  return loadavg().map((x) => round(x, 2));
}

/** The machine the numbers came from; `loadAtStart` from {@link loadAverage} when the run began. */
export function machine(loadAtStart: readonly number[]): BenchReport['machine'] {
  const cpuList = cpus();
  return {
    node: process.version,
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model ?? 'unknown',
    totalMemGB: round(totalmem() / 1024 ** 3, 1),
    platform: `${process.platform} ${process.arch}`,
    loadAverage: { start: loadAtStart, end: loadAverage() },
  };
}

/**
 * Other processes may use this share of one CPU during a phase's fastest run before the run is
 * called disturbed: kernel threads and an idle desktop stay far below it.
 */
export const FOREIGN_CPU_TOLERANCE = 0.1;

/** Warnings for phases whose fastest run shared the machine with other work. */
export function disturbedPhases(sizes: readonly SizeResult[]): string[] {
  const out: string[] = [];
  for (const s of sizes) {
    for (const phase of ['rawCopy', 'prepare', 'reconcile'] as const) {
      const f = s[phase];
      const i = f.runsSeconds.indexOf(f.seconds);
      const foreign = f.foreignCpuSeconds[i];
      if (foreign !== null && foreign !== undefined && foreign > FOREIGN_CPU_TOLERANCE * f.seconds) {
        out.push(`${s.inputMB} MB ${phase}: other processes used ${foreign} CPU seconds during its fastest run (${f.seconds} s); rerun on a quiet machine`);
      }
    }
  }
  return out;
}
