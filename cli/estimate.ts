/**
 * `bedrock-batch estimate`: what a run of local JSONL files would be before anything is
 * submitted: its records and rejected lines (validated as Prepare validates them), the jobs it
 * would make, its input tokens (estimated from the text), an upper bound of its output tokens,
 * and what they would cost at batch and at on-demand prices. Pure computation over the files.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { planChunks } from '../lambdas/shared/chunk-plan';
import { batchModelProblem, catalogModel, QUOTA_KINDS, type QuotaKind } from '../lambdas/shared/model-catalog';
import { KNOWN_FAMILIES_HINT, modelFamily, type ModelFamily } from '../lambdas/shared/model-family';
import { planningQuotas, type PlannedValue } from '../lambdas/shared/model-quotas';
import { priceOf, runCost } from '../lambdas/shared/prices';
import { PRICE_TABLE_SOURCE } from '../lambdas/shared/price-table';
import { RecordIdIndex } from '../lambdas/shared/record-id-index';
import { fileStemOf, judgeLine, uniqueStem } from '../lambdas/shared/records';
import { splitLineBatches } from '../lambdas/shared/s3-jsonl';
import { estimateInputTokens } from '../lambdas/shared/token-estimate';
import { MAX_RECORDS_PER_JOB_LIMIT, PIPELINE_DEFAULTS, ROUTE_DEFAULTS } from '../lib/pipeline-settings';
import { requestedMaxTokens, requestRuleProblem } from '../local/emulator/request-rules';

/** What {@link estimateFiles} found; JSON-serialisable, so a `--json` output can print it as it is. */
export interface EstimateReport {
  /** The input files, as given. */
  readonly files: readonly string[];
  readonly modelId: string;
  /** Valid records: the lines Prepare would put into jobs. */
  readonly records: number;
  /** Blank lines: skipped, neither records nor rejected. */
  readonly blankLines: number;
  /** Lines Prepare would reject: how many, and the first {@link MAX_REJECTION_EXAMPLES} as `file:line: why`. */
  readonly rejected: { readonly count: number; readonly first: readonly string[] };
  /** Batch jobs the records would make (planned by count, as Prepare plans them). */
  readonly jobs: number;
  /** Most records per job used: the stricter of the route's maximum and the model's quota. */
  readonly recordsPerJob: number;
  /** Fewest records per job used: the stricter of the route's minimum and the model's quota. */
  readonly minRecordsPerJob: number;
  /** Records no valid job can take (fewer than the minimum): run on demand, held or failed, per the route's policy. */
  readonly smallRemainder: number;
  /** Input tokens, estimated from the text (see `method`). */
  readonly inputTokens: number;
  /** Output tokens at most: the sum of each record's `max_tokens` (or its family's field). */
  readonly outputTokensUpperBound: number;
  /** Records that name no output token limit (0 for an embeddings model, which has no output). */
  readonly recordsWithoutMaxTokens: number;
  /** Output tokens counted for each of those: the model's output limit, or null when it is unknown (then not counted). */
  readonly assumedMaxTokens: number | null;
  /** Every token at the batch price, and every token on demand; null when the model has no price (never $0). */
  readonly cost: { readonly batchUsd: number; readonly onDemandUsd: number } | null;
  readonly warnings: readonly string[];
  /** One line: how the tokens were estimated. */
  readonly method: string;
}

/** Options of {@link estimateFiles}. */
export interface EstimateOptions {
  /** A model id, inference profile id or ARN. */
  readonly modelId: string;
  /** The route's maximum records per job, 1..50000. @default 50000 */
  readonly maxRecordsPerJob?: number;
  /** The route's minimum records per job, 1..50000. @default 100 */
  readonly minRecordsPerJob?: number;
}

/** How many rejected lines a report quotes. */
export const MAX_REJECTION_EXAMPLES = 5;

/** The field each family names its output token limit in (local/emulator/request-rules.ts reads it). */
const OUTPUT_LIMIT_FIELD: Readonly<Record<ModelFamily, string>> = {
  anthropic: 'max_tokens',
  mistral: 'max_tokens',
  nova: 'inferenceConfig.maxTokens (or max_new_tokens)',
  llama: 'max_gen_len',
  'titan-embed': '',
};

function checkedInt(name: string, value: number | undefined): number | undefined {
  if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > MAX_RECORDS_PER_JOB_LIMIT)) {
    throw new Error(`${name} must be an integer in 1..${MAX_RECORDS_PER_JOB_LIMIT}, got ${value}`);
  }
  return value;
}

/**
 * Estimates a run of `files` on `options.modelId`, streaming each file once (files may be far
 * larger than memory). Lines are judged as Prepare judges them (lambdas/shared/records.ts, with
 * duplicate ids across all files), jobs planned with the model catalog's quotas (Service Quotas
 * is not read: the documented defaults stand in for the account's values).
 * @throws Error for a model of no known family, an invalid option, or a file that cannot be read
 */
