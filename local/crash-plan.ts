/**
 * The `handler-crash` fault's decisions: which invocation crashes and after which write, the
 * same for the same seed and invocation identity (function, a stable key of its event, attempt),
 * so that a run under faults can be repeated.
 */
import { chance, hash53 } from './emulator/faults';

/** What a crash decision is about: the same identity always gets the same decision. */
export interface InvocationIdentity {
  /** The function's handler name, e.g. `reconcile-chunk`. */
  readonly functionName: string;
  /** A stable key of the event ({@link invocationKey}). */
  readonly eventKey: string;
  /** 1 for the first invocation of this function with this event, 2 for the next, ... */
  readonly attempt: number;
  /** What the event is about, for reports (e.g. `run r1 round 1 chunk 3`); not part of the decision. */
  readonly subject?: string;
}

/**
 * Where an invocation crashes: after its n-th completed write (1-based), or after its last
 * write when it makes fewer; `undefined` = it does not crash.
 */
export type CrashPlan = (invocation: InvocationIdentity) => number | undefined;

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/;
/** Fields that differ between two deliveries of the same thing (tokens, event ids, clocks). */
const VOLATILE_KEYS = new Set(['taskToken', 'sequencer']);

/**
 * A stable key of an event: the same for the same content whatever its key order, task token,
 * EventBridge envelope id and time, or timestamps, so that a decision keyed by it repeats.
 */
export function invocationKey(event: unknown): string {
  const isEnvelope = typeof event === 'object' && event !== null && 'detail-type' in event;
  const normalize = (value: unknown, top: boolean): unknown => {
    if (Array.isArray(value)) return value.map((v) => normalize(v, false));
    if (typeof value === 'string') return ISO_TIME.test(value) ? '<time>' : value;
    if (typeof value !== 'object' || value === null) return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (VOLATILE_KEYS.has(key) || (top && isEnvelope && (key === 'id' || key === 'time'))) continue;
      out[key] = normalize((value as Record<string, unknown>)[key], false);
    }
    return out;
  };
  return hash53(JSON.stringify(normalize(event, true) ?? null)).toString(36);
}

/**
 * Attempts of one invocation (same function, same event) that may crash: later ones never do.
 * The workflow retries a failed task 3 times and the bus a failed delivery twice, so a step
 * always gets through, whatever the rate: the fault tests that a step run again after dying at
 * any write ends right, not that enough crashes in a row fail a run (they would, on Lambda too).
 */
export const MAX_CRASHING_ATTEMPTS = 2;

/**
 * The `handler-crash=RATE` plan: each invocation crashes with probability `rate`, decided by
 * the seed and its identity (attempt included, so a retry gets a fresh decision); it crashes
 * after write k, k = 1, 2, 3, ... with probability 1/2, 1/4, 1/8, ... (after its last write
 * when it makes fewer than k). Attempts after {@link MAX_CRASHING_ATTEMPTS} never crash.
 */
export function seededCrashPlan(rate: number, seed: number): CrashPlan {
  return ({ functionName, eventKey, attempt }) => {
    if (rate <= 0 || attempt > MAX_CRASHING_ATTEMPTS) return undefined;
    if (rate < 1 && chance(seed, 'handler-crash', functionName, eventKey, attempt) >= rate) return undefined;
    const u = chance(seed, 'handler-crash-write', functionName, eventKey, attempt);
    return 1 + Math.floor(-Math.log2(1 - u));
  };
}
