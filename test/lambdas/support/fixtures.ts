/** Builders of the plain data the handlers take, with overridable defaults. */
import type { PipelineEnvConfig, RouteEnvConfig } from '../../../lambdas/shared/config';
import type { RunConfig } from '../../../lambdas/shared/contracts';

export const ANTHROPIC_MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
export const TITAN_EMBED_MODEL = 'amazon.titan-embed-text-v2:0';

export function route(overrides: Partial<RouteEnvConfig> = {}): RouteEnvConfig {
  return {
    modelId: ANTHROPIC_MODEL,
    maxRecordsPerJob: 50000,
    minRecordsPerJob: 100,
    maxAttempts: 3,
    smallRemainder: 'on-demand',
    trigger: 'immediate',
    ...overrides,
  };
}

export function pipeline(routes: Record<string, RouteEnvConfig> = { default: route() }, overrides: Partial<PipelineEnvConfig> = {}): PipelineEnvConfig {
  return { maxConcurrentJobs: 20, jobTimeoutHours: 24, routes, ...overrides };
}

export function runConfig(overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    runId: 'run-1',
    route: 'default',
    modelId: ANTHROPIC_MODEL,
    bucket: 'bucket',
    maxRecordsPerJob: 50000,
    minRecordsPerJob: 100,
    maxAttempts: 3,
    smallRemainder: 'on-demand',
    maxConcurrentJobs: 20,
    jobTimeoutHours: 24,
    startedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

/** A valid Anthropic messages body. */
export function anthropicInput(text = 'hello'): Record<string, unknown> {
  return { anthropic_version: 'bedrock-2023-05-31', max_tokens: 64, messages: [{ role: 'user', content: text }] };
}

/** A JSONL line of a valid Anthropic record. */
export function anthropicLine(recordId: string | undefined, text = 'hello'): string {
  return JSON.stringify({ ...(recordId !== undefined ? { recordId } : {}), modelInput: anthropicInput(text) });
}

/** A Bedrock output line of a succeeded Anthropic record. */
export function anthropicOutputLine(recordId: string, inputTokens = 10, outputTokens = 5): string {
  return JSON.stringify({
    recordId,
    modelInput: anthropicInput(),
    modelOutput: { id: 'msg', type: 'message', content: [{ type: 'text', text: 'ok' }], usage: { input_tokens: inputTokens, output_tokens: outputTokens } },
  });
}

/** A Bedrock output line of a failed record. */
export function errorOutputLine(recordId: string, errorCode: number, errorMessage = 'failed'): string {
  return JSON.stringify({ recordId, modelInput: anthropicInput(), error: { errorCode, errorMessage } });
}
