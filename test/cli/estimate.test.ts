import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimateFiles, formatEstimate } from '../../cli/estimate';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const NOVA_MICRO = 'amazon.nova-micro-v1:0';
const LLAMA_8B = 'meta.llama3-1-8b-instruct-v1:0';
const TITAN_EMBED = 'amazon.titan-embed-text-v2:0';
/** In the catalog, but without a shipped price (price-table.ts, UNPRICED_MODELS). */
const LLAMA_70B = 'meta.llama3-1-70b-instruct-v1:0';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bb-estimate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `lines` (objects as JSON, strings and Buffers as they are) to `name` in the temp dir, `\n`-separated. */
async function fixture(name: string, lines: ReadonlyArray<object | string | Buffer>): Promise<string> {
  const path = join(dir, name);
  const parts = lines.map((l) => (Buffer.isBuffer(l) ? l : Buffer.from(typeof l === 'string' ? l : JSON.stringify(l))));
  await writeFile(path, Buffer.concat(parts.flatMap((p) => [p, Buffer.from('\n')])));
  return path;
}

const claude = (recordId: string, maxTokens: number, extra: object = {}) => ({
  recordId,
  modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: maxTokens, messages: [{ role: 'user', content: 'hi' }], ...extra },
});
const haikuRecords = (n: number) => Array.from({ length: n }, (_, i) => claude(`r${i}`, 10));

