/**
 * The per-record rules a real model applies to each request (the model catalog's
 * `requestRules`, lambdas/shared/model-catalog.ts): a record that breaks one fails with a 400
 * and the text AWS answers with, in a batch job's output and through InvokeModel alike, so the
 * twin shows the per-record failures a first deploy would (docs/BEDROCK-FACTS.md, "Model
 * catalog").
 */
import { catalogModel, type CatalogModel, type RequestRule } from '../../lambdas/shared/model-catalog';
import type { ModelFamily } from '../../lambdas/shared/model-family';
import type { InvocationType } from './fake-model';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The output token limit the request asks for, by family (or the Converse field), if it names one. */
export function requestedMaxTokens(family: ModelFamily, modelInput: Record<string, unknown>, invocationType: InvocationType): number | undefined {
  const cfg = isRecord(modelInput.inferenceConfig) ? modelInput.inferenceConfig : {};
  const pick = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  if (invocationType === 'Converse') return pick(cfg.maxTokens);
  switch (family) {
    case 'anthropic':
    case 'mistral':
      return pick(modelInput.max_tokens);
    case 'nova':
      return pick(cfg.maxTokens) ?? pick(cfg.max_new_tokens);
    case 'llama':
      return pick(modelInput.max_gen_len);
    case 'titan-embed':
      return undefined;
  }
}

/** Whether the request sets both a temperature and a top_p (the Converse or the Anthropic fields). */
function setsTemperatureAndTopP(modelInput: Record<string, unknown>, invocationType: InvocationType): boolean {
  if (invocationType === 'Converse') {
    const cfg = isRecord(modelInput.inferenceConfig) ? modelInput.inferenceConfig : {};
    return cfg.temperature !== undefined && cfg.topP !== undefined;
  }
  return modelInput.temperature !== undefined && modelInput.top_p !== undefined;
}

/**
 * The first image whose base64 data is over `max` bytes, as where it is and its size: an
 * Anthropic Messages block (`messages.I.content.J.image.source.base64`) or a Converse one
 * (`messages.I.content.J.image.source`, its `bytes` as JSON carries them, in base64).
 */
function oversizedImage(modelInput: Record<string, unknown>, invocationType: InvocationType, max: number): { at: string; bytes: number } | undefined {
  const messages = Array.isArray(modelInput.messages) ? modelInput.messages : [];
  for (const [i, message] of messages.entries()) {
    const content = isRecord(message) && Array.isArray(message.content) ? message.content : [];
    for (const [j, block] of content.entries()) {
      if (!isRecord(block)) continue;
      if (invocationType === 'Converse') {
        const source = isRecord(block.image) && isRecord(block.image.source) ? block.image.source : undefined;
        if (typeof source?.bytes === 'string' && source.bytes.length > max)
          return { at: `messages.${i}.content.${j}.image.source`, bytes: source.bytes.length };
      } else if (block.type === 'image' && isRecord(block.source) && block.source.type === 'base64' && typeof block.source.data === 'string') {
        if (block.source.data.length > max) return { at: `messages.${i}.content.${j}.image.source.base64`, bytes: block.source.data.length };
      }
    }
  }
  return undefined;
}

/** The first top-level key of the body that is not one of `keys`. */
function extraneousKey(modelInput: Record<string, unknown>, keys: readonly string[]): string | undefined {
  return Object.keys(modelInput).find((k) => !keys.includes(k));
}

/** Why the first message whose role is not one of `roles` is refused: a schema error for a missing or non-string role, else the model's. */
function roleProblem(modelInput: Record<string, unknown>, roles: readonly string[]): string | undefined {
  const messages = Array.isArray(modelInput.messages) ? modelInput.messages : [];
  for (const [i, message] of messages.entries()) {
    if (!isRecord(message)) continue;
    const role = message.role;
    if (role === undefined) return `Malformed input request: #/messages/${i}: required key [role] not found, please reformat your input and try again.`;
    if (typeof role !== 'string') {
      return `Malformed input request: #/messages/${i}/role: expected type: String, found: ${jsonTypeName(role)}, please reformat your input and try again.`;
    }
    if (!roles.includes(role)) {
      return `messages: Unexpected role "${role}". The Messages API accepts a top-level \`system\` parameter, not "system" as an input message role.`;
    }
  }
  return undefined;
}

/** A JSON value's type as a JSON-schema validator names it ("Integer", "JSONObject" ...). */
function jsonTypeName(value: unknown): string {
  if (value === null) return 'Null';
  if (Array.isArray(value)) return 'JSONArray';
  if (typeof value === 'number') return Number.isInteger(value) ? 'Integer' : 'BigDecimal';
  if (typeof value === 'boolean') return 'Boolean';
  return 'JSONObject';
}

