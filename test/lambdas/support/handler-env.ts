/**
 * The environment the CDK stack gives every function (docs/ARCHITECTURE.md), for handler tests.
 * Services are reached through `AWS_ENDPOINT_URL_<SERVICE>` exactly as the local twin does.
 */
import type { PipelineEnvConfig } from '../../../lambdas/shared/config';

export const HANDLER_ENV = {
  BUCKET_NAME: 'bucket',
  TABLE_NAME: 'jobs-table',
  BEDROCK_ROLE_ARN: 'arn:aws:iam::123456789012:role/bedrock-batch-service',
  EVENT_BUS_NAME: 'runs-bus',
  STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:bedrock-batch',
} as const;

/** Sets the handler environment (and returns a function restoring the previous one). */
export function setHandlerEnv(pipeline: PipelineEnvConfig, extra: Record<string, string | undefined> = {}): () => void {
  const vars: Record<string, string | undefined> = {
    ...HANDLER_ENV,
    PIPELINE_CONFIG: JSON.stringify(pipeline),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    ...extra,
  };
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  return () => apply(before);
}

/**
 * For a handler test file: sets the handler environment before its tests and, after them,
 * restores it and the given client mocks.
 */
export function useHandlerEnv(pipeline: PipelineEnvConfig, mocks: ReadonlyArray<{ restore(): void }> = []): void {
  let restore: (() => void) | undefined;
  beforeAll(() => {
    restore = setHandlerEnv(pipeline);
  });
  afterAll(() => {
    restore?.();
    for (const mock of mocks) mock.restore();
  });
}
