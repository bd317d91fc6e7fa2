import { Arn, ArnFormat, Aws, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';

/**
 * Lets `grantee` use the drop bucket's KMS key for S3 objects, and only through S3 in the stack's
 * region (`kms:ViaService`): `kms:Decrypt` to read (and to upload in parts), and
 * `kms:GenerateDataKey` to write. These are the KMS permissions Bedrock documents for a batch
 * job's service role on an encrypted bucket (docs/BEDROCK-FACTS.md §8); the functions that read
 * and write the bucket need the same. The key's policy must let the account's IAM policies grant
 * its use (the default key policy does).
 */
export function grantObjectEncryption(grantee: iam.IGrantable, key: kms.IKey): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
    resourceArns: [key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
  });
}

/**
 * Throws when `key` is in another region than `scope`'s stack: S3 encrypts a bucket's objects
 * only with a key of the bucket's own region. Unknown regions (tokens) pass.
 */
export function checkKeyRegion(scope: Construct, key: kms.IKey, what: string): void {
  const stack = Stack.of(scope);
  if (Token.isUnresolved(key.keyArn) || Token.isUnresolved(stack.region)) return;
  const region = Arn.split(key.keyArn, ArnFormat.SLASH_RESOURCE_NAME).region;
  if (region !== stack.region) {
    throw new Error(`${what} is in region ${region}, the stack in ${stack.region}: an S3 bucket can be encrypted only with a KMS key of its own region`);
  }
}
