/**
 * What a batch job's service role must allow once Bedrock uses it (docs/BEDROCK-FACTS.md §8,
 * <https://docs.aws.amazon.com/bedrock/latest/userguide/batch-iam-sr.html>): read the input
 * object, list the input and output locations, write under the output prefix (each with
 * `aws:ResourceAccount`), use the bucket's KMS key through S3 when it is SSE-KMS encrypted,
 * and, for a job on an inference profile, invoke the profile and its
 * foundation model in every region the profile routes to (profile-regions.ts). Bedrock accepts
 * the job at create and fails it when it tries the role.
 */
import { profileModelArns } from './profile-regions';

/** One permission the role is asked for. */
export interface RoleNeed {
  readonly action: string;
  readonly resource: string;
  readonly context: Record<string, string>;
}

/** What the role of a job with this request needs, in the order Bedrock would use it. */
export function serviceRoleNeeds(
  request: { readonly modelId: string; readonly inputUri: string; readonly outputUri: string },
  jobId: string,
  env: { readonly region: string; readonly accountId: string; readonly bucketKeys?: Readonly<Record<string, string>> },
): RoleNeed[] {
  const account = { 'aws:ResourceAccount': env.accountId };
  const location = (uri: string) => {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    return slash < 0 ? { bucket: rest, key: '' } : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
  };
  const input = location(request.inputUri);
  const output = location(request.outputUri.endsWith('/') ? request.outputUri : `${request.outputUri}/`);
  const needs: RoleNeed[] = [
    { action: 's3:ListBucket', resource: `arn:aws:s3:::${input.bucket}`, context: { ...account, 's3:prefix': input.key } },
    { action: 's3:GetObject', resource: `arn:aws:s3:::${input.bucket}/${input.key}`, context: account },
    { action: 's3:ListBucket', resource: `arn:aws:s3:::${output.bucket}`, context: { ...account, 's3:prefix': output.key } },
    { action: 's3:PutObject', resource: `arn:aws:s3:::${output.bucket}/${output.key}${jobId}/manifest.json.out`, context: account },
  ];
  // An SSE-KMS bucket: S3 asks the key through S3 on the role's behalf, Decrypt to read the
  // input and GenerateDataKey to write the output (docs/BEDROCK-FACTS.md §8).
  const viaS3 = { 'kms:ViaService': `s3.${env.region}.amazonaws.com` };
  const inputKey = env.bucketKeys?.[input.bucket];
  const outputKey = env.bucketKeys?.[output.bucket];
  if (inputKey) needs.push({ action: 'kms:Decrypt', resource: inputKey, context: viaS3 });
  if (outputKey) needs.push({ action: 'kms:GenerateDataKey', resource: outputKey, context: viaS3 });
  for (const resource of profileModelArns(request.modelId, { region: env.region, account: env.accountId }) ?? []) {
    needs.push({ action: 'bedrock:InvokeModel', resource, context: {} });
  }
  return needs;
}

/**
 * The job's failure message for the needs the role denies, or undefined when it denies none.
 * Bedrock's words for S3 (docs/BEDROCK-FACTS.md §8: "could not validate GetObject or PutObject permissions",
 * used for ListBucket too); for the model, the twin's own words (AWS's text not confirmed).
 */
export function serviceRoleMessage(roleArn: string, denied: readonly RoleNeed[]): string | undefined {
  const list = (needs: readonly RoleNeed[]) => needs.map((n) => `${n.action} on ${n.resource} is not allowed`).join('; ');
  // A missing KMS permission fails the job with the same S3 message, which does not name KMS:
  // the twin lists the S3 permissions it denies, never the key's.
  const storage = (n: RoleNeed) => n.action.startsWith('s3:') || n.action.startsWith('kms:');
  const s3 = denied.filter((n) => n.action.startsWith('s3:'));
  const model = denied.filter((n) => !storage(n));
  const parts = [
    ...(denied.some(storage)
      ? [`Amazon Bedrock could not validate GetObject or PutObject permissions with the service role ${roleArn}${s3.length > 0 ? `: ${list(s3)}` : ''}`]
      : []),
    ...(model.length > 0 ? [`The service role ${roleArn} may not invoke the model in every region its inference profile routes to: ${list(model)}`] : []),
  ];
  return parts.length > 0 ? parts.join('. ') : undefined;
}
