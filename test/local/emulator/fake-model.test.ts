import { usageOf } from '../../../lambdas/shared/model-family';
import { fakeModelOutput, type FakeModelRequest } from '../../../local/emulator/fake-model';

const ok = (req: FakeModelRequest) => {
  const result = fakeModelOutput(req);
  if (!result.ok) throw new Error(result.message);
  return result;
};

describe('fake model outputs (docs/BEDROCK-FACTS.md §9)', () => {
  it('answers Claude with a Messages response whose usage matches usageOf', () => {
    const r = ok({
      modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0',
      family: 'anthropic',
      modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(400) }] },
    });
    expect(r.body).toMatchObject({ type: 'message', role: 'assistant', model: 'claude-3-5-haiku-20241022', stop_reason: 'max_tokens' });
    expect(usageOf('anthropic', r.body)).toEqual(r.usage);
    expect(r.usage.output).toBe(5);
    expect(r.usage.input).toBeGreaterThanOrEqual(100);
  });

  it('answers Nova, Llama, Mistral and Titan embeddings in their own shapes', () => {
    const nova = ok({ modelId: 'amazon.nova-lite-v1:0', family: 'nova', modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }] }] } });
    expect(nova.body).toMatchObject({ output: { message: { role: 'assistant', content: [{ text: expect.any(String) }] } }, stopReason: 'end_turn' });
    expect(usageOf('nova', nova.body)).toEqual(nova.usage);

    const llama = ok({ modelId: 'meta.llama3-1-8b-instruct-v1:0', family: 'llama', modelInput: { prompt: 'hello', max_gen_len: 512 } });
    expect(Object.keys(llama.body).sort()).toEqual(['generation', 'generation_token_count', 'prompt_token_count', 'stop_reason']);
    expect(usageOf('llama', llama.body)).toEqual(llama.usage);

    const mistral = ok({ modelId: 'mistral.mistral-7b-instruct-v0:2', family: 'mistral', modelInput: { prompt: '<s>[INST] hi [/INST]' } });
    expect(mistral.body).toEqual({ outputs: [{ text: expect.any(String), stop_reason: 'stop' }] });

    const titan = ok({
      modelId: 'amazon.titan-embed-text-v2:0',
      family: 'titan-embed',
      modelInput: { inputText: 'hello', embeddingTypes: ['float', 'binary'] },
    });
    const body = titan.body as { embedding: number[]; embeddingsByType: { float: number[]; binary: number[] } };
    expect(body.embedding).toHaveLength(1024);
    expect(Math.hypot(...body.embedding)).toBeCloseTo(1, 3);
    expect(body.embeddingsByType.binary.every((b) => b === 0 || b === 1)).toBe(true);
    expect(usageOf('titan-embed', titan.body)).toEqual(titan.usage);
  });

  it('answers Converse jobs with a Converse response and refuses toolConfig', () => {
    const converse = ok({
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      family: 'anthropic',
      invocationType: 'Converse',
      modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }] }], inferenceConfig: { maxTokens: 1024 } },
    });
    expect(converse.body).toMatchObject({ output: { message: { role: 'assistant' } }, usage: { totalTokens: expect.any(Number) } });
    const tools = fakeModelOutput({
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      family: 'anthropic',
      invocationType: 'Converse',
      modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }] }], toolConfig: {} },
    });
    expect(tools).toMatchObject({ ok: false, errorCode: 400 });
  });

  it('is deterministic per seed and input, and rejects what the family never accepts', () => {
    const req: FakeModelRequest = { modelId: 'meta.llama3-1-8b-instruct-v1:0', family: 'llama', modelInput: { prompt: 'same' } };
    expect(fakeModelOutput(req)).toEqual(fakeModelOutput(req));
    expect(fakeModelOutput({ ...req, seed: 2 })).not.toEqual(fakeModelOutput(req));
    expect(fakeModelOutput({ ...req, modelInput: { prompt: 'x', modelId: 'meta.llama3' } })).toMatchObject({
      ok: false,
      message: expect.stringContaining('modelId'),
    });
    expect(fakeModelOutput({ modelId: 'amazon.titan-embed-text-v2:0', family: 'titan-embed', modelInput: { inputText: 'a', dimensions: 100 } })).toMatchObject({
      ok: false,
    });
  });
});

