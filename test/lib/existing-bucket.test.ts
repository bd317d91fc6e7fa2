/**
 * BedrockBatchPipeline on a bucket of the user's (`bucket`) under a key prefix (`keyPrefix`):
 * nothing is created or set on the bucket, and every grant, rule and handler key is scoped to
 * the prefix.
 */
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BedrockBatchPipeline } from '../../lib';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';

function build(props: { keyPrefix?: string; existing?: boolean } = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Lake');
  const bucket = props.existing === false ? undefined : s3.Bucket.fromBucketName(stack, 'DataLake', 'data-lake');
  const pipeline = new BedrockBatchPipeline(stack, 'Ml', {
    routes: { default: { modelId: HAIKU } },
    ...(bucket ? { bucket } : {}),
    ...(props.keyPrefix !== undefined ? { keyPrefix: props.keyPrefix } : {}),
  });
  return { stack, pipeline, template: Template.fromStack(stack) };
}

/** Every policy statement of the roles whose logical ids start with `rolePrefix` (attached and inline), as JSON text. */
function statementsOf(template: Template, rolePrefix: string): string[] {
  const attached = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref.startsWith(rolePrefix)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as unknown[]);
  const inline = Object.entries(template.findResources('AWS::IAM::Role'))
    .filter(([id]) => id.startsWith(rolePrefix))
    .flatMap(([, r]) => ((r.Properties.Policies ?? []) as Array<{ PolicyDocument: { Statement: unknown[] } }>).flatMap((p) => p.PolicyDocument.Statement));
  return [...attached, ...inline].map((s) => JSON.stringify(s));
}

describe('a pipeline on an existing bucket under a key prefix', () => {
  const { stack, pipeline, template } = build({ keyPrefix: 'teams/ml/' });

  test('creates no bucket, uses the given one, and warns what to set on it', () => {
    template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(pipeline.bucket.bucketName).toBe('data-lake');
    Annotations.fromStack(stack).hasWarning('/Lake/Ml/DropBucket', Match.stringLikeRegexp('turn on its EventBridge notifications.*teams/ml/inbox/'));
  });

  test('every function knows the prefix; drops start runs only under <prefix>inbox/', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function', { Metadata: { 'bedrock-batch:handler': Match.anyValue() } }));
    expect(functions).toHaveLength(11);
    for (const fn of functions) expect(fn.Properties.Environment.Variables).toMatchObject({ KEY_PREFIX: 'teams/ml/', BUCKET_NAME: 'data-lake' });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.s3'], detail: { bucket: { name: ['data-lake'] }, object: { key: [{ prefix: 'teams/ml/inbox/' }] } } },
    });
    expect(stack.resolve(pipeline.completionEventPattern.detail)).toEqual({ outputs: { failed: [{ prefix: 's3://data-lake/teams/ml/' }] } });
  });

  test("Bedrock's role and the functions' roles reach only keys under the prefix", () => {
    const bedrock = statementsOf(template, 'MlBedrockServiceRole').join('\n');
    expect(bedrock).toContain(':s3:::data-lake/teams/ml/jobs-input/*');
    expect(bedrock).toContain(':s3:::data-lake/teams/ml/jobs-output/*');
    expect(bedrock).toContain('"s3:prefix":["teams/ml/jobs-input/*","teams/ml/jobs-output/*"]');
    const prepare = statementsOf(template, 'MlFunctionsPrepare').join('\n');
    // Run inputs: anywhere under the prefix (not the whole shared bucket), listed under it only
    // (a key that may be missing is probed by listing it, not by a GetObject).
    expect(prepare).toContain(':s3:::data-lake/teams/ml/*"');
    expect(prepare).not.toMatch(/:s3:::data-lake\/\*"/);
    expect(prepare).toContain('"StringLike":{"s3:prefix":["teams/ml/*"]}');
    const everyRole = Object.keys(template.findResources('AWS::IAM::Role')).flatMap((id) => statementsOf(template, id));
    for (const statement of everyRole.filter((s) => s.includes(':s3:::data-lake/'))) {
      expect({ statement, scoped: /:s3:::data-lake\/teams\/ml\//.test(statement) }).toEqual({ statement, scoped: true });
    }
  });
});

test('a created bucket may have a key prefix too; without one no KEY_PREFIX is set', () => {
  const prefixed = build({ existing: false, keyPrefix: 'bb/' }).template;
  prefixed.hasResourceProperties('AWS::S3::Bucket', {
    LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-bb-work', Prefix: 'bb/work/' })]) },
  });
  const plain = build({ existing: false }).template;
  for (const fn of Object.values(plain.findResources('AWS::Lambda::Function', { Metadata: { 'bedrock-batch:handler': Match.anyValue() } }))) {
    expect(fn.Properties.Environment.Variables.KEY_PREFIX).toBeUndefined();
  }
});

test.each(['/abs/', 'no-slash', 'a/../b/', 'a/./b/', 'sp ace/', 'x'.repeat(101) + '/'])('keyPrefix %j is refused, named by its path', (keyPrefix) => {
  expect(() => build({ keyPrefix })).toThrow(/Invalid BedrockBatchPipeline props \(Lake\/Ml\):\n {2}- props\.keyPrefix must be '' or \/-separated segments/);
});
