import fc from 'fast-check';
import { ChunkReconciler, leadingRecordId } from '../../../lambdas/shared/reconcile';
import type { FailedRecord, RetryRecord, SucceededRecord } from '../../../lambdas/shared/outcomes';
import { isRetryableRecordError, missingRecordError } from '../../../lambdas/shared/retry-policy';
import { anthropicInput, anthropicOutputLine, errorOutputLine } from '../support/fixtures';

type Fate = 'ok' | 400 | 429 | 500 | 'missing';

function inputLine(recordId: string): string {
  return JSON.stringify({ recordId, modelInput: anthropicInput(`text of ${recordId}`) });
}

function outputLine(recordId: string, fate: Exclude<Fate, 'missing'>, tokens: number): string {
  return fate === 'ok' ? anthropicOutputLine(recordId, tokens, tokens * 2) : errorOutputLine(recordId, fate, `error ${fate}`);
}

/** A chunk's records with a fate each, duplicates and unknown lines to inject, and an output order. */
const scenario = fc
  .record({
    records: fc.uniqueArray(
      fc.record({
        recordId: fc.string({ minLength: 1, maxLength: 12 }).map((id) => `rec:${id}`),
        fate: fc.constantFrom<Fate>('ok', 400, 429, 500, 'missing'),
        tokens: fc.integer({ min: 0, max: 1000 }),
      }),
      { selector: (r) => r.recordId, maxLength: 60 },
    ),
    round: fc.integer({ min: 1, max: 10 }),
    unknownIds: fc.array(
      fc.string({ minLength: 1, maxLength: 12 }).map((s) => `unknown:${s}`),
      { maxLength: 8 },
    ),
    malformed: fc.array(fc.constantFrom('not json', '[1,2]', '{"no":"id"}', '{"recordId":7}', 'null'), { maxLength: 4 }),
    duplicatePicks: fc.array(fc.nat(), { maxLength: 10 }),
  })
  .chain((s) => {
    const returned = s.records.filter((r) => r.fate !== 'missing');
    const duplicates = returned.length === 0 ? [] : s.duplicatePicks.map((i) => returned[i % returned.length]!);
    const lines = [
      ...returned.map((r) => outputLine(r.recordId, r.fate as Exclude<Fate, 'missing'>, r.tokens)),
      ...duplicates.map((r) => outputLine(r.recordId, r.fate as Exclude<Fate, 'missing'>, r.tokens)),
      ...s.unknownIds.map((id) => anthropicOutputLine(id)),
      ...s.malformed,
    ];
    return fc.array(fc.double({ noNaN: true }), { minLength: lines.length, maxLength: lines.length }).map((keys) => ({
      ...s,
      duplicates: duplicates.length,
      lines: lines
        .map((l, i) => ({ l, k: keys[i]! }))
        .sort((a, b) => a.k - b.k)
        .map((x) => x.l),
    }));
  });

type Placed =
  | { kind: 'succeeded'; record: SucceededRecord }
  | { kind: 'failed'; record: FailedRecord }
  | { kind: 'retry'; record: RetryRecord }
  | { kind: 'unknown' }
  | { kind: 'duplicate' };

/** Both passes, as reconcile-chunk runs them: output lines, then the chunk input for what is unsettled. */
function reconcileAll(r: ChunkReconciler, outputLines: string[], inputLines: string[], status: string, detail?: string): Placed[] {
  const placed: Placed[] = [];
  for (const line of outputLines) {
    const v = r.accept(line);
    if (v.kind !== 'deferred') placed.push(v);
  }
  if (r.unsettledCount > 0) {
    for (const line of inputLines) {
      const retry = r.retryFor(line, status, detail);
      if (retry) placed.push({ kind: 'retry', record: retry });
    }
  }
  expect(r.unsettledCount).toBe(0);
  return placed;
}

