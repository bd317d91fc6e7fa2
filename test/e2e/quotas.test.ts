/**
 * Quotas read at run time: the pipeline plans with the stricter of the model's quotas (read from
 * the twin's Service Quotas, which serves the emulated account) and the route's settings.
 */
import { runLocal } from '../../local/run-local';
import { claudeLines, CLAUDE, expectConservation, readOutputs, tempDir, writeLines } from './helpers';

describe('quotas read at run time', () => {
  test("a route whose minimum is below the model's quota plans jobs at the quota, never below it", async () => {
    const dir = tempDir();
    const file = writeLines(dir, 'q.jsonl', claudeLines(250));
    // The route allows jobs of 20..100 records; Claude 3 Haiku's minimum is 100 (docs/BEDROCK-FACTS.md §7).
    const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 100, minRecordsPerJob: 20, maxConcurrentJobs: 2 });
    expect(outcome.exitCode).toBe(0);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(
      out,
      250,
      claudeLines(250).map((l) => (JSON.parse(l) as { recordId: string }).recordId),
    );
    expect(out.summary.quotas).toEqual({
      minRecordsPerJob: { value: 100, source: 'service-quotas' },
      maxRecordsPerJob: { value: 100, source: 'route' },
      maxConcurrentJobs: { value: 2, source: 'route' },
    });
    // Two jobs of exactly 100 (with the route's minimum of 20 it would have been three smaller
    // ones, each failed by Bedrock); the 50 left go through the small-remainder policy.
    expect(out.summary.jobs).toEqual({ Completed: 2 });
    expect(out.summary.onDemandRecords).toBe(50);
    expect(out.summary.records.succeeded).toBe(250);
    expect(out.summary.warnings).toEqual([]);
  });

  test("the account's concurrent-jobs quota caps the jobs in flight below the pipeline's own cap", async () => {
    const dir = tempDir();
    const file = writeLines(dir, 'c.jsonl', claudeLines(400));
    const outcome = await runLocal({
      files: [file],
      modelId: CLAUDE,
      out: `${dir}/out`,
      maxRecordsPerJob: 100,
      maxConcurrentJobs: 4,
      accountQuotas: { maxConcurrentJobs: 1 },
    });
    expect(outcome.exitCode).toBe(0);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, 400);
    expect(out.summary.quotas?.maxConcurrentJobs).toEqual({ value: 1, source: 'service-quotas' });
    expect(out.summary.jobs).toEqual({ Completed: 4 });
    expect(out.emulator.maxConcurrentJobs).toBe(1);
    expect(out.emulator.quotaRejections).toBe(0);
  });
});
