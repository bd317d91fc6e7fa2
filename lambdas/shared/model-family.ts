/**
 * Model families: which request body a model takes and how its response reports token usage.
 * Used by the pipeline to reject `modelInput`s that can never be valid, and by the local
 * emulator to fake outputs of the right shape. What a model costs is per model id, not per
 * family: see prices.ts and price-table.ts.
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

/** A token count, or 0 when the value is not one. */
function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Token usage reported in a model output body, per family; zeros where it reports none (token-estimate.ts estimates those). */
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
 * Whether a model output stopped because it reached the request's output token limit: cut
 * off, though the record succeeded. Each family names it its own way (docs/BEDROCK-FACTS.md,
 * "Stop reasons"): Anthropic `stop_reason` and Nova (and every Converse output) `stopReason`
 * `max_tokens`; Llama `stop_reason` `length`; Mistral `outputs[].stop_reason` or
 * `choices[].finish_reason` `length`. Embeddings never stop early.
 */
export function stoppedAtMaxTokens(family: ModelFamily, modelOutput: unknown): boolean {
  if (!isObject(modelOutput)) return false;
  // A Converse job's output has the Converse shape whatever the family.
  if (modelOutput.stopReason === 'max_tokens') return true;
  switch (family) {
    case 'anthropic':
      return modelOutput.stop_reason === 'max_tokens';
    case 'nova': // its stopReason, checked above
      return false;
    case 'llama':
      return modelOutput.stop_reason === 'length';
    case 'mistral': {
      const first = (list: unknown) => (Array.isArray(list) && isObject(list[0]) ? list[0] : {});
      return first(modelOutput.outputs).stop_reason === 'length' || first(modelOutput.choices).finish_reason === 'length';
    }
    case 'titan-embed':
      return false;
  }
}
