/**
 * Conservation through ChunkReconciler's two passes, beyond reconcile.test.ts's property:
 * repeats of a record whose first line and later lines disagree (first line wins, whatever the
 * order), record ids of any Unicode (quotes, backslashes, names of object keys), every error
 * shape (codes as numbers or strings, `code`/`message` spellings, no error at all, an error
 * beside a modelOutput, messages over the kept length), the Nova and Titan families' usage,
 * every job status, pass 2 in any order with repeated and foreign input lines, and late output
 * lines after pass 2.
 */
import fc from 'fast-check';
import type { ModelFamily } from '../../../lambdas/shared/model-family';
import type { FailedRecord, RetryRecord, SucceededRecord } from '../../../lambdas/shared/outcomes';
import { ChunkReconciler, leadingRecordId } from '../../../lambdas/shared/reconcile';
import { isRetryableRecordError, missingRecordError } from '../../../lambdas/shared/retry-policy';

/** How one output line of a record reads. */
type Fate =
  | { kind: 'ok'; input: number; output: number }
  | { kind: 'error'; code: number | string; message: string; spelling: 'bedrock' | 'code-message' }
  /** An error object beside a modelOutput: the error wins. */
  | { kind: 'error-with-output'; code: number }
  /** Neither modelOutput nor error. */
  | { kind: 'empty' };

const families: readonly ModelFamily[] = ['anthropic', 'nova', 'titan-embed'];

/** A record id as a user may write one: any Unicode, or names that are keys elsewhere. */
const recordIdArb = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '/', '\n', '\u2028', 'a', '{', '}', ':', ','), minLength: 1, maxLength: 8 }),
  fc.constantFrom('pending', 'settled', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'recordId', '{"recordId":"x"}'),
);

const fateArb: fc.Arbitrary<Fate> = fc.oneof(
  fc.record({ kind: fc.constant('ok' as const), input: fc.nat(5000), output: fc.nat(5000) }),
  fc.record({
    kind: fc.constant('error' as const),
    code: fc.constantFrom<number | string>(400, 403, 404, 408, 413, 422, 424, 429, 500, 502, 503, 504, '429', '503', '400', 'ValidationException'),
    message: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ minLength: 990, maxLength: 1200 })),
    spelling: fc.constantFrom('bedrock' as const, 'code-message' as const),
  }),
  fc.record({ kind: fc.constant('error-with-output' as const), code: fc.constantFrom(400, 429, 500) }),
  fc.constant({ kind: 'empty' as const }),
);

function modelInputOf(family: ModelFamily, recordId: string): Record<string, unknown> {
  switch (family) {
    case 'titan-embed':
      return { inputText: `text of ${recordId}` };
    case 'nova':
      return { messages: [{ role: 'user', content: [{ text: `text of ${recordId}` }] }] };
    default:
      return { anthropic_version: 'bedrock-2023-05-31', max_tokens: 64, messages: [{ role: 'user', content: `text of ${recordId}` }] };
  }
}

/** The job input line as prepare writes it: recordId first, compact. */
function inputLine(family: ModelFamily, recordId: string): string {
  return JSON.stringify({ recordId, modelInput: modelInputOf(family, recordId) });
}

function modelOutputOf(family: ModelFamily, input: number, output: number): unknown {
  switch (family) {
    case 'titan-embed':
      return { embedding: [0.1, -0.2], inputTextTokenCount: input };
    case 'nova':
      return {
        output: { message: { role: 'assistant', content: [{ text: 'ok' }] } },
        stopReason: 'end_turn',
        usage: { inputTokens: input, outputTokens: output, totalTokens: input + output },
      };
    default:
      return { id: 'msg', type: 'message', content: [{ type: 'text', text: 'ok' }], usage: { input_tokens: input, output_tokens: output } };
  }
}

/** What the family reports of (input, output) tokens: Titan embeddings have no output tokens. */
function reported(family: ModelFamily, input: number, output: number): { input: number; output: number } {
  return family === 'titan-embed' ? { input, output: 0 } : { input, output };
}

function outputLine(family: ModelFamily, recordId: string, fate: Fate): string {
  const base = { recordId, modelInput: modelInputOf(family, recordId) };
  switch (fate.kind) {
    case 'ok':
      return JSON.stringify({ ...base, modelOutput: modelOutputOf(family, fate.input, fate.output) });
    case 'error':
      return JSON.stringify({
        ...base,
        error: fate.spelling === 'bedrock' ? { errorCode: fate.code, errorMessage: fate.message } : { code: fate.code, message: fate.message },
      });
    case 'error-with-output':
      return JSON.stringify({ ...base, modelOutput: modelOutputOf(family, 1, 1), error: { errorCode: fate.code, errorMessage: `error ${fate.code}` } });
    case 'empty':
      return JSON.stringify(base);
  }
}