describe("the fake model applies the catalog's request rules (a 400 with AWS's text)", () => {
  const claude = (modelId: string, extra: Record<string, unknown>) => ({
    modelId,
    family: 'anthropic' as const,
    modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }], ...extra },
  });

  it('refuses max_tokens above the model output limit, per family and for Converse', () => {
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', { max_tokens: 4097 }))).toEqual({
      ok: false,
      errorCode: 400,
      message: 'The maximum tokens you requested exceeds the model limit of 4096. Try again with a maximum tokens value that is lower than 4096.',
      byModel: true,
    });
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', { max_tokens: 4096 })).ok).toBe(true);
    const llama = fakeModelOutput({ modelId: 'meta.llama3-1-8b-instruct-v1:0', family: 'llama', modelInput: { prompt: 'hi', max_gen_len: 100_000 } });
    expect(llama).toMatchObject({ ok: false, errorCode: 400, message: expect.stringMatching(/exceeds the model limit of \d+/) });
    const converse = fakeModelOutput({
      modelId: 'amazon.nova-lite-v1:0',
      family: 'nova',
      invocationType: 'Converse',
      modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }] }], inferenceConfig: { maxTokens: 1_000_000 } },
    });
    expect(converse).toMatchObject({ ok: false, errorCode: 400 });
  });

  it('refuses an image over 5 MB of base64 on Claude models, naming where it is, in a batch record and through Converse', () => {
    const LIMIT = 5 * 1024 * 1024;
    const image = (chars: number) => ({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'A'.repeat(chars) } });
    const withImage = (chars: number) => ({
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [{ type: 'text', text: 'what is this?' }, image(chars)] },
      ],
    });
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', withImage(LIMIT + 1)))).toEqual({
      ok: false,
      errorCode: 400,
      message: `The model returned the following errors: messages.2.content.1.image.source.base64: image exceeds 5 MB maximum: ${LIMIT + 1} bytes > ${LIMIT} bytes`,
      byModel: true,
    });
    expect(fakeModelOutput(claude('us.anthropic.claude-sonnet-4-5-20250929-v1:0', withImage(LIMIT + 1)))).toMatchObject({ ok: false, byModel: true });
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', withImage(LIMIT))).ok).toBe(true);
    const converse = (chars: number) =>
      fakeModelOutput({
        modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        family: 'anthropic',
        invocationType: 'Converse',
        modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }, { image: { format: 'png', source: { bytes: 'A'.repeat(chars) } } }] }] },
      });
    expect(converse(LIMIT + 1)).toMatchObject({
      ok: false,
      message: `The model returned the following errors: messages.0.content.1.image.source: image exceeds 5 MB maximum: ${LIMIT + 1} bytes > ${LIMIT} bytes`,
    });
    expect(converse(LIMIT).ok).toBe(true);
  });

  it('refuses temperature with top_p on the models that forbid both, and only there', () => {
    const both = { temperature: 0.5, top_p: 0.9 };
    expect(fakeModelOutput(claude('us.anthropic.claude-sonnet-4-5-20250929-v1:0', both))).toEqual({
      ok: false,
      errorCode: 400,
      message: 'The model returned the following errors: `temperature` and `top_p` cannot both be specified for this model. Please use only one.',
      byModel: true,
    });
    expect(fakeModelOutput(claude('us.anthropic.claude-sonnet-4-5-20250929-v1:0', { temperature: 0.5 })).ok).toBe(true);
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', both)).ok).toBe(true);
  });
});

