/**
 * The per-record rules a real model applies to each request (the model catalog's
 * `requestRules`, lambdas/shared/model-catalog.ts): a record that breaks one fails with a 400
 * and the text AWS answers with, in a batch job's output and through InvokeModel alike, so the
 * twin shows the per-record failures a first deploy would (docs/BEDROCK-FACTS.md, "Model
 * catalog").
 */
import { catalogModel, type CatalogModel } from '../../lambdas/shared/model-catalog';
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

/**
 * Why the model refuses this request by one of its catalog rules, in AWS's words, or undefined.
 * A model the catalog does not know applies none (the emulator refuses it at job creation).
 */
export function requestRuleProblem(
  modelId: string,
  family: ModelFamily,
  modelInput: Record<string, unknown>,
  invocationType: InvocationType = 'InvokeModel',
  model: CatalogModel | undefined = catalogModel(modelId),
): string | undefined {
  if (!model) return undefined;
  for (const rule of model.requestRules) {
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