/** Keys whose string values are protocol, not prompt text. */
const NON_TEXT_KEYS = new Set(['anthropic_version', 'role', 'type', 'schemaVersion', 'embeddingTypes', 'format', 'media_type']);

/**
 * All prompt text of a request, concatenated: the basis of input token counts. Binary data is
 * not text: a base64 source's `data` (Anthropic) and any `bytes` (Nova, Converse) are skipped; a
 * plain-text document's `data` counts. Walked without recursion, so no nesting depth overflows.
 */
export function inputText(modelInput: unknown): string {
  const acc: string[] = [];
  const stack: unknown[] = [modelInput];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') acc.push(value);
    else if (Array.isArray(value)) for (let i = value.length - 1; i >= 0; i--) stack.push(value[i]);
    else if (isRecord(value)) {
      const entries = Object.entries(value).filter(([k]) => !NON_TEXT_KEYS.has(k) && k !== 'bytes' && !(k === 'data' && value.type === 'base64'));
      for (let i = entries.length - 1; i >= 0; i--) stack.push(entries[i]![1]);
    }
  }
  return acc.join('\n');
}

/** The window a context rule allows this request: the larger one if it asks for it by its beta flag. */
function contextWindow(rule: Extract<RequestRule, { kind: 'context-window' }>, modelInput: Record<string, unknown>): number {
  const betas = Array.isArray(modelInput.anthropic_beta) ? modelInput.anthropic_beta : [];
  const asks = rule.withBeta !== undefined && betas.some((b) => typeof b === 'string' && b.startsWith(rule.withBeta!.prefix));
  return asks ? rule.withBeta!.tokens : rule.tokens;
}

/**
 * The fake model's input token count: about one token per 4 characters of prompt text, plus 3 per
 * message. `text`: the request's {@link inputText}, when the caller has it already.
 */
export function inputTokenCount(modelInput: Record<string, unknown>, text = inputText(modelInput)): number {
  const messages = Array.isArray(modelInput.messages) ? modelInput.messages.length : 0;
  return Math.max(1, Math.ceil(text.length / 4)) + messages * 3;
}

/**
 * Why the model refuses this request by one of its catalog rules, in AWS's words, or undefined.
 * A model the catalog does not know applies none (the emulator refuses it at job creation).
 * `inputTokens`: the request's {@link inputTokenCount}, when the caller has it already.
 */
export function requestRuleProblem(
  modelId: string,
  family: ModelFamily,
  modelInput: Record<string, unknown>,
  invocationType: InvocationType = 'InvokeModel',
  model: CatalogModel | undefined = catalogModel(modelId),
  inputTokens?: number,
): string | undefined {
  if (!model) return undefined;
  for (const rule of model.requestRules) {
    // A Converse record is checked against the Converse API's own shape (fake-model.ts), not the model's body.
    if (rule.kind === 'known-keys' && invocationType === 'InvokeModel') {
      const key = extraneousKey(modelInput, rule.keys);
      if (key !== undefined)
        return `Malformed input request: ${rule.alsoReported ?? ''}#: extraneous key [${key}] is not permitted, please reformat your input and try again.`;
    }
    if (rule.kind === 'message-roles' && invocationType === 'InvokeModel') {
      const problem = roleProblem(modelInput, rule.roles);
      if (problem) return problem;
    }
    if (rule.kind === 'context-window' && (inputTokens ?? inputTokenCount(modelInput)) > contextWindow(rule, modelInput)) {
      return 'Input is too long for requested model.';
    }
    if (rule.kind === 'max-output-tokens' && model.maxOutputTokens !== undefined) {
      const asked = requestedMaxTokens(family, modelInput, invocationType);
      if (asked !== undefined && asked > model.maxOutputTokens) {
        // The text Bedrock answers with (reported for Claude and Nova models; see the facts).
        return `The maximum tokens you requested exceeds the model limit of ${model.maxOutputTokens}. Try again with a maximum tokens value that is lower than ${model.maxOutputTokens}.`;
      }
    }
    if (rule.kind === 'temperature-xor-top-p' && setsTemperatureAndTopP(modelInput, invocationType)) {
      return 'The model returned the following errors: `temperature` and `top_p` cannot both be specified for this model. Please use only one.';
    }
    if (rule.kind === 'image-size') {
      const image = oversizedImage(modelInput, invocationType, rule.maxBase64Bytes);
      if (image) {
        const mb = Math.round(rule.maxBase64Bytes / (1024 * 1024));
        return `The model returned the following errors: ${image.at}: image exceeds ${mb} MB maximum: ${image.bytes} bytes > ${rule.maxBase64Bytes} bytes`;
      }
    }
  }
  return undefined;
}
