/** Helpers for a mocked BedrockRuntimeClient (on-demand InvokeModel of small remainders). */
import type { InvokeModelCommandOutput } from '@aws-sdk/client-bedrock-runtime';

/** An InvokeModel response carrying `body` as JSON. */
export function invokeResponse(body: unknown): Partial<InvokeModelCommandOutput> {
  return { body: Buffer.from(JSON.stringify(body)) as unknown as InvokeModelCommandOutput['body'], contentType: 'application/json' };
}

/** An Anthropic response body with usage. */
export function anthropicResponse(text: string, inputTokens: number, outputTokens: number) {
  return { id: 'msg', type: 'message', content: [{ type: 'text', text }], usage: { input_tokens: inputTokens, output_tokens: outputTokens } };
}