describe('estimateFiles: tokens and cost, computed by hand from the price table', () => {
  it('Claude 3 Haiku: input ceil(chars / 4) per record, output the sum of max_tokens, $0.25/$1.25 on demand, half in batch', async () => {
    const file = await fixture('haiku.jsonl', [
      // 4001 characters -> ceil(1000.25) = 1001 tokens.
      claude('a', 1000, { messages: [{ role: 'user', content: 'a'.repeat(4001) }] }),
      // system 28 + text block 3999 = 4027 characters -> ceil(1006.75) = 1007 tokens; role, type, version not counted.
      claude('b', 3000, { system: 'c'.repeat(28), messages: [{ role: 'user', content: [{ type: 'text', text: 'b'.repeat(3999) }] }] }),
    ]);
    const report = await estimateFiles([file], { modelId: HAIKU });
    // Per record: 1001 + 1007 = 2008 (one ceil over all 8028 characters would give 2007).
    expect(report.inputTokens).toBe(2008);
    expect(report.outputTokensUpperBound).toBe(4000);
    expect(report.recordsWithoutMaxTokens).toBe(0);
    // Batch $0.125/$0.625 per million: 2008 * 0.125e-6 + 4000 * 0.625e-6 = 0.000251 + 0.0025.
    // On demand $0.25/$1.25 per million: 2008 * 0.25e-6 + 4000 * 1.25e-6 = 0.000502 + 0.005.
    expect(report.cost!.batchUsd).toBeCloseTo(0.002751, 9);
    expect(report.cost!.onDemandUsd).toBeCloseTo(0.005502, 9);
    expect(report.method).toMatch(/ceil\(characters \/ 4\)/);
    expect(report.method).toMatch(/max_tokens/);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('Nova Micro: inferenceConfig.maxTokens or max_new_tokens, $0.035/$0.14 on demand', async () => {
    const file = await fixture('nova.jsonl', [
      { recordId: 'n1', modelInput: { messages: [{ role: 'user', content: [{ text: 'n'.repeat(8000) }] }], inferenceConfig: { maxTokens: 1500 } } },
      // system 1 + 7996 = 7997 characters -> 2000 tokens.
      {
        recordId: 'n2',
        modelInput: { system: [{ text: 's' }], messages: [{ role: 'user', content: [{ text: 'm'.repeat(7996) }] }], inferenceConfig: { max_new_tokens: 500 } },
      },
    ]);
    const report = await estimateFiles([file], { modelId: NOVA_MICRO });
    expect(report.inputTokens).toBe(4000);
    expect(report.outputTokensUpperBound).toBe(2000);
    // Batch: 4000 * 0.0175e-6 + 2000 * 0.07e-6 = 0.00007 + 0.00014; on demand: 4000 * 0.035e-6 + 2000 * 0.14e-6.
    expect(report.cost!.batchUsd).toBeCloseTo(0.00021, 9);
    expect(report.cost!.onDemandUsd).toBeCloseTo(0.00042, 9);
  });

  it('Llama 3.1 8B: records without max_gen_len are counted at the model output limit (2048) and said so', async () => {
    const prompt = 'p'.repeat(400); // 100 tokens
    const file = await fixture('llama.jsonl', [
      { recordId: 'l1', modelInput: { prompt, max_gen_len: 604 } },
      { recordId: 'l2', modelInput: { prompt } },
      { recordId: 'l3', modelInput: { prompt, temperature: 0.2 } },
    ]);
    const report = await estimateFiles([file], { modelId: LLAMA_8B });
    expect(report.inputTokens).toBe(300);
    expect(report.recordsWithoutMaxTokens).toBe(2);
    expect(report.assumedMaxTokens).toBe(2048);
    expect(report.outputTokensUpperBound).toBe(604 + 2 * 2048);
    expect(report.warnings).toContainEqual(expect.stringMatching(/2 record\(s\) name no max_gen_len: each was counted at the model's output limit of 2048/));
    // $0.22/$0.22 on demand, $0.11/$0.11 batch: (300 + 4700) tokens * 0.11e-6 and * 0.22e-6.
    expect(report.cost!.batchUsd).toBeCloseTo(0.00055, 9);
    expect(report.cost!.onDemandUsd).toBeCloseTo(0.0011, 9);
  });

  it('an embeddings model has input tokens only', async () => {
    const file = await fixture('embed.jsonl', [
      { recordId: 'e1', modelInput: { inputText: 'e'.repeat(4000) } },
      { recordId: 'e2', modelInput: { inputText: 'f'.repeat(4000) } },
    ]);
    const report = await estimateFiles([file], { modelId: TITAN_EMBED });
    expect(report).toMatchObject({ inputTokens: 2000, outputTokensUpperBound: 0, recordsWithoutMaxTokens: 0, assumedMaxTokens: null });
    // $0.02 per million input on demand, $0.01 in batch.
    expect(report.cost!.batchUsd).toBeCloseTo(0.00002, 9);
    expect(report.cost!.onDemandUsd).toBeCloseTo(0.00004, 9);
  });

  it('an unpriced model gets cost null and a warning, never $0; its tokens are still counted', async () => {
    const file = await fixture('llama70.jsonl', [{ recordId: 'x', modelInput: { prompt: 'q'.repeat(40), max_gen_len: 100 } }]);
    const report = await estimateFiles([file], { modelId: LLAMA_70B });
    expect(report.cost).toBeNull();
    expect(report.warnings).toContainEqual(expect.stringContaining(`cost not estimated: no price for model ${LLAMA_70B}`));
    expect(report).toMatchObject({ inputTokens: 10, outputTokensUpperBound: 100 });
    expect(formatEstimate(report)).toContain('  cost: not estimated (no price for the model: see the warnings)');
  });

  it('warns of records the model would refuse (max_tokens over its output limit)', async () => {
    const file = await fixture('over.jsonl', [claude('ok', 4096), claude('over', 5000)]);
    const report = await estimateFiles([file], { modelId: HAIKU });
    expect(report.outputTokensUpperBound).toBe(9096);
    expect(report.warnings).toContainEqual(
      expect.stringContaining(`1 record(s) would be refused by the model (400), e.g. ${file}:2: The maximum tokens you requested exceeds`),
    );
  });
});

describe('estimateFiles: jobs', () => {
  it('splits a file larger than the model maximum of 50,000 records per job into balanced jobs', async () => {
    const file = await fixture('big.jsonl', haikuRecords(50_001));
    const report = await estimateFiles([file], { modelId: HAIKU });
    expect(report).toMatchObject({ records: 50_001, jobs: 2, recordsPerJob: 50_000, minRecordsPerJob: 100, smallRemainder: 0 });
    expect(report.outputTokensUpperBound).toBe(500_010);
  });

  it('uses the route maximum when it is stricter, across files', async () => {
    const a = await fixture('a.jsonl', haikuRecords(600));
    const b = await fixture(
      'b.jsonl',
      haikuRecords(400).map((r) => ({ ...r, recordId: `b-${r.recordId}` })),
    );
    const report = await estimateFiles([a, b], { modelId: HAIKU, maxRecordsPerJob: 250 });
    expect(report).toMatchObject({ records: 1000, jobs: 4, recordsPerJob: 250, smallRemainder: 0 });
  });

  it('reports a small remainder when no split fits (160 records, 100..150 per job)', async () => {
    const file = await fixture('r.jsonl', haikuRecords(160));
    const report = await estimateFiles([file], { modelId: HAIKU, maxRecordsPerJob: 150 });
    expect(report).toMatchObject({ jobs: 1, smallRemainder: 10 });
    expect(report.warnings).toContainEqual(expect.stringMatching(/^10 record\(s\) fewer than the minimum of 100 per job form a small remainder.*on demand/));
  });

  it("never goes below the model's minimum records per job, and takes a lower one from the catalog (Llama 4 Scout: 50)", async () => {
    const file = await fixture(
      'sixty.jsonl',
      Array.from({ length: 60 }, (_, i) => ({ recordId: `s${i}`, modelInput: { prompt: 'x', max_gen_len: 8 } })),
    );
    const haiku = await fixture('sixty-haiku.jsonl', haikuRecords(60));
    const scout = await estimateFiles([file], { modelId: 'us.meta.llama4-scout-17b-instruct-v1:0', minRecordsPerJob: 10 });
    expect(scout).toMatchObject({ jobs: 1, minRecordsPerJob: 50, smallRemainder: 0 });
    const claude3 = await estimateFiles([haiku], { modelId: HAIKU, minRecordsPerJob: 10 });
    expect(claude3).toMatchObject({ jobs: 0, minRecordsPerJob: 100, smallRemainder: 60 });
  });

  it('warns when the minimum is above the maximum (Prepare would refuse the run)', async () => {
    const file = await fixture('x.jsonl', haikuRecords(120));
    const report = await estimateFiles([file], { modelId: HAIKU, maxRecordsPerJob: 50 });
    expect(report).toMatchObject({ jobs: 0, smallRemainder: 120, recordsPerJob: 50, minRecordsPerJob: 100 });
    expect(report.warnings).toContainEqual(expect.stringContaining('Prepare would refuse the run'));
  });
});

describe('estimateFiles: rejected lines', () => {
  it('reports them as file:line: why, as Prepare judges them, with duplicates across files', async () => {
    const a = await fixture('a.jsonl', [
      claude('x', 10),
      'not json',
      '',
      { recordId: 'y' },
      { recordId: 'z', modelInput: { anthropic_version: 'v', max_tokens: 1, messages: [] } },
    ]);
    const b = await fixture('b.jsonl', [
      claude('x', 20),
      Buffer.concat([Buffer.from('{"recordId":"u","modelInput":{"prompt":"'), Buffer.from([0xff]), Buffer.from('"}}')]),
      JSON.stringify(claude('w', 30)) + '\r',
    ]);
    const report = await estimateFiles([a, b], { modelId: HAIKU });
    expect(report).toMatchObject({ records: 2, blankLines: 1, outputTokensUpperBound: 40 });
    expect(report.rejected.count).toBe(5);
    expect(report.rejected.first).toEqual([
      expect.stringMatching(new RegExp(`^${escape(a)}:2: not valid JSON: `)),
      `${a}:4: modelInput is missing`,
      `${a}:5: modelInput.messages must be a non-empty array (model family anthropic)`,
      `${b}:1: duplicate recordId (first seen at ${a}:1)`,
      `${b}:2: line is not valid UTF-8`,
    ]);
  });

  it('quotes the first five and counts the rest', async () => {
    const file = await fixture(
      'bad.jsonl',
      Array.from({ length: 7 }, () => '[1]'),
    );
    const report = await estimateFiles([file], { modelId: HAIKU });
    expect(report.rejected.count).toBe(7);
    expect(report.rejected.first).toHaveLength(5);
    expect(report.rejected.first[4]).toBe(`${file}:5: not a JSON object (got array)`);
    expect(report.warnings).toContain('no valid records: nothing would be submitted');
    expect(formatEstimate(report)).toContain('    ... and 2 more rejected');
  });
});

describe('estimateFiles: refusals', () => {
  it('throws for a model of no known family, naming the known ones', async () => {
    const file = await fixture('a.jsonl', [claude('x', 1)]);
    await expect(estimateFiles([file], { modelId: 'cohere.command-r-v1:0' })).rejects.toThrow(
      /model cohere\.command-r-v1:0 is of no known model family \(known: anthropic\.\*, amazon\.titan-embed\*/,
    );
  });

  it('throws naming a file that is missing or not a file, before reading any', async () => {
    const good = await fixture('good.jsonl', [claude('x', 1)]);
    const missing = join(dir, 'missing.jsonl');
    await expect(estimateFiles([good, missing], { modelId: HAIKU })).rejects.toThrow(`cannot read ${missing}`);
    const sub = join(dir, 'sub.jsonl');
    await mkdir(sub);
    await expect(estimateFiles([sub], { modelId: HAIKU })).rejects.toThrow(`cannot read ${sub}: not a file`);
  });

  it('throws for a records-per-job option out of 1..50000', async () => {
    const file = await fixture('a.jsonl', [claude('x', 1)]);
    await expect(estimateFiles([file], { modelId: HAIKU, maxRecordsPerJob: 0 })).rejects.toThrow('maxRecordsPerJob must be an integer in 1..50000, got 0');
    await expect(estimateFiles([file], { modelId: HAIKU, minRecordsPerJob: 1.5 })).rejects.toThrow('minRecordsPerJob must be an integer in 1..50000');
  });
});

describe('estimateFiles: model warnings', () => {
  it('warns of a model outside the catalog (default limits) and of a bare id Bedrock refuses in batch', async () => {
    const file = await fixture('a.jsonl', [claude('x', 10)]);
    const sonnet3 = await estimateFiles([file], { modelId: 'anthropic.claude-3-sonnet-20240229-v1:0' });
    expect(sonnet3).toMatchObject({ recordsPerJob: 50_000, minRecordsPerJob: 100 });
    expect(sonnet3.warnings).toContainEqual(expect.stringContaining('is not in the model catalog'));
    const sonnet4 = await estimateFiles([file], { modelId: 'anthropic.claude-sonnet-4-20250514-v1:0' });
    expect(sonnet4.warnings).toContainEqual(expect.stringMatching(/^Bedrock would refuse the jobs: .*inference profile/));
    const viaProfile = await estimateFiles([file], { modelId: 'us.anthropic.claude-sonnet-4-20250514-v1:0' });
    expect(viaProfile.warnings.filter((w) => w.startsWith('Bedrock would refuse'))).toEqual([]);
  });
});

describe('formatEstimate', () => {
  it('prints the counts, jobs, tokens, cost and warnings', async () => {
    const file = await fixture('f.jsonl', [claude('a', 1000, { messages: [{ role: 'user', content: 'a'.repeat(4000) }] })]);
    const lines = formatEstimate(await estimateFiles([file], { modelId: HAIKU }));
    expect(lines[0]).toBe(`estimate for 1 file(s) on ${HAIKU}`);
    expect(lines).toContain('  records: 1 valid, 0 rejected, 0 blank line(s)');
    expect(lines).toContain('  jobs: 0 (100..50,000 records per job), small remainder: 1 record(s)');
    expect(lines).toContain('  input tokens: 1,000 (estimated)');
    expect(lines).toContain('  output tokens: at most 1,000');
    // 1000 * 0.125e-6 + 1000 * 0.625e-6 = 0.00075; on demand 0.00025 + 0.00125 = 0.0015.
    expect(lines).toContain('  cost: $0.00075 at batch prices, $0.0015 on demand (output tokens at their upper bound)');
    expect(lines.some((l) => l.startsWith('  warning: 1 record(s) fewer than the minimum of 100'))).toBe(true);
  });
});

/** `s` as a literal in a RegExp. */
function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
