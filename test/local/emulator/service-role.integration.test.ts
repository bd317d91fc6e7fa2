import { GetModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { decide, type PolicyStatement } from '../../../local/twin/iam-policies';
import { BUCKET, claudeRecords, emulatorsForFile } from './harness';

/**
 * The job's service role, as Bedrock uses it once the job is accepted: read the input, list and
 * write the output, and for a job on an inference profile invoke the model in each region the
 * profile routes to (docs/BEDROCK-FACTS.md §8).
 */
const { s3, emulator } = emulatorsForFile();

const PROFILE = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';
const PROFILE_ARN = `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${PROFILE}`;
const model = (region: string) => `arn:aws:bedrock:${region}::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0`;
const allow = (actions: string[], resources: string[]): PolicyStatement => ({ source: 't', effect: 'Allow', actions, resources, conditions: [] });
const S3_GRANTS = [allow(['s3:GetObject', 's3:PutObject'], [`arn:aws:s3:::${BUCKET}/*`]), allow(['s3:ListBucket'], [`arn:aws:s3:::${BUCKET}`])];

let seq = 0;
/** Runs one job under a role with `statements`; returns what it ended with and the requests the role was asked. */
async function runUnder(statements: PolicyStatement[], modelId: string, bucketKeys?: Record<string, string>) {
  const asked: Array<{ action: string; resource: string; context: Record<string, string> }> = [];
  const harness = await emulator({
    ...(bucketKeys ? { bucketKeys } : {}),
    serviceRoleAllows: (_role, action, resource, context) => {
      asked.push({ action, resource, context });
      return decide(statements, { action, resource, context }).allowed;
    },
  });
  const key = `in/role-${++seq}/input.jsonl`;
  await s3.putRecords(key, claudeRecords(100));
  const arn = await harness.create({ inputKey: key, outputPrefix: `out/role-${seq}/`, modelId });
  await harness.emulator.idle();
  const job = await harness.bedrock.send(new GetModelInvocationJobCommand({ jobIdentifier: arn }));
  return { job, asked, key, output: `out/role-${seq}/` };
}

it('fails a profile job whose role may invoke the model in the caller region only, naming what is missing', async () => {
  const { job } = await runUnder([...S3_GRANTS, allow(['bedrock:InvokeModel'], [PROFILE_ARN, model('us-east-1')])], PROFILE);
  expect(job.status).toBe('Failed');
  expect(job.message).toContain(`bedrock:InvokeModel on ${model('us-east-2')}`);
  expect(job.message).toContain(`bedrock:InvokeModel on ${model('us-west-2')}`);
  expect(job.message).not.toContain(`on ${model('us-east-1')}`);
});

it('runs a profile job whose role may invoke the model in every region (what the stack grants)', async () => {
  const { job, asked } = await runUnder([...S3_GRANTS, allow(['bedrock:InvokeModel'], [PROFILE_ARN, model('*')])], PROFILE);
  expect(job.status).toBe('Completed');
  expect(asked.filter((a) => a.action === 'bedrock:InvokeModel').map((a) => a.resource)).toEqual([
    PROFILE_ARN,
    model('us-east-1'),
    model('us-east-2'),
    model('us-west-2'),
  ]);
});

it('fails a job whose role may not list the bucket, and asks with the input and output prefixes', async () => {
  const denied = await runUnder([S3_GRANTS[0]!], 'anthropic.claude-3-haiku-20240307-v1:0');
  expect(denied.job.status).toBe('Failed');
  expect(denied.job.message).toMatch(/could not validate .*s3:ListBucket on arn:aws:s3:::test-bucket is not allowed/);
  const granted = await runUnder(S3_GRANTS, 'anthropic.claude-3-haiku-20240307-v1:0');
  expect(granted.job.status).toBe('Completed');
  expect(granted.asked.filter((a) => a.action === 's3:ListBucket').map((a) => a.context['s3:prefix'])).toEqual([granted.key, granted.output]);
  // A bare model id needs no InvokeModel grant on the service role.
  expect(granted.asked.some((a) => a.action === 'bedrock:InvokeModel')).toBe(false);
});

it('fails a job on an SSE-KMS bucket whose role may not use the key through S3, with the S3 message (no word of KMS)', async () => {
  const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const keyGrant = (actions: string[]): PolicyStatement => ({
    ...allow(actions, [KEY]),
    conditions: [{ operator: 'StringEquals', key: 'kms:ViaService', values: ['s3.us-east-1.amazonaws.com'] }],
  });
  const haiku = 'anthropic.claude-3-haiku-20240307-v1:0';
  const keys = { [BUCKET]: KEY };
  const denied = await runUnder([...S3_GRANTS, keyGrant(['kms:Decrypt'])], haiku, keys);
  expect(denied.job.status).toBe('Failed');
  // Bedrock's S3 message, as when KMS permissions are missing on AWS (docs/BEDROCK-FACTS.md §8).
  expect(denied.job.message).toMatch(/^Amazon Bedrock could not validate GetObject or PutObject permissions with the service role /);
  expect(denied.job.message).not.toMatch(/kms/i);
  expect(denied.asked.filter((a) => a.action.startsWith('kms:')).map((a) => `${a.action} ${a.context['kms:ViaService']}`)).toEqual([
    'kms:Decrypt s3.us-east-1.amazonaws.com',
    'kms:GenerateDataKey s3.us-east-1.amazonaws.com',
  ]);
  const granted = await runUnder([...S3_GRANTS, keyGrant(['kms:Decrypt', 'kms:GenerateDataKey'])], haiku, keys);
  expect(granted.job.status).toBe('Completed');
  // An unencrypted bucket asks nothing of KMS.
  expect((await runUnder(S3_GRANTS, haiku)).asked.some((a) => a.action.startsWith('kms:'))).toBe(false);
});
