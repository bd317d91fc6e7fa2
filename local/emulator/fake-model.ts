/**
 * Deterministic fake model outputs, one response shape per model family (docs/BEDROCK-FACTS.md §9), with token
 * usage derived from the request's text. The same seed and the same `modelInput` always give
 * the same output, in a batch job and through InvokeModel alike.
 */
import { baseModelId, modelInputProblem, type ModelFamily } from '../../lambdas/shared/model-family';
import { hash53, seededRandom } from './faults';
import { inputText, inputTokenCount, requestRuleProblem } from './request-rules';
import { isRecord } from './validation';

/** How a job's records are interpreted (docs/BEDROCK-FACTS.md §1 `modelInvocationType`). */
export type InvocationType = 'InvokeModel' | 'Converse';

/** A fake model response, or the 400 a real model would answer with. */
export type FakeModelResult =
  | { ok: true; body: Record<string, unknown>; usage: { input: number; output: number } }
  /** `byModel`: refused by one of the model's own rules (its text stands alone), not as malformed. */
  | { ok: false; errorCode: 400; message: string; byModel?: true };

/** What {@link fakeModelOutput} needs to answer one request. */
export interface FakeModelRequest {
  modelId: string;
  family: ModelFamily;
  modelInput: Record<string, unknown>;
  /** @default 'InvokeModel' */
  invocationType?: InvocationType;
  /** Emulator seed; changes every generated text and vector. @default 1 */
  seed?: number;
  /**
   * Answer at length (the `long-outputs` fault): the model writes until the request's output
   * limit and stops there (stop reason max_tokens), or {@link LONG_OUTPUT_TOKENS} when the
   * request sets none. @default false
   */
  longOutput?: boolean;
}

/** The length of a long answer to a request that sets no output limit, tokens. */
export const LONG_OUTPUT_TOKENS = 4096;

/**
 * The modelled time to first token of InvokeModel, ms. Bedrock's InvocationLatency is time to
 * first token plus output tokens over output tokens per second (docs/BEDROCK-FACTS.md §10); AWS
 * publishes no figures per model, so these are deliberately slow ones: a pipeline that fits its
 * time at these speeds fits it on AWS.
 */
export const INVOKE_FIRST_TOKEN_MS = 1000;
/** The modelled output speed of InvokeModel, tokens per second (see {@link INVOKE_FIRST_TOKEN_MS}). */
export const INVOKE_OUTPUT_TOKENS_PER_SECOND = 40;

/** How long a real model would take to answer with `outputTokens`, ms. */
export function invokeModelLatencyMs(outputTokens: number): number {
  return INVOKE_FIRST_TOKEN_MS + Math.round((outputTokens * 1000) / INVOKE_OUTPUT_TOKENS_PER_SECOND);
}

const TITAN_DIMENSIONS = [256, 512, 1024];

/**
 * Why the request can never succeed, or undefined. The pipeline's own structural checks
 * (`modelInputProblem`) plus the few the fake model needs to produce an answer.
 */
export function fakeModelInputProblem(
  family: ModelFamily,
  modelInput: Record<string, unknown>,
  invocationType: InvocationType = 'InvokeModel',
): string | undefined {
  if (invocationType === 'Converse') {
    if ('modelId' in modelInput) return 'modelInput must not contain modelId (the model is set per job)';
    if (!Array.isArray(modelInput.messages) || modelInput.messages.length === 0) return 'modelInput.messages must be a non-empty array';
    // Newest batch doc: tool calling is unsupported for Converse jobs, such records fail with 400 (docs/BEDROCK-FACTS.md §5).
    if ('toolConfig' in modelInput) return 'toolConfig is not supported for batch inference jobs of type Converse';
    return undefined;
  }
  const problem = modelInputProblem(family, modelInput);
  if (problem) return problem;
  if (family === 'titan-embed' && modelInput.dimensions !== undefined && !TITAN_DIMENSIONS.includes(modelInput.dimensions as number)) {
    return 'modelInput.dimensions must be one of 256, 512, 1024';
  }
  return undefined;
}

