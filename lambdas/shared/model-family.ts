/**
 * Model families: which request body a model takes, how its response reports token usage,
 * and what it costs. Used by the pipeline to reject `modelInput`s that can never be valid,
 * and by the local emulator to fake outputs of the right shape.
 */

export type ModelFamily = 'anthropic' | 'titan-embed' | 'nova' | 'llama' | 'mistral';

/** Region prefixes of system inference profiles (`us.anthropic...`, `global.anthropic...`). */
const PROFILE_PREFIXES = ['us', 'eu', 'apac', 'global', 'us-gov', 'ca', 'jp', 'au'];

/**
 * The bare foundation-model id behind a model id, profile id or ARN:
 * `arn:aws:bedrock:us-east-1::foundation-model/anthropic.x` and `us.anthropic.x` -> `anthropic.x`.
 */
export function baseModelId(modelId: string): string {
  let id = modelId;
  if (id.startsWith('arn:')) id = id.slice(id.lastIndexOf('/') + 1);
  const dot = id.indexOf('.');
  if (dot > 0 && PROFILE_PREFIXES.includes(id.slice(0, dot))) id = id.slice(dot + 1);
  return id;
}

/** The family of a model id, or undefined when this project does not know it. */
export function modelFamily(modelId: string): ModelFamily | undefined {
  const id = baseModelId(modelId);
  if (id.startsWith('anthropic.')) return 'anthropic';
  if (id.startsWith('amazon.titan-embed')) return 'titan-embed';
  if (id.startsWith('amazon.nova')) return 'nova';
  if (id.startsWith('meta.llama')) return 'llama';
  if (id.startsWith('mistral.')) return 'mistral';
  return undefined;
}

export const KNOWN_FAMILIES_HINT = 'anthropic.*, amazon.titan-embed*, amazon.nova*, meta.llama*, mistral.* (optionally behind an inference profile or ARN)';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyArray(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

/**
 * Why `modelInput` can never be valid for the family, or undefined when it may be.
 * Only structural checks that Bedrock would fail on for certain; never a full schema.
 */
export function modelInputProblem(family: ModelFamily, modelInput: Record<string, unknown>): string | undefined {
  if ('modelId' in modelInput) return 'modelInput must not contain modelId (the model is set per job)';
  switch (family) {
    case 'anthropic':
      if (typeof modelInput.anthropic_version !== 'string') return 'modelInput.anthropic_version is required (e.g. "bedrock-2023-05-31")';
      if (!nonEmptyArray(modelInput.messages)) return 'modelInput.messages must be a non-empty array';
      if (typeof modelInput.max_tokens !== 'number') return 'modelInput.max_tokens must be a number';
      return undefined;
    case 'titan-embed':
      if (typeof modelInput.inputText !== 'string' || modelInput.inputText === '') return 'modelInput.inputText must be a non-empty string';
      return undefined;
    case 'nova':
      if (!nonEmptyArray(modelInput.messages)) return 'modelInput.messages must be a non-empty array';
      return undefined;
    case 'llama':
      if (typeof modelInput.prompt !== 'string' || modelInput.prompt === '') return 'modelInput.prompt must be a non-empty string';
      return undefined;
    case 'mistral':
      if (typeof modelInput.prompt !== 'string' && !nonEmptyArray(modelInput.messages)) {
        return 'modelInput needs a prompt string or a non-empty messages array';
      }
      return undefined;
  }
}

/** False for families whose response body carries no token counts (Mistral text completion). */
export function familyReportsUsage(family: ModelFamily): boolean {
  return family !== 'mistral';
}

/** A token count, or 0 when the value is not one. */
function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Token usage reported in a model output body, per family; zeros where the family reports none. */
export function usageOf(family: ModelFamily, modelOutput: unknown): { input: number; output: number } {
  if (!isObject(modelOutput)) return { input: 0, output: 0 };
  switch (family) {
    case 'anthropic': {
      const u = isObject(modelOutput.usage) ? modelOutput.usage : {};
      return { input: num(u.input_tokens), output: num(u.output_tokens) };
    }
    case 'nova': {
      const u = isObject(modelOutput.usage) ? modelOutput.usage : {};
      return { input: num(u.inputTokens), output: num(u.outputTokens) };
    }
    case 'titan-embed':
      return { input: num(modelOutput.inputTextTokenCount), output: 0 };
    case 'llama':
      return { input: num(modelOutput.prompt_token_count), output: num(modelOutput.generation_token_count) };
    case 'mistral':
      return { input: 0, output: 0 };
  }
}

/**
 * On-demand prices in USD per 1,000 tokens, by family (representative list prices; batch is
 * billed at half). Estimates only: the summary says so.
 */
export const ON_DEMAND_USD_PER_1K_TOKENS: Record<ModelFamily, { input: number; output: number }> = {
  anthropic: { input: 0.00025, output: 0.00125 },
  'titan-embed': { input: 0.00002, output: 0 },
  nova: { input: 0.00006, output: 0.00024 },
  llama: { input: 0.00022, output: 0.00022 },
  mistral: { input: 0.00015, output: 0.0002 },
};

/** Batch inference is priced at half the on-demand rate. */
export const BATCH_DISCOUNT = 0.5;

/** Estimated cost of token counts at batch and on-demand rates. */
export function estimateCostUsd(
  family: ModelFamily,
  batchTokens: { input: number; output: number },
  onDemandTokens: { input: number; output: number },
): { batchUsd: number; onDemandUsd: number } {
  const p = ON_DEMAND_USD_PER_1K_TOKENS[family];
  const price = (t: { input: number; output: number }) => (t.input / 1000) * p.input + (t.output / 1000) * p.output;
  const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
  return { batchUsd: round6(price(batchTokens) * BATCH_DISCOUNT), onDemandUsd: round6(price(onDemandTokens)) };
}
