import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger of every handler. Structured JSON; callers add `runId` and `jobArn` as keys.
 * Never log prompt or model output text: records are referred to by `recordId` only.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'bedrock-batch' });
