/**
 * The record contract at scale, end to end through the local twin: several files chunked
 * together, a run of Bedrock's real per-job limit, every rejection reason of the line contract,
 * a file with nothing valid in it, the three small-remainder policies, and model families other
 * than Anthropic. Every run checks conservation and the concurrency cap.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { planChunks } from '../../lambdas/shared/chunk-plan';
import { runKeys } from '../../lambdas/shared/contracts';
import { listObjects } from '../../lambdas/shared/s3-jsonl';
import { runLocal, type LocalRunOutcome, type LocalRunRequest } from '../../local/run-local';
import { LocalTwin } from '../../local/twin';
import { claudeLines, claudeRecord, CLAUDE, expectConservation, expectUnderCap, readOutputs, tempDir, writeLines, type RunOutputs } from './helpers';

const TITAN_EMBED = 'amazon.titan-embed-text-v2:0';
const NOVA_LITE = 'amazon.nova-lite-v1:0';

/**
 * `runLocal`, but the twin is not stopped at the end, so the test can look into its S3 (held
 * files, job input files). Call `release()` when done.
 */
async function runLocalKeepingTwin(req: LocalRunRequest): Promise<{ outcome: LocalRunOutcome; twin: LocalTwin; release: () => Promise<void> }> {
  const realStart = LocalTwin.start.bind(LocalTwin);
  let twin: LocalTwin | undefined;
  let realStop: (() => Promise<void>) | undefined;
  const spy = jest.spyOn(LocalTwin, 'start').mockImplementation(async (options) => {
    const started = await realStart(options);
    twin = started;
    realStop = started.stop.bind(started);
    started.stop = async () => undefined;
    return started;
  });
  try {
    const outcome = await runLocal(req);
    return { outcome, twin: twin!, release: () => realStop!() };
  } catch (err) {
    await realStop?.();
    throw err;
  } finally {
    spy.mockRestore();
  }
}

/** The run finished (exit 0); on failure, the run's one-line reason is in the assertion message. */
function expectFinished(outcome: LocalRunOutcome): void {
  expect(outcome.runs.map((r) => r.error ?? 'finished')).toEqual(outcome.runs.map(() => 'finished'));
  expect(outcome.exitCode).toBe(0);
}

/** The body of an object in the twin's bucket, as text. */
async function s3Text(twin: LocalTwin, key: string): Promise<string> {
  const res = await twin.s3.send(new GetObjectCommand({ Bucket: twin.bucket, Key: key }));
  return res.Body!.transformToString();
}

function nonEmptyLines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

/** The cap check for runs that may create no job at all (expectUnderCap needs at least one). */
function expectNoJobsAndUnderCap(out: RunOutputs, cap: number): void {
  expect(out.emulator.jobsCreated).toBe(0);
  expect(out.emulator.maxConcurrentJobs).toBeLessThanOrEqual(cap);
}

/** A short (~150-byte) valid Anthropic record, written compactly. */
function shortRecord(n: number): string {
  const id = `big-${String(n).padStart(6, '0')}`;
  return `{"recordId":"${id}","modelInput":{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"Tag ${id}."}]}}`;
}

/** Streams `count` short records to a file, honouring backpressure. */
async function writeShortRecords(path: string, count: number): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  for (let n = 0; n < count; n++) {
    const line = shortRecord(n) + '\n';
    bytes += line.length;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

/** Reads the `recordId`s of a JSONL file line by line into a Set; counts lines and repeats. */
async function streamIds(path: string, onRecord?: (r: Record<string, unknown>) => void): Promise<{ lines: number; ids: Set<string>; repeats: number }> {
  const ids = new Set<string>();
  let lines = 0;
  let repeats = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    if (line.length === 0) continue;
    lines += 1;
    const r = JSON.parse(line) as Record<string, unknown>;
    const id = r.recordId as string;
    if (ids.has(id)) repeats += 1;
    ids.add(id);
    onRecord?.(r);
  }
  return { lines, ids, repeats };
}

