/**
 * The handlers' configuration, read from the environment once per process. The CDK stack sets
 * the same variables on every function (see docs/ARCHITECTURE.md); the local twin sets them
 * from the synthesized template.
 */
import type { RouteSettings } from './contracts';
import type { PriceOverrides } from './prices';

/** A route as the handlers see it: its settings plus how it is triggered. */
export interface RouteEnvConfig extends RouteSettings {
  readonly trigger: 'immediate' | 'nightly';
}

/** The pipeline-wide settings passed to handlers in `PIPELINE_CONFIG`. */
export interface PipelineEnvConfig {
  readonly maxConcurrentJobs: number;
  readonly jobTimeoutHours: number;
  /** History events one execution may use before the run continues in a successor. */
  readonly historyEventBudget?: number;
  readonly routes: Readonly<Record<string, RouteEnvConfig>>;
  /** cdk.json's `bedrockBatch.prices`, validated: rows over the shipped price table. */
  readonly prices?: PriceOverrides;
}

/** Everything a handler needs to know about its deployment. */
export interface HandlerConfig {
  readonly bucket: string;
  readonly table: string;
  readonly bedrockRoleArn: string;
  readonly eventBusName: string;
  /** Only set for `start-run` (a function inside the workflow cannot know the workflow's ARN). */
  readonly stateMachineArn: string | undefined;
  /** The CloudFormation stack (`STACK_NAME`): the `bedrock-batch:stack` tag of the jobs created. */
  readonly stackName: string | undefined;
  readonly pipeline: PipelineEnvConfig;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

/** Reads and checks the handler configuration from `env`. */
export function readHandlerConfig(env: NodeJS.ProcessEnv = process.env): HandlerConfig {
  const pipelineText = required(env, 'PIPELINE_CONFIG');
  let pipeline: PipelineEnvConfig;
  try {
    pipeline = JSON.parse(pipelineText) as PipelineEnvConfig;
  } catch (err) {
    throw new Error(`PIPELINE_CONFIG is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return {
    bucket: required(env, 'BUCKET_NAME'),
    table: required(env, 'TABLE_NAME'),
    bedrockRoleArn: required(env, 'BEDROCK_ROLE_ARN'),
    eventBusName: env.EVENT_BUS_NAME || 'default',
    stateMachineArn: env.STATE_MACHINE_ARN || undefined,
    stackName: env.STACK_NAME || undefined,
    pipeline,
  };
}

const CONFIG_VARIABLES = ['PIPELINE_CONFIG', 'BUCKET_NAME', 'TABLE_NAME', 'BEDROCK_ROLE_ARN', 'EVENT_BUS_NAME', 'STATE_MACHINE_ARN', 'STACK_NAME'] as const;
let cached: { key: string; config: HandlerConfig } | undefined;

/** The process's configuration, read on first use and again only if its variables change. */
export function handlerConfig(): HandlerConfig {
  const key = CONFIG_VARIABLES.map((name) => process.env[name] ?? '').join('\u0000');
  if (cached?.key !== key) cached = { key, config: readHandlerConfig() };
  return cached.config;
}
