import { Annotations, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { s3PrefixesUnder } from '../lambdas/shared/contracts';
import { grantObjectEncryption } from './encryption-key';

/** Properties of {@link DropBucket}. */
export interface DropBucketProps {
  /** Days before the intermediate prefixes (`jobs-input/`, `jobs-output/`, `work/`) expire. @default 14 */
  readonly workRetentionDays?: number;
  /**
   * Keep object versions. Noncurrent versions then expire after `workRetentionDays`.
   * @default false
   */
  readonly versioned?: boolean;
  /**
   * Bucket that receives the server access logs (under `drop-bucket/`). It must accept
   * deliveries from `logging.s3.amazonaws.com` through its bucket policy.
   * @default - a dedicated, private access-log bucket is created
   */
  readonly serverAccessLogsBucket?: s3.IBucket;
  /** Days before server access logs expire in the bucket this construct creates. @default 90 */
  readonly accessLogRetentionDays?: number;
  /** What happens to the bucket(s) when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * A KMS key the drop bucket's objects are encrypted with (SSE-KMS, S3 Bucket Keys on). The
   * access-log bucket stays SSE-S3: server access logs cannot be delivered to an SSE-KMS bucket.
   * @default - SSE-S3
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * A bucket of the user's to use instead of creating one (it may hold other data: give a
   * `keyPrefix`). This construct then sets nothing on it: EventBridge notifications must be on
   * for drops to start runs, and the intermediate prefixes do not expire unless its own lifecycle
   * rules say so (a warning at synth says both).
   * @default - a bucket is created
   */
  readonly existingBucket?: s3.IBucket;
  /** Every key of the pipeline is under it (`teams/ml/`): `<keyPrefix>inbox/`, ... @default '' */
  readonly keyPrefix?: string;
}

/**
 * The S3 bucket users drop `.jsonl` files into (`inbox/<route>/`) and where runs keep their
 * workspace and results (see docs/ARCHITECTURE.md, "Data layout"). Private, TLS-only (1.2+),
 * SSE-S3 (or SSE-KMS with `encryptionKey`) encrypted, bucket-owner-enforced, EventBridge notifications on, intermediate
 * prefixes expire, server access logs kept.
 */
export class DropBucket extends Construct {
  /** The drop bucket (the user's, with `existingBucket`). */
  readonly bucket: s3.IBucket;
  /** Where the drop bucket's server access logs go (none is set up on an existing bucket). */
  readonly accessLogsBucket?: s3.IBucket;
  /** The pipeline's key prefix in the bucket (`''` or ending in `/`). */
  readonly keyPrefix: string;
  /** The pipeline's prefixes, under {@link keyPrefix}. */
  readonly prefixes: ReturnType<typeof s3PrefixesUnder>;
  /** The key the drop bucket's objects are encrypted with (`encryptionKey`), if any. */
  readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: DropBucketProps = {}) {
    super(scope, id);
    // Deliver access logs through a bucket policy, not the legacy LogDeliveryWrite ACL (ACLs
    // are disabled on these buckets). Scoped to this construct so it does not depend on the
    // app's feature flags; must be set before any child is created.
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);

    this.keyPrefix = props.keyPrefix ?? '';
    this.prefixes = s3PrefixesUnder(this.keyPrefix);
    this.encryptionKey = props.encryptionKey;
    if (props.existingBucket) {
      this.bucket = props.existingBucket;
      Annotations.of(this).addWarningV2(
        'bedrock-batch:existing-bucket',
        `The pipeline uses an existing bucket: turn on its EventBridge notifications (drops under ${this.prefixes.inbox} start runs only then), ` +
          `and add lifecycle rules expiring ${this.prefixes.jobsInput}, ${this.prefixes.jobsOutput} and ${this.prefixes.work} (nothing here sets them on a bucket it does not own)`,
      );
      return;
    }
    const retentionDays = props.workRetentionDays ?? 14;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const secure = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy,
    } satisfies s3.BucketProps;

    if (props.serverAccessLogsBucket) {
      this.accessLogsBucket = props.serverAccessLogsBucket;
    } else {
      const logs = new s3.Bucket(this, 'AccessLogs', {
        ...secure,
        lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(props.accessLogRetentionDays ?? 90) }],
      });
      // No access logging of its own: cdk-nag (S1) recognizes it as a log destination.
      this.accessLogsBucket = logs;
    }

    const expiring = [this.prefixes.jobsInput, this.prefixes.jobsOutput, this.prefixes.work];
    const lifecycleRules: s3.LifecycleRule[] = expiring.map((prefix) => ({
      id: `expire-${prefix.replace(/\/$/, '').replace(/\//g, '-')}`,
      prefix,
      expiration: Duration.days(retentionDays),
      ...(props.versioned ? { noncurrentVersionExpiration: Duration.days(retentionDays) } : {}),
    }));
    lifecycleRules.push({ id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) });

    const bucket = new s3.Bucket(this, 'Bucket', {
      ...secure,
      ...(props.encryptionKey ? { encryption: s3.BucketEncryption.KMS, encryptionKey: props.encryptionKey, bucketKeyEnabled: true } : {}),
      versioned: props.versioned ?? false,
      lifecycleRules,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'drop-bucket/',
    });

    // EventBridge notifications set directly on the CloudFormation bucket. The L2
    // `eventBridgeEnabled` prop does the same through a custom resource (a Python Lambda with
    // a managed policy and a wildcard s3:PutBucketNotification); CloudFormation supports the
    // setting natively, so no extra function is deployed. Do not mix with
    // `bucket.addEventNotification()`, which would manage the same configuration.
    this.bucket = bucket;
    const cfnBucket = bucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
  }

  /**
   * Lets `grantee` list the bucket and read and write its objects (no deletes, no ACLs, no
   * bucket configuration), and use its `encryptionKey` for them: what the pipeline's functions need.
   */
  grantPipelineData(grantee: iam.IGrantable): iam.Grant {
    const objects = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
      resourceArns: [this.bucket.arnForObjects(`${this.keyPrefix}*`)],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      ...(this.keyPrefix ? { conditions: { StringLike: { 's3:prefix': [`${this.keyPrefix}*`] } } } : {}),
    });
    if (this.encryptionKey) grantObjectEncryption(grantee, this.encryptionKey);
    return objects;
  }
}