type Expected =
  | { kind: 'succeeded'; usage: { input: number; output: number } }
  /** message undefined: any message, as long as there is one. */
  | { kind: 'failed'; code: string; message: string | undefined }
  | { kind: 'retry'; code: string; message: string };

/** The verdict a record's first output line (or none) must give. */
function expectedOf(family: ModelFamily, first: Fate | undefined, status: string | undefined, detail: string | undefined): Expected {
  if (first === undefined) {
    const e = missingRecordError(status, detail);
    return { kind: 'retry', code: e.code, message: e.message };
  }
  switch (first.kind) {
    case 'ok':
      return { kind: 'succeeded', usage: reported(family, first.input, first.output) };
    case 'error':
      return { kind: isRetryableRecordError(first.code) ? 'retry' : 'failed', code: String(first.code), message: first.message };
    case 'error-with-output':
      return { kind: isRetryableRecordError(first.code) ? 'retry' : 'failed', code: String(first.code), message: `error ${first.code}` };
    case 'empty':
      return { kind: 'failed', code: 'Unknown', message: undefined };
  }
}

/** A chunk, each record's output lines (0 = missing), foreign lines, and the orders of both passes. */
const scenario = fc
  .record({
    family: fc.constantFrom(...families),
    round: fc.integer({ min: 1, max: 5 }),
    status: fc.constantFrom<string | undefined>('Completed', 'PartiallyCompleted', 'Failed', 'Expired', 'Stopped', undefined),
    detail: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    records: fc.uniqueArray(fc.record({ recordId: recordIdArb, fates: fc.array(fateArb, { maxLength: 3 }) }), { selector: (r) => r.recordId, maxLength: 40 }),
    unknownIds: fc.array(recordIdArb, { maxLength: 5 }),
    malformed: fc.array(fc.constantFrom('', 'not json', '[1,2]', '{"no":"id"}', '{"recordId":7}', 'null', '"x"', '{"recordId":null}'), { maxLength: 4 }),
    repeatedInputs: fc.array(fc.nat(), { maxLength: 5 }),
    foreignInputs: fc.array(recordIdArb, { maxLength: 3 }),
    lateLines: fc.array(fc.nat(), { maxLength: 5 }),
  })
  .chain((s) => {
    const known = new Set(s.records.map((r) => r.recordId));
    const unknownIds = s.unknownIds.filter((id) => !known.has(id));
    const foreignInputs = s.foreignInputs.filter((id) => !known.has(id));
    const outputs: Array<{ recordId?: string; fate?: Fate; line: string }> = [
      ...s.records.flatMap((r) => r.fates.map((fate) => ({ recordId: r.recordId, fate, line: outputLine(s.family, r.recordId, fate) }))),
      ...unknownIds.map((id) => ({ line: outputLine(s.family, id, { kind: 'ok', input: 1, output: 1 }) })),
      ...s.malformed.map((line) => ({ line })),
    ];
    const inputs = [
      ...s.records.map((r) => r.recordId),
      ...(s.records.length > 0 ? s.repeatedInputs.map((i) => s.records[i % s.records.length]!.recordId) : []),
      ...foreignInputs,
    ];
    return fc
      .record({
        outputs: fc.shuffledSubarray(outputs, { minLength: outputs.length, maxLength: outputs.length }),
        inputs: fc.shuffledSubarray(inputs, { minLength: inputs.length, maxLength: inputs.length }),
      })
      .map((order) => ({ ...s, unknownIds, foreignInputs, ...order }));
  });

type Placed = { kind: 'succeeded'; record: SucceededRecord } | { kind: 'failed'; record: FailedRecord } | { kind: 'retry'; record: RetryRecord };