describe('ChunkReconciler (property)', () => {
  it('puts every input record in exactly one of succeeded / failed / retry, once', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const inputs = s.records.map((r) => inputLine(r.recordId));
        const reconciler = new ChunkReconciler(
          s.records.map((r) => r.recordId),
          s.round,
          'anthropic',
        );
        const verdicts = reconcileAll(reconciler, s.lines, inputs, 'PartiallyCompleted', 'some records lost');

        const placed = new Map<string, Placed>();
        for (const v of verdicts) {
          if (v.kind === 'unknown' || v.kind === 'duplicate') continue;
          expect(placed.has(v.record.recordId)).toBe(false);
          placed.set(v.record.recordId, v);
        }
        expect([...placed.keys()].sort()).toEqual(s.records.map((r) => r.recordId).sort());

        expect(reconciler.unknownOutputRecords).toBe(s.unknownIds.length + s.malformed.length);
        expect(reconciler.duplicateOutputRecords).toBe(s.duplicates);
        expect(verdicts.filter((v) => v.kind === 'unknown')).toHaveLength(s.unknownIds.length + s.malformed.length);
        expect(verdicts.filter((v) => v.kind === 'duplicate')).toHaveLength(s.duplicates);

        let input = 0;
        let output = 0;
        for (const r of s.records) {
          const v = placed.get(r.recordId)!;
          switch (r.fate) {
            case 'ok':
              expect(v.kind).toBe('succeeded');
              if (v.kind === 'succeeded') expect(v.record.usage).toEqual({ inputTokens: r.tokens, outputTokens: r.tokens * 2 });
              input += r.tokens;
              output += r.tokens * 2;
              break;
            case 400:
              expect(v).toEqual({ kind: 'failed', record: { recordId: r.recordId, error: { code: '400', message: 'error 400' }, attempts: s.round } });
              break;
            case 429:
            case 500:
              expect(v).toEqual({
                kind: 'retry',
                record: {
                  recordId: r.recordId,
                  modelInput: anthropicInput(`text of ${r.recordId}`),
                  lastError: { code: String(r.fate), message: `error ${r.fate}` },
                },
              });
              break;
            case 'missing':
              expect(v.kind).toBe('retry');
              if (v.kind === 'retry') {
                expect(v.record.lastError.code).toBe('MissingFromOutput');
                expect(v.record.lastError.message).toContain('PartiallyCompleted');
                expect(v.record.modelInput).toEqual(anthropicInput(`text of ${r.recordId}`));
              }
              break;
          }
        }
        expect(reconciler.tokenUsage).toEqual({ input, output });
      }),
      { numRuns: 300 },
    );
  });
});

