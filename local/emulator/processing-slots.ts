/**
 * The emulator's processing slots: the records of at most `size` InProgress jobs are processed
 * at once (the fake model runs on the twin's one thread, so more at once would not finish
 * sooner, only hold more memory). Jobs get a slot in the order they first asked for one; a
 * waiting job is woken as soon as a slot is given back.
 */
export class ProcessingSlots {
  private taken = 0;
  /** Jobs waiting for a slot, first asker first. */
  private readonly queue: object[] = [];
  private wakers: Array<() => void> = [];
  /** Highest number of slots taken at once. */
  peak = 0;

  constructor(private readonly size: number) {}

  /** Takes a slot for `job` when one is free and no job asked before it; otherwise `job` joins the queue. */
  tryTake(job: object): boolean {
    const head = this.queue.length === 0 || this.queue[0] === job;
    if (this.taken < this.size && head) {
      if (this.queue[0] === job) this.queue.shift();
      this.taken += 1;
      this.peak = Math.max(this.peak, this.taken);
      // Another slot may still be free for the next in line.
      if (this.taken < this.size && this.queue.length > 0) this.wake();
      return true;
    }
    if (!this.queue.includes(job)) this.queue.push(job);
    return false;
  }

  /** Resolves when a slot is given back or the queue changes. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  /** Takes a waiting job out of the queue (it was stopped, or the emulator closed). */
  leave(job: object): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    this.wake();
  }

  /** Gives a slot taken with `tryTake` back. */
  give(): void {
    this.taken -= 1;
    this.wake();
  }

  private wake(): void {
    for (const wake of this.wakers.splice(0)) wake();
  }
}
