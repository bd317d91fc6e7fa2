import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { DropBucket } from '../../lib/drop-bucket';
import { buildStack } from './helpers';

describe('DropBucket in the pipeline stack', () => {
  const { stack, template } = buildStack();
  const dropBucketId = stack.resolve((stack.dropBucket.bucket.node.defaultChild as any).logicalId) as string;
  const dropBucket = () => template.findResources('AWS::S3::Bucket')[dropBucketId]!;

  test('blocks all public access, encrypts with S3-managed keys, disables ACLs', () => {
    expect(dropBucket().Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  test('sends EventBridge notifications natively (no notification custom resource)', () => {
    expect(dropBucket().Properties.NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
    template.resourceCountIs('Custom::S3BucketNotifications', 0);
  });

  test('expires the intermediate prefixes after workRetentionDays and keeps inbox/ and results/', () => {
    const rules = dropBucket().Properties.LifecycleConfiguration.Rules as any[];
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
    expect(expiring.map((r) => [r.Prefix, r.ExpirationInDays, r.Status])).toEqual([
      ['jobs-input/', 9, 'Enabled'],
      ['jobs-output/', 9, 'Enabled'],
      ['work/', 9, 'Enabled'],
    ]);
    expect(rules).toContainEqual(expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }));
    for (const r of rules) expect(['inbox/', 'results/', 'held/']).not.toContain(r.Prefix);
  });

  test('denies any request without TLS, and TLS below 1.2', () => {
    const policy = Object.values(template.findResources('AWS::S3::BucketPolicy')).find((p: any) => p.Properties.Bucket.Ref === dropBucketId) as any;
    const statements = policy.Properties.PolicyDocument.Statement as any[];
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: 's3:*',
        Principal: { AWS: '*' },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }));
  });

  test('logs server access to a private log bucket through a bucket policy, not an ACL', () => {
    const logging = dropBucket().Properties.LoggingConfiguration;
    expect(logging.LogFilePrefix).toBe('drop-bucket/');
    const logBucketId = logging.DestinationBucketName.Ref as string;
    const logBucket = template.findResources('AWS::S3::Bucket')[logBucketId]!;
    expect(logBucket.Properties.AccessControl).toBeUndefined();
    expect(logBucket.Properties.PublicAccessBlockConfiguration).toMatchObject({ BlockPublicAcls: true, RestrictPublicBuckets: true });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
            Condition: {
              ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [dropBucketId, 'Arn'] } },
              StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
            },
          }),
        ]),
      },
    });
  });

  test('is retained when the stack is deleted', () => {
    expect(dropBucket().DeletionPolicy).toBe('Retain');
  });
});

describe('DropBucket options', () => {
  test('versioned buckets also expire noncurrent versions of the intermediate prefixes', () => {
    const stack = new Stack(new App(), 'S');
    new DropBucket(stack, 'Drop', { versioned: true, workRetentionDays: 3 });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'work/', ExpirationInDays: 3, NoncurrentVersionExpiration: { NoncurrentDays: 3 } })]),
      },
    });
  });

  test('uses a given access-log bucket instead of creating one', () => {
    const stack = new Stack(new App(), 'S');
    const logs = Bucket.fromBucketName(stack, 'Logs', 'my-log-bucket');
    new DropBucket(stack, 'Drop', { serverAccessLogsBucket: logs });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResourceProperties('AWS::S3::Bucket', { LoggingConfiguration: { DestinationBucketName: 'my-log-bucket' } });
  });
});