describe('ChunkReconciler', () => {
  const inputs = () => ['a', 'b'];

  it('counts a repeated recordId once, whatever the repeat says', () => {
    const r = new ChunkReconciler(inputs(), 1, 'anthropic');
    expect(r.accept(anthropicOutputLine('a')).kind).toBe('succeeded');
    expect(r.accept(errorOutputLine('a', 400))).toEqual({ kind: 'duplicate' });
    expect(r.duplicateOutputRecords).toBe(1);
  });

  it('marks and counts a succeeded record whose output stopped at max_tokens (cut off, not failed)', () => {
    const r = new ChunkReconciler(inputs(), 1, 'anthropic');
    const cut = JSON.parse(anthropicOutputLine('a')) as { modelOutput: Record<string, unknown> };
    cut.modelOutput.stop_reason = 'max_tokens';
    const v = r.accept(JSON.stringify(cut));
    expect(v).toMatchObject({ kind: 'succeeded', record: { recordId: 'a', truncated: true } });
    const whole = r.accept(anthropicOutputLine('b'));
    expect(whole.kind === 'succeeded' && whole.record).not.toHaveProperty('truncated');
    expect(r.truncatedRecords).toBe(1);
  });

  it('treats a line with an error object as failed even when it has modelOutput', () => {
    const r = new ChunkReconciler(inputs(), 2, 'anthropic');
    const v = r.accept(JSON.stringify({ recordId: 'a', modelOutput: {}, error: { errorCode: 400, errorMessage: 'bad' } }));
    expect(v).toEqual({ kind: 'failed', record: { recordId: 'a', error: { code: '400', message: 'bad' }, attempts: 2 } });
  });

  it('fails a line with neither modelOutput nor error as Unknown (not retryable)', () => {
    const r = new ChunkReconciler(inputs(), 1, 'anthropic');
    const v = r.accept(JSON.stringify({ recordId: 'b' }));
    expect(v).toMatchObject({ kind: 'failed', record: { recordId: 'b', error: { code: 'Unknown' } } });
  });

  it('accepts string error codes and `code`/`message` spellings', () => {
    const r = new ChunkReconciler(inputs(), 1, 'anthropic');
    expect(r.accept(JSON.stringify({ recordId: 'a', error: { code: '503', message: 'busy' } }))).toEqual({ kind: 'deferred' });
    expect(r.retryFor(inputLine('a'), 'Completed')).toEqual({
      recordId: 'a',
      modelInput: anthropicInput('text of a'),
      lastError: { code: '503', message: 'busy' },
    });
  });

  it('keeps a retryable record deferred until pass 2, and counts a repeat of it as a duplicate', () => {
    const r = new ChunkReconciler(inputs(), 1, 'anthropic');
    expect(r.accept(errorOutputLine('a', 429))).toEqual({ kind: 'deferred' });
    expect(r.accept(anthropicOutputLine('a'))).toEqual({ kind: 'duplicate' });
    expect(r.unsettledCount).toBe(2);
    expect(r.retryFor(inputLine('b'), 'Completed')?.lastError.code).toBe('MissingFromOutput');
    expect(r.retryFor(inputLine('b'), 'Completed')).toBeUndefined();
    expect(r.unsettledCount).toBe(1);
  });

  it('reports missing records with the job status and detail, and only once', () => {
    const r = new ChunkReconciler(inputs(), 1, 'anthropic');
    r.accept(anthropicOutputLine('a'));
    const missing = reconcileAll(r, [], [inputLine('a'), inputLine('b')], 'Expired', 'timed out');
    expect(missing).toEqual([
      { kind: 'retry', record: { recordId: 'b', modelInput: anthropicInput('text of b'), lastError: missingRecordError('Expired', 'timed out') } },
    ]);
    expect(r.retryFor(inputLine('b'), 'Expired')).toBeUndefined();
    // A late line for a record already reported missing is a duplicate, not a second verdict.
    expect(r.accept(anthropicOutputLine('b'))).toEqual({ kind: 'duplicate' });
  });

  it('estimates the usage of a family whose responses carry no token counts (Mistral) from the echoed modelInput and the output text', () => {
    const r = new ChunkReconciler(['m'], 1, 'mistral');
    // Input: 'abcdefghij' (10 characters) -> ceil(10 / 4) = 3; output: 'hi' (2) -> 1.
    const v = r.accept(
      JSON.stringify({ recordId: 'm', modelInput: { prompt: 'abcdefghij' }, modelOutput: { outputs: [{ text: 'hi', stop_reason: 'stop' }] } }),
    );
    expect(v).toEqual({
      kind: 'succeeded',
      record: { recordId: 'm', modelOutput: { outputs: [{ text: 'hi', stop_reason: 'stop' }] }, usage: { inputTokens: 3, outputTokens: 1, estimated: true } },
    });
    expect(r.tokenUsage).toEqual({ input: 3, output: 1, estimated: { input: 3, output: 1 } });
  });

  it('reads the leading recordId of a job input line without a full parse, escapes included', () => {
    expect(leadingRecordId(inputLine('plain'))).toBe('plain');
    expect(leadingRecordId(inputLine('with "quotes" and \\ back'))).toBe('with "quotes" and \\ back');
    expect(leadingRecordId(JSON.stringify({ modelInput: {}, recordId: 'late' }))).toBe('late');
    expect(() => leadingRecordId('{"modelInput":{}}')).toThrow('no recordId');
  });
});

describe('retry policy', () => {
  it.each([408, 424, 429, 500, 502, 503, 504, '429', '500'])('retries %p', (code) => expect(isRetryableRecordError(code)).toBe(true));
  it.each([400, 403, 404, 413, 422, '400', 'Throttling', undefined])('does not retry %p', (code) => expect(isRetryableRecordError(code)).toBe(false));

  it('describes a missing record with its job status', () => {
    expect(missingRecordError('Failed', 'boom')).toEqual({ code: 'MissingFromOutput', message: 'the job ended Failed and did not return this record: boom' });
    expect(missingRecordError(undefined).message).toBe('the job ended without a status and did not return this record');
  });
});
