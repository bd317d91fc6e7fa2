/**
 * What a run cost: its batch and on-demand tokens priced by its model's row of the price table
 * (price-table.ts, with cdk.json's `bedrockBatch.prices` over it), and the validation of those
 * overrides. A model with no price is never priced as $0 or as another model: its cost is null
 * and the summary says why.
 */
import { baseModelId } from './model-family';
import type { TokenCounts } from './outcomes';
import { PRICE_TABLE, PRICE_TABLE_SOURCE, UNPRICED_MODELS, type ModelPrice } from './price-table';

export type { ModelPrice } from './price-table';

/** Prices by model id (a bare foundation-model id; profile ids and ARNs are reduced to it). */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** Validated price overrides (cdk.json's `bedrockBatch.prices`), keyed by bare foundation-model id. */
export type PriceOverrides = Readonly<Record<string, PriceOverrideProps>>;

/** The row an override makes: batch at half of on demand unless given, taken as checked by the operator. */
function overrideRow(o: PriceOverrideProps): ModelPrice {
  const listed = o.batchInput !== undefined && o.batchOutput !== undefined;
  return {
    onDemandInput: o.onDemandInput,
    onDemandOutput: o.onDemandOutput,
    batchInput: listed ? o.batchInput! : o.onDemandInput / 2,
    batchOutput: listed ? o.batchOutput! : o.onDemandOutput / 2,
    batchSource: listed ? 'listed' : 'half-of-on-demand',
    sources: [o.source ?? 'cdk.json'],
    ...(o.asOf ? { asOf: o.asOf } : {}),
    // Set by the operator for their account: taken as checked.
    confirmed: true,
    ...(o.note ? { note: o.note } : {}),
  };
}

/** The shipped table with `overrides` (validated, keyed by bare id) replacing or adding rows. */
export function priceTable(overrides: PriceOverrides = {}): PriceTable {
  return { ...PRICE_TABLE, ...Object.fromEntries(Object.entries(overrides).map(([model, o]) => [model, overrideRow(o)])) };
}

/** The price of `modelId` (a model id, inference profile id or ARN), or undefined. */
export function priceOf(modelId: string, overrides: PriceOverrides = {}): ModelPrice | undefined {
  return priceTable(overrides)[baseModelId(modelId)];
}

/** Tokens of a run by how they were billed; `estimated` is the part of both that was estimated from text. */
export interface RunTokens {
  readonly batch: TokenCounts;
  readonly onDemand: TokenCounts;
  readonly estimated: TokenCounts;
}

/** `summary.json`'s `cost`: USD estimates of what the run's tokens cost. */
export interface RunCost {
  readonly currency: 'USD';
  /** What the batch jobs' tokens cost at the model's batch price. */
  readonly batchUsd: number;
  /** What the on-demand records' tokens cost at the on-demand price. */
  readonly onDemandUsd: number;
  /** What every token would have cost on demand. */
  readonly allOnDemandUsd: number;
  /** True when some tokens were estimated from the text (`estimatedTokens`), not reported by the model. */
  readonly estimated: boolean;
  readonly estimatedTokens?: TokenCounts;
  /** The price-table row used (bare foundation-model id), absent when there were no tokens to price. */
  readonly model?: string;
  /** The row's prices, USD per million tokens. */
  readonly prices?: Pick<ModelPrice, 'onDemandInput' | 'onDemandOutput' | 'batchInput' | 'batchOutput' | 'batchSource'>;
  /** Where the row's figures come from (URLs, or `cdk.json`) and their date. */
  readonly priceSource?: readonly string[];
  readonly priceAsOf?: string;
  /** False when the figures were not checked on the AWS pricing page (see docs/OPERATIONS.md, "Costs"). */
  readonly priceConfirmed?: boolean;
}

const MILLION = 1_000_000;
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const usd = (t: TokenCounts, input: number, output: number) => round6((t.input * input + t.output * output) / MILLION);

/** A cost of nothing: no tokens were used. */
export const NO_COST: RunCost = { currency: 'USD', batchUsd: 0, onDemandUsd: 0, allOnDemandUsd: 0, estimated: false };

/**
 * The cost of a run's tokens on `modelId`, or null with the warning to report when the model has
 * no price (or is not known and tokens were used).
 */
export function runCost(modelId: string | undefined, tokens: RunTokens, overrides: PriceOverrides = {}): { cost: RunCost | null; warning?: string } {
  const all = { input: tokens.batch.input + tokens.onDemand.input, output: tokens.batch.output + tokens.onDemand.output };
  if (modelId === undefined || modelId === '') {
    if (all.input === 0 && all.output === 0) return { cost: NO_COST };
    return { cost: null, warning: 'cost not estimated: the run names no model, so its tokens cannot be priced' };
  }
  const model = baseModelId(modelId);
  const price = priceTable(overrides)[model];
  if (!price) {
    const why = UNPRICED_MODELS[model];
    return {
      cost: null,
      warning:
        `cost not estimated: no price for model ${model}${why ? ` (${why})` : ''}; ` +
        `add it under bedrockBatch.prices in cdk.json (USD per million tokens, see ${PRICE_TABLE_SOURCE})`,
    };
  }
  const estimated = tokens.estimated.input + tokens.estimated.output > 0;
  return {
    cost: {
      currency: 'USD',
      batchUsd: usd(tokens.batch, price.batchInput, price.batchOutput),
      onDemandUsd: usd(tokens.onDemand, price.onDemandInput, price.onDemandOutput),
      allOnDemandUsd: usd(all, price.onDemandInput, price.onDemandOutput),
      estimated,
      ...(estimated ? { estimatedTokens: { ...tokens.estimated } } : {}),
      model,
      prices: {
        onDemandInput: price.onDemandInput,
        onDemandOutput: price.onDemandOutput,
        batchInput: price.batchInput,
        batchOutput: price.batchOutput,
        batchSource: price.batchSource,
      },
      priceSource: price.sources,
      ...(price.asOf ? { priceAsOf: price.asOf } : {}),
      priceConfirmed: price.confirmed,
    },
  };
}

/** A price as given in cdk.json (`bedrockBatch.prices`) or construct props, USD per million tokens. */
export interface PriceOverrideProps {
  readonly onDemandInput: number;
  /** 0 for an embeddings model. */
  readonly onDemandOutput: number;
  /** With `batchOutput`, or neither. @default half of `onDemandInput` */
  readonly batchInput?: number;
  /** With `batchInput`, or neither. @default half of `onDemandOutput` */
  readonly batchOutput?: number;
  /** Where the price was read, e.g. a URL. @default 'cdk.json' */
  readonly source?: string;
  /** The day it was read, YYYY-MM-DD. */
  readonly asOf?: string;
  readonly note?: string;
}

/** Where validation problems go (lib/pipeline-config.ts's `SettingProblems`). */
export interface ProblemSink {
  add(message: string): void;
}

const OVERRIDE_KEYS = ['onDemandInput', 'onDemandOutput', 'batchInput', 'batchOutput', 'source', 'asOf', 'note'];
/** Highest price accepted, USD per million tokens: far above any listed model; catches a per-token or per-1k slip the other way. */
export const MAX_PRICE_PER_MILLION = 1000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks cdk.json's `prices` (`{"<model id>": {"onDemandInput": 3, "onDemandOutput": 15,
 * "batchInput"?: 1.5, "batchOutput"?: 7.5, "source"?: "...", "asOf"?: "YYYY-MM-DD", "note"?: "..."}}`,
 * USD per million tokens) into `problems`, each named by its path under `path`, and returns them
 * keyed by bare foundation-model id (valid input for this function again: construct props are
 * checked after cdk.json). Batch prices are given together or not at all (then half of on demand).
 */
export function collectPriceOverrides(problems: ProblemSink, path: string, raw: unknown): Record<string, PriceOverrideProps> {
  const rows: Record<string, PriceOverrideProps> = {};
  if (raw === undefined) return rows;
  if (!isPlainObject(raw)) {
    problems.add(
      `${path} must be an object of prices by model id, e.g. {"anthropic.claude-3-haiku-20240307-v1:0": {"onDemandInput": 0.25, "onDemandOutput": 1.25}} (USD per million tokens)`,
    );
    return rows;
  }
  const seen = new Map<string, string>();
  for (const [modelId, entry] of Object.entries(raw)) {
    const at = `${path}.${modelId}`;
    const model = modelId.trim() === '' ? '' : baseModelId(modelId.trim());
    if (model === '') {
      problems.add(`${path}: a model id must not be empty`);
      continue;
    }
    const earlier = seen.get(model);
    if (earlier !== undefined) {
      problems.add(`${at}: the same model as ${path}.${earlier} (both are ${model}); give each model one price`);
      continue;
    }
    seen.set(model, modelId);
    if (!isPlainObject(entry)) {
      problems.add(`${at} must be an object with onDemandInput and onDemandOutput (USD per million tokens) (got ${JSON.stringify(entry)})`);
      continue;
    }
    for (const key of Object.keys(entry)) {
      if (!OVERRIDE_KEYS.includes(key)) problems.add(`${at}.${key} is not a known price field (known: ${OVERRIDE_KEYS.join(', ')})`);
    }
    let ok = true;
    const amount = (key: string, required: boolean): number | undefined => {
      const v = entry[key];
      if (v === undefined) {
        if (required) {
          problems.add(`${at}.${key} is required: USD per million ${key.endsWith('Input') ? 'input' : 'output'} tokens (0 for an embeddings model's output)`);
          ok = false;
        }
        return undefined;
      }
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_PRICE_PER_MILLION) {
        problems.add(`${at}.${key} must be a number 0..${MAX_PRICE_PER_MILLION}, USD per million tokens (got ${JSON.stringify(v)})`);
        ok = false;
      }
      return v as number;
    };
    const onDemandInput = amount('onDemandInput', true);
    const onDemandOutput = amount('onDemandOutput', true);
    const batchInput = amount('batchInput', false);
    const batchOutput = amount('batchOutput', false);
    if ((batchInput === undefined) !== (batchOutput === undefined)) {
      problems.add(`${at}: give batchInput and batchOutput together, or neither (batch is then half of on demand)`);
      ok = false;
    }
    if (entry.source !== undefined && (typeof entry.source !== 'string' || entry.source.trim() === '')) {
      problems.add(`${at}.source must be a non-empty string, e.g. the URL the price was read from (got ${JSON.stringify(entry.source)})`);
      ok = false;
    }
    if (entry.asOf !== undefined && (typeof entry.asOf !== 'string' || !DATE.test(entry.asOf))) {
      problems.add(`${at}.asOf must be a date YYYY-MM-DD (got ${JSON.stringify(entry.asOf)})`);
      ok = false;
    }
    if (entry.note !== undefined && typeof entry.note !== 'string') {
      problems.add(`${at}.note must be a string (got ${JSON.stringify(entry.note)})`);
      ok = false;
    }
    if (!ok || onDemandInput === undefined || onDemandOutput === undefined) continue;
    rows[model] = {
      onDemandInput,
      onDemandOutput,
      ...(batchInput !== undefined ? { batchInput } : {}),
      ...(batchOutput !== undefined ? { batchOutput } : {}),
      ...(typeof entry.source === 'string' ? { source: entry.source.trim() } : {}),
      ...(typeof entry.asOf === 'string' ? { asOf: entry.asOf } : {}),
      ...(typeof entry.note === 'string' ? { note: entry.note } : {}),
    };
  }
  return rows;
}

/** One line for a terminal: what the run cost, or why that is not known. */
export function describeCost(cost: RunCost | null): string {
  if (!cost) return 'cost not estimated (no price for the model: see the warnings)';
  const estimated = cost.estimated ? ', tokens partly estimated from the text' : '';
  return `est. $${round6(cost.batchUsd + cost.onDemandUsd)} (on demand alone: $${cost.allOnDemandUsd}${estimated})`;
}
