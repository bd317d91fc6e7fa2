/**
 * The benchmark's input: realistic ~1 KB Anthropic Messages records (`{"recordId","modelInput"}`),
 * generated deterministically and uploaded as one JSONL object through a streamed multipart
 * upload, so a 1 GB input never sits in memory.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { seededRandom } from '../../local/emulator/faults';

/** The model every benchmark record is written for (and the route's model). */
export const BENCH_MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';

const SYSTEM_PROMPTS = [
  'You are a support triage assistant. Classify the ticket as bug, performance, data, account or question, then justify the label in one sentence.',
  'Summarize the customer message in at most three sentences for an agent who has not read it. Keep product names and numbers exact.',
  'Extract the product, the problem and the urgency from the message. Answer as JSON with the keys product, problem and urgency.',
  'Decide whether the review is positive, negative or mixed. Quote the phrase that decided it.',
  'Translate the message into plain English for an internal report; keep the tone neutral and remove personal data.',
];

const WORDS = (
  'the a our we you it they this that these those and but or because however since when while after before ' +
  'invoice login export dashboard report webhook account password subscription plan order shipment refund ' +
  'payment card address customer team manager admin user mobile app browser server upload download sync ' +
  'fails error slow wrong missing duplicate broken timeout crash blank stuck delayed charged twice expired ' +
  'yesterday today morning since last week again always sometimes never suddenly still already finally ' +
  'please help urgent critical important minor question issue problem ticket case request update change ' +
  'shows displays returns sends receives opens closes loads saves deletes creates imports exports retries ' +
  'number total amount price discount tax currency date time zone region language format file page screen ' +
  'button link email message notification setting option feature version release build environment'
).split(' ');

/** Occasional non-ASCII and JSON-escaped pieces, as real prompts have. */
const SPICE = ['café', 'Zoë', 'Müller', 'naïve', '€49.99', '“quoted”', '"as shown"', '東京', 'résumé', '—', '\n', '\t', 'ß', 'Ωmega'];

/**
 * One input line (without newline) of about 1 KB: a system prompt and a user message of 470..970
 * characters of varied text.
 *
 * @param index 1-based record number; the record id is `rec-<index, 7 digits>`
 * @param random the generator's PRNG (in [0, 1))
 */
export function inputRecordLine(index: number, random: () => number): string {
  const target = 470 + Math.floor(random() * 500);
  let text = `Ticket ${index}: `;
  let sentenceStart = true;
  while (text.length < target) {
    let word = WORDS[Math.floor(random() * WORDS.length)] ?? 'word';
    if (random() < 0.03) word = SPICE[Math.floor(random() * SPICE.length)] ?? word;
    if (sentenceStart) word = word.charAt(0).toUpperCase() + word.slice(1);
    text += word;
    const r = random();
    sentenceStart = r < 0.08;
    text += sentenceStart ? '. ' : r < 0.12 ? ', ' : r < 0.125 ? ` ${Math.floor(random() * 100000)} ` : ' ';
  }
  return JSON.stringify({
    recordId: `rec-${String(index).padStart(7, '0')}`,
    modelInput: {
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 512,
      system: SYSTEM_PROMPTS[index % SYSTEM_PROMPTS.length],
      messages: [{ role: 'user', content: [{ type: 'text', text: text.trimEnd() + '.' }] }],
    },
  });
}

/** What {@link uploadInputFile} wrote. */
export interface GeneratedInput {
  readonly records: number;
  readonly bytes: number;
}

/**
 * Generates records until at least `targetBytes` are written and uploads them to `bucket/key`
 * through a streamed multipart upload. Deterministic for a given `seed`.
 *
 * @param onProgress called about every 64 MiB with the bytes written so far
 */
export async function uploadInputFile(
  s3: S3Client,
  bucket: string,
  key: string,
  targetBytes: number,
  opts: { seed?: number; onProgress?: (bytes: number) => void } = {},
): Promise<GeneratedInput> {
  const random = seededRandom(opts.seed ?? 1);
  let records = 0;
  let bytes = 0;
  const batchBytes = 1 << 20;
  const progressEvery = 64 << 20;
  async function* body(): AsyncGenerator<Buffer> {
    let batch: string[] = [];
    let batchSize = 0;
    let nextProgress = progressEvery;
    while (bytes < targetBytes) {
      records += 1;
      const line = inputRecordLine(records, random) + '\n';
      const size = Buffer.byteLength(line);
      bytes += size;
      batch.push(line);
      batchSize += size;
      if (batchSize >= batchBytes) {
        yield Buffer.from(batch.join(''));
        batch = [];
        batchSize = 0;
      }
      if (bytes >= nextProgress) {
        opts.onProgress?.(bytes);
        nextProgress += progressEvery;
      }
    }
    if (batch.length > 0) yield Buffer.from(batch.join(''));
  }
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: Readable.from(body()), ContentType: 'application/x-ndjson' },
    partSize: 8 * 1024 * 1024,
    queueSize: 2,
  }).done();
  return { records, bytes };
}
