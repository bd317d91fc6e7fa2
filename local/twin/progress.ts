/**
 * The twin's one-line progress reports (`run-1: round 2, 3/5 job(s) reconciled`), read from the
 * outputs of the workflow's Prepare, EndRound and ReconcileChunk tasks.
 */

/** Turns task outputs into progress lines for a `progress` callback. */
export class RunProgress {
  private readonly byRun = new Map<string, { round: number; chunks: number; reconciled: number }>();

  constructor(private readonly progress: (line: string) => void) {}

  /** Reports what the output `out` of the Task state `state` says about its run, if anything. */
  report(state: string, out: unknown): void {
    const o = out as { run?: { runId: string }; round?: { number: number; chunkCount: number }; done?: boolean } | null;
    if ((state === 'Prepare' || state === 'EndRound') && o?.run && o.round) {
      if (state === 'EndRound' && o.done) return;
      this.byRun.set(o.run.runId, { round: o.round.number, chunks: o.round.chunkCount, reconciled: 0 });
      this.progress(`${o.run.runId}: round ${o.round.number}, ${o.round.chunkCount} job(s) to run`);
    } else if (state === 'ReconcileChunk') {
      for (const [runId, p] of this.byRun) {
        if (p.reconciled < p.chunks) {
          p.reconciled += 1;
          this.progress(`${runId}: round ${p.round}, ${p.reconciled}/${p.chunks} job(s) reconciled`);
          break;
        }
      }
    }
  }
}
