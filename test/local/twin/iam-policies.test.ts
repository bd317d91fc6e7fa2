import { loadPipelineConfig } from '../../../lib/pipeline-config';
import { fakeResolver } from '../../../local/services/fake-arns';
import type { CfnTemplate } from '../../../local/services/template-intrinsics';
import { cachedPipelineTemplate } from '../../../local/template-cache';
import { AccessChecker, runAsFunction, takeDeniedCalls } from '../../../local/twin/access-checks';
import { accessRequestsOf, foundObjectRequests, type CallEnvironment } from '../../../local/twin/iam-calls';
import { bedrockServiceRoles, decide, functionPolicies, wildcardMatch, type PolicyStatement } from '../../../local/twin/iam-policies';

const statement = (s: Partial<PolicyStatement>): PolicyStatement => ({ source: 't', effect: 'Allow', actions: [], resources: [], conditions: [], ...s });

describe('the twin policy evaluator', () => {
  it('matches IAM wildcards: * any run, ? one character, actions without case', () => {
    expect(wildcardMatch('arn:aws:s3:::b/work/*', 'arn:aws:s3:::b/work/r01/c00000/stats.json')).toBe(true);
    expect(wildcardMatch('arn:aws:s3:::b/work/*', 'arn:aws:s3:::b/results/x')).toBe(false);
    expect(wildcardMatch('s3:Get?bject', 's3:GetObject')).toBe(true);
    expect(wildcardMatch('S3:getobject', 's3:GetObject', true)).toBe(true);
    expect(wildcardMatch('a.b', 'axb')).toBe(false);
  });

  it('denies by default, allows by a matching statement, and lets an explicit deny win', () => {
    const allow = statement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::b/*'] });
    const deny = statement({ effect: 'Deny', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::b/results/*'] });
    expect(decide([], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/x' }).allowed).toBe(false);
    expect(decide([allow], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/x' })).toMatchObject({ allowed: true, allowedBy: allow });
    expect(decide([allow, deny], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/results/x' })).toMatchObject({ allowed: false, deniedBy: deny });
    expect(decide([allow], { action: 's3:PutObject', resource: 'arn:aws:s3:::b/x' }).allowed).toBe(false);
  });

  it('evaluates the condition operators the template uses, absent keys as IAM does', () => {
    const list = (operator: PolicyStatement['conditions'][number]['operator']) =>
      statement({ actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::b'], conditions: [{ operator, key: 's3:prefix', values: ['work/*'] }] });
    const req = (prefix?: string) => ({
      action: 's3:ListBucket',
      resource: 'arn:aws:s3:::b',
      ...(prefix !== undefined ? { context: { 's3:prefix': prefix } } : {}),
    });
    expect(decide([list('StringLike')], req('work/r1/')).allowed).toBe(true);
    expect(decide([list('StringLike')], req('results/')).allowed).toBe(false);
    expect(decide([list('StringLike')], req()).allowed).toBe(false);
    expect(decide([list('StringLikeIfExists')], req()).allowed).toBe(true);
    expect(decide([list('StringLikeIfExists')], req('results/')).allowed).toBe(false);
    const keys = statement({
      actions: ['dynamodb:GetItem', 'dynamodb:Scan'],
      resources: ['*'],
      conditions: [{ operator: 'ForAllValues:StringLike', key: 'dynamodb:LeadingKeys', values: ['RUN#*'] }],
    });
    expect(decide([keys], { action: 'dynamodb:GetItem', resource: 't', context: { 'dynamodb:LeadingKeys': ['RUN#a'] } }).allowed).toBe(true);
    expect(decide([keys], { action: 'dynamodb:GetItem', resource: 't', context: { 'dynamodb:LeadingKeys': ['JOB#a'] } }).allowed).toBe(false);
    // ForAllValues is vacuously true for a request without the key (why a Scan needs a statement of its own).
    expect(decide([keys], { action: 'dynamodb:Scan', resource: 't' }).allowed).toBe(true);
    const pass = statement({
      actions: ['iam:PassRole'],
      resources: ['r'],
      conditions: [{ operator: 'StringEquals', key: 'iam:PassedToService', values: ['bedrock.amazonaws.com'] }],
    });
    expect(decide([pass], { action: 'iam:PassRole', resource: 'r', context: { 'iam:PassedToService': 'bedrock.amazonaws.com' } }).allowed).toBe(true);
    expect(decide([pass], { action: 'iam:PassRole', resource: 'r', context: { 'iam:PassedToService': 'lambda.amazonaws.com' } }).allowed).toBe(false);
  });

  it('refuses a policy it does not understand rather than guess', () => {
    const template = (statementBody: Record<string, unknown>): CfnTemplate => ({
      Resources: {
        Fn: { Type: 'AWS::Lambda::Function', Metadata: { 'bedrock-batch:handler': 'x' }, Properties: { Role: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
        Role: { Type: 'AWS::IAM::Role', Properties: {} },
        Policy: {
          Type: 'AWS::IAM::Policy',
          Properties: { Roles: [{ Ref: 'Role' }], PolicyDocument: { Statement: [{ Effect: 'Allow', Resource: '*', ...statementBody }] } },
        },
      },
    });
    const read = (body: Record<string, unknown>) => functionPolicies(template(body), fakeResolver(template(body)));
    expect(read({ Action: 's3:GetObject' }).get('x')).toHaveLength(1);
    expect(() => read({ NotAction: 's3:GetObject' })).toThrow(/does not understand the statement element NotAction/);
    expect(() => read({ Action: 's3:GetObject', Condition: { DateGreaterThan: { 'aws:CurrentTime': '2020-01-01' } } })).toThrow(
      /condition operator DateGreaterThan/,
    );
  });
});

describe("the synthesized template's policies, as the twin reads them", () => {
  const config = loadPipelineConfig({ routes: { default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } } });
  const template = cachedPipelineTemplate(config) as CfnTemplate;
  const policies = functionPolicies(template, fakeResolver(template, { names: {} }));
  const env: CallEnvironment = {
    region: 'us-east-1',
    account: '123456789012',
    stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:WorkflowStateMachine8F1B1C15',
    partitionKey: 'pk',
  };
  const allowed = (fn: string, service: Parameters<typeof accessRequestsOf>[0], command: string, input: Record<string, unknown>) =>
    accessRequestsOf(service, command, input, env).every((r) => decide(policies.get(fn)!, r).allowed);

  it('has the statements of every function', () => {
    expect([...policies.keys()].sort()).toEqual(
      [
        'acquire-slot',
        'end-round',
        'finalize',
        'job-state',
        'next-window',
        'prepare',
        'reconcile-chunk',
        'start-run',
        'stop-run',
        'submit-job',
        'sweeper',
      ].sort(),
    );
  });

  it('lets each function do what it does, and not what another one does', () => {
    const b = { Bucket: 'dropbucket0ebeb047' };
    expect(allowed('finalize', 's3', 'PutObjectCommand', { ...b, Key: 'results/r/results.jsonl' })).toBe(true);
    expect(allowed('finalize', 's3', 'PutObjectCommand', { ...b, Key: 'work/r/x' })).toBe(false);
    expect(allowed('prepare', 's3', 'GetObjectCommand', { ...b, Key: 'inbox/default/a.jsonl' })).toBe(true);
    // Prepare's explicit deny: the pipeline's own outputs are never a run input.
    expect(allowed('prepare', 's3', 'GetObjectCommand', { ...b, Key: 'results/other-run/results.jsonl' })).toBe(false);
    expect(allowed('start-run', 's3', 'ListObjectsV2Command', { ...b, Prefix: 'inbox/nightly/' })).toBe(true);
    expect(allowed('start-run', 's3', 'ListObjectsV2Command', { ...b, Prefix: 'results/' })).toBe(false);
    expect(allowed('acquire-slot', 'dynamodb', 'UpdateItemCommand', { TableName: 'JobTable67B858C0', Key: { pk: { S: 'CAP#m' } } })).toBe(true);
    expect(allowed('acquire-slot', 'dynamodb', 'UpdateItemCommand', { TableName: 'JobTable67B858C0', Key: { pk: { S: 'RUN#r' } } })).toBe(false);
    const create = {
      jobName: 'bb-r-r01-c00000',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      roleArn: 'arn:aws:iam::123456789012:role/BedrockServiceRole9BA95445',
      tags: [{ key: 'bedrock-batch:run', value: 'r' }],
    };
    expect(allowed('submit-job', 'bedrock', 'CreateModelInvocationJobCommand', create)).toBe(true);
    expect(allowed('submit-job', 'bedrock', 'CreateModelInvocationJobCommand', { ...create, modelId: 'anthropic.claude-sonnet-4-20250514-v1:0' })).toBe(false);
    expect(allowed('submit-job', 'bedrock', 'CreateModelInvocationJobCommand', { ...create, tags: [{ key: 'owner', value: 'me' }] })).toBe(false);
    expect(allowed('reconcile-chunk', 'bedrock', 'CreateModelInvocationJobCommand', create)).toBe(false);
    expect(allowed('job-state', 'sfn', 'SendTaskSuccessCommand', {})).toBe(true);
    expect(allowed('finalize', 'eventbridge', 'PutEventsCommand', { Entries: [{ EventBusName: 'default' }] })).toBe(true);
    expect(allowed('finalize', 'eventbridge', 'PutEventsCommand', { Entries: [{ EventBusName: 'other' }] })).toBe(false);
    // A call the map does not know is refused, not waved through.
    expect(allowed('finalize', 's3', 'PutBucketPolicyCommand', b)).toBe(false);
  });

  it("asks a Scan of an index for the index's ARN, which a grant on the table alone does not cover", () => {
    const table = { TableName: 'JobTable67B858C0' };
    expect(allowed('sweeper', 'dynamodb', 'ScanCommand', table)).toBe(true);
    expect(accessRequestsOf('dynamodb', 'ScanCommand', { ...table, IndexName: 'byRun' }, env).map((r) => r.resource)).toEqual([
      'arn:aws:dynamodb:us-east-1:123456789012:table/JobTable67B858C0/index/byRun',
    ]);
    expect(allowed('sweeper', 'dynamodb', 'ScanCommand', { ...table, IndexName: 'byRun' })).toBe(false);
  });

  it("holds Bedrock's service role to the job prefixes when a list names a prefix, and lets a list without one through", () => {
    // AWS's example role grants ListBucket with no prefix condition, and which prefix Bedrock lists
    // with is not documented (docs/BEDROCK-FACTS.md §8): a list without one must not fail the job.
    const roles = bedrockServiceRoles(template, fakeResolver(template, { names: {} }));
    expect(roles.size).toBe(1);
    const statements = [...roles.values()][0]!;
    const list = (context: Record<string, string>) =>
      decide(statements, {
        action: 's3:ListBucket',
        resource: 'arn:aws:s3:::dropbucket0ebeb047',
        context: { 'aws:ResourceAccount': '123456789012', ...context },
      }).allowed;
    expect(list({})).toBe(true);
    expect(list({ 's3:prefix': 'jobs-input/r/r01/c00000.jsonl' })).toBe(true);
    expect(list({ 's3:prefix': 'jobs-output/r/r01/c00000/' })).toBe(true);
    expect(list({ 's3:prefix': 'results/' })).toBe(false);
    expect(list({ 's3:prefix': 'inbox/' })).toBe(false);
  });
});

describe('the calls a model id authorizes against', () => {
  const env: CallEnvironment = { region: 'us-east-1', account: '123456789012', stateMachineArn: 'sm', partitionKey: 'pk' };
  const profile = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';
  const model = (region: string) => `arn:aws:bedrock:${region}::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0`;
  const invoke = (modelId: string) => accessRequestsOf('bedrock-runtime', 'InvokeModelCommand', { modelId }, env).map((r) => r.resource);

  it("names a profile's foundation model in each region the profile routes to, from an id or an ARN", () => {
    const regions = ['us-east-1', 'us-east-2', 'us-west-2'];
    expect(invoke(profile)).toEqual([`arn:aws:bedrock:us-east-1:123456789012:inference-profile/${profile}`, ...regions.map(model)]);
    const arn = `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${profile}`;
    expect(invoke(arn)).toEqual([arn, ...regions.map(model)]);
    const create = accessRequestsOf('bedrock', 'CreateModelInvocationJobCommand', { jobName: 'j', modelId: profile, roleArn: 'r' }, env);
    expect(create.filter((r) => r.action === 'bedrock:CreateModelInvocationJob').map((r) => r.resource)).toEqual(expect.arrayContaining(regions.map(model)));
    // A global profile: the model in the caller's region and its region-less ARN.
    expect(invoke('global.anthropic.claude-sonnet-4-5-20250929-v1:0')).toEqual([
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
    ]);
    // A bare id is served in the caller's region only.
    expect(invoke('anthropic.claude-3-5-haiku-20241022-v1:0')).toEqual([model('us-east-1')]);
  });

  it("refuses a profile call to a role whose grant names the model in the caller's region only", () => {
    const grant = (resource: string) =>
      statement({ actions: ['bedrock:InvokeModel'], resources: [`arn:aws:bedrock:us-east-1:123456789012:inference-profile/${profile}`, resource] });
    const allowedBy = (s: PolicyStatement) =>
      accessRequestsOf('bedrock-runtime', 'InvokeModelCommand', { modelId: profile }, env).every((r) => decide([s], r).allowed);
    expect(allowedBy(grant(model('us-east-1')))).toBe(false);
    expect(allowedBy(grant(model('*')))).toBe(true);
    // The region wildcard also matches a global profile's region-less model ARN.
    const global = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
    const wildcard = statement({
      actions: ['bedrock:InvokeModel'],
      resources: [
        `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${global}`,
        'arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
      ],
    });
    expect(accessRequestsOf('bedrock-runtime', 'InvokeModelCommand', { modelId: global }, env).every((r) => decide([wildcard], r).allowed)).toBe(true);
  });
});

describe('AccessChecker', () => {
  const env: CallEnvironment = { region: 'us-east-1', account: '123456789012', stateMachineArn: 'sm', partitionKey: 'pk' };
  const list = statement({
    actions: ['s3:ListBucket'],
    resources: ['arn:aws:s3:::b'],
    conditions: [{ operator: 'StringLike', key: 's3:prefix', values: ['jobs-output/*'] }],
  });

  it('reports a denied call even after the same action on the same resource was allowed under another condition value', () => {
    const checker = new AccessChecker(new Map([['fn', [list]]]), env);
    takeDeniedCalls();
    expect(() => checker.check('fn', 's3', 'ListObjectsV2Command', { Bucket: 'b', Prefix: 'jobs-output/r/' })).not.toThrow();
    expect(() => checker.check('fn', 's3', 'ListObjectsV2Command', { Bucket: 'b', Prefix: 'results/' })).toThrow(
      /not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::b because no identity-based policy allows the action/,
    );
    const report = checker.report();
    expect(report.denied).toBe(1);
    expect(report.calls).toEqual([
      { function: 'fn', action: 's3:ListBucket', resource: 'arn:aws:s3:::b', allowed: true },
      { function: 'fn', action: 's3:ListBucket', resource: 'arn:aws:s3:::b', allowed: false },
    ]);
    expect(takeDeniedCalls()).toHaveLength(1);
    expect(report.unusedGrants).toEqual([]);
  });

  it('names an unmapped call by its IAM service prefix and denies it', () => {
    const checker = new AccessChecker(new Map([['fn', [statement({ actions: ['*'], resources: ['arn:aws:states:::x'] })]]]), env);
    expect(() => checker.check('fn', 'sfn', 'StopExecutionCommand', {})).toThrow(/states:StopExecution on resource: \*/);
    expect(takeDeniedCalls()).toEqual([{ function: 'fn', action: 'states:StopExecution', resource: '*', allowed: false }]);
  });
});