describe("the fake model refuses bodies the model's schema does not accept (a 400 with AWS's text)", () => {
  const claude = (modelId: string, extra: Record<string, unknown>) => ({
    modelId,
    family: 'anthropic' as const,
    modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }], ...extra },
  });
  const nova = (extra: Record<string, unknown>, modelId = 'amazon.nova-lite-v1:0') => ({
    modelId,
    family: 'nova' as const,
    modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }] }], ...extra },
  });

  it('refuses a top-level key the Claude Messages body does not have, as Bedrock words it', () => {
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', { top_n: 1 }))).toEqual({
      ok: false,
      errorCode: 400,
      message:
        'Malformed input request: #: subject must not be valid against schema {"required":["messages"]}#: extraneous key [top_n] is not permitted, please reformat your input and try again.',
      byModel: true,
    });
    // Every key of the documented Messages body is accepted.
    const documented = {
      anthropic_beta: ['computer-use-2024-10-22'],
      system: 'be brief',
      temperature: 0.2,
      top_k: 5,
      stop_sequences: ['END'],
      tools: [{ name: 'lookup', description: 'd', input_schema: { type: 'object' } }],
      tool_choice: { type: 'auto' },
    };
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', documented)).ok).toBe(true);
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', { top_p: 0.9 })).ok).toBe(true);
  });

  it('refuses a top-level key the Nova body does not have (max_tokens is not Nova’s), and accepts its own', () => {
    expect(fakeModelOutput(nova({ max_tokens: 100 }))).toEqual({
      ok: false,
      errorCode: 400,
      message: 'Malformed input request: #: extraneous key [max_tokens] is not permitted, please reformat your input and try again.',
      byModel: true,
    });
    const own = {
      schemaVersion: 'messages-v1',
      system: [{ text: 'be brief' }],
      inferenceConfig: { maxTokens: 50, temperature: 0.1 },
      toolConfig: { tools: [] },
    };
    expect(fakeModelOutput(nova(own)).ok).toBe(true);
    expect(fakeModelOutput(nova({ max_tokens: 100 }, 'us.amazon.nova-premier-v1:0'))).toMatchObject({ ok: false, byModel: true });
  });

  it('checks the keys of InvokeModel bodies only: a Converse record has its own fields', () => {
    const converse = fakeModelOutput({
      modelId: 'amazon.nova-lite-v1:0',
      family: 'nova',
      invocationType: 'Converse',
      modelInput: { messages: [{ role: 'user', content: [{ text: 'hi' }] }], additionalModelRequestFields: { inferenceConfig: { topK: 5 } } },
    });
    expect(converse.ok).toBe(true);
  });

  it('refuses a "system" message inside messages on Claude models', () => {
    const systemTurn = {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
    };
    expect(fakeModelOutput(claude('anthropic.claude-3-5-haiku-20241022-v1:0', systemTurn))).toEqual({
      ok: false,
      errorCode: 400,
      message: 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.',
      byModel: true,
    });
    expect(fakeModelOutput(claude('anthropic.claude-3-5-haiku-20241022-v1:0', { system: 'be brief' })).ok).toBe(true);
  });

  it("refuses a request whose input is longer than the model's context window", () => {
    // The fake model counts about one token per 4 characters, plus 3 per message.
    const withText = (chars: number) => claude('anthropic.claude-3-haiku-20240307-v1:0', { messages: [{ role: 'user', content: 'a'.repeat(chars) }] });
    expect(fakeModelOutput(withText(200_000 * 4))).toEqual({ ok: false, errorCode: 400, message: 'Input is too long for requested model.', byModel: true });
    expect(fakeModelOutput(withText(199_000 * 4)).ok).toBe(true);
  });

  it('refuses a message without a role, or with a role that is not a string, as the schema check does', () => {
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', { messages: [{ content: 'hi' }] }))).toMatchObject({
      ok: false,
      message: 'Malformed input request: #/messages/0: required key [role] not found, please reformat your input and try again.',
    });
    expect(
      fakeModelOutput(
        claude('anthropic.claude-3-haiku-20240307-v1:0', {
          messages: [
            { role: 'user', content: 'a' },
            { role: 5, content: 'b' },
          ],
        }),
      ),
    ).toMatchObject({
      ok: false,
      message: 'Malformed input request: #/messages/1/role: expected type: String, found: Integer, please reformat your input and try again.',
    });
  });

  it('applies no key list to Claude 4 models (they take undocumented beta keys), nor the temperature/top_p rule to Sonnet 4', () => {
    const sonnet45 = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
    expect(fakeModelOutput(claude(sonnet45, { thinking: { type: 'enabled', budget_tokens: 1024 }, context_management: { edits: [] } })).ok).toBe(true);
    expect(fakeModelOutput(claude('us.anthropic.claude-sonnet-4-20250514-v1:0', { temperature: 0.5, top_p: 0.9 })).ok).toBe(true);
    // Their other rules still hold.
    expect(fakeModelOutput(claude(sonnet45, { messages: [{ role: 'system', content: 'x' }] }))).toMatchObject({ ok: false, byModel: true });
  });

  it('opens the 1M-token window only where a context-1m beta flag asks for it, on the models that have it', () => {
    const long = { messages: [{ role: 'user', content: 'a'.repeat(300_000 * 4) }] };
    const beta = { anthropic_beta: ['context-1m-2025-08-07'] };
    expect(fakeModelOutput(claude('us.anthropic.claude-sonnet-4-5-20250929-v1:0', long))).toMatchObject({
      ok: false,
      message: 'Input is too long for requested model.',
    });
    expect(fakeModelOutput(claude('us.anthropic.claude-sonnet-4-5-20250929-v1:0', { ...long, ...beta })).ok).toBe(true);
    expect(fakeModelOutput(claude('us.anthropic.claude-haiku-4-5-20251001-v1:0', { ...long, ...beta }))).toMatchObject({ ok: false });
  });

  it('counts the text of a plain-text document, not base64 data, and survives any nesting depth', () => {
    const doc = (type: string) => ({
      messages: [{ role: 'user', content: [{ type: 'document', source: { type, media_type: 'text/plain', data: 'a'.repeat(200_001 * 4) } }] }],
    });
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', doc('text')))).toMatchObject({
      ok: false,
      message: 'Input is too long for requested model.',
    });
    expect(fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', doc('base64'))).ok).toBe(true);
    let deep: unknown = 'x';
    for (let i = 0; i < 50_000; i++) deep = [deep];
    expect(() => fakeModelOutput(claude('anthropic.claude-3-haiku-20240307-v1:0', { messages: [{ role: 'user', content: deep }] }))).not.toThrow();
  });

  it('holds Claude 3.5 Sonnet (June 2024) to 4096 output tokens, as Bedrock does', () => {
    expect(fakeModelOutput(claude('anthropic.claude-3-5-sonnet-20240620-v1:0', { max_tokens: 4097 }))).toMatchObject({
      ok: false,
      message: expect.stringContaining('model limit of 4096'),
    });
  });
});
