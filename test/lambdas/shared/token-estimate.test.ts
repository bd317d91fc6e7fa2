import { estimateInputTokens, estimateOutputTokens, recordUsage } from '../../../lambdas/shared/token-estimate';

describe('estimated tokens: ceil(characters / 4) of the text fields', () => {
  it('counts the text of each family’s modelInput, not its other fields', () => {
    // Claude: system (8) + string content (8) + text block (4) = 20 characters -> 5 tokens.
    expect(
      estimateInputTokens({
        anthropic_version: 'bedrock-2023-05-31',
        max_tokens: 100,
        system: 'be brief',
        messages: [
          { role: 'user', content: 'hello th' },
          { role: 'assistant', content: [{ type: 'text', text: 'abcd' }] },
        ],
      }),
    ).toBe(5);
    // Nova: system text (3) + content text (6) = 9 -> ceil(9 / 4) = 3.
    expect(
      estimateInputTokens({ system: [{ text: 'sys' }], messages: [{ role: 'user', content: [{ text: 'abcdef' }] }], inferenceConfig: { maxTokens: 9 } }),
    ).toBe(3);
    expect(estimateInputTokens({ prompt: 'x'.repeat(41), max_gen_len: 512 })).toBe(11);
    expect(estimateInputTokens({ inputText: 'abcd', dimensions: 512 })).toBe(1);
    // An image block's data is not text.
    expect(estimateInputTokens({ messages: [{ role: 'user', content: [{ type: 'image', source: { data: 'A'.repeat(4000) } }] }] })).toBe(0);
  });

  it('counts the text of each family’s modelOutput', () => {
    expect(estimateOutputTokens({ outputs: [{ text: 'x'.repeat(9), stop_reason: 'stop' }] })).toBe(3);
    expect(estimateOutputTokens({ choices: [{ message: { role: 'assistant', content: 'x'.repeat(8) } }] })).toBe(2);
    expect(estimateOutputTokens({ generation: 'abcde', stop_reason: 'stop' })).toBe(2);
    expect(estimateOutputTokens({ content: [{ type: 'text', text: 'abcd' }], stop_reason: 'end_turn' })).toBe(1);
  });
});

describe('recordUsage', () => {
  it('takes the counts an output reports', () => {
    expect(recordUsage('anthropic', { messages: [] }, { content: [], usage: { input_tokens: 11, output_tokens: 7 } })).toEqual({
      inputTokens: 11,
      outputTokens: 7,
    });
    expect(recordUsage('titan-embed', { inputText: 'abc' }, { embedding: [0.1], inputTextTokenCount: 9 })).toEqual({ inputTokens: 9, outputTokens: 0 });
    expect(recordUsage('llama', { prompt: 'p' }, { generation: 'g', prompt_token_count: 0, generation_token_count: 0 })).toEqual({
      inputTokens: 0,
      outputTokens: 0,
    });
  });

  it('estimates a count an output lacks and says so', () => {
    // Claude output without usage: input 'abcdefgh' (8) -> 2, output 'abcde' (5) -> 2.
    expect(recordUsage('anthropic', { messages: [{ role: 'user', content: 'abcdefgh' }] }, { content: [{ type: 'text', text: 'abcde' }] })).toEqual({
      inputTokens: 2,
      outputTokens: 2,
      estimated: true,
    });
    // Only the missing one is estimated.
    expect(
      recordUsage(
        'nova',
        { messages: [{ role: 'user', content: [{ text: 'abcd' }] }] },
        { output: { message: { content: [{ text: 'x' }] } }, usage: { inputTokens: 40 } },
      ),
    ).toEqual({
      inputTokens: 40,
      outputTokens: 1,
      estimated: true,
    });
    // Mistral never reports counts.
    expect(recordUsage('mistral', { prompt: 'abcd' }, { outputs: [{ text: 'abcdefgh' }] })).toEqual({ inputTokens: 1, outputTokens: 2, estimated: true });
  });
});