describe('runAsFunction', () => {
  it('checks the calls of clients built after the twin started (awsClients() rebuilds them when the environment changes)', async () => {
    const { awsClients } = await import('../../../lambdas/shared/clients');
    const before = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = 'http://127.0.0.1:9';
    try {
      const checker = new AccessChecker(new Map([['fn', []]]), { region: 'us-east-1', account: '123456789012', stateMachineArn: 'sm', partitionKey: 'pk' });
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      await expect(runAsFunction(checker, 'fn', () => awsClients().s3.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })))).rejects.toMatchObject({
        name: 'AccessDenied',
      });
      expect(takeDeniedCalls()).toEqual([{ function: 'fn', action: 's3:GetObject', resource: 'arn:aws:s3:::b/k', allowed: false }]);
    } finally {
      if (before === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = before;
    }
  });
});

describe('S3 calls on an SSE-KMS bucket also ask KMS, through S3', () => {
  const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const env: CallEnvironment = { region: 'us-east-1', account: '123456789012', stateMachineArn: 'sm', partitionKey: 'pk', bucketKeys: { enc: KEY } };
  const kms = (command: string, input: Record<string, unknown>) =>
    accessRequestsOf('s3', command, input, env)
      .filter((r) => r.action.startsWith('kms:'))
      .map((r) => `${r.action} ${r.resource} ${JSON.stringify(r.context)}`);
  const via = JSON.stringify({ 'kms:ViaService': 's3.us-east-1.amazonaws.com' });

  it('asks Decrypt to read, GenerateDataKey to write, both in an upload in parts, and nothing to list or head', () => {
    const o = { Bucket: 'enc', Key: 'work/r/x.jsonl' };
    // A read asks KMS only once S3 found the object: a missing key is NoSuchKey, not a KMS refusal.
    expect(kms('GetObjectCommand', o)).toEqual([]);
    expect(foundObjectRequests('s3', 'GetObjectCommand', o, env).map((r) => `${r.action} ${r.resource} ${JSON.stringify(r.context)}`)).toEqual([
      `kms:Decrypt ${KEY} ${via}`,
    ]);
    expect(foundObjectRequests('s3', 'HeadObjectCommand', o, env)).toEqual([]);
    expect(kms('PutObjectCommand', o)).toEqual([`kms:GenerateDataKey ${KEY} ${via}`]);
    expect(kms('CreateMultipartUploadCommand', o)).toEqual([`kms:GenerateDataKey ${KEY} ${via}`]);
    expect(kms('UploadPartCommand', { ...o, UploadId: 'u', PartNumber: 1 })).toEqual([`kms:Decrypt ${KEY} ${via}`]);
    expect(kms('CopyObjectCommand', { ...o, CopySource: 'enc/inbox/a.jsonl' })).toEqual([`kms:Decrypt ${KEY} ${via}`, `kms:GenerateDataKey ${KEY} ${via}`]);
    expect(kms('HeadObjectCommand', o)).toEqual([]);
    expect(kms('ListObjectsV2Command', { Bucket: 'enc', Prefix: 'work/' })).toEqual([]);
  });

  it('asks nothing of KMS for a bucket without a key', () => {
    expect(kms('GetObjectCommand', { Bucket: 'plain', Key: 'a' })).toEqual([]);
    expect(kms('PutObjectCommand', { Bucket: 'plain', Key: 'a' })).toEqual([]);
  });
});
