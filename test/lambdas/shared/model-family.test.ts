import { baseModelId, modelFamily, modelInputProblem, stoppedAtMaxTokens, usageOf } from '../../../lambdas/shared/model-family';

describe('baseModelId / modelFamily', () => {
  it.each([
    ['anthropic.claude-3-haiku-20240307-v1:0', 'anthropic.claude-3-haiku-20240307-v1:0', 'anthropic'],
    ['us.anthropic.claude-3-5-sonnet-20240620-v1:0', 'anthropic.claude-3-5-sonnet-20240620-v1:0', 'anthropic'],
    ['global.anthropic.claude-sonnet-4-20250514-v1:0', 'anthropic.claude-sonnet-4-20250514-v1:0', 'anthropic'],
    ['arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0', 'amazon.titan-embed-text-v2:0', 'titan-embed'],
    ['arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0', 'amazon.nova-lite-v1:0', 'nova'],
    ['apac.amazon.nova-pro-v1:0', 'amazon.nova-pro-v1:0', 'nova'],
    ['meta.llama3-1-8b-instruct-v1:0', 'meta.llama3-1-8b-instruct-v1:0', 'llama'],
    ['mistral.mistral-large-2402-v1:0', 'mistral.mistral-large-2402-v1:0', 'mistral'],
    ['amazon.titan-text-express-v1', 'amazon.titan-text-express-v1', undefined],
    ['cohere.command-r-v1:0', 'cohere.command-r-v1:0', undefined],
    ['xx.anthropic.claude', 'xx.anthropic.claude', undefined],
  ])('%s -> %s (%s)', (id, base, family) => {
    expect(baseModelId(id)).toBe(base);
    expect(modelFamily(id)).toBe(family);
  });
});

describe('modelInputProblem', () => {
  const messages = [{ role: 'user', content: 'x' }];
  it.each([
    ['anthropic', { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5, messages }, undefined],
    ['anthropic', { max_tokens: 5, messages }, /anthropic_version is required/],
    ['anthropic', { anthropic_version: 'v', max_tokens: 5 }, /messages must be a non-empty array/],
    ['anthropic', { anthropic_version: 'v', messages }, /max_tokens must be a number/],
    ['titan-embed', { inputText: 'x' }, undefined],
    ['titan-embed', { inputText: '' }, /inputText must be a non-empty string/],
    ['nova', { messages }, undefined],
    ['nova', { messages: 'x' }, /messages must be a non-empty array/],
    ['llama', { prompt: 'x' }, undefined],
    ['llama', { prompt: '' }, /prompt must be a non-empty string/],
    ['mistral', { prompt: 'x' }, undefined],
    ['mistral', { messages }, undefined],
    ['mistral', {}, /needs a prompt string or a non-empty messages array/],
    ['nova', { messages, modelId: 'x' }, /must not contain modelId/],
    ['llama', { prompt: 'x', modelId: 'x' }, /must not contain modelId/],
  ] as const)('%s %j', (family, input, problem) => {
    const got = modelInputProblem(family, input as Record<string, unknown>);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(problem);
  });
});

describe('usageOf', () => {
  it.each([
    ['anthropic', { usage: { input_tokens: 11, output_tokens: 7 } }, { input: 11, output: 7 }],
    ['anthropic', { usage: 'x' }, { input: 0, output: 0 }],
    ['nova', { usage: { inputTokens: 3, outputTokens: 4 } }, { input: 3, output: 4 }],
    ['titan-embed', { embedding: [0.1], inputTextTokenCount: 9 }, { input: 9, output: 0 }],
    ['llama', { prompt_token_count: 5, generation_token_count: 6 }, { input: 5, output: 6 }],
    ['llama', { prompt_token_count: 'many', generation_token_count: Infinity }, { input: 0, output: 0 }],
    ['mistral', { outputs: [] }, { input: 0, output: 0 }],
    ['anthropic', null, { input: 0, output: 0 }],
    ['anthropic', [1], { input: 0, output: 0 }],
  ] as const)('%s %j', (family, output, usage) => {
    expect(usageOf(family, output)).toEqual(usage);
  });
});

describe('stoppedAtMaxTokens', () => {
  it("reads each family's way of saying the output hit its token limit", () => {
    expect(stoppedAtMaxTokens('anthropic', { stop_reason: 'max_tokens' })).toBe(true);
    expect(stoppedAtMaxTokens('anthropic', { stop_reason: 'end_turn' })).toBe(false);
    expect(stoppedAtMaxTokens('nova', { stopReason: 'max_tokens' })).toBe(true);
    expect(stoppedAtMaxTokens('nova', { stopReason: 'end_turn' })).toBe(false);
    expect(stoppedAtMaxTokens('llama', { stop_reason: 'length' })).toBe(true);
    expect(stoppedAtMaxTokens('llama', { stop_reason: 'stop' })).toBe(false);
    expect(stoppedAtMaxTokens('mistral', { outputs: [{ text: 'x', stop_reason: 'length' }] })).toBe(true);
    expect(stoppedAtMaxTokens('mistral', { choices: [{ finish_reason: 'length' }] })).toBe(true);
    expect(stoppedAtMaxTokens('mistral', { outputs: [{ text: 'x', stop_reason: 'stop' }] })).toBe(false);
    // A Converse output, whatever the family.
    expect(stoppedAtMaxTokens('llama', { output: {}, stopReason: 'max_tokens' })).toBe(true);
    expect(stoppedAtMaxTokens('titan-embed', { embedding: [] })).toBe(false);
    expect(stoppedAtMaxTokens('anthropic', null)).toBe(false);
    expect(stoppedAtMaxTokens('mistral', { outputs: 'not a list' })).toBe(false);
  });
});
