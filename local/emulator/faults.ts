/**
 * Fault injection for the Bedrock emulator: the `--faults` spec and the seeded, deterministic
 * decisions made from it. A decision depends only on the seed and the thing it is about (a job
 * ARN, a record id, an event), never on timing, so a run with the same seed fails the same way.
 */

/**
 * The faults the twin can inject (see the `--faults` option in the README's "The local twin"):
 * the Bedrock emulator's, and two of the twin's own, `handler-crash` and `duplicate-invocation`,
 * which hit the handlers (local/crash-injector.ts, local/twin.ts).
 */
export type FaultName =
  | 'record-error'
  | 'record-throttle'
  | 'job-fail'
  | 'job-partial'
  | 'job-expire'
  | 'create-throttle'
  | 'drop-events'
  | 'duplicate-events'
  | 'reorder-events'
  | 'arn-model-id'
  | 'long-outputs'
  | 'handler-crash'
  | 'duplicate-invocation';

/** Every fault name, in the order they are documented. */
export const FAULT_NAMES: readonly FaultName[] = [
  'record-error',
  'record-throttle',
  'job-fail',
  'job-partial',
  'job-expire',
  'create-throttle',
  'drop-events',
  'duplicate-events',
  'reorder-events',
  'arn-model-id',
  'long-outputs',
  'handler-crash',
  'duplicate-invocation',
];

/** Fault rates by name, each 0..1 (the probability that one decision goes the faulty way). */
export type FaultSpec = Partial<Record<FaultName, number>>;

function isFaultName(name: string): name is FaultName {
  return (FAULT_NAMES as readonly string[]).includes(name);
}

/**
 * Parses `"record-error=0.1,job-fail=0.2"` into a {@link FaultSpec}. Whitespace around parts is
 * ignored and an empty spec gives `{}`.
 * @throws Error with a one-line message naming the bad part (unknown name, missing or
 * out-of-range rate, a name given twice).
 */
export function parseFaultSpec(spec: string): FaultSpec {
  const result: FaultSpec = {};
  const trimmed = spec.trim();
  if (trimmed === '') return result;
  for (const rawPart of trimmed.split(',')) {
    const part = rawPart.trim();
    if (part === '') throw new Error(`empty fault in "${spec}": expected name=rate pairs separated by commas`);
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`fault "${part}" has no rate: expected name=rate, e.g. record-error=0.1`);
    const name = part.slice(0, eq).trim();
    const rateText = part.slice(eq + 1).trim();
    if (!isFaultName(name)) throw new Error(`unknown fault "${name}" in "${part}" (known: ${FAULT_NAMES.join(', ')})`);
    if (name in result) throw new Error(`fault "${name}" is given more than once`);
    const rate = rateText === '' ? NaN : Number(rateText);
    if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
      throw new Error(`fault "${part}" needs a rate from 0 to 1, got "${rateText}"`);
    }
    result[name] = rate;
  }
  return result;
}

/**
 * A 53-bit string hash (cyrb53): fast, well mixed, and stable across Node versions, which is
 * all the emulator needs for reproducible decisions.
 */
export function hash53(text: string, salt = 0): number {
  let h1 = 0xdeadbeef ^ salt;
  let h2 = 0x41c6ce57 ^ salt;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** A uniform number in [0, 1) determined by the seed and the parts. */
export function chance(seed: number, ...parts: readonly (string | number)[]): number {
  return hash53(parts.join('\u0000'), seed | 0) / 2 ** 53;
}

/** A small seeded PRNG (mulberry32) returning uniform numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decides faults for one emulator (or the twin): same seed and same subject, same answer. */
export class FaultDecider {
  /**
   * @param faults rates by fault name; absent names never fire
   * @param seed the run's seed @default 1
   */
  constructor(
    private readonly faults: FaultSpec = {},
    readonly seed = 1,
  ) {}

  /** The configured rate of a fault (0 when not configured). */
  rate(name: FaultName): number {
    return this.faults[name] ?? 0;
  }

  /** True when `name` fires for the subject identified by `parts`. */
  fires(name: FaultName, ...parts: readonly (string | number)[]): boolean {
    const rate = this.rate(name);
    if (rate <= 0) return false;
    if (rate >= 1) return true;
    return chance(this.seed, name, ...parts) < rate;
  }

  /** A uniform number in [0, 1) for the subject, for decisions that are not a yes/no. */
  uniform(...parts: readonly (string | number)[]): number {
    return chance(this.seed, ...parts);
  }
}