describe('ChunkReconciler conservation (property)', () => {
  it('every input record ends once in succeeded, failed or retry, as its first output line says', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const r = new ChunkReconciler(
          s.records.map((x) => x.recordId),
          s.round,
          s.family,
        );
        expect(r.unsettledCount).toBe(s.records.length);

        // The first output line of each record, in the shuffled order, decides its fate.
        const first = new Map<string, Fate>();
        let repeats = 0;
        for (const o of s.outputs) {
          if (o.recordId === undefined) continue;
          if (first.has(o.recordId)) repeats += 1;
          else first.set(o.recordId, o.fate!);
        }
        const expected = new Map(s.records.map((x) => [x.recordId, expectedOf(s.family, first.get(x.recordId), s.status, s.detail)]));

        // Pass 1: the output lines.
        const placed: Placed[] = [];
        let deferred = 0;
        for (const o of s.outputs) {
          const v = r.accept(o.line);
          if (v.kind === 'succeeded' || v.kind === 'failed') placed.push(v);
          else if (v.kind === 'deferred') deferred += 1;
        }
        expect(r.unknownOutputRecords).toBe(s.unknownIds.length + s.malformed.length);
        expect(r.duplicateOutputRecords).toBe(repeats);
        const unsettled = [...expected.values()].filter((e) => e.kind === 'retry').length;
        expect(r.unsettledCount).toBe(unsettled);
        expect(deferred).toBe(unsettled - s.records.filter((x) => !first.has(x.recordId)).length);

        // Pass 2: the chunk input, in any order, some lines twice, some not of this chunk.
        for (const id of s.inputs) {
          const retry = r.retryFor(inputLine(s.family, id), s.status, s.detail);
          if (retry) placed.push({ kind: 'retry', record: retry });
        }
        expect(r.unsettledCount).toBe(0);

        // Conservation: each record exactly once.
        const byId = new Map<string, Placed>();
        for (const p of placed) {
          expect(byId.has(p.record.recordId)).toBe(false);
          byId.set(p.record.recordId, p);
        }
        expect(byId.size).toBe(s.records.length);

        let input = 0;
        let output = 0;
        for (const [recordId, e] of expected) {
          const p = byId.get(recordId)!;
          expect(p).toBeDefined();
          expect(p.kind).toBe(e.kind);
          if (p.kind === 'succeeded' && e.kind === 'succeeded') {
            expect(p.record.usage).toEqual({ inputTokens: e.usage.input, outputTokens: e.usage.output });
            input += e.usage.input;
            output += e.usage.output;
          }
          if (p.kind === 'failed' && e.kind === 'failed') {
            expect(p.record.attempts).toBe(s.round);
            expect(p.record.error.code).toBe(e.code);
            // failed.jsonl promises {code, message}: a message is always there.
            expect(typeof p.record.error.message).toBe('string');
            if (e.message !== undefined) expect(p.record.error.message).toBe(e.message);
          }
          if (p.kind === 'retry' && e.kind === 'retry') {
            expect(p.record.modelInput).toEqual(modelInputOf(s.family, recordId));
            expect(p.record.lastError.code).toBe(e.code);
            // Long messages may be cut to bound memory, never changed otherwise.
            expect(typeof p.record.lastError.message).toBe('string');
            expect(e.message.startsWith(p.record.lastError.message)).toBe(true);
            expect(p.record.lastError.message.length).toBeGreaterThanOrEqual(Math.min(e.message.length, 1000));
          }
        }
        expect(r.tokenUsage).toEqual({ input, output });

        // Late output lines, after pass 2, change nothing: they are repeats.
        const before = r.duplicateOutputRecords;
        const late = s.records.length === 0 ? [] : s.lateLines.map((i) => s.records[i % s.records.length]!.recordId);
        for (const id of late) expect(r.accept(outputLine(s.family, id, { kind: 'ok', input: 1, output: 1 }))).toEqual({ kind: 'duplicate' });
        expect(r.duplicateOutputRecords).toBe(before + late.length);
        expect(r.tokenUsage).toEqual({ input, output });
      }),
      { numRuns: 400 },
    );
  });

  it('reads back any recordId from a job input line, wherever the field is', () => {
    fc.assert(
      fc.property(recordIdArb, fc.constantFrom(...families), (recordId, family) => {
        expect(leadingRecordId(inputLine(family, recordId))).toBe(recordId);
        expect(leadingRecordId(JSON.stringify({ modelInput: modelInputOf(family, recordId), recordId }))).toBe(recordId);
        // Pretty or spaced JSON is not what prepare writes, but it still parses.
        expect(leadingRecordId(JSON.stringify({ recordId, modelInput: {} }, null, 1))).toBe(recordId);
      }),
      { numRuns: 500 },
    );
  });
});

describe('ChunkReconciler failed records', () => {
  it.each([
    ['neither modelOutput nor error', { recordId: 'a' }],
    ['error: null and no modelOutput', { recordId: 'a', error: null }],
  ])('an output line with %s fails with a code and a message (failed.jsonl promises both)', (_what, line) => {
    const r = new ChunkReconciler(['a'], 1, 'anthropic');
    const v = r.accept(JSON.stringify(line));
    expect(v.kind).toBe('failed');
    if (v.kind === 'failed') {
      expect(v.record.error.code).toBe('Unknown');
      expect(typeof v.record.error.message).toBe('string');
      expect(v.record.error.message.length).toBeGreaterThan(0);
    }
  });
});
