/**
 * What an emulated batch job does with its data: validate the input as Bedrock's `Validating`
 * step does (docs/BEDROCK-FACTS.md §4, §7), then run every record through the fake model and write the output
 * files and manifest in Bedrock's layout (docs/BEDROCK-FACTS.md §5).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ModelQuotas } from '../../lambdas/shared/model-catalog';
import type { ModelFamily } from '../../lambdas/shared/model-family';
import { fakeModelInputProblem, fakeModelOutput, type InvocationType } from './fake-model';
import { FaultDecider, hash53, seededRandom } from './faults';
import { bucketExists, joinKey, listInputFiles, parseS3Location, readLines, S3LineWriter, type InputFile } from './s3-io';
import { isRecord } from './validation';

/** The input of a job that passed validation. */
export interface ValidatedInput {
  files: InputFile[];
  recordCount: number;
  bytes: number;
}

/**
 * Checks a job's input as Bedrock's `Validating` step does: the locations are reachable, the
 * files are `.jsonl` with one JSON object per line, and the size and record quotas hold.
 * Blank lines are skipped, not counted.
 * @returns the input, or a problem that fails the job with that `message`
 */
export async function validateJobInput(
  s3: S3Client,
  job: { inputS3Uri: string; outputS3Uri: string; modelId: string },
  quotas: ModelQuotas,
  shouldStop: () => boolean = () => false,
): Promise<ValidatedInput | { problem: string }> {
  let listed: Awaited<ReturnType<typeof listInputFiles>>;
  try {
    listed = await listInputFiles(s3, job.inputS3Uri);
  } catch (err) {
    return { problem: `Could not validate GetObject permissions to access the input S3 location ${job.inputS3Uri}: ${errorText(err)}` };
  }
  if ('problem' in listed) return listed;
  if (!(await bucketExists(s3, parseS3Location(job.outputS3Uri).bucket))) {
    return { problem: `Could not validate PutObject permissions to access the output S3 location ${job.outputS3Uri}.` };
  }

  let bytes = 0;
  for (const file of listed.files) {
    if (file.size > quotas.maxFileBytes) {
      return {
        problem: `Input file s3://${file.bucket}/${file.key} is ${file.size} bytes, over the quota of ${quotas.maxFileBytes} bytes per file for ${job.modelId}.`,
      };
    }
    bytes += file.size;
  }
  if (bytes > quotas.maxJobBytes) {
    return { problem: `The job's input is ${bytes} bytes, over the quota of ${quotas.maxJobBytes} bytes per job for ${job.modelId}.` };
  }

  let recordCount = 0;
  for (const file of listed.files) {
    let inFile = 0;
    let lineNo = 0;
    for await (const line of readLines(s3, file.bucket, file.key)) {
      lineNo++;
      if (line.trim() === '') continue;
      if (!isJsonObject(line)) {
        return { problem: `Line ${lineNo} of input file s3://${file.bucket}/${file.key} is not a valid JSON object.` };
      }
      inFile++;
      recordCount++;
      if (inFile > quotas.maxRecordsPerFile) {
        return {
          problem: `Input file s3://${file.bucket}/${file.key} has more than ${quotas.maxRecordsPerFile} records, the quota of records per input file for ${job.modelId}.`,
        };
      }
      if (recordCount > quotas.maxRecordsPerJob) {
        return { problem: `The job has more than ${quotas.maxRecordsPerJob} records, the quota of records per batch inference job for ${job.modelId}.` };
      }
    }
    if (shouldStop()) break;
  }
  if (recordCount < quotas.minRecordsPerJob) {
    return {
      problem: `The job has ${recordCount} records, fewer than the minimum of ${quotas.minRecordsPerJob} records per batch inference job for ${job.modelId}.`,
    };
  }
  return { files: listed.files, recordCount, bytes };
}

