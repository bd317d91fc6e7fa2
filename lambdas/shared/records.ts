/**
 * The record contract: one input line -> a valid record or a rejection with a specific reason.
 * Pure; the caller tracks duplicates across the run.
 */
import { isUtf8 } from 'node:buffer';
import { modelInputProblem, type ModelFamily } from './model-family';

/** A valid input record, serialized compactly as Bedrock reads it. */
export interface ValidRecord {
  readonly recordId: string;
  /**
   * `{"recordId":…,"modelInput":…}`: exactly the job input line, as UTF-8 bytes (the input's
   * own bytes when the line already is one, so that they are copied, not encoded again).
   */
  readonly json: Buffer;
}

/** A rejected input line, as written to `rejected.jsonl`. */
export interface Rejection {
  /** The input file (S3 URI) the line came from. */
  readonly file: string;
  /** 1-based line number in that file. */
  readonly line: number;
  readonly recordId?: string;
  readonly reason: string;
}

/** Longest input line accepted, in bytes. Bedrock has no published per-record limit; 1 MiB keeps a job's records far inside its 1 GB file quota. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** Longest `recordId` accepted. Bedrock documents none; real jobs echo UUIDs and longer ids. */
export const MAX_RECORD_ID_LENGTH = 256;

export type LineVerdict =
  { readonly kind: 'record'; readonly record: ValidRecord } | { readonly kind: 'rejected'; readonly rejection: Rejection } | { readonly kind: 'blank' };