export async function estimateFiles(files: readonly string[], options: EstimateOptions): Promise<EstimateReport> {
  const { modelId } = options;
  const family = modelFamily(modelId);
  if (!family) throw new Error(`model ${modelId} is of no known model family (known: ${KNOWN_FAMILIES_HINT})`);
  const routeMax = checkedInt('maxRecordsPerJob', options.maxRecordsPerJob) ?? ROUTE_DEFAULTS.maxRecordsPerJob;
  const routeMin = checkedInt('minRecordsPerJob', options.minRecordsPerJob) ?? ROUTE_DEFAULTS.minRecordsPerJob;
  for (const file of files) {
    const info = await stat(file).catch((err: Error) => {
      throw new Error(`cannot read ${file}: ${err.message}`, { cause: err });
    });
    if (!info.isFile()) throw new Error(`cannot read ${file}: not a file`);
  }

  const warnings: string[] = [];
  const model = catalogModel(modelId);
  const refusal = model ? batchModelProblem(modelId) : undefined;
  if (!model) warnings.push(`model ${modelId} is not in the model catalog: its quotas and output limit are unknown, the route's defaults were used`);
  if (refusal) warnings.push(`Bedrock would refuse the jobs: ${refusal}`);
  const quotas = Object.fromEntries(
    QUOTA_KINDS.map((kind): [QuotaKind, PlannedValue | undefined] => [kind, model ? { value: model.quotas[kind], source: 'default' } : undefined]),
  ) as Record<QuotaKind, PlannedValue | undefined>;
  const limits = planningQuotas(
    { maxRecordsPerJob: routeMax, minRecordsPerJob: routeMin, maxConcurrentJobs: PIPELINE_DEFAULTS.maxConcurrentJobs },
    { quotas, warnings: [] },
  ).values;
  const max = limits.maxRecordsPerJob.value;
  const min = limits.minRecordsPerJob.value;
  const assumedMaxTokens = family === 'titan-embed' ? null : (model?.maxOutputTokens ?? null);

  let records = 0;
  let blankLines = 0;
  let rejectedCount = 0;
  const firstRejections: string[] = [];
  let inputTokens = 0;
  let outputTokens = 0;
  let withoutMaxTokens = 0;
  let jobBytes = 0;
  let refused = 0;
  let firstRefusal: string | undefined;
  const seen = new RecordIdIndex();
  const fileBases: Array<{ base: number; file: string }> = [];
  const stems = new Set<string>();
  let base = 0;
  const reject = (file: string, line: number, reason: string) => {
    rejectedCount += 1;
    if (firstRejections.length < MAX_REJECTION_EXAMPLES) firstRejections.push(`${file}:${line}: ${reason}`);
  };

  for (const file of files) {
    const fileStem = uniqueStem(fileStemOf(file), stems);
    fileBases.push({ base, file });
    let line = 0;
    try {
      // Split on bytes with Prepare's own splitter, not node:readline: readline decodes as it
      // splits (invalid UTF-8 silently becomes U+FFFD) and also ends lines at a lone CR.
      for await (const batch of splitLineBatches(createReadStream(file, { highWaterMark: 1 << 20 }))) {
        for (const raw of batch) {
          line += 1;
          const verdict = judgeLine(raw, { file, fileStem, line, family });
          if (verdict.kind === 'blank') {
            blankLines += 1;
            continue;
          }
          if (verdict.kind === 'rejected') {
            reject(file, line, verdict.rejection.reason);
            continue;
          }
          const first = seen.firstSeen(verdict.record.recordId, base + line);
          if (first !== undefined) {
            const at = fileBases.findLast((f) => f.base < first)!;
            reject(file, line, `duplicate recordId (first seen at ${at.file}:${first - at.base})`);
            continue;
          }
          records += 1;
          jobBytes += verdict.record.json.length + 1;
          const { modelInput } = JSON.parse(verdict.record.json.toString('utf8')) as { modelInput: Record<string, unknown> };
          inputTokens += estimateInputTokens(modelInput);
          const asked = requestedMaxTokens(family, modelInput, 'InvokeModel');
          if (asked !== undefined) outputTokens += Math.max(0, Math.floor(asked));
          else if (family !== 'titan-embed') {
            withoutMaxTokens += 1;
            outputTokens += assumedMaxTokens ?? 0;
          }
          const problem = requestRuleProblem(modelId, family, modelInput, 'InvokeModel', model);
          if (problem) {
            refused += 1;
            firstRefusal ??= `${file}:${line}: ${problem}`;
          }
        }
      }
    } catch (err) {
      // A file that vanished or became unreadable after the check above; other errors are ours.
      if ((err as NodeJS.ErrnoException).code !== undefined) throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    base += line;
  }

  let plan = { sizes: [] as readonly number[], remainder: records };
  if (min > max) {
    warnings.push(
      `Prepare would refuse the run: the minimum of ${min} records per job for ${modelId} is above the maximum of ${max}; raise maxRecordsPerJob to at least ${min}`,
    );
  } else plan = planChunks(records, { maxRecordsPerJob: max, minRecordsPerJob: min });
  if (records === 0) warnings.push('no valid records: nothing would be submitted');
  else if (plan.remainder > 0 && min <= max) {
    warnings.push(
      `${plan.remainder} record(s) fewer than the minimum of ${min} per job form a small remainder: no batch job takes them; ` +
        `per the route's small-remainder policy they run on demand (at the on-demand price), are held for the next sweep, or fail`,
    );
  }
  const maxFileBytes = model?.quotas.maxFileBytes;
  if (maxFileBytes !== undefined && plan.sizes.length > 0 && Math.ceil(jobBytes / maxFileBytes) > plan.sizes.length) {
    warnings.push(
      `the records take ${jobBytes} bytes: Bedrock's input file quota (${maxFileBytes} bytes per job) makes at least ${Math.ceil(jobBytes / maxFileBytes)} jobs, more than the ${plan.sizes.length} planned by count`,
    );
  }
  if (withoutMaxTokens > 0) {
    warnings.push(
      assumedMaxTokens !== null
        ? `${withoutMaxTokens} record(s) name no ${OUTPUT_LIMIT_FIELD[family]}: each was counted at the model's output limit of ${assumedMaxTokens} tokens`
        : `${withoutMaxTokens} record(s) name no ${OUTPUT_LIMIT_FIELD[family]} and the model's output limit is unknown: their output tokens are not counted, so the output bound is not one for them`,
    );
  }
  if (refused > 0) warnings.push(`${refused} record(s) would be refused by the model (400), e.g. ${firstRefusal}`);

  const tokens = { input: inputTokens, output: outputTokens };
  const priced = runCost(modelId, { batch: tokens, onDemand: { input: 0, output: 0 }, estimated: tokens });
  if (priced.warning) warnings.push(priced.warning);
  const price = priceOf(modelId);
  if (price && !price.confirmed) {
    warnings.push(
      `the prices of ${modelId} were read ${price.asOf ?? 'on an unknown date'} from pages other than AWS's and are not confirmed` +
        `${price.batchSource === 'half-of-on-demand' ? ' (batch taken as half of on demand)' : ''}: check ${PRICE_TABLE_SOURCE}`,
    );
  }
  const outputMethod =
    family === 'titan-embed' ? 'none (an embeddings model has no output tokens)' : `at most each record's ${OUTPUT_LIMIT_FIELD[family]} (an upper bound)`;

  return {
    files: [...files],
    modelId,
    records,
    blankLines,
    rejected: { count: rejectedCount, first: firstRejections },
    jobs: plan.sizes.length,
    recordsPerJob: max,
    minRecordsPerJob: min,
    smallRemainder: plan.remainder,
    inputTokens,
    outputTokensUpperBound: outputTokens,
    recordsWithoutMaxTokens: withoutMaxTokens,
    assumedMaxTokens,
    cost: priced.cost ? { batchUsd: priced.cost.batchUsd, onDemandUsd: priced.cost.allOnDemandUsd } : null,
    warnings,
    method:
      `input tokens: ceil(characters / 4) of each record's modelInput text (prompt, inputText, system, messages' text and content; ` +
      `images and tool schemas not counted, so a floor for such records); output tokens: ${outputMethod}`,
  };
}

const count = (n: number) => n.toLocaleString('en-US');

/** The report as lines for a terminal (without trailing newlines). */
export function formatEstimate(report: EstimateReport): string[] {
  const r = report;
  return [
    `estimate for ${r.files.length} file(s) on ${r.modelId}`,
    `  records: ${count(r.records)} valid, ${count(r.rejected.count)} rejected, ${count(r.blankLines)} blank line(s)`,
    ...r.rejected.first.map((why) => `    rejected ${why}`),
    ...(r.rejected.count > r.rejected.first.length ? [`    ... and ${count(r.rejected.count - r.rejected.first.length)} more rejected`] : []),
    `  jobs: ${count(r.jobs)} (${count(r.minRecordsPerJob)}..${count(r.recordsPerJob)} records per job), small remainder: ${count(r.smallRemainder)} record(s)`,
    `  input tokens: ${count(r.inputTokens)} (estimated)`,
    `  output tokens: at most ${count(r.outputTokensUpperBound)}` +
      (r.recordsWithoutMaxTokens > 0
        ? ` (${count(r.recordsWithoutMaxTokens)} record(s) without a limit ${r.assumedMaxTokens !== null ? `counted at ${count(r.assumedMaxTokens)}` : 'not counted'})`
        : ''),
    r.cost
      ? `  cost: $${r.cost.batchUsd} at batch prices, $${r.cost.onDemandUsd} on demand (output tokens at their upper bound)`
      : '  cost: not estimated (no price for the model: see the warnings)',
    `  method: ${r.method}`,
    ...r.warnings.map((w) => `  warning: ${w}`),
  ];
}
