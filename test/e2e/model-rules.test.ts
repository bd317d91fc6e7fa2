/**
 * A fake model that can say no: records that break the model's own rules fail one by one with
 * a 400 and AWS's text (the job and the rest of the run go on), and outputs cut off at
 * max_tokens succeed but are counted as truncated.
 */
import { runLocal } from '../../local/run-local';
import { claudeRecord, CLAUDE, expectConservation, readOutputs, tempDir, writeLines } from './helpers';

test("records over the model's output limit fail with its 400, outputs cut at max_tokens are counted truncated", async () => {
  const dir = tempDir();
  const lines: string[] = [];
  const ids = { tooMany: [] as string[], short: [] as string[], plain: [] as string[] };
  const withMaxTokens = (recordId: string, maxTokens: number) => claudeRecord(recordId, undefined, maxTokens);
  for (let i = 0; i < 200; i++) {
    // Claude 3 Haiku answers at most 4,096 output tokens; every fake answer is 8 words or more.
    const [kind, line] =
      i % 10 === 0
        ? (['tooMany', withMaxTokens(`over-${i}`, 4097)] as const)
        : i % 10 === 1
          ? (['short', withMaxTokens(`short-${i}`, 3)] as const)
          : (['plain', claudeRecord(`plain-${i}`)] as const);
    ids[kind].push((JSON.parse(line) as { recordId: string }).recordId);
    lines.push(line);
  }
  const file = writeLines(dir, 'rules.jsonl', lines);
  // Two jobs of 100 (the model's minimum): every record runs in a batch job.
  const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 100, maxConcurrentJobs: 2 });
  expect(outcome.exitCode).toBe(0);
  const out = readOutputs(outcome.runs[0]!);
  expectConservation(out, 200, [...ids.tooMany, ...ids.short, ...ids.plain]);

  // Over the limit: failed once, in the job, with the model's own 400 (not retried: a 400 cannot pass later).
  expect(out.failed.map((f) => f.recordId).sort()).toEqual([...ids.tooMany].sort());
  for (const f of out.failed) {
    expect(f.error).toEqual({
      code: '400',
      message: 'The maximum tokens you requested exceeds the model limit of 4096. Try again with a maximum tokens value that is lower than 4096.',
    });
    expect(f.attempts).toBe(1);
  }
  // Cut off at max_tokens: succeeded, marked, and counted.
  const truncated = out.results.filter((r) => (r as { truncated?: boolean }).truncated === true).map((r) => r.recordId);
  expect(truncated.sort()).toEqual([...ids.short].sort());
  expect(out.summary.truncated).toBe(ids.short.length);
  expect(out.summary.status).toBe('CompletedWithFailures');
  expect(out.summary.jobs).toEqual({ Completed: 2 });
});

test("records whose body the model's schema refuses (an unknown key, a system turn) fail one by one with Bedrock's text", async () => {
  const dir = tempDir();
  const lines: string[] = [];
  const ids = { unknownKey: [] as string[], systemTurn: [] as string[], plain: [] as string[] };
  const edited = (recordId: string, edit: (input: Record<string, unknown>) => void) => {
    const record = JSON.parse(claudeRecord(recordId)) as { modelInput: Record<string, unknown> };
    edit(record.modelInput);
    return JSON.stringify(record);
  };
  for (let i = 0; i < 200; i++) {
    const [kind, line] =
      i % 10 === 0
        ? (['unknownKey', edited(`key-${i}`, (m) => void (m.top_n = 1))] as const)
        : i % 10 === 1
          ? (['systemTurn', edited(`role-${i}`, (m) => void (m.messages as unknown[]).unshift({ role: 'system', content: 'be brief' }))] as const)
          : (['plain', claudeRecord(`plain-${i}`)] as const);
    ids[kind].push((JSON.parse(line) as { recordId: string }).recordId);
    lines.push(line);
  }
  const file = writeLines(dir, 'schema.jsonl', lines);
  const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 100, maxConcurrentJobs: 2 });
  expect(outcome.exitCode).toBe(0);
  const out = readOutputs(outcome.runs[0]!);
  expectConservation(out, 200, [...ids.unknownKey, ...ids.systemTurn, ...ids.plain]);

  const failed = new Map(out.failed.map((f) => [f.recordId, f]));
  expect([...failed.keys()].sort()).toEqual([...ids.unknownKey, ...ids.systemTurn].sort());
  for (const id of ids.unknownKey) {
    expect(failed.get(id)!.error).toEqual({
      code: '400',
      message:
        'Malformed input request: #: subject must not be valid against schema {"required":["messages"]}#: extraneous key [top_n] is not permitted, please reformat your input and try again.',
    });
  }
  for (const id of ids.systemTurn) {
    expect(failed.get(id)!.error).toEqual({
      code: '400',
      message: 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.',
    });
    expect(failed.get(id)!.attempts).toBe(1);
  }
  expect(out.summary.status).toBe('CompletedWithFailures');
});
