/**
 * Run integrity under the twin's own faults at high rates: handlers that die after any of their
 * writes (handler-crash) and rule targets invoked twice (duplicate-invocation), alone and
 * together with every Bedrock fault, five runs at once under one cap. Each run accounts for
 * every record exactly once, no record is in two outputs, every job Bedrock created belongs to
 * a chunk some run reconciled, and the cap is never exceeded.
 */
import { runLocal, type LocalRunOutcome } from '../../local/run-local';
import type { FaultSpec } from '../../local/emulator';
import { claudeLines, CLAUDE, expectConservation, readOutputs, tempDir, writeLines } from './helpers';

const CAP = 3;
const RUNS = 5;

async function fiveRuns(faults: FaultSpec, seed: number): Promise<LocalRunOutcome> {
  const dir = tempDir();
  const files = Array.from({ length: RUNS }, (_, i) => writeLines(dir, `run${i}.jsonl`, claudeLines(60 + 20 * i, `r${i}`)));
  return runLocal({
    files,
    modelId: CLAUDE,
    out: `${dir}/out`,
    oneRunPerFile: true,
    maxRecordsPerJob: 20,
    minRecordsPerJob: 5,
    accountQuotas: { minRecordsPerJob: 5 },
    maxConcurrentJobs: CAP,
    maxAttempts: 4,
    faults,
    seed,
  });
}

function expectIntegrity(outcome: LocalRunOutcome): void {
  expect(outcome.runs.map((r) => ({ runId: r.runId, error: r.error }))).toEqual(outcome.runs.map((r) => ({ runId: r.runId, error: undefined })));
  expect(outcome.runs).toHaveLength(RUNS);
  const inputs = outcome.runs.map((run) => readOutputs(run).summary.records.input).sort((a, b) => a - b);
  expect(inputs).toEqual(Array.from({ length: RUNS }, (_, i) => 60 + 20 * i));
  let jobsAccounted = 0;
  for (const run of outcome.runs) {
    const out = readOutputs(run);
    const n = out.summary.records.input;
    const prefix = `r${(n - 60) / 20}-`;
    // Record by record: every id of this run's file, once, and nothing of another run.
    expectConservation(
      out,
      n,
      claudeLines(n, prefix.slice(0, -1)).map((l) => (JSON.parse(l) as { recordId: string }).recordId),
    );
    for (const r of [...out.results, ...out.failed]) expect(r.recordId.startsWith(prefix)).toBe(true);
    for (const [status, count] of Object.entries(out.summary.jobs)) if (status !== 'NotSubmitted') jobsAccounted += count;
  }
  const emulator = outcome.emulator;
  // Every job Bedrock created is a chunk some run reconciled: none billed outside the runs.
  expect(emulator.jobsCreated).toBe(jobsAccounted);
  for (const status of ['Submitted', 'Validating', 'Scheduled', 'InProgress']) expect(emulator.jobsByStatus[status] ?? 0).toBe(0);
  expect(emulator.maxConcurrentJobs).toBeGreaterThan(0);
  expect(emulator.maxConcurrentJobs).toBeLessThanOrEqual(CAP);
}

test('handler-crash and duplicate-invocation at high rates, five runs at once: every record once, every job accounted, cap kept', async () => {
  const outcome = await fiveRuns({ 'handler-crash': 0.4, 'duplicate-invocation': 0.5 }, 21);
  expect(outcome.faults.handlerCrash).toBeGreaterThan(20);
  expect(outcome.faults.duplicateInvocation).toBeGreaterThan(5);
  expectIntegrity(outcome);
});

test('the same with all eight Bedrock faults as well', async () => {
  const outcome = await fiveRuns(
    {
      'handler-crash': 0.3,
      'duplicate-invocation': 0.3,
      'record-error': 0.05,
      'record-throttle': 0.1,
      'job-fail': 0.15,
      'job-partial': 0.2,
      'job-expire': 0.1,
      'create-throttle': 0.2,
      'drop-events': 0.2,
      'duplicate-events': 0.2,
    },
    22,
  );
  expect(outcome.faults.handlerCrash).toBeGreaterThan(10);
  expectIntegrity(outcome);
});
