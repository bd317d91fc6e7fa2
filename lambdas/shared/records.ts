/**
 * The record contract: one input line -> a valid record or a rejection with a specific reason.
 * Pure; the caller tracks duplicates across the run.
 */
import { isUtf8 } from 'node:buffer';
import { modelInputProblem, type ModelFamily } from './model-family';

/** A valid input record, serialized compactly as Bedrock reads it. */
export interface ValidRecord {
  readonly recordId: string;
  /** `{"recordId":…,"modelInput":…}`: exactly the job input line. */
  readonly json: string;
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
  | { readonly kind: 'record'; readonly record: ValidRecord }
  | { readonly kind: 'rejected'; readonly rejection: Rejection }
  | { readonly kind: 'blank' };

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

/**
 * Judges one raw input line. Handles a UTF-8 BOM (on line 1), CRLF endings and blank lines;
 * every other problem becomes a rejection naming the line and the reason.
 */
export function judgeLine(raw: Buffer, ctx: LineContext): LineVerdict {
  let bytes = raw;
  if (ctx.line === 1 && bytes.subarray(0, 3).equals(UTF8_BOM)) bytes = bytes.subarray(3);
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
  const reject = (reason: string, recordId?: string): LineVerdict => ({
    kind: 'rejected',
    rejection: { file: ctx.file, line: ctx.line, ...(recordId !== undefined ? { recordId } : {}), reason },
  });
  const maxBytes = ctx.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (bytes.length > maxBytes) return reject(`line is ${bytes.length} bytes, over the limit of ${maxBytes}`);

  if (!isUtf8(bytes)) return reject('line is not valid UTF-8');
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { kind: 'blank' };

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return reject(`not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) return reject(`not a JSON object (got ${Array.isArray(parsed) ? 'array' : parsed === null ? 'null' : typeof parsed})`);

  let recordId: string;
  if (parsed.recordId === undefined) {
    recordId = defaultRecordId(ctx.fileStem, ctx.line);
  } else if (typeof parsed.recordId !== 'string' || parsed.recordId.length === 0) {
    return reject('recordId must be a non-empty string');
  } else if (parsed.recordId.length > MAX_RECORD_ID_LENGTH) {
    return reject(`recordId is ${parsed.recordId.length} characters, over the limit of ${MAX_RECORD_ID_LENGTH}`);
  } else {
    recordId = parsed.recordId;
  }

  if (parsed.modelInput === undefined) return reject('modelInput is missing', recordId);
  if (!isPlainObject(parsed.modelInput)) return reject('modelInput must be a JSON object', recordId);
  const problem = modelInputProblem(ctx.family, parsed.modelInput);
  if (problem) return reject(`${problem} (model family ${ctx.family})`, recordId);

  return { kind: 'record', record: { recordId, json: canonicalLine(text, parsed, recordId) ?? JSON.stringify({ recordId, modelInput: parsed.modelInput }) } };
}

/**
 * The line itself when it already is a job input line: `{"recordId":<id>,"modelInput":…}`
 * with no other key and no repeated one. Passing it through saves re-serializing (and never
 * grows a line); anything else is rebuilt compactly by the caller.
 */
function canonicalLine(text: string, parsed: Record<string, unknown>, recordId: string): string | undefined {
  if (parsed.recordId !== recordId || Object.keys(parsed).length !== 2 || !('modelInput' in parsed)) return undefined;
  const line = text.trim();
  const prefix = `{"recordId":${JSON.stringify(recordId)},"modelInput":`;
  if (!line.startsWith(prefix) || !line.endsWith('}')) return undefined;
  // A key can only appear unescaped outside strings: a second one means a repeated key.
  if (line.indexOf('"modelInput":', prefix.length) !== -1 || line.indexOf('"recordId":', prefix.length) !== -1) return undefined;
  return line;
}