/** Answers one request as the model family would. Never throws. */
export function fakeModelOutput(req: FakeModelRequest): FakeModelResult {
  const invocationType = req.invocationType ?? 'InvokeModel';
  const problem = fakeModelInputProblem(req.family, req.modelInput, invocationType);
  if (problem) return { ok: false, errorCode: 400, message: problem };
  // The prompt text, read once: the seed of the answer and its token count (a rule checks it too).
  const text = inputText(req.modelInput);
  const inputTokens = inputTokenCount(req.modelInput, text);
  const refusal = requestRuleProblem(req.modelId, req.family, req.modelInput, invocationType, undefined, inputTokens);
  if (refusal) return { ok: false, errorCode: 400, message: refusal, byModel: true };

  const key = hash53(text, req.seed ?? 1);
  const random = seededRandom(key % 4294967296);

  if (invocationType === 'Converse') {
    const gen = generate(random, maxTokensOf(req.modelInput, 'inferenceConfig.maxTokens'), req.longOutput);
    return {
      ok: true,
      body: {
        output: { message: { role: 'assistant', content: [{ text: gen.text }] } },
        stopReason: gen.truncated ? 'max_tokens' : 'end_turn',
        usage: { inputTokens, outputTokens: gen.tokens, totalTokens: inputTokens + gen.tokens },
        metrics: { latencyMs: 200 + Math.floor(random() * 800) },
      },
      usage: { input: inputTokens, output: gen.tokens },
    };
  }

  switch (req.family) {
    case 'anthropic': {
      const gen = generate(random, maxTokensOf(req.modelInput, 'max_tokens'), req.longOutput);
      return {
        ok: true,
        body: {
          id: `msg_bdrk_${randomId(random, 24, ALNUM)}`,
          type: 'message',
          role: 'assistant',
          model: anthropicModelName(req.modelId),
          content: [{ type: 'text', text: gen.text }],
          stop_reason: gen.truncated ? 'max_tokens' : 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: gen.tokens },
        },
        usage: { input: inputTokens, output: gen.tokens },
      };
    }
    case 'nova': {
      const cfg = isRecord(req.modelInput.inferenceConfig) ? req.modelInput.inferenceConfig : {};
      // Nova docs name the limit maxTokens now and max_new_tokens in older revisions (docs/BEDROCK-FACTS.md §9).
      const limit = typeof cfg.maxTokens === 'number' ? cfg.maxTokens : typeof cfg.max_new_tokens === 'number' ? cfg.max_new_tokens : undefined;
      const gen = generate(random, limit, req.longOutput);
      return {
        ok: true,
        body: {
          output: { message: { role: 'assistant', content: [{ text: gen.text }] } },
          stopReason: gen.truncated ? 'max_tokens' : 'end_turn',
          usage: {
            inputTokens,
            outputTokens: gen.tokens,
            totalTokens: inputTokens + gen.tokens,
            cacheReadInputTokenCount: 0,
            cacheWriteInputTokenCount: 0,
          },
        },
        usage: { input: inputTokens, output: gen.tokens },
      };
    }
    case 'llama': {
      const gen = generate(random, maxTokensOf(req.modelInput, 'max_gen_len'), req.longOutput);
      return {
        ok: true,
        body: {
          generation: gen.text,
          prompt_token_count: inputTokens,
          generation_token_count: gen.tokens,
          stop_reason: gen.truncated ? 'length' : 'stop',
        },
        usage: { input: inputTokens, output: gen.tokens },
      };
    }
    case 'mistral': {
      const gen = generate(random, maxTokensOf(req.modelInput, 'max_tokens'), req.longOutput);
      if (Array.isArray(req.modelInput.messages)) {
        // Chat-format Mistral models (Large 2407) answer OpenAI-style; docs/BEDROCK-FACTS.md §9 marks the detail unconfirmed.
        return {
          ok: true,
          body: {
            id: randomId(random, 32, HEX),
            object: 'chat.completion',
            created: 1700000000,
            model: baseModelId(req.modelId),
            choices: [{ index: 0, message: { role: 'assistant', content: gen.text }, finish_reason: gen.truncated ? 'length' : 'stop' }],
            usage: { prompt_tokens: inputTokens, completion_tokens: gen.tokens, total_tokens: inputTokens + gen.tokens },
          },
          usage: { input: inputTokens, output: gen.tokens },
        };
      }
      // Text-completion Mistral bodies carry no token counts (docs/BEDROCK-FACTS.md §9).
      return {
        ok: true,
        body: { outputs: [{ text: gen.text, stop_reason: gen.truncated ? 'length' : 'stop' }] },
        usage: { input: inputTokens, output: gen.tokens },
      };
    }
    case 'titan-embed': {
      const dimensions = typeof req.modelInput.dimensions === 'number' ? req.modelInput.dimensions : 1024;
      const normalize = req.modelInput.normalize !== false;
      const types = Array.isArray(req.modelInput.embeddingTypes) ? req.modelInput.embeddingTypes : ['float'];
      const vector = embedding(random, dimensions, normalize);
      const byType: Record<string, number[]> = { float: vector };
      if (types.includes('binary')) byType.binary = vector.map((x) => (x > 0 ? 1 : 0));
      if (!types.includes('float')) delete byType.float;
      return {
        ok: true,
        body: { embedding: vector, inputTextTokenCount: inputTokens, embeddingsByType: byType },
        usage: { input: inputTokens, output: 0 },
      };
    }
  }
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const HEX = '0123456789abcdef';

