/**
 * CDK's built-in CloudFormation validation (what `cdk synth` runs) on the widest configuration,
 * with its findings taken as errors. test/setup-env.ts turns this validation off for every other
 * test: its WebAssembly engine takes seconds to start in each test file and it only warns. In the
 * integration tier because of that start-up time.
 */
import { App } from 'aws-cdk-lib';
import { VALIDATE_AGAINST_DEFAULT_RULES } from 'aws-cdk-lib/cx-api';
import { BedrockBatchStack } from '../../lib/pipeline-stack';
import { config } from './helpers';

const WIDEST = config({
  default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' },
  profiled: { modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', trigger: 'nightly' },
  global: { modelId: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0', smallRemainder: 'hold' },
  arn: { modelId: 'arn:aws:bedrock:eu-west-1:111122223333:inference-profile/eu.amazon.nova-pro-v1:0' },
  fm: { modelId: 'arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0' },
});

test("the template passes CDK's built-in CloudFormation validation, its findings taken as errors", () => {
  const saved = process.env.CDK_VALIDATION;
  delete process.env.CDK_VALIDATION;
  try {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], [VALIDATE_AGAINST_DEFAULT_RULES]: true } });
    new BedrockBatchStack(app, 'ValidatedStack', { config: WIDEST });
    expect(() => app.synth()).not.toThrow();
  } finally {
    if (saved === undefined) delete process.env.CDK_VALIDATION;
    else process.env.CDK_VALIDATION = saved;
  }
});
