/**
 * Token counts of a record: what its model output reports, or an estimate from the text where it
 * reports none (Mistral text completion never does; any other output may lack them).
 *
 * The estimate is ceil(characters / 4) of the record's text, the rule of thumb of the providers'
 * own docs ("a token is roughly 4 characters of English text"): the input from the text fields of
 * `modelInput` (`prompt`, `inputText`, `system`, and the `text`/`content` strings of `messages`),
 * the output from the text fields of `modelOutput` (`text`, `content`, `generation`,
 * `outputText`). Characters are UTF-16 code units (JavaScript string length). Images, tool
 * schemas and other non-text fields are not counted, so an estimate is a floor for such records.
 */
import { usageOf, type ModelFamily } from './model-family';
import type { TokenCounts } from './outcomes';

/** A record's token usage as written in `results.jsonl`: `estimated` marks counts from the text. */
export interface RecordUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly estimated?: true;
}

const INPUT_TEXT_KEYS = new Set(['prompt', 'inputText', 'system', 'text', 'content']);
const OUTPUT_TEXT_KEYS = new Set(['text', 'content', 'generation', 'outputText']);

/** Characters of the strings under `keys`, at any depth (arrays inherit their key). */
function textLength(value: unknown, keys: ReadonlySet<string>, key?: string): number {
  if (typeof value === 'string') return key !== undefined && keys.has(key) ? value.length : 0;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + textLength(v, keys, key), 0);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).reduce((sum, [k, v]) => sum + textLength(v, keys, k), 0);
  }
  return 0;
}

/** Estimated tokens of `modelInput`'s text: ceil(characters / 4). */
export function estimateInputTokens(modelInput: unknown): number {
  return Math.ceil(textLength(modelInput, INPUT_TEXT_KEYS) / 4);
}

/** Estimated tokens of `modelOutput`'s text: ceil(characters / 4). */
export function estimateOutputTokens(modelOutput: unknown): number {
  return Math.ceil(textLength(modelOutput, OUTPUT_TEXT_KEYS) / 4);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** Which of the two counts `modelOutput` carries, per family (where `usageOf` reads them). */
function reportedCounts(family: ModelFamily, modelOutput: unknown): { input: boolean; output: boolean } {
  if (!isObject(modelOutput)) return { input: false, output: false };
  const usage = isObject(modelOutput.usage) ? modelOutput.usage : {};
  switch (family) {
    case 'anthropic':
      return { input: isCount(usage.input_tokens), output: isCount(usage.output_tokens) };
    case 'nova':
      return { input: isCount(usage.inputTokens), output: isCount(usage.outputTokens) };
    case 'titan-embed':
      // An embedding has no output tokens: only the input count can be missing.
      return { input: isCount(modelOutput.inputTextTokenCount), output: true };
    case 'llama':
      return { input: isCount(modelOutput.prompt_token_count), output: isCount(modelOutput.generation_token_count) };
    case 'mistral':
      return { input: false, output: false };
  }
}

/**
 * A succeeded record's usage: the counts its output reports, each count it lacks estimated from
 * the text (then `estimated: true`).
 */
export function recordUsage(family: ModelFamily, modelInput: unknown, modelOutput: unknown): RecordUsage {
  const reported = usageOf(family, modelOutput);
  const has = reportedCounts(family, modelOutput);
  if (has.input && has.output) return { inputTokens: reported.input, outputTokens: reported.output };
  return {
    inputTokens: has.input ? reported.input : estimateInputTokens(modelInput),
    outputTokens: has.output ? reported.output : estimateOutputTokens(modelOutput),
    estimated: true,
  };
}

/** Adds a record's usage to a step's token counters (`tokens.estimated` for an estimated one). */
export function addUsage(tokens: TokenCounts, usage: RecordUsage | undefined): void {
  if (!usage) return;
  tokens.input += usage.inputTokens;
  tokens.output += usage.outputTokens;
  if (usage.estimated) {
    tokens.estimated ??= { input: 0, output: 0 };
    tokens.estimated.input += usage.inputTokens;
    tokens.estimated.output += usage.outputTokens;
  }
}
