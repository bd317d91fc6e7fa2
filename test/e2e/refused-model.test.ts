/**
 * A model Bedrock does not run in batch: every job of the run is refused at
 * CreateModelInvocationJob, so the run fails at submit with the model named, in one round
 * (no round would be accepted), every record accounted for once as JobRefused.
 */
import { runLocal } from '../../local/run-local';
import { claudeLines, expectConservation, readOutputs, tempDir, writeLines } from './helpers';

test('a model that cannot run in batch fails the run at submit, naming the model, every record failed once', async () => {
  const dir = tempDir();
  const file = writeLines(dir, 'instant.jsonl', claudeLines(200));
  // Claude Instant is in the catalog without batch support: the emulator refuses it as Bedrock does.
  const model = 'anthropic.claude-instant-v1';
  const outcome = await runLocal({ files: [file], modelId: model, out: `${dir}/out`, maxRecordsPerJob: 100, maxConcurrentJobs: 2, maxAttempts: 3 });
  expect(outcome.exitCode).toBe(1);
  const out = readOutputs(outcome.runs[0]!);
  expectConservation(out, 200);
  expect(out.summary.status).toBe('Failed');
  expect(out.summary.error).toEqual({ error: 'JobRefused', cause: expect.stringContaining(model) });
  expect(out.summary.error?.cause).toMatch(/ValidationException: Batch inference is not supported/);
  expect(out.summary.rounds).toBe(1);
  expect(out.summary.jobs).toEqual({ NotSubmitted: 2 });
  expect(out.emulator.jobsCreated).toBe(0);
  expect(out.failed).toHaveLength(200);
  for (const f of out.failed) expect(f).toMatchObject({ error: { code: 'JobRefused', message: expect.stringContaining(model) }, attempts: 1 });
});
