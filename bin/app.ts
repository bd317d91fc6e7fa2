#!/usr/bin/env node
/**
 * The CDK app: reads the `bedrockBatch` context once, validates it, builds the stack and runs
 * cdk-nag's AwsSolutions checks on it.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BedrockBatchStack, DEFAULT_STACK_NAME } from '../lib/pipeline-stack';
import { loadPipelineConfig, type PipelineConfig } from '../lib/pipeline-config';

const app = new App();

let config: PipelineConfig;
try {
  config = loadPipelineConfig(app.node.tryGetContext('bedrockBatch'));
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}

new BedrockBatchStack(app, DEFAULT_STACK_NAME, { config });
// cdk-nag 3 is a CDK validation plugin: any unacknowledged finding fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
