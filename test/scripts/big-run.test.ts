import type { RunSummary } from '../../lambdas/finalize/finalize';
import type { BusEvent } from '../../local/services/event-bus';
import { parseBigRunArgs } from '../../scripts/big-run';
import { checkConservation, missedDelays, slotUtilization } from '../../scripts/big-run/measures';

const at = (ms: number) => new Date(Date.UTC(2025, 0, 1) + ms).toISOString();
const jobEvent = (arn: string, status: string, ms: number): BusEvent => ({
  version: '0',
  id: `${arn}-${status}`,
  'detail-type': 'Batch Inference Job State Change',
  source: 'aws.bedrock',
  account: '1',
  time: at(ms),
  region: 'us-east-1',
  resources: [arn],
  detail: { batchJobArn: arn, batchJobName: arn, status },
});

describe('slotUtilization', () => {
  it('is busy slot-seconds (Submitted to terminal event) over cap x the job phase', () => {
    const events = [
      jobEvent('a', 'Submitted', 0),
      jobEvent('a', 'InProgress', 1000),
      jobEvent('b', 'Submitted', 0),
      jobEvent('a', 'Completed', 4000),
      jobEvent('b', 'Failed', 2000),
      jobEvent('c', 'Submitted', 5000),
      jobEvent('c', 'Completed', 10_000),
      // not a job event
      { ...jobEvent('x', 'Submitted', 0), source: 'aws.s3' },
    ];
    // busy 4 + 2 + 5 = 11 s over 10 s with 2 slots.
    expect(slotUtilization(events, 2)).toEqual({ jobs: 3, busySlotSeconds: 11, jobPhaseSeconds: 10, utilization: 0.55, unfinishedJobs: 0 });
  });

  it('counts a job with no terminal event as unfinished, not busy', () => {
    expect(slotUtilization([jobEvent('a', 'Submitted', 0)], 1)).toEqual({ jobs: 1, busySlotSeconds: 0, jobPhaseSeconds: 0, utilization: 0, unfinishedJobs: 1 });
  });
});

describe('missedDelays', () => {
  it("measures the sweeper's completions from the job's first terminal event", () => {
    const events = [jobEvent('a', 'Completed', 1000), jobEvent('a', 'Completed', 1500), jobEvent('b', 'Failed', 0), jobEvent('c', 'Completed', 0)];
    const base = Date.parse(at(0));
    expect(
      missedDelays(events, [
        { jobArn: 'a', at: base + 1200 },
        { jobArn: 'b', at: base + 5000 },
        { jobArn: 'c', at: base + 300 },
      ]),
    ).toEqual({
      delayAfterTerminalEventMs: { min: 200, median: 300, max: 5000 },
    });
    expect(missedDelays(events, [])).toEqual({});
  });
});

describe('checkConservation', () => {
  const summary = (records: RunSummary['records']) => ({ records }) as RunSummary;

  it('passes when every input id is in exactly one output and the summary agrees', () => {
    const check = checkConservation(['1', '2', '3'], {
      summary: summary({ input: 3, succeeded: 1, failed: 1, rejected: 1 }),
      results: ['1'],
      failed: ['2'],
      rejected: ['3'],
    });
    expect(check).toMatchObject({ ok: true, missing: 0, repeated: 0, summaryMismatch: false });
  });

  it('fails on a missing record, a repeated one, or a summary that disagrees', () => {
    const good = summary({ input: 3, succeeded: 2, failed: 0, rejected: 1 });
    expect(checkConservation(['1', '2', '3'], { summary: good, results: ['1', '1'], failed: [], rejected: ['3'] })).toMatchObject({
      ok: false,
      missing: 1,
      repeated: 1,
    });
    expect(checkConservation(['1', '2'], { summary: good, results: ['1', '2'], failed: [], rejected: [] })).toMatchObject({ ok: false, summaryMismatch: true });
    expect(checkConservation(['1'], { results: ['1'], failed: [], rejected: [] })).toMatchObject({ ok: false, summaryMismatch: true });
  });
});

describe('parseBigRunArgs', () => {
  it('defaults to the 800-chunk run and takes overrides', () => {
    expect(parseBigRunArgs([])).toEqual({ records: 80000, maxRecordsPerJob: 100, minRecordsPerJob: 100, maxConcurrentJobs: 20 });
    expect(parseBigRunArgs(['--records', '2000', '--step-delay-ms', '5'])).toMatchObject({ records: 2000, stepDelayMs: 5 });
  });

  it.each([[['--records']], [['--records', 'x']], [['--records', '0']], [['--nope', '1']], [['--min-records-per-job', '200']]])('rejects %j', (argv) => {
    expect(() => parseBigRunArgs(argv)).toThrow(/usage/);
  });

  it("never sets the emulated account from the route's options; --account-quota does, by name", () => {
    expect(parseBigRunArgs(['--min-records-per-job', '20'])).not.toHaveProperty('accountQuotas');
    expect(parseBigRunArgs(['--account-quota', 'min-records=20,concurrent-jobs=30'])).toMatchObject({
      minRecordsPerJob: 100,
      accountQuotas: { minRecordsPerJob: 20, maxConcurrentJobs: 30 },
    });
    expect(() => parseBigRunArgs(['--account-quota', 'min-records=x'])).toThrow(/--account-quota: 'min-records=x' is not name=integer/);
    expect(() => parseBigRunArgs(['--account-quota'])).toThrow(/usage/);
  });
});
