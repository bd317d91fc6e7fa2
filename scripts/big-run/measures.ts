/**
 * What the big run measures, from the twin's recorded bus events and the run's output files:
 * slot utilization, how late the sweeper found jobs whose event was missed, and conservation.
 */
import type { RunSummary } from '../../lambdas/finalize/finalize';
import type { BusEvent } from '../../local/services/event-bus';

const TERMINAL = new Set(['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired']);

/** How busy the job slots were while jobs ran. */
export interface SlotUtilization {
  /** Jobs seen on the bus (by their `Submitted` event). */
  readonly jobs: number;
  /** Sum over jobs of (terminal event time - Submitted event time), in seconds. */
  readonly busySlotSeconds: number;
  /** From the first job's Submitted event to the last job's terminal event, in seconds. */
  readonly jobPhaseSeconds: number;
  /** busySlotSeconds / (cap x jobPhaseSeconds), 0..1. */
  readonly utilization: number;
  /** Jobs with a Submitted event but no terminal one (should be 0). */
  readonly unfinishedJobs: number;
}

/**
 * Slot utilization from Bedrock's job state events as the twin's bus recorded them (the
 * emulator stamps each event with the time of its transition): a job holds a slot from its
 * `Submitted` event to its terminal event. The pipeline holds a slot a little longer (from
 * AcquireSlot until ReconcileChunk frees it); that overhead is what lowers this figure.
 */
export function slotUtilization(events: readonly BusEvent[], cap: number): SlotUtilization {
  const spans = new Map<string, { start?: number; end?: number }>();
  for (const e of events) {
    if (e.source !== 'aws.bedrock') continue;
    const d = e.detail as { batchJobArn?: string; status?: string };
    if (!d.batchJobArn || !d.status) continue;
    const t = Date.parse(e.time);
    const span = spans.get(d.batchJobArn) ?? {};
    if (d.status === 'Submitted') span.start = Math.min(span.start ?? t, t);
    if (TERMINAL.has(d.status)) span.end = Math.max(span.end ?? t, t);
    spans.set(d.batchJobArn, span);
  }
  let busyMs = 0;
  let first = Infinity;
  let last = -Infinity;
  let jobs = 0;
  let unfinished = 0;
  for (const { start, end } of spans.values()) {
    if (start === undefined) continue;
    jobs += 1;
    if (end === undefined) {
      unfinished += 1;
      continue;
    }
    busyMs += end - start;
    first = Math.min(first, start);
    last = Math.max(last, end);
  }
  const phaseMs = last > first ? last - first : 0;
  return {
    jobs,
    busySlotSeconds: round(busyMs / 1000),
    jobPhaseSeconds: round(phaseMs / 1000),
    utilization: phaseMs > 0 ? round(busyMs / (cap * phaseMs), 3) : 0,
    unfinishedJobs: unfinished,
  };
}

/**
 * For the jobs the sweeper completed: how long after the job's terminal event (as put on the
 * bus) the sweeper's line was logged, in ms. A short delay means the event was not lost but
 * still on its way to job-state when a sweep got there first.
 */
export function missedDelays(
  events: readonly BusEvent[],
  missed: ReadonlyArray<{ jobArn: string; at: number }>,
): { delayAfterTerminalEventMs?: { min: number; median: number; max: number } } {
  const terminalAt = new Map<string, number>();
  for (const e of events) {
    const d = e.detail as { batchJobArn?: string; status?: string };
    if (e.source === 'aws.bedrock' && d.batchJobArn && d.status && TERMINAL.has(d.status) && !terminalAt.has(d.batchJobArn))
      terminalAt.set(d.batchJobArn, Date.parse(e.time));
  }
  const delays = missed.flatMap((m) => (terminalAt.has(m.jobArn) ? [m.at - terminalAt.get(m.jobArn)!] : [])).sort((a, b) => a - b);
  if (delays.length === 0) return {};
  return { delayAfterTerminalEventMs: { min: delays[0]!, median: delays[Math.floor(delays.length / 2)]!, max: delays[delays.length - 1]! } };
}

/** The conservation check of a run's output files, as the end-to-end tests make it. */
export interface ConservationCheck {
  readonly ok: boolean;
  readonly input: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
  /** Input record ids in none of the outputs. */
  readonly missing: number;
  /** Records in more than one output line. */
  readonly repeated: number;
  /** The summary's counts disagree with the files. */
  readonly summaryMismatch: boolean;
}

/**
 * input lines = succeeded + failed + rejected, each input record id in exactly one output line,
 * and the summary agrees with the files.
 */
export function checkConservation(
  inputIds: readonly string[],
  outputs: { summary?: RunSummary; results: string[]; failed: string[]; rejected: string[] },
): ConservationCheck {
  const seen = new Map<string, number>();
  for (const id of [...outputs.results, ...outputs.failed, ...outputs.rejected]) seen.set(id, (seen.get(id) ?? 0) + 1);
  const missing = inputIds.filter((id) => !seen.has(id)).length;
  const repeated = [...seen.values()].filter((n) => n > 1).length;
  const counts = { input: inputIds.length, succeeded: outputs.results.length, failed: outputs.failed.length, rejected: outputs.rejected.length };
  const s = outputs.summary?.records;
  const summaryMismatch = !s || s.input !== counts.input || s.succeeded !== counts.succeeded || s.failed !== counts.failed || s.rejected !== counts.rejected;
  const ok = counts.succeeded + counts.failed + counts.rejected === counts.input && missing === 0 && repeated === 0 && !summaryMismatch;
  return { ok, ...counts, missing, repeated, summaryMismatch };
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
