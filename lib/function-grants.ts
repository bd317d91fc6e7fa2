/** The policy statements of a function's {@link S3Access} and {@link TableAccess} (lib/function-access.ts). */
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { DropBucket } from './drop-bucket';
import { grantObjectEncryption } from './encryption-key';
import { ITEM_KEYS, NOT_RUN_INPUTS, type ItemAction, type ItemKind, type Prefix, type S3Access, type TableAccess } from './function-access';

/** The key pattern of a prefix's objects: `work/*` (`<keyPrefix>work/*` under a key prefix). */
export function prefixPattern(dropBucket: Pick<DropBucket, 'prefixes'>, prefix: Prefix): string {
  return `${dropBucket.prefixes[prefix]}*`;
}

/**
 * Grants a function its {@link S3Access} to the drop bucket (and its key's use, if it has one). Returns the object ARNs it allowed
 * (every one ends in a wildcard: keys are made of run ids, rounds and chunks) and the reason to
 * acknowledge them with.
 */
export function grantBucketAccess(role: iam.IRole, dropBucket: DropBucket, access: S3Access): { allowed: string[]; reason: string } {
  const bucket = dropBucket.bucket;
  const allowed: string[] = [];
  const allow = (actions: string[], resources: string[]) => {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
    allowed.push(...resources);
  };
  const pattern = (p: Prefix) => prefixPattern(dropBucket, p);
  if (access.read === 'run-inputs') {
    // Anywhere in the pipeline's bucket, or under its key prefix in a bucket it shares.
    allow(['s3:GetObject'], [bucket.arnForObjects(`${dropBucket.keyPrefix}*`)]);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ['s3:GetObject'],
        resources: NOT_RUN_INPUTS.map((p) => bucket.arnForObjects(pattern(p))),
      }),
    );
  } else if (access.read?.length) {
    allow(
      ['s3:GetObject'],
      access.read.map((p) => bucket.arnForObjects(pattern(p))),
    );
  }
  if (access.write?.length) {
    allow(
      ['s3:PutObject', 's3:AbortMultipartUpload'],
      access.write.map((p) => bucket.arnForObjects(pattern(p))),
    );
  }
  if (access.list === 'run-inputs') {
    const underPrefix = dropBucket.keyPrefix ? { conditions: { StringLike: { 's3:prefix': [`${dropBucket.keyPrefix}*`] } } } : {};
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], ...underPrefix }));
  } else if (access.list?.length) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { [access.readsMissingKeys ? 'StringLikeIfExists' : 'StringLike']: { 's3:prefix': access.list.map(pattern) } },
      }),
    );
  }
  // Reading an SSE-KMS object needs Decrypt; writing one needs GenerateDataKey (and Decrypt for
  // an upload in parts). Listing needs no key.
  const key = dropBucket.encryptionKey;
  if (key && (access.read !== undefined || access.write?.length)) grantObjectEncryption(role, key);
  const reason =
    access.read === 'run-inputs'
      ? 'A run\'s input files may be anywhere in the drop bucket but the pipeline\'s own output prefixes (jobs-output/, results/: read explicitly denied); written run files are keyed by run id, round and chunk (docs/ARCHITECTURE.md, "Data layout"), only known at run time; no delete.'
      : 'Run files are keyed by run id, round and chunk (docs/ARCHITECTURE.md, "Data layout"), only known at run time; access is to the prefixes this function uses, without delete.';
  return { allowed, reason };
}

/**
 * Grants a function its {@link TableAccess}: one statement per item kind, limited to that kind's
 * partition keys. `ForAllValues` holds for a request without keys too, which is why no such
 * statement may hold an action that takes none (Scan): a Scan gets a statement of its own.
 */
export function grantTableAccess(role: iam.IRole, table: dynamodb.ITable, access: TableAccess): void {
  for (const [kind, actions] of Object.entries(access.items) as Array<[ItemKind, readonly ItemAction[]]>) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: actions.map((a) => `dynamodb:${a}`),
        resources: [table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ITEM_KEYS[kind]}*`] } },
      }),
    );
  }
  if (access.scan) role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['dynamodb:Scan'], resources: [table.tableArn] }));
}
