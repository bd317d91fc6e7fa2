/**
 * RecordIdIndex: which record ids a run has seen, and where first, in 16 bytes per table slot
 * whatever the id's length; the table is kept at most half full, so 32 to 64 bytes per id: a
 * run of 2,000,000 records needs at most ~128 MB (usually ~64 MB) instead of the ~200 MB and
 * more a `Map<string, string>` takes. Given the expected number of ids, it grows to its final
 * size at once. Ids are kept as 96-bit hashes (three independent 32-bit
 * lanes) in an open-addressing table; two different ids collide with a probability of about
 * n² / 2⁹⁷ (below 10⁻¹⁶ for 2,000,000 ids), so a collision is not a practical concern.
 */

const EMPTY = 0xffffffff;

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
    this.capacity = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)));
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
    if ((this.count + 1) * 2 > this.capacity) this.grow();
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
    const mask = this.capacity - 1;
    let slot = (h0 ^ Math.imul(h1, 0x9e3779b1)) & mask;
    for (;;) {
      if (this.values[slot] === EMPTY) return slot;
      if (this.keys[slot * 3] === h0 && this.keys[slot * 3 + 1] === h1 && this.keys[slot * 3 + 2] === h2) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const oldCapacity = this.capacity;
    // At most half full: room for twice the expected ids. One step grows the table at most
    // 128 times (from the first 16,384 slots to 2,097,152, 32 MiB), so a wild estimate made
    // early cannot reserve much more than doubling would have.
    const expected = Math.min(this.expectedIds() ?? 0, oldCapacity * 64);
    while (this.capacity < expected * 2 || this.capacity === oldCapacity) this.capacity *= 2;
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
