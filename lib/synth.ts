import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import type { PipelineConfig } from './pipeline-config';
import { BedrockBatchStack, DEFAULT_STACK_NAME } from './pipeline-stack';

/** Options of {@link synthesizePipelineTemplate}. */
export interface SynthesizeOptions {
  /** Stack id and name. @default DEFAULT_STACK_NAME ('BedrockBatch') */
  readonly stackName?: string;
}

/**
 * Synthesizes the pipeline stack for `config` and returns its CloudFormation template (JSON
 * object). Bundling is skipped, nothing is printed and the temporary cloud assembly is removed,
 * so it takes seconds. The local twin runs the state machine definition found in it and binds
 * functions to code by their `bedrock-batch:handler` metadata.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function synthesizePipelineTemplate(config: PipelineConfig, opts: SynthesizeOptions = {}): any {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bedrock-batch-synth-'));
  try {
    const app = new App({ outdir, autoSynth: false, context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new BedrockBatchStack(app, opts.stackName ?? DEFAULT_STACK_NAME, { config });
    return app.synth().getStackArtifact(stack.artifactId).template;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}