function isJsonObject(line: string): boolean {
  try {
    return isRecord(JSON.parse(line));
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  return String(err);
}

/** Counters of a job's records, as reported by Get/List and the manifest. */
export interface RecordCounts {
  processed: number;
  success: number;
  error: number;
  inputTokens: number;
  outputTokens: number;
}

/** What {@link processJobRecords} needs. */
export interface ProcessJobOptions {
  s3: S3Client;
  files: InputFile[];
  totalRecords: number;
  jobArn: string;
  jobId: string;
  modelId: string;
  family: ModelFamily;
  invocationType: InvocationType;
  outputS3Uri: string;
  faults: FaultDecider;
  /** Process only this many records, leaving the rest absent (a partially completed job). */
  limit?: number;
  /** Polled between records: true stops processing, keeping what was written (a stopped job). */
  shouldStop: () => boolean;
  /** Polled between records: true abandons uploads in flight (the emulator is shutting down). */
  shouldAbandon: () => boolean;
  /** Called as counts grow, so Get/List show progress. */
  onProgress: (counts: RecordCounts) => void;
}

/** How many shuffled lines are held back before writing: output order is not input order (docs/BEDROCK-FACTS.md §5). */
const SHUFFLE_WINDOW = 2048;
const PROGRESS_EVERY = 500;

/**
 * Runs every record through the fake model and writes `{output}/{jobId}/{file}.out` for each
 * input file with at least one processed record, then `{output}/{jobId}/manifest.json.out`.
 */
export async function processJobRecords(opts: ProcessJobOptions): Promise<RecordCounts> {
  const counts: RecordCounts = { processed: 0, success: 0, error: 0, inputTokens: 0, outputTokens: 0 };
  const out = parseS3Location(opts.outputS3Uri);
  const limit = opts.limit ?? Infinity;
  const { faults, jobArn } = opts;

  for (const file of opts.files) {
    if (counts.processed >= limit || opts.shouldStop()) break;
    const outputKey = joinKey(out.key, opts.jobId, `${file.name}.out`);
    const shuffle = seededRandom(hash53(`${jobArn}\u0000${file.key}`, faults.seed) % 4294967296);
    const window: string[] = [];
    let writer: S3LineWriter | undefined;
    const emit = async (line: string) => {
      writer ??= new S3LineWriter(opts.s3, out.bucket, outputKey);
      if (window.length < SHUFFLE_WINDOW) {
        window.push(line);
        return;
      }
      const i = Math.floor(shuffle() * SHUFFLE_WINDOW);
      const evicted = window[i] as string;
      window[i] = line;
      await writer.write(evicted);
    };

    let lineNo = 0;
    try {
      for await (const line of readLines(opts.s3, file.bucket, file.key)) {
        lineNo++;
        if (line.trim() === '') continue;
        if (counts.processed >= limit || opts.shouldStop()) break;
        const result = processRecord(line, file, lineNo, opts);
        counts.processed++;
        if (result.ok) {
          counts.success++;
          counts.inputTokens += result.inputTokens;
          counts.outputTokens += result.outputTokens;
        } else counts.error++;
        await emit(result.line);
        if (counts.processed % PROGRESS_EVERY === 0) opts.onProgress({ ...counts });
      }
      if (opts.shouldAbandon()) {
        await writer?.abort();
        return counts;
      }
      if (writer) {
        for (let i = window.length - 1; i > 0; i--) {
          const j = Math.floor(shuffle() * (i + 1));
          [window[i], window[j]] = [window[j] as string, window[i] as string];
        }
        for (const line of window) await writer.write(line);
        await writer.close();
      }
    } catch (err) {
      await writer?.abort();
      throw err;
    }
    opts.onProgress({ ...counts });
  }

  if (opts.shouldAbandon()) return counts;
  const manifest = {
    totalRecordCount: opts.totalRecords,
    processedRecordCount: counts.processed,
    successRecordCount: counts.success,
    errorRecordCount: counts.error,
    inputTokenCount: counts.inputTokens,
    outputTokenCount: counts.outputTokens,
  };
  await opts.s3.send(
    new PutObjectCommand({
      Bucket: out.bucket,
      Key: joinKey(out.key, opts.jobId, 'manifest.json.out'),
      Body: JSON.stringify(manifest),
      ContentType: 'application/json',
    }),
  );
  opts.onProgress({ ...counts });
  return counts;
}

type RecordResult = { ok: true; line: string; inputTokens: number; outputTokens: number } | { ok: false; line: string };

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** The 11-character id Bedrock adds to a record without one (docs/BEDROCK-FACTS.md §5), deterministic here. */
export function generatedRecordId(seed: number, jobArn: string, fileKey: string, lineNo: number): string {
  const random = seededRandom(hash53(`${jobArn}\u0000${fileKey}\u0000${lineNo}`, seed) % 4294967296);
  let id = '';
  for (let i = 0; i < 11; i++) id += ID_ALPHABET[Math.floor(random() * ID_ALPHABET.length)];
  return id;
}

function processRecord(line: string, file: InputFile, lineNo: number, opts: ProcessJobOptions): RecordResult {
  const record = JSON.parse(line) as Record<string, unknown>;
  const recordId =
    typeof record.recordId === 'string' && record.recordId !== ''
      ? record.recordId
      : typeof record.recordId === 'number'
        ? String(record.recordId)
        : generatedRecordId(opts.faults.seed, opts.jobArn, file.key, lineNo);
  const modelInput = record.modelInput;
  const failure = (errorCode: number, errorMessage: string): RecordResult => ({
    ok: false,
    line: JSON.stringify({ recordId, modelInput, error: { errorCode, errorMessage } }),
  });

  // Validating does not check modelInput against the model's schema; a bad body fails its record only (docs/BEDROCK-FACTS.md §4).
  if (modelInput === undefined) return failure(400, 'modelInput: Field required');
  if (!isRecord(modelInput)) return failure(400, 'modelInput must be a JSON object');
  const problem = fakeModelInputProblem(opts.family, modelInput, opts.invocationType);
  if (problem) return failure(400, problem);
  if (opts.faults.fires('record-error', opts.jobArn, recordId)) {
    return failure(400, 'The model could not process this record (emulated record-error fault).');
  }
  if (opts.faults.fires('record-throttle', opts.jobArn, recordId)) {
    return failure(429, 'Too many requests, please wait before trying again.');
  }
  const result = fakeModelOutput({
    modelId: opts.modelId,
    family: opts.family,
    modelInput,
    invocationType: opts.invocationType,
    seed: opts.faults.seed,
    longOutput: opts.faults.fires('long-outputs', opts.jobArn, recordId),
  });
  if (!result.ok) return failure(result.errorCode, result.message);
  return {
    ok: true,
    // Real batch output is compact JSON with keys in this order (docs/BEDROCK-FACTS.md §5, aws-samples output).
    line: JSON.stringify({ modelInput, modelOutput: result.body, recordId }),
    inputTokens: result.usage.input,
    outputTokens: result.usage.output,
  };
}
