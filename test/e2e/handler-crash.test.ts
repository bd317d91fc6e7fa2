/**
 * The twin's own faults through whole runs: handlers that die after one of their writes
 * (handler-crash) and rule targets invoked twice with one event (duplicate-invocation). The
 * workflow's retriers and EventBridge's retries run them again; every record is still
 * accounted for exactly once.
 */
import { runLocal } from '../../local/run-local';
import { claudeLines, CLAUDE, expectConservation, expectUnderCap, readOutputs, tempDir, writeLines } from './helpers';

test('handler crashes after writes: the run finishes and conserves every record', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'crash.jsonl', claudeLines(300));
  const outcome = await runLocal({
    files: [file],
    modelId: CLAUDE,
    out: `${dir}/out`,
    runId: 'crash-run',
    maxRecordsPerJob: 25,
    minRecordsPerJob: 5,
    accountQuotas: { minRecordsPerJob: 5 },
    maxConcurrentJobs: 3,
    maxAttempts: 4,
    faults: { 'handler-crash': 0.15 },
    seed: 3,
  });
  const out = readOutputs(outcome.runs[0]!);
  expect({ exitCode: outcome.exitCode, error: outcome.runs[0]!.error, crashPoints: outcome.faults.crashPoints }).toMatchObject({
    exitCode: 0,
    error: undefined,
  });
  expect(outcome.faults.handlerCrash).toBeGreaterThan(0);
  expect(out.emulator.faults).toEqual(outcome.faults);
  expectConservation(out, 300);
  expectUnderCap(out, 3);
  expect(out.summary.runId).toBe('crash-run');
});

test('rule targets invoked twice with the same event: one run per dropped file, each conserved', async () => {
  const dir = tempDir();
  const files = [writeLines(dir, 'a.jsonl', claudeLines(60, 'a')), writeLines(dir, 'b.jsonl', claudeLines(40, 'b'))];
  const outcome = await runLocal({
    files,
    modelId: CLAUDE,
    out: `${dir}/out`,
    oneRunPerFile: true,
    maxRecordsPerJob: 20,
    minRecordsPerJob: 5,
    accountQuotas: { minRecordsPerJob: 5 },
    maxConcurrentJobs: 2,
    faults: { 'duplicate-invocation': 1 },
    seed: 4,
  });
  expect(outcome.exitCode).toBe(0);
  expect(outcome.runs).toHaveLength(2);
  // Both drops' start-run and every job-state event were delivered twice.
  expect(outcome.faults.duplicateInvocation).toBeGreaterThanOrEqual(2 + 5);
  const counts = outcome.runs.map((run) => readOutputs(run).summary.records.input).sort((x, y) => x - y);
  expect(counts).toEqual([40, 60]);
  for (const run of outcome.runs) {
    const out = readOutputs(run);
    expectConservation(out, out.summary.records.input);
    expect(out.emulator.duplicateCreates).toBe(0);
  }
});