export interface LineContext {
  readonly file: string;
  /** Used to give records without a `recordId` a deterministic one. */
  readonly fileStem: string;
  readonly line: number;
  readonly family: ModelFamily;
  readonly maxLineBytes?: number;
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A file name reduced to characters safe in a record id: `inbox/x/my file.jsonl` -> `my-file`. */
export function fileStemOf(uri: string): string {
  const base = uri.slice(uri.lastIndexOf('/') + 1).replace(/\.jsonl$/i, '');
  return base.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'input';
}

/** The id given to a line without `recordId`: deterministic in file and line. */
export function defaultRecordId(fileStem: string, line: number): string {
  return `${fileStem}-L${line}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A rejection of the line `ctx` names (a function of its own: judgeLine makes no closure per line). */
function rejected(ctx: LineContext, reason: string, recordId?: string): LineVerdict {
  return { kind: 'rejected', rejection: { file: ctx.file, line: ctx.line, ...(recordId !== undefined ? { recordId } : {}), reason } };
}

/**
 * Judges one raw input line. Handles a UTF-8 BOM (on line 1), CRLF endings and blank lines;
 * every other problem becomes a rejection naming the line and the reason.
 */
export function judgeLine(raw: Buffer, ctx: LineContext): LineVerdict {
  let bytes = raw;
  if (ctx.line === 1 && bytes.subarray(0, 3).equals(UTF8_BOM)) bytes = bytes.subarray(3);
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
  const maxBytes = ctx.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (bytes.length > maxBytes) return rejected(ctx, `line is ${bytes.length} bytes, over the limit of ${maxBytes}`);

  if (!isUtf8(bytes)) return rejected(ctx, 'line is not valid UTF-8');
  const start = leadingSpace(bytes);
  if (start === bytes.length) return { kind: 'blank' };

  // Parsed from a Latin-1 view of the bytes (one character per byte), which V8 decodes and
  // parses faster than UTF-8. For valid UTF-8 it changes nothing JSON can tell: every byte of a
  // multi-byte sequence is >= 0x80, so it parses (or fails) exactly where the UTF-8 text would,
  // into the same structure; only non-ASCII characters inside strings differ. So the checks below
  // look at structure and types, the recordId is decoded properly, a rejection's message comes
  // from parsing the UTF-8 text, and a line that must be rebuilt is parsed again as UTF-8.
  const text = bytes.toString('latin1');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return rejected(ctx, `not valid JSON: ${jsonError(bytes)}`);
  }
  if (!isPlainObject(parsed)) return rejected(ctx, `not a JSON object (got ${Array.isArray(parsed) ? 'array' : parsed === null ? 'null' : typeof parsed})`);

  let recordId: string;
  const rawId = parsed.recordId;
  if (rawId === undefined) {
    recordId = defaultRecordId(ctx.fileStem, ctx.line);
  } else if (typeof rawId !== 'string' || rawId.length === 0) {
    return rejected(ctx, 'recordId must be a non-empty string');
  } else {
    recordId = utf8RecordId(bytes, rawId);
    if (recordId.length > MAX_RECORD_ID_LENGTH) return rejected(ctx, `recordId is ${recordId.length} characters, over the limit of ${MAX_RECORD_ID_LENGTH}`);
  }

  if (parsed.modelInput === undefined) return rejected(ctx, 'modelInput is missing', recordId);
  if (!isPlainObject(parsed.modelInput)) return rejected(ctx, 'modelInput must be a JSON object', recordId);
  const problem = modelInputProblem(ctx.family, parsed.modelInput);
  if (problem) return rejected(ctx, `${problem} (model family ${ctx.family})`, recordId);

  const json = canonicalLine(bytes, text, start, parsed) ?? rebuiltLine(bytes, recordId);
  return { kind: 'record', record: { recordId, json } };
}

/** Why the UTF-8 text of `bytes` is not JSON, as JSON.parse says it (positions in characters). */
function jsonError(bytes: Buffer): string {
  try {
    JSON.parse(bytes.toString('utf8'));
    return 'unparsable';
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The recordId as the UTF-8 text says it, given the one parsed from the Latin-1 view: the same
 * when it is ASCII; else parsed again from the UTF-8 text (a non-ASCII character may have come
 * from raw UTF-8 bytes or from a `\u` escape, and only the UTF-8 parse reads both right).
 */
function utf8RecordId(bytes: Buffer, latin1Id: string): string {
  // The class is "any non-ASCII character"; \u0000 is its lower bound, not a control character we look for.
  // eslint-disable-next-line no-control-regex
  return /[^\u0000-\u007f]/.test(latin1Id) ? (JSON.parse(bytes.toString('utf8')) as { recordId: string }).recordId : latin1Id;
}

/** `{"recordId":…,"modelInput":…}` rebuilt compactly from the line's UTF-8 text. */
function rebuiltLine(bytes: Buffer, recordId: string): Buffer {
  const { modelInput } = JSON.parse(bytes.toString('utf8')) as { modelInput: unknown };
  return Buffer.from(JSON.stringify({ recordId, modelInput }));
}

/** JSON's whitespace: space, tab, CR, LF. */
function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0a;
}

/** The number of whitespace bytes a line starts with (its length when it is all whitespace). */
function leadingSpace(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && isJsonSpace(bytes[i]!)) i++;
  return i;
}

/**
 * The line itself when it already is a job input line: `{"recordId":<id>,"modelInput":…}`
 * with no other key and no repeated one. Passing its bytes through saves re-serializing and
 * re-encoding (and never grows a line); anything else is rebuilt compactly by the caller.
 * `text` and `parsed` are the Latin-1 view of `bytes` (so an offset in one is an offset in the
 * other), `start` is where the JSON starts after leading whitespace.
 */
function canonicalLine(bytes: Buffer, text: string, start: number, parsed: Record<string, unknown>): Buffer | undefined {
  if (typeof parsed.recordId !== 'string' || Object.keys(parsed).length !== 2 || !('modelInput' in parsed)) return undefined;
  let end = bytes.length;
  while (isJsonSpace(bytes[end - 1]!)) end--;
  const prefix = `{"recordId":${JSON.stringify(parsed.recordId)},"modelInput":`;
  if (!text.startsWith(prefix, start) || bytes[end - 1] !== 0x7d /* } */) return undefined;
  // A key can only appear unescaped outside strings: a second one means a repeated key, and the
  // parsed (last) modelInput may not be the one Bedrock would read. A repeated recordId needs no
  // search: a different first value fails the prefix, an equal one changes nothing.
  if (text.indexOf('"modelInput":', start + prefix.length) !== -1) return undefined;
  return start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
}

/**
 * A file stem not used by an earlier file of the run (`data`, then `data-2`, ...): default record
 * ids are `<stem>-L<line>`, and two files named alike (`2025-01-01/data.jsonl`,
 * `2025-01-02/data.jsonl`) must not give the same ids.
 */
export function uniqueStem(stem: string, used: Set<string>): string {
  let candidate = stem;
  for (let n = 2; used.has(candidate); n++) candidate = `${stem}-${n}`;
  used.add(candidate);
  return candidate;
}
