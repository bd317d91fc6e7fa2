import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BUCKET_KEY_METADATA_KEY, s3PrefixesUnder } from '../lambdas/shared/contracts';
import { modelInvocationJobArnPattern, modelResourceArnsOf, usesInferenceProfile } from './model-arns';
import { grantObjectEncryption } from './encryption-key';
import { acknowledgeNag, nagResourceFinding } from './nag';

/** Properties of {@link BedrockServiceRole}. */
export interface BedrockServiceRoleProps {
  /** The drop bucket: Bedrock reads `jobs-input/` and writes `jobs-output/` of it. */
  readonly bucket: s3.IBucket;
  /**
   * The model ids of the routes. Those behind an inference profile get `bedrock:InvokeModel`
   * on the profile and its foundation model; the others need no model permission here.
   */
  readonly modelIds: readonly string[];
  /**
   * The drop bucket's KMS key: Bedrock then decrypts the chunk inputs and generates data keys for
   * the job outputs with it (docs/BEDROCK-FACTS.md §8; without them a job fails minutes after it
   * was accepted, with a message about GetObject or PutObject permissions).
   * @default - the bucket is SSE-S3: no key permission
   */
  readonly encryptionKey?: kms.IKey;
  /** The pipeline's key prefix in the bucket: Bedrock's prefixes are under it. @default '' */
  readonly keyPrefix?: string;
}

/**
 * The role Bedrock assumes to run the pipeline's batch inference jobs (`roleArn` of
 * CreateModelInvocationJob). Only `bedrock.amazonaws.com` acting for this account's
 * model-invocation jobs in this region may assume it; it reads only chunk inputs
 * (`jobs-input/`) and writes only job outputs (`jobs-output/`).
 */
export class BedrockServiceRole extends Construct {
  /** The service role. */
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: BedrockServiceRoleProps) {
    super(scope, id);
    const env = { partition: Aws.PARTITION, region: Aws.REGION, account: Aws.ACCOUNT_ID };
    const bucketArn = props.bucket.bucketArn;
    const prefixes = s3PrefixesUnder(props.keyPrefix ?? '');
    const inputObjects = `${bucketArn}/${prefixes.jobsInput}*`;
    const outputObjects = `${bucketArn}/${prefixes.jobsOutput}*`;
    const sameAccount = { StringEquals: { 'aws:ResourceAccount': Aws.ACCOUNT_ID } };

    const statements = [
      new iam.PolicyStatement({
        sid: 'ReadChunkInputs',
        actions: ['s3:GetObject'],
        resources: [inputObjects],
        conditions: sameAccount,
      }),
      new iam.PolicyStatement({
        sid: 'WriteJobOutputs',
        actions: ['s3:PutObject'],
        resources: [outputObjects],
        conditions: sameAccount,
      }),
      // IfExists: AWS's own example role grants ListBucket on the whole bucket, and no page says
      // Bedrock always lists with a prefix; a list without one must not fail every job on AWS.
      // A list that names a prefix is still held to the job prefixes. (docs/BEDROCK-FACTS.md §8)
      new iam.PolicyStatement({
        sid: 'ListJobPrefixes',
        actions: ['s3:ListBucket'],
        resources: [bucketArn],
        conditions: {
          ...sameAccount,
          StringLikeIfExists: { 's3:prefix': [`${prefixes.jobsInput}*`, `${prefixes.jobsOutput}*`] },
        },
      }),
    ];

    // A job on an inference profile invokes the model in every region the profile routes to.
    const profileModelArns = modelResourceArnsOf(props.modelIds.filter(usesInferenceProfile), env);
    if (profileModelArns.length > 0) {
      statements.push(new iam.PolicyStatement({ sid: 'InvokeProfileModels', actions: ['bedrock:InvokeModel'], resources: profileModelArns }));
    }

    this.role = new iam.Role(this, 'Role', {
      description: 'Assumed by Amazon Bedrock to run bedrock-batch inference jobs',
      assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        ArnEquals: { 'aws:SourceArn': modelInvocationJobArnPattern(env) },
      }),
      inlinePolicies: { BatchJobAccess: new iam.PolicyDocument({ statements }) },
    });
    if (props.encryptionKey) {
      grantObjectEncryption(this.role, props.encryptionKey);
      (this.role.node.defaultChild as iam.CfnRole).addMetadata(BUCKET_KEY_METADATA_KEY, props.encryptionKey.keyArn);
    }

    acknowledgeNag(
      this.role,
      'AwsSolutions-IAM5',
      'Bedrock reads every chunk file of a job under jobs-input/ and writes one output folder per job under jobs-output/; object names are only known at run time, so the role is scoped to exactly these two prefixes.',
      [nagResourceFinding(this, inputObjects), nagResourceFinding(this, outputObjects)],
    );
    const anyRegionModels = profileModelArns.filter((arn) => arn.includes(':bedrock:*::'));
    if (anyRegionModels.length > 0) {
      acknowledgeNag(
        this.role,
        'AwsSolutions-IAM5',
        "An inference profile routes a request to any region it spans, and Bedrock requires InvokeModel on the foundation model in each of them; only the routes' foundation models get the region wildcard.",
        anyRegionModels.map((arn) => nagResourceFinding(this, arn)),
      );
    }
  }
}
