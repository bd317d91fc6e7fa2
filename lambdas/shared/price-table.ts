/**
 * The shipped price table: what one million tokens cost per foundation model, on demand and in
 * batch, in USD, keyed by bare foundation-model id (`baseModelId`: a profile id or ARN is priced
 * as the model behind it). Data only: the arithmetic is in prices.ts, and cdk.json's
 * `bedrockBatch.prices` replaces or extends rows (docs/OPERATIONS.md, "Costs").
 *
 * Where the figures come from: the authority is the Amazon Bedrock pricing page
 * ({@link PRICE_TABLE_SOURCE}), but its per-model tables are rendered by script and were not in
 * any copy we could read when this table was compiled ({@link PRICE_TABLE_DATE}). Each row
 * therefore names the public pages it was read from (`sources`) and says `confirmed: false`:
 * check a row against the AWS page (region us-east-1, standard tier) before relying on it, and
 * override it in cdk.json where it differs. Models the project knows but for which no figure
 * could be found, or the sources disagree, are in {@link UNPRICED_MODELS} and are reported
 * with `cost: null`, never priced as another model.
 *
 * Batch: AWS documents batch inference at 50% of the on-demand price for the models that
 * support it (https://aws.amazon.com/blogs/machine-learning/automate-amazon-bedrock-batch-inference-building-a-scalable-and-efficient-pipeline/).
 * No row's batch price could be read from an AWS listing, so every row's batch price is half
 * its on-demand price and says so (`batchSource: 'half-of-on-demand'`).
 */

/** Where a row's batch prices come from. */
export type BatchPriceSource = 'listed' | 'half-of-on-demand';

/** One model's prices, USD per million tokens. Embeddings models have output prices of 0. */
export interface ModelPrice {
  readonly onDemandInput: number;
  readonly onDemandOutput: number;
  readonly batchInput: number;
  readonly batchOutput: number;
  /** `listed`: the batch prices were read from a price list; `half-of-on-demand`: derived. */
  readonly batchSource: BatchPriceSource;
  /** Where the figures were read (URLs), or `cdk.json` for an override. */
  readonly sources: readonly string[];
  /** The day the figures were read or set (YYYY-MM-DD); an override may leave it out. */
  readonly asOf?: string;
  /** True when the figures were read on the AWS Bedrock pricing page itself, or set by the operator in cdk.json. */
  readonly confirmed: boolean;
  readonly note?: string;
}

/** The authority every row should agree with. */
export const PRICE_TABLE_SOURCE = 'https://aws.amazon.com/bedrock/pricing/';
/** The day this table was compiled. */
export const PRICE_TABLE_DATE = '2026-12-05';

const ANTHROPIC_PRICING = 'https://docs.anthropic.com/en/docs/about-claude/pricing';
const INVENTIVEHQ = 'https://inventivehq.com/blog/aws-bedrock-pricing-guide';
const DEPLOYBASE_BEDROCK = 'https://deploybase.ai/articles/amazon-bedrock-pricing';
const DEPLOYBASE_CLAUDE = 'https://deploybase.ai/articles/claude-api-pricing';
const CLAUDER_NAVI = 'https://clauder-navi.com/en/bedrock-claude-cost/';
const PRISTREN_NOVA = 'https://pristren.com/blog/amazon-nova-micro-ultra-fast';
const SWFTE_NOVA_PRO = 'https://www.swfte.com/de/blog/amazon-nova-pro-pricing';
const TOKENMIX = 'https://tokenmix.ai/blog/aws-bedrock-pricing';
const WRING_BATCH = 'https://www.wring.co/blog/aws-bedrock-batch-inference-guide';

/** A row whose batch prices are half its on-demand prices. */
function row(onDemandInput: number, onDemandOutput: number, sources: string[], note?: string): ModelPrice {
  return {
    onDemandInput,
    onDemandOutput,
    batchInput: onDemandInput / 2,
    batchOutput: onDemandOutput / 2,
    batchSource: 'half-of-on-demand',
    sources,
    asOf: PRICE_TABLE_DATE,
    confirmed: false,
    ...(note ? { note } : {}),
  };
}

const CLAUDE_35_SONNET_NOTE =
  'A 2026 page (clauder-navi.com) reports $6/$30 for Claude 3.5 Sonnet on Bedrock (extended access); the older sources give $3/$15. Check the AWS page.';

