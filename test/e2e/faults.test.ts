/**
 * Failure paths through the local twin: every fault the emulator can inject, each run checked
 * for conservation and the cap, and the pipeline's recovery from it.
 */
import { runLocal } from '../../local/run-local';
import type { FaultName } from '../../local/emulator';
import { claudeLines, CLAUDE, expectConservation, expectUnderCap, readOutputs, tempDir, writeLines } from './helpers';

/** 400 records in 16 jobs of 25: enough jobs that a fault at the rates below hits some of them. */
async function runWithFault(fault: FaultName, rate: number, records = 400) {
  const dir = tempDir();
  const file = writeLines(dir, `${fault}.jsonl`, claudeLines(records));
  const outcome = await runLocal({
    files: [file],
    modelId: CLAUDE,
    out: `${dir}/out`,
    maxRecordsPerJob: 25,
    minRecordsPerJob: 5,
    accountQuotas: { minRecordsPerJob: 5 },
    maxConcurrentJobs: 3,
    maxAttempts: 4,
    faults: { [fault]: rate },
    seed: 11,
  });
  expect(outcome.exitCode).toBe(0);
  const out = readOutputs(outcome.runs[0]!);
  expectConservation(out, records);
  expectUnderCap(out, 3);
  return out;
}

describe('faults on the local twin', () => {
  test('failed jobs: their records are resubmitted in the next round', async () => {
    const out = await runWithFault('job-fail', 0.4);
    expect(out.summary.jobs.Failed).toBeGreaterThan(0);
    expect(out.summary.rounds).toBeGreaterThanOrEqual(2);
    expect(out.results.length).toBeGreaterThan(380);
    for (const f of out.failed) expect(f).toMatchObject({ error: { code: 'MissingFromOutput' }, attempts: 4 });
  });

  test('partially completed jobs: the missing records are resubmitted, the returned ones kept', async () => {
    const out = await runWithFault('job-partial', 0.5);
    expect(out.summary.jobs.PartiallyCompleted).toBeGreaterThan(0);
    expect(out.summary.rounds).toBeGreaterThanOrEqual(2);
    expect(out.results.length).toBeGreaterThan(390);
  });

  test('expired jobs: every record is resubmitted', async () => {
    const out = await runWithFault('job-expire', 0.3);
    expect(out.summary.jobs.Expired).toBeGreaterThan(0);
    expect(out.results.length).toBeGreaterThan(390);
  });

  test('a stale status after the terminal one (reordered events) changes nothing: every record succeeds once', async () => {
    const out = await runWithFault('reorder-events', 1);
    expect(out.emulator.eventsReordered as number).toBe(16);
    expect(out.results).toHaveLength(400);
    expect(out.summary.jobs).toEqual({ Completed: 16 });
    expect(out.summary.rounds).toBe(1);
  });

  test("events that name the model by its ARN (batchModelId) are handled like those that echo the caller's id", async () => {
    const out = await runWithFault('arn-model-id', 1);
    // Every event named the model by its ARN (the fault reached the twin's emulator).
    expect(out.emulator.eventsSent as number).toBeGreaterThan(0);
    expect(out.emulator.eventsWithModelArn as number).toBe(out.emulator.eventsSent);
    expect(out.results).toHaveLength(400);
    expect(out.summary.jobs).toEqual({ Completed: 16 });
  });

  test('throttled creates are retried with the same client request token: no job is created twice', async () => {
    const out = await runWithFault('create-throttle', 0.5);
    expect(out.emulator.createThrottled as number).toBeGreaterThan(0);
    expect(out.results).toHaveLength(400);
    // Sixteen chunks, each created exactly once however often its create was throttled.
    expect(out.emulator.jobsCreated).toBe(16);
  });

  test('lost job-state events: the sweeper finds the finished jobs', async () => {
    const out = await runWithFault('drop-events', 0.7);
    expect(out.emulator.eventsDropped as number).toBeGreaterThan(0);
    expect(out.results).toHaveLength(400);
    expect(out.summary.status).toBe('Succeeded');
  });

  test('duplicated job-state events change nothing', async () => {
    const out = await runWithFault('duplicate-events', 1);
    expect(out.emulator.eventsDuplicated as number).toBeGreaterThan(0);
    expect(out.results).toHaveLength(400);
    expect(out.summary.jobs).toEqual({ Completed: 16 });
  });

  test('a failure that hits every attempt ends the records in failed.jsonl, never drops them', async () => {
    const out = await runWithFault('job-fail', 1, 60);
    expect(out.results).toHaveLength(0);
    expect(out.failed).toHaveLength(60);
    expect(out.summary.rounds).toBe(4);
    expect(out.summary.status).toBe('CompletedWithFailures');
  });
});
