/**
 * The bedrock-batch package: the {@link BedrockBatchPipeline} construct to place in a CDK stack
 * of your own, its props and settings, and this repository's stack.
 */
export { BedrockBatchPipeline, type BedrockBatchPipelineProps } from './bedrock-batch-pipeline';
export {
  loadPipelineConfig,
  longestRunHours,
  validatePipelineSettings,
  MAX_CONCURRENT_JOBS_LIMIT,
  MAX_RECORDS_PER_JOB_LIMIT,
  PIPELINE_DEFAULTS,
  ROUTE_DEFAULTS,
  type PipelineConfig,
  type PipelineSettings,
  type PipelineSettingsProps,
  type RouteConfig,
  type RouteProps,
  type RouteTrigger,
} from './pipeline-config';
export { BedrockBatchStack, DEFAULT_STACK_NAME, type BedrockBatchStackProps } from './pipeline-stack';
export { RUN_COMPLETED_DETAIL_TYPE, RUN_COMPLETED_SOURCE, type SmallRemainderPolicy } from '../lambdas/shared/contracts';
