/** What the twin's own faults (`handler-crash`, `duplicate-invocation`) did, counted as they happen. */
import type { CrashRecord } from '../crash-injector';

/** What the twin's own faults (`handler-crash`, `duplicate-invocation`) did. */
export interface TwinFaultStats {
  /** Invocations crashed after one of their writes. */
  handlerCrash: number;
  /** Rule deliveries made twice. */
  duplicateInvocation: number;
  /** Crashes by where they happened: `<function> after write <n> (<operation>)` -> count. */
  crashPoints: Record<string, number>;
  /** Every crash in order: where, and what the invocation was about. */
  crashes: Array<{ point: string; attempt: number; subject: string }>;
}

/** New, empty counters. */
export function newFaultStats(): TwinFaultStats {
  return { handlerCrash: 0, duplicateInvocation: 0, crashPoints: {}, crashes: [] };
}

/** Counts one crash of the `handler-crash` fault. */
export function countCrash(stats: TwinFaultStats, crash: CrashRecord): void {
  stats.handlerCrash += 1;
  const point = `${crash.functionName} after write ${crash.afterWrite} (${crash.operation})`;
  stats.crashPoints[point] = (stats.crashPoints[point] ?? 0) + 1;
  stats.crashes.push({ point, attempt: crash.attempt, subject: crash.subject ?? '' });
}

/** A copy of the counters. */
export function copyFaultStats(stats: TwinFaultStats): TwinFaultStats {
  return { ...stats, crashPoints: { ...stats.crashPoints }, crashes: [...stats.crashes] };
}
