/**
 * What `local run` prints: one line per run (what happened, where the outputs are) on stdout,
 * and one line on stderr for each run that failed or was refused.
 */
import { describeCost } from '../lambdas/shared/prices';
import type { LocalRunOutcome } from './run-local';

/** One line per run: what happened and where the outputs are. */
export function describeOutcome(outcome: LocalRunOutcome): string[] {
  const lines: string[] = [];
  for (const run of outcome.runs) {
    const s = run.summary;
    if (run.error !== undefined) {
      lines.push(`${run.runId}: Failed: ${run.error} (outputs in ${run.outDir})`);
      continue;
    }
    if (!s) continue;
    const jobs = Object.values(s.jobs).reduce((a, b) => a + b, 0);
    lines.push(
      `${run.runId}: ${s.status}: ${s.records.input} input, ${s.records.succeeded} succeeded, ${s.records.failed} failed, ${s.records.rejected} rejected; ` +
        `${jobs} job(s) in ${s.rounds} round(s)${run.executions > 1 ? ` over ${run.executions} executions` : ''}, ${s.onDemandRecords} on demand; ${describeCost(s.cost)}; outputs in ${run.outDir}`,
    );
    for (const w of s.warnings) lines.push(`${run.runId}: warning: ${w}`);
  }
  const f = outcome.faults;
  const twinFaults =
    f.handlerCrash + f.duplicateInvocation > 0 ? `; ${f.handlerCrash} handler crash(es), ${f.duplicateInvocation} duplicate invocation(s)` : '';
  lines.push(
    `emulator: ${outcome.emulator.jobsCreated} job(s) created, at most ${outcome.emulator.maxConcurrentJobs} at once, ${outcome.emulator.duplicateCreates} duplicate create(s)${twinFaults}`,
  );
  const l = outcome.lambda;
  const killed = l.timeouts + l.outOfMemory > 0 ? `; ${l.timeouts} timed out, ${l.outOfMemory} out of memory` : '';
  lines.push(
    `lambda: ${l.invocations} invocation(s) in sandboxes, ${l.coldStarts} cold start(s) (${(l.coldStartMs / 1000).toFixed(1)} s in all), at most ${l.peakSandboxes} sandbox(es) at once${killed}`,
  );
  return lines;
}

/** One line on stderr for each run that failed or was refused (none when all finished). */
export function failureLines(outcome: LocalRunOutcome): string[] {
  if (outcome.exitCode === 0) return [];
  if (outcome.runs.length === 0) return ['bedrock-batch: run failed: no run finished'];
  return outcome.runs
    .filter((r) => r.error !== undefined)
    .map((r) => {
      // Two executions may name one runId: then say which execution failed.
      const shared = outcome.runs.filter((o) => o.runId === r.runId).length > 1;
      return `bedrock-batch: run ${r.runId}${shared ? ` (execution ${r.executionName})` : ''} failed: ${r.error!.replace(/\s*\n\s*/g, ' ')}`;
    });
}