/** USD per million tokens by bare foundation-model id (us-east-1, standard tier, on demand; batch at half). */
export const PRICE_TABLE: Readonly<Record<string, ModelPrice>> = {
  // Anthropic: Bedrock's Claude prices are reported to match Anthropic's own list prices.
  'anthropic.claude-3-haiku-20240307-v1:0': row(0.25, 1.25, [ANTHROPIC_PRICING, INVENTIVEHQ]),
  'anthropic.claude-3-5-haiku-20241022-v1:0': row(0.8, 4, [DEPLOYBASE_BEDROCK, ANTHROPIC_PRICING]),
  'anthropic.claude-3-sonnet-20240229-v1:0': row(3, 15, [INVENTIVEHQ]),
  'anthropic.claude-3-5-sonnet-20240620-v1:0': row(3, 15, [INVENTIVEHQ, ANTHROPIC_PRICING], CLAUDE_35_SONNET_NOTE),
  'anthropic.claude-3-5-sonnet-20241022-v2:0': row(3, 15, [ANTHROPIC_PRICING, TOKENMIX], CLAUDE_35_SONNET_NOTE),
  'anthropic.claude-3-7-sonnet-20250219-v1:0': row(3, 15, [DEPLOYBASE_BEDROCK, ANTHROPIC_PRICING]),
  'anthropic.claude-sonnet-4-20250514-v1:0': row(3, 15, [ANTHROPIC_PRICING, DEPLOYBASE_CLAUDE]),
  'anthropic.claude-sonnet-4-5-20250929-v1:0': row(
    3,
    15,
    [DEPLOYBASE_CLAUDE, CLAUDER_NAVI],
    'Global cross-region endpoint price; clauder-navi.com reports regional endpoints of the 4.5 generation at 10% more.',
  ),
  'anthropic.claude-opus-4-20250514-v1:0': row(15, 75, [DEPLOYBASE_BEDROCK, ANTHROPIC_PRICING]),
  // Amazon
  'amazon.nova-micro-v1:0': row(0.035, 0.14, [PRISTREN_NOVA]),
  'amazon.nova-lite-v1:0': row(0.06, 0.24, [PRISTREN_NOVA, TOKENMIX]),
  'amazon.nova-pro-v1:0': row(0.8, 3.2, [PRISTREN_NOVA, SWFTE_NOVA_PRO, TOKENMIX], 'swfte.com reports batch at $0.40/$1.60, the same as half of on demand.'),
  'amazon.titan-embed-text-v2:0': row(0.02, 0, [INVENTIVEHQ], 'Embeddings: input tokens only.'),
  // Meta
  'meta.llama3-1-8b-instruct-v1:0': row(
    0.22,
    0.22,
    [INVENTIVEHQ, TOKENMIX],
    'inventivehq.com gives $0.22/$0.22 for Llama 3 8B and tokenmix.ai $0.22 input for the 8B; deploybase.ai gives $0.08/$0.32 for Llama 3.1 8B. Check the AWS page.',
  ),
  // Mistral AI (text completion: outputs carry no token counts, so their tokens are estimated)
  'mistral.mistral-7b-instruct-v0:2': row(0.15, 0.2, [INVENTIVEHQ]),
  'mistral.mixtral-8x7b-instruct-v0:1': row(0.45, 0.7, [INVENTIVEHQ]),
  'mistral.mistral-large-2402-v1:0': row(4, 12, [INVENTIVEHQ, WRING_BATCH]),
};

/**
 * Models this project knows (samples, tests, docs, the emulator) with no shipped price, and why.
 * A run on one gets `cost: null` and a warning until cdk.json's `bedrockBatch.prices` names it.
 */
export const UNPRICED_MODELS: Readonly<Record<string, string>> = {
  'meta.llama3-1-70b-instruct-v1:0': 'sources disagree ($0.99 per million input in wring.co, $0.55/$2.20 in deploybase.ai) and the AWS page could not be read',
  'meta.llama4-scout-17b-instruct-v1:0': 'no published figure found',
  'meta.llama4-maverick-17b-instruct-v1:0': 'no published figure found',
  'mistral.mistral-small-2402-v1:0': 'no published figure found',
  'mistral.mistral-large-2407-v1:0': 'no published figure found',
};