function randomId(random: () => number, length: number, alphabet: string): string {
  let id = '';
  for (let i = 0; i < length; i++) id += alphabet[Math.floor(random() * alphabet.length)];
  return id;
}

const WORDS = (
  'the a of and to in is that it for on with as this was by be are from at or an which have has ' +
  'result answer record summary model batch request value data label positive negative neutral ' +
  'customer ticket category billing shipping account refund product quality service issue resolved ' +
  'likely because however therefore example text output response based given context'
).split(' ');

/**
 * Generates between 8 and 64 words (one token each), capped by the request's limit; a long
 * answer runs past the limit (cut there) or to {@link LONG_OUTPUT_TOKENS} without one.
 */
function generate(random: () => number, maxTokens: number | undefined, long = false): { text: string; tokens: number; truncated: boolean } {
  const limit = maxTokens !== undefined && maxTokens > 0 ? Math.floor(maxTokens) : Infinity;
  const wanted = !long ? 8 + Math.floor(random() * 57) : limit === Infinity ? LONG_OUTPUT_TOKENS : limit + 1;
  const tokens = Math.min(wanted, limit);
  const words: string[] = [];
  for (let i = 0; i < tokens; i++) words.push(WORDS[Math.floor(random() * WORDS.length)] ?? 'word');
  const first = words[0] ?? '';
  words[0] = first.charAt(0).toUpperCase() + first.slice(1);
  return { text: `${words.join(' ')}.`, tokens, truncated: tokens < wanted };
}

function embedding(random: () => number, dimensions: number, normalize: boolean): number[] {
  const raw: number[] = [];
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const x = random() * 2 - 1;
    raw.push(x);
    norm += x * x;
  }
  const scale = normalize ? 1 / Math.sqrt(norm || 1) : 1;
  return raw.map((x) => Math.round(x * scale * 1e6) / 1e6);
}

function maxTokensOf(modelInput: Record<string, unknown>, path: string): number | undefined {
  let v: unknown = modelInput;
  for (const part of path.split('.')) v = isRecord(v) ? v[part] : undefined;
  return typeof v === 'number' ? v : undefined;
}

/** `anthropic.claude-3-haiku-20240307-v1:0` -> `claude-3-haiku-20240307`, as in real batch output. */
function anthropicModelName(modelId: string): string {
  return baseModelId(modelId)
    .replace(/^anthropic\./, '')
    .replace(/-v\d+(:\d+)?(:[a-z0-9]+)?$/, '');
}
