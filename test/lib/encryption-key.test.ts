import { App, Stack } from 'aws-cdk-lib';
import { BUCKET_KEY_METADATA_KEY } from '../../lambdas/shared/contracts';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BedrockBatchPipeline, type BedrockBatchPipelineProps } from '../../lib';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const routes = { default: { modelId: HAIKU } };
const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function newStack(env?: { region: string; account: string }): Stack {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return new Stack(app, 'Shared', env ? { env } : {});
}

/** The KMS actions each role's policies allow on `keyArn` (resolved), by the role's logical id. */
function kmsActionsByRole(template: Template, keyArn: unknown): Record<string, string[]> {
  const json = template.toJSON();
  const out: Record<string, string[]> = {};
  const add = (role: string, actions: string[]) => (out[role] = [...new Set([...(out[role] ?? []), ...actions])].sort());
  const statementsOf = (doc: any) => (doc?.Statement ?? []) as any[];
  const onKey = (s: any) => JSON.stringify([s.Resource].flat()) === JSON.stringify([keyArn]);
  for (const [id, r] of Object.entries(json.Resources as Record<string, any>)) {
    if (r.Type === 'AWS::IAM::Policy') {
      for (const s of statementsOf(r.Properties.PolicyDocument).filter(onKey)) {
        for (const role of r.Properties.Roles) add(role.Ref, [s.Action].flat());
      }
    }
    if (r.Type === 'AWS::IAM::Role') {
      for (const p of r.Properties.Policies ?? []) for (const s of statementsOf(p.PolicyDocument).filter(onKey)) add(id, [s.Action].flat());
    }
  }
  return out;
}

/** The logical id of the role of the function whose handler is `name`. */
function roleOf(template: Template, name: string): string {
  const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) => f.Metadata?.['bedrock-batch:handler'] === name)!;
  return fn.Properties.Role['Fn::GetAtt'][0];
}

