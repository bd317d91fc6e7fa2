/**
 * What Bedrock would write for each chunk of a benchmark run: one `.jsonl.out` file per job, the
 * chunk's records in shuffled order with an Anthropic message (with usage) as `modelOutput`, and
 * a `manifest.json.out`. Written by the benchmark's parent process, outside any measurement.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { chunkLabel, runKeys, type RunConfig } from '../../lambdas/shared/contracts';
import { modelFamily } from '../../lambdas/shared/model-family';
import { readObjectLines } from '../../lambdas/shared/s3-jsonl';
import { fakeModelOutput } from '../../local/emulator/fake-model';
import { hash53, seededRandom } from '../../local/emulator/faults';

/** The job outputs written for a round. */
export interface WrittenJobOutputs {
  /** Bedrock job id (the last part of the job ARN) of each chunk, by chunk index. */
  readonly jobIds: readonly string[];
  /** Bytes of the `.out` files with records (what reconcile reads), manifests excluded. */
  readonly bytes: number;
  /** Output lines written. */
  readonly records: number;
}

const JOB_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A 12-character job id like Bedrock's, stable for a run and chunk. */
export function benchJobId(runId: string, chunk: number): string {
  const random = seededRandom(hash53(`${runId}/${chunk}`) % 4294967296);
  let id = '';
  for (let i = 0; i < 12; i++) id += JOB_ID_ALPHABET[Math.floor(random() * JOB_ID_ALPHABET.length)];
  return id;
}

/** The job ARN of a chunk's benchmark job. */
export function benchJobArn(jobId: string): string {
  return `arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/${jobId}`;
}

/**
 * Writes the output of a completed job for every chunk of round 1 of `run`, reading each chunk's
 * input file. A chunk's lines are held in memory to shuffle them (Bedrock does not keep input
 * order); that is at most `maxRecordsPerJob` lines, in this process only.
 */
export async function writeJobOutputs(s3: S3Client, run: RunConfig, chunkCount: number, onChunk?: (chunk: number) => void): Promise<WrittenJobOutputs> {
  const family = modelFamily(run.modelId)!;
  const jobIds: string[] = [];
  let bytes = 0;
  let records = 0;
  for (let chunk = 0; chunk < chunkCount; chunk++) {
    const jobId = benchJobId(run.runId, chunk);
    jobIds.push(jobId);
    const lines: string[] = [];
    for await (const raw of readObjectLines(s3, run.bucket, runKeys.chunkInput(run.runId, 1, chunk))) {
      if (raw.length > 0) lines.push(raw.toString('utf8'));
    }
    const shuffle = seededRandom(hash53(jobId) % 4294967296);
    for (let i = lines.length - 1; i > 0; i--) {
      const j = Math.floor(shuffle() * (i + 1));
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    }

    const tokens = { input: 0, output: 0 };
    let chunkBytes = 0;
    async function* body(): AsyncGenerator<Buffer> {
      let batch: string[] = [];
      let batchSize = 0;
      for (const line of lines) {
        const { recordId, modelInput } = JSON.parse(line) as { recordId: string; modelInput: Record<string, unknown> };
        const result = fakeModelOutput({ modelId: run.modelId, family, modelInput });
        if (!result.ok) throw new Error(`benchmark record ${recordId} is not a valid Anthropic request: ${result.message}`);
        tokens.input += result.usage.input;
        tokens.output += result.usage.output;
        // Key order of real batch output (see local/emulator/job-processing.ts).
        const out = JSON.stringify({ modelInput, modelOutput: result.body, recordId }) + '\n';
        const size = Buffer.byteLength(out);
        chunkBytes += size;
        batch.push(out);
        batchSize += size;
        if (batchSize >= 1 << 20) {
          yield Buffer.from(batch.join(''));
          batch = [];
          batchSize = 0;
        }
      }
      if (batch.length > 0) yield Buffer.from(batch.join(''));
    }
    const prefix = `${runKeys.chunkOutputPrefix(run.runId, 1, chunk)}${jobId}/`;
    await new Upload({
      client: s3,
      params: { Bucket: run.bucket, Key: `${prefix}${chunkLabel(chunk)}.jsonl.out`, Body: Readable.from(body()), ContentType: 'application/x-ndjson' },
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
    }).done();
    const manifest = {
      totalRecordCount: lines.length,
      processedRecordCount: lines.length,
      successRecordCount: lines.length,
      errorRecordCount: 0,
      inputTokenCount: tokens.input,
      outputTokenCount: tokens.output,
    };
    await s3.send(
      new PutObjectCommand({ Bucket: run.bucket, Key: `${prefix}manifest.json.out`, Body: JSON.stringify(manifest), ContentType: 'application/json' }),
    );
    bytes += chunkBytes;
    records += lines.length;
    onChunk?.(chunk);
  }
  return { jobIds, bytes, records };
}
