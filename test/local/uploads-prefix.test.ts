/**
 * `--input-json` uploads the local files to `uploads/<file name>` before starting the
 * executions: that prefix must start nothing by itself, in the synthesized stack's rules.
 */
import { loadPipelineConfig } from '../../lib/pipeline-config';
import { synthesizePipelineTemplate } from '../../lib/synth';
import { uploadKey, UPLOADS_PREFIX } from '../../local/run-local';
import { matchesEventPattern } from '../../local/services/event-pattern';
import { fakeResolver } from '../../local/services/fake-arns';
import { eventRules } from '../../local/services/template';
import type { CfnTemplate } from '../../local/services/template-intrinsics';

test('no rule of the stack matches an object created under uploads/ (one under inbox/ does)', () => {
  const config = loadPipelineConfig({ routes: { default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } } });
  const template = synthesizePipelineTemplate(config) as CfnTemplate;
  const resources = template.Resources ?? {};
  const bucketId = Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::S3::Bucket' && !/log/i.test(id))!;
  const rules = eventRules(template, fakeResolver(template, { names: { [bucketId]: 'bedrock-batch-local' } })).filter(
    (r) => r.eventPattern && r.state === 'ENABLED',
  );
  const created = (key: string) => ({
    version: '0',
    id: 'e',
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '123456789012',
    time: '2025-01-01T00:00:00Z',
    region: 'us-east-1',
    resources: ['arn:aws:s3:::bedrock-batch-local'],
    detail: { bucket: { name: 'bedrock-batch-local' }, object: { key, size: 10, etag: 'x' }, reason: 'PutObject' },
  });
  expect(uploadKey('/some/dir/tickets.jsonl')).toBe(`${UPLOADS_PREFIX}tickets.jsonl`);
  expect(rules.filter((r) => matchesEventPattern(r.eventPattern!, created(uploadKey('tickets.jsonl'))))).toEqual([]);
  expect(rules.filter((r) => matchesEventPattern(r.eventPattern!, created('inbox/default/tickets.jsonl')))).not.toEqual([]);
});
