/**
 * RecordIdIndex: which record ids a run has seen, and where first, in 16 bytes per table slot
 * whatever the id's length. Ids are kept as 96-bit hashes (three independent 32-bit lanes) in an
 * open-addressing table with linear probing, at most {@link MAX_LOAD} full. Given the expected
 * number of ids, the table grows to fit them at once, at {@link RESERVE_LOAD}: about 27 bytes per
 * id (a run of 2,000,000 records needs ~53 MB, where a `Map<string, string>` takes ~200 MB and
 * more); without an estimate it doubles, 23 to 46 bytes per id. Two different ids collide with a
 * probability of about n² / 2⁹⁷ (below 10⁻¹⁶ for 2,000,000 ids), so a collision is not a
 * practical concern.
 */

const EMPTY = 0xffffffff;
/** The table grows before it is fuller than this. */
const MAX_LOAD = 0.7;
/** How full a table grown to the expected number of ids is (room for 1/0.6 − 1/0.7 ≈ 24 % more). */
const RESERVE_LOAD = 0.6;

/** Three 32-bit hashes of a string (FNV-1a and two multiplicative mixes over UTF-16 units). */
function hash96(text: string): [number, number, number] {
  let a = 0x811c9dc5;
  let b = 0x9e3779b1;
  let c = 0x85ebca6b;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    a = Math.imul(a ^ ch, 0x01000193);
    b = Math.imul(b ^ ch, 0x5bd1e995);
    b ^= b >>> 15;
    c = Math.imul(c + ch, 0xc2b2ae35);
    c ^= c >>> 13;
  }
  // Final avalanche so that ids differing in one character spread across the table.
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b);
  c = Math.imul(c ^ (c >>> 16), 0x27d4eb2f);
  a ^= text.length;
  return [a >>> 0, (b ^ (b >>> 13)) >>> 0, (c ^ (c >>> 15)) >>> 0];
}

export class RecordIdIndex {
  private capacity: number;
  private keys: Uint32Array;
  private values: Uint32Array;
  private count = 0;

  /**
   * @param initialCapacity table slots to start with
   * @param expectedIds asked when the table must grow: how many ids the index will likely hold
   *   in all (prepare estimates it from the input's size). The table then grows to fit them at
   *   once instead of doubling again and again, each doubling briefly holding the old and the
   *   new table.
   */
  constructor(
    initialCapacity = 1 << 14,
    private readonly expectedIds: () => number | undefined = () => undefined,
  ) {
    this.capacity = Math.max(16, Math.ceil(initialCapacity));
    this.keys = new Uint32Array(this.capacity * 3);
    this.values = new Uint32Array(this.capacity).fill(EMPTY);
  }

  /** Ids indexed so far. */
  get size(): number {
    return this.count;
  }

  /**
   * Records `id` as first seen at `ordinal` (a number below 2³² − 1 the caller maps back to a
   * place, e.g. a line counter) and returns undefined; or, when `id` was seen before, changes
   * nothing and returns the ordinal it was first seen at.
   */
  firstSeen(id: string, ordinal: number): number | undefined {
    if (ordinal < 0 || ordinal >= EMPTY) throw new RangeError(`ordinal out of range: ${ordinal}`);
    if (this.count + 1 > this.capacity * MAX_LOAD) this.grow();
    const [h0, h1, h2] = hash96(id);
    const slot = this.find(h0, h1, h2);
    const existing = this.values[slot]!;
    if (existing !== EMPTY) return existing;
    this.keys[slot * 3] = h0;
    this.keys[slot * 3 + 1] = h1;
    this.keys[slot * 3 + 2] = h2;
    this.values[slot] = ordinal;
    this.count += 1;
    return undefined;
  }

  /** The slot holding the hash, or the empty slot where it belongs (linear probing). */
  private find(h0: number, h1: number, h2: number): number {
    const capacity = this.capacity;
    // The top 24 bits of a mixed lane scaled to the table (any size; exact in a double).
    let slot = Math.floor((((h0 ^ Math.imul(h1, 0x9e3779b1)) >>> 8) * capacity) / 16777216);
    for (;;) {
      if (this.values[slot] === EMPTY) return slot;
      if (this.keys[slot * 3] === h0 && this.keys[slot * 3 + 1] === h1 && this.keys[slot * 3 + 2] === h2) return slot;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const oldCapacity = this.capacity;
    // Doubled, or sized for the expected ids at RESERVE_LOAD; one step grows the table at most
    // 128 times (from the first 16,384 slots to 2,097,152, 32 MiB), so a wild estimate made
    // early cannot reserve much more than doubling would have.
    const expected = Math.min(this.expectedIds() ?? 0, oldCapacity * 128 * RESERVE_LOAD);
    this.capacity = Math.max(oldCapacity * 2, Math.ceil(expected / RESERVE_LOAD));
    this.keys = new Uint32Array(this.capacity * 3);
    this.values = new Uint32Array(this.capacity).fill(EMPTY);
    for (let i = 0; i < oldCapacity; i++) {
      const value = oldValues[i]!;
      if (value === EMPTY) continue;
      const h0 = oldKeys[i * 3]!;
      const h1 = oldKeys[i * 3 + 1]!;
      const h2 = oldKeys[i * 3 + 2]!;
      const slot = this.find(h0, h1, h2);
      this.keys[slot * 3] = h0;
      this.keys[slot * 3 + 1] = h1;
      this.keys[slot * 3 + 2] = h2;
      this.values[slot] = value;
    }
  }
}
