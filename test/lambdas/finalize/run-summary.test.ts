import type { ChunkStats, RemainderStats } from '../../../lambdas/shared/outcomes';
import { describeCause, runStatus, summaryWarnings, totalsOf, type RunTotals } from '../../../lambdas/finalize/run-summary';

const chunk = (jobStatus: string, input: number, output: number, unknown = 0, duplicate = 0, estimatedOutput = 0): ChunkStats => ({
  round: 1,
  chunk: 0,
  jobStatus,
  records: 0,
  succeeded: 0,
  failed: 0,
  retry: 0,
  tokens: estimatedOutput > 0 ? { input, output, estimated: { input: 0, output: estimatedOutput } } : { input, output },
  unknownOutputRecords: unknown,
  duplicateOutputRecords: duplicate,
  parts: [],
});

const remainder = (onDemandRecords: number, input: number, output: number): RemainderStats => ({
  round: 1,
  policy: 'on-demand',
  records: onDemandRecords,
  succeeded: onDemandRecords,
  failed: 0,
  held: 0,
  onDemandRecords,
  tokens: { input, output },
  parts: [],
});

const clean: RunTotals = totalsOf([], []);

describe('run summary steps', () => {
  it('adds up jobs by status, batch and on-demand tokens apart, the estimated ones, the truncated records and the ignored output lines', () => {
    const totals = totalsOf(
      [{ ...chunk('Completed', 10, 5, 1, 0), truncated: 3 }, chunk('Completed', 3, 2, 0, 2, 2), chunk('Failed', 1, 0)],
      [{ ...remainder(4, 7, 8), truncated: 1 }],
    );
    expect(totals).toEqual({
      jobs: { Completed: 2, Failed: 1 },
      batchTokens: { input: 14, output: 7 },
      onDemandTokens: { input: 7, output: 8 },
      estimatedTokens: { input: 0, output: 2 },
      onDemandRecords: 4,
      unknownOutputRecords: 1,
      duplicateOutputRecords: 2,
      savedFromStoppedJobs: 0,
      truncated: 4,
    });
  });

  it('counts the records with output of the chunks stop-run reconciled as saved from stopped jobs', () => {
    const kept: ChunkStats = { ...chunk('Stopped', 1, 1), succeeded: 3, failed: 1, retry: 6, reconciledAfterStop: true };
    const before: ChunkStats = { ...chunk('Completed', 1, 1), succeeded: 10 };
    expect(totalsOf([kept, before], []).savedFromStoppedJobs).toBe(4);
  });

  it('warns of a conservation breach and of an unfinished prepare, but not for a failed run', () => {
    const records = { input: 10, succeeded: 8, failed: 1, rejected: 0 };
    expect(summaryWarnings(clean, records, { failedRun: false, prepared: true })).toEqual([
      'conservation broken: 10 input lines but 8 succeeded + 1 failed + 0 rejected',
    ]);
    expect(summaryWarnings(clean, records, { failedRun: false, prepared: false })[0]).toMatch(/^prepare did not finish/);
    expect(summaryWarnings(clean, records, { failedRun: true, prepared: false })).toEqual([]);
    expect(summaryWarnings(clean, { ...records, failed: 2 }, { failedRun: false, prepared: true })).toEqual([]);
  });

  it('says how many records a failed run left in no output, so that none is dropped silently', () => {
    const records = { input: 200, succeeded: 50, failed: 0, rejected: 3 };
    expect(summaryWarnings(clean, records, { failedRun: true, prepared: true })).toEqual([
      'the run failed before 147 of its 200 input records reached an output: they are in none of results, failed or rejected',
    ]);
    expect(summaryWarnings(clean, { ...records, failed: 147 }, { failedRun: true, prepared: true })).toEqual([]);
  });

  it('says Succeeded only with nothing failed, rejected or warned of', () => {
    const ok = { input: 2, succeeded: 2, failed: 0, rejected: 0 };
    expect(runStatus('Finished', ok, [])).toBe('Succeeded');
    expect(runStatus('Finished', ok, ['w'])).toBe('CompletedWithFailures');
    expect(runStatus('Finished', { ...ok, rejected: 1 }, [])).toBe('CompletedWithFailures');
    expect(runStatus('Stopped', ok, [])).toBe('Stopped');
    expect(runStatus('Failed', ok, [])).toBe('Failed');
  });

  it("keeps a Lambda error Cause's message, or the Cause as it is", () => {
    expect(describeCause(JSON.stringify({ errorMessage: 'boom', errorType: 'Error' }))).toBe('boom');
    expect(describeCause('not json')).toBe('not json');
    expect(describeCause(undefined)).toBe('');
  });
});