describe('records at scale on the local twin', () => {
  test('three files crossing the per-job limit are chunked together, in one pass, with no sliver at the end', async () => {
    const dir = tempDir();
    const sizes = [700, 900, 650];
    const files = sizes.map((n, i) => writeLines(dir, `part-${i + 1}.jsonl`, claudeLines(n, `f${i + 1}`)));
    const total = sizes.reduce((a, b) => a + b, 0);
    // The defaults of runLocal: minimum 100 per job. The same number of jobs as the balanced plan.
    expect(planChunks(total, { maxRecordsPerJob: 500, minRecordsPerJob: 100 })).toEqual({ sizes: [450, 450, 450, 450, 450], remainder: 0 });

    const { outcome, twin, release } = await runLocalKeepingTwin({ files, modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 500, maxConcurrentJobs: 3 });
    try {
      expectFinished(outcome);
      expect(outcome.runs).toHaveLength(1);
      const run = outcome.runs[0]!;
      const out = readOutputs(run);
      const expectedIds = sizes.flatMap((n, i) => Array.from({ length: n }, (_, k) => `f${i + 1}-${k}`));
      expectConservation(out, total, expectedIds);
      expect(new Set(out.results.map((r) => r.recordId))).toEqual(new Set(expectedIds));
      expect(out.summary.status).toBe('Succeeded');
      expect(out.summary.inputs).toHaveLength(3);
      // Per-file chunking would give 2 + 2 + 2 jobs; chunked together it is 5 jobs.
      expect(out.summary.jobs).toEqual({ Completed: 5 });
      expect(out.emulator.jobsCreated).toBe(5);
      expect(out.emulator.recordsProcessed).toBe(total);
      expect(out.emulator.duplicateCreates).toBe(0);
      expect(out.summary.rounds).toBe(1);
      expectUnderCap(out, 3);

      // The job input files, cut as records arrive at about the balanced plan's 450 (prepare
      // estimates the records to come from the files' sizes), and jobs that take records of two
      // files.
      const chunkFiles = await Promise.all([0, 1, 2, 3, 4].map(async (c) => nonEmptyLines(await s3Text(twin, runKeys.chunkInput(run.runId, 1, c)))));
      for (const c of chunkFiles) expect(Math.abs(c.length - 450)).toBeLessThanOrEqual(5);
      const filesOf = (lines: string[]) => new Set(lines.map((l) => (JSON.parse(l) as { recordId: string }).recordId.split('-')[0]));
      expect(filesOf(chunkFiles[1]!)).toEqual(new Set(['f1', 'f2']));
      expect(filesOf(chunkFiles[3]!)).toEqual(new Set(['f2', 'f3']));
    } finally {
      await release();
    }
  });

  test("a real-sized run: 100,000 short records at Bedrock's limit of 50,000 per job", async () => {
    const dir = tempDir();
    const file = join(dir, 'big.jsonl');
    const count = 100_000;
    const bytes = await writeShortRecords(file, count);
    expect(bytes / count).toBeGreaterThan(120);
    expect(bytes / count).toBeLessThan(180);
    expect(planChunks(count, { maxRecordsPerJob: 50_000, minRecordsPerJob: 100 })).toEqual({ sizes: [50_000, 50_000], remainder: 0 });

    const started = Date.now();
    const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 50_000, maxConcurrentJobs: 2 });
    const seconds = (Date.now() - started) / 1000;
    // Not a timing test: the duration is printed for the record.
    process.stdout.write(`100,000-record run took ${seconds.toFixed(1)} s\n`);

    expectFinished(outcome);
    const run = outcome.runs[0]!;
    const summary = run.summary!;
    expect(summary.status).toBe('Succeeded');
    expect(summary.records).toEqual({ input: count, succeeded: count, failed: 0, rejected: 0 });
    expect(summary.jobs).toEqual({ Completed: 2 });
    expect(summary.rounds).toBe(1);
    expect(summary.warnings).toEqual([]);

    // Conservation, streamed: every id once in results, nothing failed or rejected.
    let withUsage = 0;
    const results = await streamIds(join(run.outDir, 'results.jsonl'), (r) => {
      if ((r.usage as { outputTokens?: number } | undefined)?.outputTokens) withUsage += 1;
    });
    expect(results.lines).toBe(count);
    expect(results.repeats).toBe(0);
    for (let n = 0; n < count; n++) {
      if (!results.ids.has(`big-${String(n).padStart(6, '0')}`)) throw new Error(`record big-${n} is not in results.jsonl`);
    }
    expect(withUsage).toBe(count);
    expect(readFileSync(join(run.outDir, 'failed.jsonl'), 'utf8')).toBe('');
    expect(readFileSync(join(run.outDir, 'rejected.jsonl'), 'utf8')).toBe('');

    const emulator = JSON.parse(readFileSync(join(run.outDir, 'emulator.json'), 'utf8')) as RunOutputs['emulator'];
    expect(emulator.jobsCreated).toBe(2);
    expect(emulator.duplicateCreates).toBe(0);
    expect(emulator.recordsProcessed).toBe(count);
    expect(emulator.maxConcurrentJobs).toBeGreaterThan(0);
    expect(emulator.maxConcurrentJobs).toBeLessThanOrEqual(2);
    expect(summary.tokens.input).toBeGreaterThan(0);
    expect(summary.cost?.batchUsd).toBeGreaterThan(0);
  }, 300_000);

  test('every rejection reason of the line contract, with BOM, CRLF, blank lines and no final newline', async () => {
    const dir = tempDir();
    const input = (text = 'hello') => ({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 32,
      messages: [{ role: 'user', content: [{ type: 'text', text }] }],
    });
    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    const { messages: _m, ...noMessages } = input();
    const { max_tokens: _t, ...noMaxTokens } = input();
    const { anthropic_version: _v, ...noVersion } = input();
    const id256 = 'x'.repeat(256);
    const hugeText = 'y'.repeat(1024 * 1024 + 10);

    // [line content, what it is]; the number is the 1-based line in the file.
    const lines: Array<[Buffer, string]> = [
      [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(claudeRecord('g-bom'))]), 'good after a BOM'], // 1
      [Buffer.from(claudeRecord('g-1')), 'good'], // 2
      [Buffer.alloc(0), 'blank'], // 3
      [
        Buffer.concat([
          Buffer.from('{"recordId":"bad-utf8","modelInput":{"anthropic_version":"bedrock-2023-05-31","max_tokens":8,"messages":[{"role":"user","content":"caf'),
          Buffer.from([0xc3, 0x28, 0xff]),
          Buffer.from('"}]}}'),
        ]),
        'invalid UTF-8',
      ], // 4
      [Buffer.from('{"recordId": "broken", "modelInput": {'), 'not JSON'], // 5
      [Buffer.from('[1, 2, 3]'), 'array'], // 6
      [Buffer.from('42'), 'number'], // 7
      [Buffer.from('null'), 'null'], // 8
      [json({ recordId: '', modelInput: input() }), 'empty recordId'], // 9
      [json({ recordId: 7, modelInput: input() }), 'numeric recordId'], // 10
      [json({ recordId: 'z'.repeat(257), modelInput: input() }), 'recordId too long'], // 11
      [json({ recordId: 'no-input', prompt: 'hello' }), 'modelInput missing'], // 12
      [json({ recordId: 'string-input', modelInput: 'hello' }), 'modelInput a string'], // 13
      [json({ recordId: 'no-version', modelInput: noVersion }), 'no anthropic_version'], // 14
      [json({ recordId: 'no-messages', modelInput: noMessages }), 'no messages'], // 15
      [json({ recordId: 'no-max-tokens', modelInput: noMaxTokens }), 'no max_tokens'], // 16
      [json({ recordId: 'with-model-id', modelInput: { ...input(), modelId: CLAUDE } }), 'modelId in modelInput'], // 17
      [Buffer.from('   \t '), 'blank (whitespace)'], // 18
      [json({ recordId: 'huge', modelInput: input(hugeText) }), 'over 1 MiB'], // 19
      [Buffer.from(claudeRecord('g-1', 'a second record with the same id')), 'duplicate'], // 20
      [json({ modelInput: input('no id here') }), 'no recordId'], // 21
      [json({ recordId: id256, modelInput: input() }), 'recordId of exactly 256 characters'], // 22
      ...Array.from({ length: 110 }, (_, i): [Buffer, string] => [Buffer.from(claudeRecord(`g-${i + 2}`)), 'good']), // 23..132
      [Buffer.alloc(0), 'blank'], // 133
      [Buffer.from(claudeRecord('g-last')), 'good, no final newline'], // 134
    ];
    // CRLF line ends everywhere, and no line end after the last line.
    const body = Buffer.concat(lines.flatMap(([b], i) => (i < lines.length - 1 ? [b, Buffer.from('\r\n')] : [b])));
    const file = join(dir, 'mixed-bad.jsonl');
    writeFileSync(file, body);
    const blank = lines.filter(([, what]) => what.startsWith('blank')).length;
    const inputLines = lines.length - blank;
    expect(blank).toBe(3);

    const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxRecordsPerJob: 200, maxConcurrentJobs: 2 });
    expectFinished(outcome);
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, inputLines);
    expect(out.summary.status).toBe('CompletedWithFailures');
    expect(out.failed).toEqual([]);

    const expected: Array<[number, RegExp, string | undefined]> = [
      [4, /^line is not valid UTF-8$/, undefined],
      [5, /^not valid JSON/, undefined],
      [6, /^not a JSON object \(got array\)$/, undefined],
      [7, /^not a JSON object \(got number\)$/, undefined],
      [8, /^not a JSON object \(got null\)$/, undefined],
      [9, /^recordId must be a non-empty string$/, undefined],
      [10, /^recordId must be a non-empty string$/, undefined],
      [11, /^recordId is 257 characters, over the limit of 256$/, undefined],
      [12, /^modelInput is missing$/, 'no-input'],
      [13, /^modelInput must be a JSON object$/, 'string-input'],
      [14, /anthropic_version is required.*\(model family anthropic\)$/, 'no-version'],
      [15, /messages must be a non-empty array.*\(model family anthropic\)$/, 'no-messages'],
      [16, /max_tokens must be a number.*\(model family anthropic\)$/, 'no-max-tokens'],
      [17, /must not contain modelId/, 'with-model-id'],
      [19, /^line is \d+ bytes, over the limit of 1048576$/, undefined],
      [20, /^duplicate recordId \(first seen at mixed-bad:2\)$/, 'g-1'],
    ];
    expect(out.rejected.map((r) => r.line)).toEqual(expected.map(([line]) => line));
    for (const [line, reason, recordId] of expected) {
      const r = out.rejected.find((x) => x.line === line)!;
      expect(r.reason).toMatch(reason);
      expect(r.recordId).toBe(recordId);
      expect(r.file).toMatch(/mixed-bad\.jsonl$/);
    }
    // The huge line's reason gives its size without the CR.
    expect(out.rejected.find((r) => r.line === 19)!.reason).toBe(`line is ${lines[18]![0].length} bytes, over the limit of 1048576`);

    // Good lines: the BOM line, CRLF lines, the line without recordId, the 256-char id, the last line.
    const ok = new Set(out.results.map((r) => r.recordId));
    expect(ok.size).toBe(1 + 1 + 1 + 1 + 110 + 1);
    for (const id of ['g-bom', 'g-1', 'mixed-bad-L21', id256, 'g-2', 'g-111', 'g-last']) expect(ok.has(id)).toBe(true);
    expect(out.summary.jobs).toEqual({ Completed: 1 });
    expectUnderCap(out, 2);
  });

  test('a file with no valid line ends cleanly: everything rejected, no job', async () => {
    const dir = tempDir();
    const lines = [
      'not json at all',
      '',
      JSON.stringify({ recordId: 'a', prompt: 'no modelInput' }),
      '[]',
      JSON.stringify({ recordId: 'b', modelInput: { inputText: 'an embedding request sent to Claude' } }),
      '   ',
      '"just a string"',
    ];
    const file = writeLines(dir, 'nothing-valid.jsonl', lines);
    const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, maxConcurrentJobs: 2 });

    expectFinished(outcome);
    expect(outcome.runs).toHaveLength(1);
    expect(outcome.runs[0]!.executionStatus).toBe('SUCCEEDED');
    const out = readOutputs(outcome.runs[0]!);
    expectConservation(out, 5);
    expect(out.summary.status).toBe('CompletedWithFailures');
    expect(out.summary.jobs).toEqual({});
    expect(out.summary.onDemandRecords).toBe(0);
    expect(out.results).toEqual([]);
    expect(out.failed).toEqual([]);
    expect(out.rejected.map((r) => r.line)).toEqual([1, 3, 4, 5, 7]);
    expect(out.rejected.find((r) => r.line === 7)!.reason).toBe('not a JSON object (got string)');
    expectNoJobsAndUnderCap(out, 2);
  });

  describe('small-remainder policies with a real remainder (230 records, 100 per job, minimum 100)', () => {
    const limits = { maxRecordsPerJob: 100, minRecordsPerJob: 100 };

    test('the plan leaves 30 records no job can take', () => {
      expect(planChunks(230, limits)).toEqual({ sizes: [100, 100], remainder: 30 });
    });

    test('on-demand: the 30 run through InvokeModel and are priced on demand', async () => {
      const dir = tempDir();
      const file = writeLines(dir, 'remainder.jsonl', claudeLines(230));
      const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, ...limits, maxConcurrentJobs: 2, smallRemainder: 'on-demand' });

      expectFinished(outcome);
      const out = readOutputs(outcome.runs[0]!);
      expectConservation(
        out,
        230,
        claudeLines(230).map((_, i) => `rec-${i}`),
      );
      expect(out.summary.status).toBe('Succeeded');
      expect(out.results).toHaveLength(230);
      const onDemand = out.results.filter((r) => (r as { onDemand?: boolean }).onDemand === true);
      expect(onDemand).toHaveLength(30);
      for (const r of onDemand) {
        expect(r.modelOutput).toMatchObject({ type: 'message', role: 'assistant' });
        expect(r.usage?.outputTokens).toBeGreaterThan(0);
      }
      expect(out.summary.onDemandRecords).toBe(30);
      expect(out.summary.jobs).toEqual({ Completed: 2 });
      expect(out.emulator.jobsCreated).toBe(2);
      expect(out.emulator.invokeModelCalls as number).toBeGreaterThanOrEqual(30);
      expect(out.summary.cost?.onDemandUsd).toBeGreaterThan(0);
      expect(out.summary.cost?.batchUsd).toBeGreaterThan(0);
      expectUnderCap(out, 2);
    });

    test('hold: the 30 go to held/<route>/ for the next sweep and are reported HeldForNextSweep', async () => {
      const dir = tempDir();
      const file = writeLines(dir, 'remainder.jsonl', claudeLines(230));
      const { outcome, twin, release } = await runLocalKeepingTwin({
        files: [file],
        modelId: CLAUDE,
        out: `${dir}/out`,
        ...limits,
        maxConcurrentJobs: 2,
        smallRemainder: 'hold',
      });
      try {
        expectFinished(outcome);
        const out = readOutputs(outcome.runs[0]!);
        expectConservation(out, 230);
        expect(out.summary.status).toBe('CompletedWithFailures');
        expect(out.results).toHaveLength(200);
        expect(out.failed).toHaveLength(30);
        expect(out.summary.onDemandRecords).toBe(0);
        expect(out.emulator.invokeModelCalls).toBe(0);
        expect(out.summary.jobs).toEqual({ Completed: 2 });

        const held = await listObjects(twin.s3, twin.bucket, 'held/default/');
        expect(held).toHaveLength(1);
        const heldKey = held[0]!.key;
        expect(heldKey).toBe(runKeys.held('default', outcome.runs[0]!.runId, 1));
        const heldLines = nonEmptyLines(await s3Text(twin, heldKey)).map((l) => JSON.parse(l) as { recordId: string; modelInput: unknown });
        // The held file is a valid input file of the next sweep: the same 30 records, whole.
        expect(heldLines.map((r) => r.recordId).sort()).toEqual(out.failed.map((f) => f.recordId).sort());
        for (const r of heldLines) expect(JSON.stringify(r)).toBe(claudeRecord(r.recordId));
        for (const f of out.failed) {
          expect(f.error.code).toBe('HeldForNextSweep');
          expect(f.error.message).toContain(`s3://${twin.bucket}/${heldKey}`);
          expect(f.attempts).toBe(1);
        }
        expectUnderCap(out, 2);
      } finally {
        await release();
      }
    });

    test('fail: the 30 are failed with BelowMinimumRecordsPerJob', async () => {
      const dir = tempDir();
      const file = writeLines(dir, 'remainder.jsonl', claudeLines(230));
      const outcome = await runLocal({ files: [file], modelId: CLAUDE, out: `${dir}/out`, ...limits, maxConcurrentJobs: 2, smallRemainder: 'fail' });

      expectFinished(outcome);
      const out = readOutputs(outcome.runs[0]!);
      expectConservation(out, 230);
      expect(out.summary.status).toBe('CompletedWithFailures');
      expect(out.results).toHaveLength(200);
      expect(out.failed).toHaveLength(30);
      for (const f of out.failed) {
        expect(f.error.code).toBe('BelowMinimumRecordsPerJob');
        expect(f.error.message).toMatch(/minimum of 100/);
        expect(f.attempts).toBe(1);
      }
      expect(out.summary.onDemandRecords).toBe(0);
      expect(out.emulator.invokeModelCalls).toBe(0);
      expect(out.summary.jobs).toEqual({ Completed: 2 });
      expectUnderCap(out, 2);
    });

    test.each(['fail', 'on-demand'] as const)('a retry round below the minimum ends through the policy (%s), never dropped', async (policy) => {
      const dir = tempDir();
      const file = writeLines(dir, 'throttled.jsonl', claudeLines(300));
      // 3 jobs of 100; about 10 % throttled (429, retryable): round 2 has far fewer than 60.
      const outcome = await runLocal({
        files: [file],
        modelId: CLAUDE,
        out: `${dir}/out`,
        maxRecordsPerJob: 100,
        minRecordsPerJob: 60,
        accountQuotas: { minRecordsPerJob: 60 },
        maxConcurrentJobs: 2,
        maxAttempts: 3,
        smallRemainder: policy,
        faults: { 'record-throttle': 0.1 },
        seed: 11,
      });

      expectFinished(outcome);
      const out = readOutputs(outcome.runs[0]!);
      expectConservation(
        out,
        300,
        claudeLines(300).map((_, i) => `rec-${i}`),
      );
      expect(out.summary.jobs).toEqual({ Completed: 3 });
      expect(out.emulator.jobsCreated).toBe(3);
      expect(out.summary.rounds).toBe(2);
      const batchOk = out.results.filter((r) => !(r as { onDemand?: boolean }).onDemand).length;
      const retried = 300 - batchOk;
      expect(retried).toBeGreaterThan(0);
      expect(retried).toBeLessThan(60);
      if (policy === 'fail') {
        expect(out.failed).toHaveLength(retried);
        for (const f of out.failed) expect(f.error.code).toBe('BelowMinimumRecordsPerJob');
        expect(out.summary.onDemandRecords).toBe(0);
      } else {
        expect(out.summary.onDemandRecords).toBe(retried);
        expect(out.results.length + out.failed.length).toBe(300);
        expect(out.emulator.invokeModelCalls as number).toBeGreaterThanOrEqual(retried);
      }
      expectUnderCap(out, 2);
    });
  });

  describe('other model families', () => {
    test('Titan embeddings: inputText in, an embedding and an input token count out', async () => {
      const dir = tempDir();
      const lines = [
        ...Array.from({ length: 150 }, (_, i) =>
          JSON.stringify({ recordId: `emb-${i}`, modelInput: { inputText: `passage number ${i} about billing`, dimensions: 256 } }),
        ),
        JSON.stringify({ recordId: 'emb-bad', modelInput: { inputText: '' } }),
        claudeRecord('claude-shaped'),
      ];
      const file = writeLines(dir, 'embed.jsonl', lines);
      const outcome = await runLocal({
        files: [file],
        modelId: TITAN_EMBED,
        out: `${dir}/out`,
        maxRecordsPerJob: 100,
        maxConcurrentJobs: 2,
        accountQuotas: { minRecordsPerJob: 50 },
      });

      expectFinished(outcome);
      const out = readOutputs(outcome.runs[0]!);
      expectConservation(out, lines.length);
      expect(out.summary.modelId).toBe(TITAN_EMBED);
      expect(out.results).toHaveLength(150);
      expect(out.rejected.map((r) => [r.line, r.recordId])).toEqual([
        [151, 'emb-bad'],
        [152, 'claude-shaped'],
      ]);
      for (const r of out.rejected) expect(r.reason).toMatch(/inputText must be a non-empty string \(model family titan-embed\)/);
      for (const r of out.results) {
        const body = r.modelOutput as { embedding: number[]; inputTextTokenCount: number };
        expect(body.embedding).toHaveLength(256);
        expect(body.inputTextTokenCount).toBeGreaterThan(0);
        // Titan reports input tokens only.
        expect(r.usage).toEqual({ inputTokens: body.inputTextTokenCount, outputTokens: 0 });
      }
      expect(out.summary.jobs).toEqual({ Completed: 2 });
      expect(out.summary.tokens.input).toBe(out.results.reduce((a, r) => a + r.usage!.inputTokens, 0));
      expect(out.summary.tokens.output).toBe(0);
      expect(out.summary.cost?.batchUsd).toBeGreaterThan(0);
      expectUnderCap(out, 2);
    });

    test('Nova: messages in, the Converse-like output with its usage out', async () => {
      const dir = tempDir();
      const lines = [
        ...Array.from({ length: 120 }, (_, i) =>
          JSON.stringify({
            recordId: `nova-${i}`,
            modelInput: {
              schemaVersion: 'messages-v1',
              messages: [{ role: 'user', content: [{ text: `Classify ticket ${i}.` }] }],
              inferenceConfig: { maxTokens: 40 },
            },
          }),
        ),
        JSON.stringify({ recordId: 'nova-bad', modelInput: { prompt: 'no messages' } }),
      ];
      const file = writeLines(dir, 'nova.jsonl', lines);
      const outcome = await runLocal({
        files: [file],
        modelId: NOVA_LITE,
        out: `${dir}/out`,
        maxRecordsPerJob: 60,
        maxConcurrentJobs: 1,
        accountQuotas: { minRecordsPerJob: 30 },
      });

      expectFinished(outcome);
      const out = readOutputs(outcome.runs[0]!);
      expectConservation(out, lines.length);
      expect(out.summary.modelId).toBe(NOVA_LITE);
      expect(out.results).toHaveLength(120);
      expect(out.rejected).toHaveLength(1);
      expect(out.rejected[0]).toMatchObject({ line: 121, recordId: 'nova-bad' });
      expect(out.rejected[0]!.reason).toMatch(/messages must be a non-empty array \(model family nova\)/);
      for (const r of out.results) {
        const body = r.modelOutput as {
          output: { message: { role: string; content: Array<{ text: string }> } };
          stopReason: string;
          usage: { inputTokens: number; outputTokens: number };
        };
        expect(body.output.message.role).toBe('assistant');
        expect(body.output.message.content[0]!.text.length).toBeGreaterThan(0);
        expect(['end_turn', 'max_tokens']).toContain(body.stopReason);
        expect(body.usage.outputTokens).toBeLessThanOrEqual(40);
        expect(r.usage).toEqual({ inputTokens: body.usage.inputTokens, outputTokens: body.usage.outputTokens });
        expect(r.usage!.inputTokens).toBeGreaterThan(0);
        expect(r.usage!.outputTokens).toBeGreaterThan(0);
      }
      expect(out.summary.jobs).toEqual({ Completed: 2 });
      expect(out.summary.tokens.output).toBe(out.results.reduce((a, r) => a + r.usage!.outputTokens, 0));
      expect(out.summary.cost?.batchUsd).toBeGreaterThan(0);
      expectUnderCap(out, 1);
    });
  });
});