describe('BedrockBatchPipeline with an encryptionKey', () => {
  const stack = newStack();
  const key = new kms.Key(stack, 'DataKey', { enableKeyRotation: true });
  const pipeline = new BedrockBatchPipeline(stack, 'Pipeline', { routes, encryptionKey: key });
  const template = Template.fromStack(stack);
  const keyArn = stack.resolve(key.keyArn);

  test('the drop bucket is encrypted with the key (S3 Bucket Keys on); the access-log bucket stays SSE-S3', () => {
    const buckets = template.findResources('AWS::S3::Bucket');
    const drop = buckets[stack.getLogicalId(pipeline.dropBucket.bucket.node.defaultChild as any)]!;
    expect(drop.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
      { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn } },
    ]);
    const logs = buckets[stack.getLogicalId(pipeline.dropBucket.accessLogsBucket!.node.defaultChild as any)]!;
    // Server access logs can only be delivered to an SSE-S3 bucket.
    expect(logs.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({ SSEAlgorithm: 'AES256' });
    expect(pipeline.encryptionKey).toBe(key);
  });

  test('every role that reads and writes objects (the Bedrock service role too) may decrypt and generate data keys; the others get nothing', () => {
    const byRole = kmsActionsByRole(template, keyArn);
    const readWrite = ['kms:Decrypt', 'kms:GenerateDataKey'];
    expect(byRole).toEqual({
      [stack.getLogicalId(pipeline.serviceRole.node.defaultChild as any)]: readWrite,
      [roleOf(template, 'prepare')]: readWrite,
      [roleOf(template, 'reconcile-chunk')]: readWrite,
      [roleOf(template, 'end-round')]: readWrite,
      [roleOf(template, 'finalize')]: readWrite,
      [roleOf(template, 'stop-run')]: readWrite,
    });
  });

  test('the key may be used only through S3 in the stack region', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as any[])
      .filter((s) => JSON.stringify([s.Resource].flat()) === JSON.stringify([keyArn]));
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements)
      expect(stack.resolve(s.Condition)).toEqual({
        StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
      });
  });

  test('cdk-nag AwsSolutions: zero unacknowledged findings', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((x) => x.constructPath).join(', ')}`)).toEqual([]);
  });
});

describe('BedrockBatchPipeline encryptionKey props', () => {
  test('an imported key is granted by its ARN', () => {
    const stack = newStack({ region: 'us-east-1', account: '111122223333' });
    const key = kms.Key.fromKeyArn(stack, 'Imported', KEY_ARN);
    new BedrockBatchPipeline(stack, 'Pipeline', { routes, encryptionKey: key });
    const byRole = kmsActionsByRole(Template.fromStack(stack), KEY_ARN);
    expect(Object.keys(byRole)).toHaveLength(6);
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
    expect(report.violations).toEqual([]);
  });

  test("the Bedrock service role names the key in its metadata (how the local twin knows a user's bucket is encrypted)", () => {
    const stack = newStack({ region: 'us-east-1', account: '111122223333' });
    new BedrockBatchPipeline(stack, 'Pipeline', { routes, encryptionKey: kms.Key.fromKeyArn(stack, 'K', KEY_ARN) });
    const roles = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Role')).filter((r) => r.Metadata?.[BUCKET_KEY_METADATA_KEY] !== undefined);
    expect(roles.map((r) => r.Metadata[BUCKET_KEY_METADATA_KEY])).toEqual([KEY_ARN]);
    const plain = newStack();
    new BedrockBatchPipeline(plain, 'Pipeline', { routes });
    expect(Object.values(Template.fromStack(plain).findResources('AWS::IAM::Role')).some((r) => r.Metadata?.[BUCKET_KEY_METADATA_KEY] !== undefined)).toBe(
      false,
    );
  });

  test('without a key nothing is granted on any key and the bucket is SSE-S3', () => {
    const stack = newStack();
    const pipeline = new BedrockBatchPipeline(stack, 'Pipeline', { routes });
    const template = Template.fromStack(stack);
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);
    expect(statements.flatMap((s) => [s.Action].flat()).filter((a: string) => a.startsWith('kms:'))).toEqual([]);
    expect(pipeline.encryptionKey).toBeUndefined();
  });

  test('a key that is not a kms.IKey, an alias, or in another region than the stack, is refused by its prop path', () => {
    const build = (props: Partial<BedrockBatchPipelineProps>, env?: { region: string; account: string }) => {
      const stack = newStack(env);
      return () => new BedrockBatchPipeline(stack, 'Pipeline', { routes, ...props });
    };
    expect(build({ encryptionKey: KEY_ARN as unknown as kms.IKey })).toThrow(
      /Invalid BedrockBatchPipeline props \(Shared\/Pipeline\):\n {2}- props\.encryptionKey must be a kms\.IKey, e\.g\. kms\.Key\.fromKeyArn\(this, 'DataKey', arn\) \(got "arn:aws:kms/,
    );
    // An alias: S3 takes it as the bucket's key, but IAM checks the key's own ARN, so a grant on
    // the alias ARN would refuse every read and write on AWS.
    const aliasStack = newStack({ region: 'us-east-1', account: '123456789012' });
    const alias = kms.Alias.fromAliasName(aliasStack, 'Alias', 'alias/data');
    expect(() => new BedrockBatchPipeline(aliasStack, 'Pipeline', { routes, encryptionKey: alias })).toThrow(
      /props\.encryptionKey is a KMS alias \(alias\/data\): IAM grants use of a key by the key's ARN, not its alias; give the key, e\.g\. kms\.Key\.fromKeyArn/,
    );
    const stack = newStack({ region: 'eu-west-1', account: '111122223333' });
    const key = kms.Key.fromKeyArn(stack, 'Imported', KEY_ARN);
    expect(() => new BedrockBatchPipeline(stack, 'Pipeline', { routes, encryptionKey: key })).toThrow(
      'props.encryptionKey is in region us-east-1, the stack in eu-west-1: an S3 bucket can be encrypted only with a KMS key of its own region',
    );
  });
});
