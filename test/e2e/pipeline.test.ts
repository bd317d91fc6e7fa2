/**
 * End to end through the local twin: the synthesized state machine, the real handlers, local
 * S3 and DynamoDB, and the Bedrock emulator. Every run checks conservation and the cap.
 */
import { runLocal } from '../../local/run-local';
import { claudeLines, claudeRecord, CLAUDE, expectConservation, expectUnderCap, readOutputs, tempDir, writeLines } from './helpers';

describe('pipeline on the local twin', () => {
  test('a multi-chunk run where every record succeeds stays under the cap', async () => {
    const dir = tempDir();
    const file = writeLines(dir, 'ok.jsonl', claudeLines(1000));
    const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 300, maxConcurrentJobs: 2 });

    expect(outcome.exitCode).toBe(0);
    expect(outcome.runs).toHaveLength(1);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, 1000);
    expect(out.summary.status).toBe('Succeeded');
    expect(out.results).toHaveLength(1000);
    // 1000 records at most 300 per job: four balanced jobs of 250.
    expect(out.summary.jobs).toEqual({ Completed: 4 });
    expect(out.emulator.jobsCreated).toBe(4);
    expect(out.emulator.duplicateCreates).toBe(0);
    expectUnderCap(out, 2);
    expect(out.summary.rounds).toBe(1);
    expect(out.summary.tokens.input).toBeGreaterThan(0);
    expect(out.summary.tokens.output).toBeGreaterThan(0);
    expect(out.summary.cost?.batchUsd).toBeGreaterThan(0);
    expect(out.summary.cost?.batchUsd).toBeCloseTo(out.summary.cost!.allOnDemandUsd / 2, 5);
    const first = out.results.find((r) => r.recordId === 'rec-0')!;
    expect(first.modelOutput).toMatchObject({ type: 'message', role: 'assistant' });
    expect(first.usage?.outputTokens).toBeGreaterThan(0);
  });

  test('bad lines are rejected with their line and reason; the rest completes', async () => {
    const dir = tempDir();
    const lines = [
      ...claudeLines(150, 'good'),
      '{"recordId": "broken", "modelInput": {',
      JSON.stringify({ recordId: 'no-input', prompt: 'hello' }),
      claudeRecord('good-7'),
      '[1, 2, 3]',
      JSON.stringify({ recordId: 'wrong-family', modelInput: { inputText: 'an embedding request sent to Claude' } }),
    ];
    const file = writeLines(dir, 'mixed.jsonl', lines);
    const outcome = await runLocal({
      files: [file],
      modelId: CLAUDE,
      out: `${dir}/out`,
      maxRecordsPerJob: 100,
      maxConcurrentJobs: 3,
      accountQuotas: { minRecordsPerJob: 50 },
    });

    expect(outcome.exitCode).toBe(0);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, lines.length);
    expect(out.summary.status).toBe('CompletedWithFailures');
    expect(out.results).toHaveLength(150);
    expect(out.failed).toHaveLength(0);
    const byLine = new Map(out.rejected.map((r) => [r.line, r]));
    expect([...byLine.keys()].sort((a, b) => a - b)).toEqual([151, 152, 153, 154, 155]);
    expect(byLine.get(151)!.reason).toMatch(/not valid JSON/);
    expect(byLine.get(152)).toMatchObject({ recordId: 'no-input', reason: 'modelInput is missing' });
    expect(byLine.get(153)).toMatchObject({ recordId: 'good-7' });
    expect(byLine.get(153)!.reason).toMatch(/duplicate recordId \(first seen at mixed:8\)/);
    expect(byLine.get(154)!.reason).toMatch(/not a JSON object \(got array\)/);
    expect(byLine.get(155)!.reason).toMatch(/anthropic_version/);
    for (const r of out.rejected) expect(r.file).toMatch(/mixed\.jsonl$/);
    expectUnderCap(out, 3);
  });

  test('throttled records are resubmitted in later rounds until they succeed or attempts run out', async () => {
    const dir = tempDir();
    const file = writeLines(dir, 'throttle.jsonl', claudeLines(400));
    const outcome = await runLocal({
      files: [file],
      modelId: CLAUDE,
      out: `${dir}/out`,
      maxRecordsPerJob: 100,
      minRecordsPerJob: 5,
      accountQuotas: { minRecordsPerJob: 5 },
      maxConcurrentJobs: 3,
      maxAttempts: 4,
      faults: { 'record-throttle': 0.3 },
      seed: 7,
    });

    expect(outcome.exitCode).toBe(0);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, 400);
    expect(out.summary.rounds).toBeGreaterThanOrEqual(2);
    // With a 30 % throttle rate per attempt and 4 attempts, almost every record gets through.
    expect(out.results.length).toBeGreaterThan(390);
    for (const f of out.failed) expect(f).toMatchObject({ error: { code: '429' }, attempts: 4 });
    // More jobs than round 1's four: the retries ran as batch jobs of their own.
    expect(out.emulator.jobsCreated).toBeGreaterThan(4);
    expect(out.emulator.duplicateCreates).toBe(0);
    expectUnderCap(out, 3);
  });

  test('records that fail with a client error end in failed.jsonl with their error and are not retried', async () => {
    const dir = tempDir();
    const file = writeLines(dir, 'errors.jsonl', claudeLines(300));
    const outcome = await runLocal({
      files: [file],
      modelId: CLAUDE,
      out: `${dir}/out`,
      maxRecordsPerJob: 100,
      accountQuotas: { minRecordsPerJob: 50 },
      maxConcurrentJobs: 2,
      maxAttempts: 3,
      faults: { 'record-error': 0.1 },
      seed: 3,
    });

    expect(outcome.exitCode).toBe(0);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, 300);
    expect(out.failed.length).toBeGreaterThan(10);
    for (const f of out.failed) {
      expect(f.error.code).toBe('400');
      expect(f.error.message.length).toBeGreaterThan(0);
      expect(f.attempts).toBe(1);
    }
    expect(out.summary.rounds).toBe(1);
    expect(out.emulator.jobsCreated).toBe(3);
    expect(out.summary.status).toBe('CompletedWithFailures');
    expectUnderCap(out, 2);
  });
});
