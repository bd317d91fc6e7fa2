/**
 * A run too long for one execution's history: NextWindow measures the history, hands the run
 * to a successor execution, and the successor finishes it. Through the local twin, with a small
 * history budget standing in for the 25,000-event limit.
 */
import { runLocal } from '../../local/run-local';
import { claudeLines, CLAUDE, expectConservation, expectUnderCap, readOutputs, tempDir, writeLines } from './helpers';

test('a run continues in successor executions when its history budget runs low, and conserves every record', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'long.jsonl', claudeLines(600));
  const outcome = await runLocal({
    files: [file],
    modelId: CLAUDE,
    out: `${dir}/out`,
    maxRecordsPerJob: 10,
    accountQuotas: { minRecordsPerJob: 5 },
    maxConcurrentJobs: 4,
    maxAttempts: 2,
    faults: { 'record-throttle': 0.05 },
    seed: 5,
    // Enough for a window or two of chunks per execution (counted as AWS counts its history).
    historyEventBudget: 900,
  });
  expect(outcome.exitCode).toBe(0);
  expect(outcome.runs).toHaveLength(1);
  const run = outcome.runs[0]!;
  expect(run.executions).toBeGreaterThanOrEqual(2);
  const out = readOutputs(run);
  expectConservation(out, 600);
  expectUnderCap(out, 4);
  expect(out.summary.rounds).toBe(2);
  // 60 jobs in round 1, each created once across all the executions.
  expect(out.emulator.duplicateCreates).toBe(0);
  expect(out.summary.jobs.Completed).toBeGreaterThanOrEqual(60);
});
