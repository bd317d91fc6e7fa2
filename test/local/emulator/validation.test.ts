import { validateCreateJobRequest, validateJobIdentifier, validateListQuery } from '../../../local/emulator/validation';

const valid = {
  jobName: 'job-1',
  roleArn: 'arn:aws:iam::123456789012:role/BedrockBatch',
  modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
  inputDataConfig: { s3InputDataConfig: { s3Uri: 's3://my-bucket/in/a.jsonl' } },
  outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://my-bucket/out/' } },
};

const problem = (body: Record<string, unknown>): string | undefined => {
  try {
    validateCreateJobRequest({ ...valid, ...body });
    return undefined;
  } catch (err) {
    expect((err as Error).name).toBe('ValidationException');
    return (err as Error).message;
  }
};

describe('CreateModelInvocationJob patterns (docs/BEDROCK-FACTS.md §1)', () => {
  it.each(['job-1', 'job.v2+x', 'Job--1', 'a', 'A'.repeat(63), 'bb-run1-r01-c00001', 'x-'])('accepts jobName %p', (jobName) => {
    expect(problem({ jobName })).toBeUndefined();
  });

  it.each(['job_1', 'job 1', '-job', '.job', '', 'a'.repeat(64)])('rejects jobName %p', (jobName) => {
    expect(problem({ jobName })).toContain("at 'jobName'");
  });

  it('rejects a pathological jobName (no catastrophic backtracking)', () => {
    // No clock needed: a backtracking pattern would take ~2^61 steps on this 63-character name,
    // so it would never return and the test would fail on jest's timeout.
    expect(problem({ jobName: `a${'-'.repeat(61)}_` })).toContain("at 'jobName'");
  });

  it.each([
    ['a UUID', '3f2504e0-4f89-11d3-9a0c-0305e82c3301', true],
    ['a run token', 'run1-r01-c00001', true],
    ['a trailing hyphen', 'abc-', false],
    ['an underscore', 'run_1', false],
    ['a leading hyphen', '-abc', false],
  ])('clientRequestToken with %s', (_label, clientRequestToken, ok) => {
    expect(problem({ clientRequestToken }) === undefined).toBe(ok);
  });

  it.each([
    ['arn:aws:iam::123456789012:role/x', true],
    ['arn:aws:iam:::role/x', true],
    ['arn:aws-us-gov:iam::123456789012:role/path/x', true],
    ['arn:aws:iam::123456789012:user/x', false],
    ['arn:aws:iam::12345:role/x', false],
  ])('roleArn %p', (roleArn, ok) => {
    expect(problem({ roleArn }) === undefined).toBe(ok);
  });

  it.each([
    ['s3://my-bucket', true],
    ['s3://my-bucket/', true],
    ['s3://my-bucket/prefix/', true],
    ['s3://my-bucket/a/b.jsonl', true],
    ["s3://my.bucket-1/(x)!_*'/Key.JSONL", true],
    ['s3://My-Bucket/a', false],
    ['s3://my_bucket/a', false],
    ['s3://ab', false],
    ['s3://my-bucket/a b', false],
    ['s3://my-bucket//a', false],
    ['s3://my-bucket/a=b', false],
    ['https://my-bucket/a', false],
  ])('S3Uri %p', (s3Uri, ok) => {
    expect(problem({ inputDataConfig: { s3InputDataConfig: { s3Uri } } }) === undefined).toBe(ok);
  });

  it.each([
    [24, true],
    [168, true],
    [23, false],
    [169, false],
    [24.5, false],
  ])('timeoutDurationInHours %p', (timeoutDurationInHours, ok) => {
    expect(problem({ timeoutDurationInHours }) === undefined).toBe(ok);
  });

  it.each([
    'anthropic.claude-3-haiku-20240307-v1:0',
    'us.anthropic.claude-3-5-haiku-20241022-v1:0',
    'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'amazon.titan-embed-text-v2:0',
    'mistral.mistral-7b-instruct-v0:2',
    'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
    'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdef123456',
    'arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-embed-text-v2:0/abcdefghijkl',
  ])('accepts modelId %p', (modelId) => {
    expect(problem({ modelId })).toBeUndefined();
  });

  it('checks unions, enums, vpcConfig and tags', () => {
    expect(problem({ inputDataConfig: {} })).toContain("at 'inputDataConfig'");
    expect(problem({ inputDataConfig: { s3InputDataConfig: { s3Uri: 's3://my-bucket/a', s3InputFormat: 'CSV' } } })).toContain('[JSONL]');
    expect(problem({ modelInvocationType: 'Batch' })).toContain('[InvokeModel, Converse]');
    expect(problem({ vpcConfig: { subnetIds: [], securityGroupIds: ['sg-1'] } })).toContain("at 'vpcConfig.subnetIds'");
    expect(problem({ vpcConfig: { subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] } })).toBeUndefined();
    expect(problem({ tags: [{ key: 'team', value: 'ml' }] })).toBeUndefined();
    expect(problem({ tags: [{ key: '', value: 'ml' }] })).toContain("at 'tags.1.member.key'");
  });

  it('reports every violation in one message, AWS style', () => {
    expect(problem({ jobName: 'job_1', timeoutDurationInHours: 10 })).toMatch(
      /^2 validation errors detected: Value 'job_1' at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern: .*; Value '10' at 'timeoutDurationInHours' failed to satisfy constraint: Member must have value greater than or equal to 24$/,
    );
  });
});

describe('jobIdentifier and list query', () => {
  it.each([
    ['abcdefghwxyz', true],
    ['arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdefghwxyz', true],
    ['my-batch-job', false],
    ['ABCDEFGHWXYZ', false],
  ])('jobIdentifier %p', (id, ok) => {
    let failed = false;
    try {
      validateJobIdentifier(id);
    } catch {
      failed = true;
    }
    expect(!failed).toBe(ok);
  });

  it('parses list filters and rejects bad values', () => {
    expect(validateListQuery(new URLSearchParams('statusEquals=Completed&maxResults=5&sortOrder=Ascending&submitTimeAfter=2024-01-01T00:00:00Z'))).toEqual({
      statusEquals: 'Completed',
      maxResults: 5,
      sortOrder: 'Ascending',
      submitTimeAfter: new Date('2024-01-01T00:00:00Z'),
    });
    expect(() => validateListQuery(new URLSearchParams('statusEquals=Done'))).toThrow(/statusEquals/);
    expect(() => validateListQuery(new URLSearchParams('maxResults=1001'))).toThrow(/maxResults/);
    expect(() => validateListQuery(new URLSearchParams('sortBy=Name'))).toThrow(/CreationTime/);
  });
});
