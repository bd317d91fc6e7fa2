/**
 * The synthesized pipeline template, cached per configuration for the life of the process:
 * synthesis takes seconds, and tests start many twins with the same configuration.
 */
import type { PipelineConfig } from '../lib/pipeline-config';
import { synthesizePipelineTemplate } from '../lib/synth';

const cache = new Map<string, unknown>();

export function cachedPipelineTemplate(config: PipelineConfig): unknown {
  const key = JSON.stringify(config);
  let template = cache.get(key);
  if (!template) {
    template = synthesizePipelineTemplate(config);
    cache.set(key, template);
  }
  return template;
}
