import { ProcessingSlots } from '../../../local/emulator/processing-slots';

describe('ProcessingSlots', () => {
  it('gives free slots to the jobs that asked first, and wakes a waiter as soon as a slot is given back', async () => {
    const slots = new ProcessingSlots(1);
    const [a, b, c] = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
    expect(slots.tryTake(a)).toBe(true);
    expect(slots.tryTake(b)).toBe(false);
    expect(slots.tryTake(c)).toBe(false);
    const woken = slots.changed();
    slots.give();
    await woken;
    // c looks first, but b asked before it.
    expect(slots.tryTake(c)).toBe(false);
    expect(slots.tryTake(b)).toBe(true);
    slots.give();
    expect(slots.tryTake(c)).toBe(true);
    expect(slots.peak).toBe(1);
  });

  it('lets the next in line go when a waiting job leaves, and fills every free slot', async () => {
    const slots = new ProcessingSlots(2);
    const [a, b, c, d] = [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }];
    expect(slots.tryTake(a)).toBe(true);
    expect(slots.tryTake(b)).toBe(true);
    expect([slots.tryTake(c), slots.tryTake(d)]).toEqual([false, false]);
    slots.give();
    slots.give();
    // Both slots are free: c (first in line) takes one and the wake-up lets d take the other.
    const woken = slots.changed();
    expect(slots.tryTake(c)).toBe(true);
    await woken;
    expect(slots.tryTake(d)).toBe(true);
    expect(slots.peak).toBe(2);

    const one = new ProcessingSlots(1);
    expect(one.tryTake(a)).toBe(true);
    expect([one.tryTake(b), one.tryTake(c)]).toEqual([false, false]);
    one.give();
    const left = one.changed();
    one.leave(b); // b was stopped while it waited
    await left;
    expect(one.tryTake(c)).toBe(true);
  });
});
