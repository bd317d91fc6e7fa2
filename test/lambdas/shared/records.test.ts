import {
  DEFAULT_MAX_LINE_BYTES,
  MAX_RECORD_ID_LENGTH,
  defaultRecordId,
  fileStemOf,
  judgeLine as judgeBytes,
  type LineContext,
} from '../../../lambdas/shared/records';
import fc from 'fast-check';
import { anthropicInput } from '../support/fixtures';

const FILE = 's3://bucket/inbox/default/my tickets.jsonl';

function ctx(line: number, overrides: Partial<LineContext> = {}): LineContext {
  return { file: FILE, fileStem: 'my-tickets', line, family: 'anthropic', ...overrides };
}

/** judgeLine with the job input line decoded, to compare with strings. */
function judgeLine(raw: Buffer, context: LineContext) {
  const v = judgeBytes(raw, context);
  if (v.kind !== 'record') return v;
  expect(Buffer.isBuffer(v.record.json)).toBe(true);
  return { ...v, record: { ...v.record, json: v.record.json.toString('utf8') } };
}

function judge(text: string | Buffer, line = 7, overrides: Partial<LineContext> = {}) {
  return judgeLine(Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'), ctx(line, overrides));
}

function rejection(text: string | Buffer, line = 7, overrides: Partial<LineContext> = {}) {
  const v = judge(text, line, overrides);
  if (v.kind !== 'rejected') throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
  return v.rejection;
}

const valid = (extra: Record<string, unknown> = {}) => JSON.stringify({ recordId: 'r1', modelInput: anthropicInput(), ...extra });

describe('judgeLine', () => {
  it('accepts a valid line and outputs exactly recordId + modelInput, compact', () => {
    const pretty = JSON.stringify({ note: 'dropped', recordId: 'r1', modelInput: anthropicInput(), extra: [1, 2] }, null, 1).replace(/\n/g, ' ');
    const v = judge(pretty);
    expect(v).toEqual({ kind: 'record', record: { recordId: 'r1', json: JSON.stringify({ recordId: 'r1', modelInput: anthropicInput() }) } });
    if (v.kind === 'record') {
      expect(Object.keys(JSON.parse(v.record.json))).toEqual(['recordId', 'modelInput']);
      expect(v.record.json).not.toMatch(/\s"|":\s|,\s"/);
    }
  });

  it.each([
    [
      'invalid UTF-8',
      Buffer.concat([Buffer.from('{"recordId":"a","modelInput":{"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]),
      'line is not valid UTF-8',
    ],
    ['a truncated JSON', '{"recordId": "a", "modelInput": {', /^not valid JSON: /],
    ['an array', '[1, 2]', 'not a JSON object (got array)'],
    ['null', 'null', 'not a JSON object (got null)'],
    ['a number', '42', 'not a JSON object (got number)'],
    ['a string', '"text"', 'not a JSON object (got string)'],
    ['an empty recordId', JSON.stringify({ recordId: '', modelInput: anthropicInput() }), 'recordId must be a non-empty string'],
    ['a numeric recordId', JSON.stringify({ recordId: 5, modelInput: anthropicInput() }), 'recordId must be a non-empty string'],
    ['a null recordId', JSON.stringify({ recordId: null, modelInput: anthropicInput() }), 'recordId must be a non-empty string'],
    [
      'a too long recordId',
      JSON.stringify({ recordId: 'x'.repeat(MAX_RECORD_ID_LENGTH + 1), modelInput: anthropicInput() }),
      `recordId is ${MAX_RECORD_ID_LENGTH + 1} characters, over the limit of ${MAX_RECORD_ID_LENGTH}`,
    ],
  ])('rejects %s with the line number and reason', (_name, text, reason) => {
    const r = rejection(text, 7);
    expect(r.line).toBe(7);
    expect(r.file).toBe(FILE);
    expect(r.recordId).toBeUndefined();
    if (typeof reason === 'string') expect(r.reason).toBe(reason);
    else expect(r.reason).toMatch(reason);
  });

  it('passes a line that already is a job input line through unchanged, and rebuilds any other', () => {
    const canonical = `{"recordId":"c1","modelInput":{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"a  b"}]}}`;
    expect(judge(canonical)).toEqual({ kind: 'record', record: { recordId: 'c1', json: canonical } });
    // A repeated key: the parser keeps the last value, so the line is rebuilt from what was parsed.
    const repeated = canonical.slice(0, -1) + ',"modelInput":' + JSON.stringify(anthropicInput('second')) + '}';
    expect(judge(repeated)).toEqual({
      kind: 'record',
      record: { recordId: 'c1', json: JSON.stringify({ recordId: 'c1', modelInput: anthropicInput('second') }) },
    });
    const later = canonical.slice(0, -1) + ',"recordId":"c2"}';
    expect(judge(later)).toMatchObject({
      kind: 'record',
      record: { recordId: 'c2', json: JSON.stringify({ recordId: 'c2', modelInput: JSON.parse(canonical).modelInput }) },
    });
    // The same recordId twice: whichever Bedrock reads, it is the same id; passed through.
    const same = canonical.slice(0, -1) + ',"recordId":"c1"}';
    expect(judge(same)).toEqual({ kind: 'record', record: { recordId: 'c1', json: same } });
    // Other key order or spacing: rebuilt compactly.
    const spaced = JSON.stringify({ modelInput: anthropicInput(), recordId: 'c3' }, null, 1).replace(/\n/g, ' ');
    expect(judge(spaced)).toEqual({ kind: 'record', record: { recordId: 'c3', json: JSON.stringify({ recordId: 'c3', modelInput: anthropicInput() }) } });
  });

  it('accepts a recordId of exactly the maximum length', () => {
    const id = 'x'.repeat(MAX_RECORD_ID_LENGTH);
    expect(judge(JSON.stringify({ recordId: id, modelInput: anthropicInput() }))).toMatchObject({ kind: 'record', record: { recordId: id } });
  });

  it.each([
    ['modelInput is missing', { recordId: 'r9' }, 'modelInput is missing'],
    ['modelInput is a string', { recordId: 'r9', modelInput: 'hi' }, 'modelInput must be a JSON object'],
    ['modelInput is an array', { recordId: 'r9', modelInput: [anthropicInput()] }, 'modelInput must be a JSON object'],
    ['modelInput is null', { recordId: 'r9', modelInput: null }, 'modelInput must be a JSON object'],
  ])('rejects a line where %s, keeping its recordId', (_name, body, reason) => {
    expect(rejection(JSON.stringify(body), 12)).toEqual({ file: FILE, line: 12, recordId: 'r9', reason });
  });

  it.each([
    ['anthropic', 'without anthropic_version', { max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, 'modelInput.anthropic_version is required'],
    ['anthropic', 'without messages', { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5 }, 'modelInput.messages must be a non-empty array'],
    [
      'anthropic',
      'with empty messages',
      { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5, messages: [] },
      'modelInput.messages must be a non-empty array',
    ],
    ['anthropic', 'with modelId inside', { ...anthropicInput(), modelId: 'anthropic.x' }, 'modelInput must not contain modelId'],
    ['titan-embed', 'without inputText', { dimensions: 256 }, 'modelInput.inputText must be a non-empty string'],
    ['titan-embed', 'with modelId inside', { inputText: 'x', modelId: 'amazon.titan-embed-text-v2:0' }, 'modelInput must not contain modelId'],
  ] as const)('rejects a %s modelInput %s, naming the family', (family, _name, modelInput, reason) => {
    const r = rejection(JSON.stringify({ recordId: 'r3', modelInput }), 3, { family });
    expect(r.line).toBe(3);
    expect(r.recordId).toBe('r3');
    expect(r.reason.startsWith(reason)).toBe(true);
    expect(r.reason.endsWith(`(model family ${family})`)).toBe(true);
  });

  it('rejects a line over the byte limit, before parsing it', () => {
    const text = valid();
    const limit = Buffer.byteLength(text) - 1;
    expect(rejection(text, 4, { maxLineBytes: limit })).toEqual({ file: FILE, line: 4, reason: `line is ${limit + 1} bytes, over the limit of ${limit}` });
    expect(judge(text, 4, { maxLineBytes: limit + 1 }).kind).toBe('record');
    // Counted in bytes, not characters.
    const wide = JSON.stringify({ recordId: 'é'.repeat(10), modelInput: anthropicInput() });
    expect(judge(wide, 1, { maxLineBytes: wide.length }).kind).toBe('rejected');
    expect(DEFAULT_MAX_LINE_BYTES).toBe(1024 * 1024);
    expect(judge(`{"recordId":"big","modelInput":{"x":"${'a'.repeat(DEFAULT_MAX_LINE_BYTES)}"}}`, 1).kind).toBe('rejected');
  });

  it('strips a UTF-8 BOM on line 1', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid())]);
    expect(judgeLine(bom, ctx(1))).toEqual({
      kind: 'record',
      record: { recordId: 'r1', json: JSON.stringify({ recordId: 'r1', modelInput: anthropicInput() }) },
    });
    // The BOM is not part of the line: it does not count against the byte limit.
    expect(judgeLine(bom, ctx(1, { maxLineBytes: Buffer.byteLength(valid()) })).kind).toBe('record');
    // A BOM and CRLF together (a file saved by Windows Notepad).
    expect(judgeLine(Buffer.concat([bom, Buffer.from('\r')]), ctx(1))).toMatchObject({ kind: 'record', record: { recordId: 'r1' } });
  });

  it('accepts CRLF line endings', () => {
    expect(judge(valid() + '\r')).toEqual({
      kind: 'record',
      record: { recordId: 'r1', json: JSON.stringify({ recordId: 'r1', modelInput: anthropicInput() }) },
    });
    // Only the one CR of the line ending goes; a CR inside a JSON string must stay escaped there.
    expect(judge(JSON.stringify({ recordId: 'r\r1', modelInput: anthropicInput() }) + '\r')).toMatchObject({ kind: 'record', record: { recordId: 'r\r1' } });
  });

  it.each([
    ['', 1],
    ['   ', 2],
    ['\r', 3],
    ['\t \r', 4],
  ])('treats %j as blank', (text, line) => {
    expect(judge(text, line)).toEqual({ kind: 'blank' });
  });

  it('treats a lone BOM on line 1 as blank', () => {
    expect(judgeLine(Buffer.from([0xef, 0xbb, 0xbf]), ctx(1))).toEqual({ kind: 'blank' });
  });

  it('gives a line without recordId a deterministic `<stem>-L<line>` id', () => {
    const line = JSON.stringify({ modelInput: anthropicInput() });
    const a = judge(line, 42);
    const b = judge(line, 42);
    expect(a).toEqual(b);
    expect(a).toEqual({
      kind: 'record',
      record: { recordId: 'my-tickets-L42', json: JSON.stringify({ recordId: 'my-tickets-L42', modelInput: anthropicInput() }) },
    });
    expect(judge(line, 43)).toMatchObject({ record: { recordId: 'my-tickets-L43' } });
    // The default id is also the rejection's id when modelInput is bad.
    expect(rejection(JSON.stringify({ modelInput: 5 }), 8)).toEqual({
      file: FILE,
      line: 8,
      recordId: 'my-tickets-L8',
      reason: 'modelInput must be a JSON object',
    });
  });
});

describe('fileStemOf / defaultRecordId', () => {
  it.each([
    ['s3://b/inbox/x/my file.jsonl', 'my-file'],
    ['inbox/x/data.JSONL', 'data'],
    ['tickets_2024.01.jsonl', 'tickets_2024-01'],
    ['s3://b/inbox/x/..jsonl', 'input'],
    ['s3://b/inbox/x/émoji😀.jsonl', 'moji'],
    ['s3://b/inbox/x/😀.jsonl', 'input'],
  ])('%s -> %s', (uri, stem) => expect(fileStemOf(uri)).toBe(stem));

  it('joins stem and line', () => expect(defaultRecordId('a', 3)).toBe('a-L3'));

  it('reads a recordId with escaped non-ASCII characters as JSON says', () => {
    const input = JSON.stringify(anthropicInput());
    for (const [source, id] of [
      ['caf\\u00e9', 'café'],
      ['\\u6771\\u4eac-1', '東京-1'],
      ['caf\\u00e9-東京', 'café-東京'],
      ['r-\\ud83d\\ude00', 'r-😀'],
    ] as const) {
      const v = judge(`{"recordId":"${source}","modelInput":${input}}`);
      expect(v).toEqual({ kind: 'record', record: { recordId: id, json: JSON.stringify({ recordId: id, modelInput: anthropicInput() }) } });
      expect(rejection(`{"recordId":"${source}","modelInput":{}}`)).toMatchObject({ recordId: id });
    }
  });

  it('reads ids, inputs and errors exactly as the UTF-8 text says, whatever the characters (property)', () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    const line = fc.record(
      {
        recordId: fc.oneof(text, fc.constantFrom('é', 'r-😀', '東京-1', 'x'.repeat(MAX_RECORD_ID_LENGTH) + 'é')),
        modelInput: fc.record({
          anthropic_version: text,
          max_tokens: fc.integer(),
          messages: fc.array(fc.record({ role: text, content: text }), { minLength: 1, maxLength: 2 }),
        }),
        extra: fc.dictionary(text, text, { maxKeys: 2 }),
      },
      { requiredKeys: ['modelInput'] },
    );
    fc.assert(
      fc.property(line, fc.boolean(), fc.boolean(), fc.boolean(), ({ extra, ...record }, withExtra, escapeIt, breakIt) => {
        let textLine = JSON.stringify(withExtra ? { ...record, extra } : record);
        // Written by an encoder that escapes every non-ASCII character (like Python's json.dumps).
        if (escapeIt) textLine = textLine.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
        if (breakIt) textLine = textLine.slice(0, -1);
        const v = judge(textLine, 3);
        const id = record.recordId ?? 'my-tickets-L3';
        if (breakIt) {
          let message = '';
          try {
            JSON.parse(textLine);
          } catch (err) {
            message = (err as Error).message;
          }
          expect(v).toEqual({ kind: 'rejected', rejection: { file: FILE, line: 3, reason: `not valid JSON: ${message}` } });
        } else if (id.length === 0 || id.length > MAX_RECORD_ID_LENGTH) {
          expect(v.kind).toBe('rejected');
        } else {
          const expected = { recordId: id, modelInput: record.modelInput };
          expect(v).toMatchObject({ kind: 'record', record: { recordId: id } });
          const json = (v as { record: { json: string } }).record.json;
          expect(JSON.parse(json)).toEqual(expected);
          // Passed through as written: compact, escaped as the input escaped it.
          if (!escapeIt) expect(json).toBe(JSON.stringify(expected));
        }
      }),
      { numRuns: 500 },
    );
  });
});
