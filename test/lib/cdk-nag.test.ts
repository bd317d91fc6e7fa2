import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { BedrockBatchStack } from '../../lib/pipeline-stack';
import { buildStack, config } from './helpers';

/** The configurations the nag checks run on: every branch that adds or scopes permissions. */
const CONFIGS = {
  'one on-demand model': config(),
  'profiles, ARNs and nightly routes': config({
    default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' },
    profiled: { modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', trigger: 'nightly' },
    global: { modelId: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0', smallRemainder: 'hold' },
    arn: { modelId: 'arn:aws:bedrock:eu-west-1:111122223333:inference-profile/eu.amazon.nova-pro-v1:0' },
    fm: { modelId: 'arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0' },
  }),
};

/** Acknowledgements recorded on the construct tree: [construct path, rule id, reason]. */
function acknowledgements(root: IConstruct): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.push([c.node.path, id.replace(/^annotation::/i, ''), reason]);
      }
    }
  }
  return out;
}

describe.each(Object.entries(CONFIGS))('cdk-nag AwsSolutions with %s', (_name, cfg) => {
  const { stack } = buildStack(cfg);

  test('zero unacknowledged errors or warnings', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
    const findings = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  test('each acknowledgement names the rule (and the exact finding for IAM5) with a real reason', () => {
    const acks = acknowledgements(stack);
    expect(acks.length).toBeGreaterThan(0);
    for (const [path, id, reason] of acks) {
      expect(id).toMatch(/^AwsSolutions-[A-Z]+\d+/);
      if (id.startsWith('AwsSolutions-IAM5')) expect(id).toMatch(/^AwsSolutions-IAM5\[Resource::.+\]$/);
      expect(`${path}: ${reason}`).toMatch(/.{60,}/);
    }
    // Only the rules we mean to accept, and never a wildcard action.
    const rules = new Set(acks.map(([, id]) => id.replace(/\[.*$/, '')));
    expect([...rules].sort()).toEqual(['AwsSolutions-IAM5', 'AwsSolutions-L1', 'AwsSolutions-SQS3']);
    // SQS3 (a queue without its own dead-letter queue) only on the dead-letter queues themselves.
    const sqs3 = acks.filter(([, id]) => id === 'AwsSolutions-SQS3').map(([path]) => path);
    expect(sqs3.sort()).toEqual(
      Object.values(stack.eventDelivery.queues)
        .map((q) => q.node.path)
        .sort(),
    );
    expect(acks.some(([, id]) => id.includes('Action::'))).toBe(false);
  });

  test('every acknowledgement matches a real finding under its construct (none is stale)', () => {
    const spy = jest.spyOn(Validations.prototype, 'acknowledge').mockImplementation(() => undefined);
    let raw: ReturnType<AwsSolutionsChecks['validateScope']>;
    try {
      raw = new AwsSolutionsChecks().validateScope(buildStack(cfg).stack);
    } finally {
      spy.mockRestore();
    }
    for (const [path, id] of acknowledgements(stack)) {
      const violation = raw.violations.find((v) => v.ruleName === id);
      expect({ id, path, matched: violation?.violatingResources.some((r) => r.constructPath?.startsWith(`${path}/`)) ?? false }).toEqual({
        id,
        path,
        matched: true,
      });
    }
  });
});

test('the app-level validation plugin (what cdk synth runs) passes', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  new BedrockBatchStack(app, 'NagStack', { config: CONFIGS['profiles, ARNs and nightly routes'] });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});
