import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BedrockBatchPipeline } from '../../../lib';
import { fakeArn, fakeResolver, logicalIdFromFakeArn } from '../../../local/services/fake-arns';
import { bucketEncryptionKey, bucketSendsEvents, dropBucketId, eventRules, lambdaFunctions, stateMachineDefinition } from '../../../local/services/template';
import { resolveTokens, type CfnResource, type CfnTemplate, type TokenResolver } from '../../../local/services/template-intrinsics';

/** A hand-written miniature of what CDK synthesizes for the pipeline. */
const template: CfnTemplate = {
  Parameters: { BootstrapVersion: { Type: 'AWS::SSM::Parameter::Value<String>', Default: '/cdk-bootstrap/hnb659fds/version' } },
  Resources: {
    DropBucketABC: { Type: 'AWS::S3::Bucket', Properties: {} },
    JobTableXYZ: { Type: 'AWS::DynamoDB::Table', Properties: {} },
    PrepareRole1: { Type: 'AWS::IAM::Role', Properties: {} },
    PrepareFn1: {
      Type: 'AWS::Lambda::Function',
      Metadata: { 'bedrock-batch:handler': 'prepare', 'aws:asset:path': 'asset.abc' },
      Properties: {
        Role: { 'Fn::GetAtt': ['PrepareRole1', 'Arn'] },
        MemorySize: 1024,
        Timeout: 900,
        Environment: {
          Variables: {
            BUCKET_NAME: { Ref: 'DropBucketABC' },
            TABLE_NAME: { Ref: 'JobTableXYZ' },
            BEDROCK_ROLE_ARN: { 'Fn::GetAtt': ['PrepareRole1', 'Arn'] },
            PIPELINE_CONFIG: { 'Fn::Join': ['', ['{"maxConcurrentJobs":10,"bucket":"', { Ref: 'DropBucketABC' }, '"}']] },
            EVENT_BUS_NAME: 'default',
            REGION_HINT: { 'Fn::Sub': '${AWS::Region}/${AWS::AccountId}/${DropBucketABC}/${PrepareRole1.Arn}/${!Literal}' },
            MAX: 5,
          },
        },
      },
    },
    StartRunFn2: {
      Type: 'AWS::Lambda::Function',
      Metadata: { 'bedrock-batch:handler': 'start-run' },
      Properties: { Environment: { Variables: { STATE_MACHINE_ARN: { Ref: 'PipelineSM' } } } },
    },
    CustomS3AutoDeleteProvider: { Type: 'AWS::Lambda::Function', Properties: { Handler: 'index.handler' } },
    PipelineSM: {
      Type: 'AWS::StepFunctions::StateMachine',
      Properties: {
        RoleArn: { 'Fn::GetAtt': ['PipelineRole', 'Arn'] },
        DefinitionString: {
          'Fn::Join': [
            '',
            [
              '{"StartAt":"Prepare","States":{"Prepare":{"Type":"Task","Resource":"arn:',
              { Ref: 'AWS::Partition' },
              ':states:::lambda:invoke","Parameters":{"FunctionName":"',
              { 'Fn::GetAtt': ['PrepareFn1', 'Arn'] },
              '","Payload.$":"$"},"OutputPath":"$.Payload","Next":"Done"},"Done":{"Type":"Pass","Result":"${Greeting}","End":true}}}',
            ],
          ],
        },
        DefinitionSubstitutions: { Greeting: { 'Fn::Join': ['-', ['hello', { Ref: 'AWS::Region' }]] } },
      },
    },
    PipelineRole: { Type: 'AWS::IAM::Role', Properties: {} },
    JobStateRule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        EventPattern: { source: ['aws.bedrock'], 'detail-type': ['Batch Inference Job State Change'] },
        State: 'ENABLED',
        Targets: [{ Arn: { 'Fn::GetAtt': ['StartRunFn2', 'Arn'] }, Id: 'Target0' }],
      },
    },
    InboxRule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        EventPattern: {
          source: ['aws.s3'],
          'detail-type': ['Object Created'],
          detail: { bucket: { name: [{ Ref: 'DropBucketABC' }] }, object: { key: [{ prefix: 'inbox/' }] } },
        },
        Targets: [{ Arn: { 'Fn::GetAtt': ['StartRunFn2', 'Arn'] }, Id: 'Target0', InputPath: '$.detail' }],
      },
    },
    NightlyRule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        ScheduleExpression: 'cron(0 2 * * ? *)',
        State: 'DISABLED',
        Targets: [{ Arn: { 'Fn::GetAtt': ['StartRunFn2', 'Arn'] }, Id: 'Target0', Input: '{"sweep":"default"}' }],
      },
    },
  },
};

const names = { DropBucketABC: 'local-drop', JobTableXYZ: 'local-jobs' };
const resolve = fakeResolver(template, { names });
const ACCOUNT = '123456789012';

describe('fakeArn', () => {
  it('follows the conventions', () => {
    expect(fakeArn('PrepareFn1', 'AWS::Lambda::Function')).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:function:PrepareFn1`);
    expect(fakeArn('PipelineSM', 'AWS::StepFunctions::StateMachine')).toBe(`arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:PipelineSM`);
    expect(fakeArn('R', 'AWS::IAM::Role')).toBe(`arn:aws:iam::${ACCOUNT}:role/R`);
    expect(fakeArn('B', 'AWS::S3::Bucket', 'drop')).toBe('arn:aws:s3:::drop');
    expect(fakeArn('T', 'AWS::DynamoDB::Table', 'jobs')).toBe(`arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/jobs`);
    expect(fakeArn('Bus', 'AWS::Events::EventBus', 'default')).toBe(`arn:aws:events:us-east-1:${ACCOUNT}:event-bus/default`);
    expect(fakeArn('Rule', 'AWS::Events::Rule')).toBe(`arn:aws:events:us-east-1:${ACCOUNT}:rule/Rule`);
    expect(fakeArn('Logs', 'AWS::Logs::LogGroup')).toBe(`arn:aws:logs:us-east-1:${ACCOUNT}:loggroup/Logs`);
  });

  it('gives the logical id back from a function or state machine ARN', () => {
    expect(logicalIdFromFakeArn(fakeArn('PrepareFn1', 'AWS::Lambda::Function'))).toBe('PrepareFn1');
    expect(logicalIdFromFakeArn(`${fakeArn('PrepareFn1', 'AWS::Lambda::Function')}:$LATEST`)).toBe('PrepareFn1');
    expect(logicalIdFromFakeArn(fakeArn('PipelineSM', 'AWS::StepFunctions::StateMachine'))).toBe('PipelineSM');
    expect(logicalIdFromFakeArn('arn:aws:s3:::drop')).toBeUndefined();
  });
});

describe('resolveTokens', () => {
  const r: TokenResolver = (ref) => (ref.Ref ? `<${ref.Ref}>` : `<${ref.GetAtt!.join('.')}>`);

  it('resolves Ref, GetAtt (both forms) and pseudo parameters', () => {
    expect(
      resolveTokens(
        {
          a: { Ref: 'X' },
          b: { 'Fn::GetAtt': ['X', 'Arn'] },
          c: { 'Fn::GetAtt': 'X.Arn' },
          d: [{ Ref: 'AWS::Region' }, { Ref: 'AWS::AccountId' }, { Ref: 'AWS::Partition' }, { Ref: 'AWS::URLSuffix' }],
        },
        r,
      ),
    ).toEqual({ a: '<X>', b: '<X.Arn>', c: '<X.Arn>', d: ['us-east-1', ACCOUNT, 'aws', 'amazonaws.com'] });
  });

  it('resolves Join, Sub (string and with variables), Select, Split and Base64', () => {
    expect(resolveTokens({ 'Fn::Join': [':', ['a', { Ref: 'X' }, 'b']] }, r)).toBe('a:<X>:b');
    expect(resolveTokens({ 'Fn::Sub': 'arn:${AWS::Partition}:s3:::${B}/${R.Arn}-${!Keep}' }, r)).toBe('arn:aws:s3:::<B>/<R.Arn>-${Keep}');
    expect(resolveTokens({ 'Fn::Sub': ['${A}-${B}', { A: { Ref: 'Z' } }] }, r)).toBe('<Z>-<B>');
    expect(resolveTokens({ 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] }, r)).toBe('b');
    expect(resolveTokens({ 'Fn::Select': ['0', ['x', 'y']] }, r)).toBe('x');
    expect(resolveTokens({ 'Fn::Base64': 'hi' }, r)).toBe('aGk=');
  });

  it('drops AWS::NoValue properties and elements, keeps plain values', () => {
    expect(resolveTokens({ a: { Ref: 'AWS::NoValue' }, b: [1, { Ref: 'AWS::NoValue' }, null], c: true }, r)).toEqual({ b: [1, null], c: true });
  });

  it('throws for intrinsics it does not know', () => {
    expect(() => resolveTokens({ 'Fn::If': ['C', 'a', 'b'] }, r)).toThrow(/Unsupported intrinsic function Fn::If/);
    expect(() => resolveTokens({ 'Fn::Select': [5, ['a']] }, r)).toThrow(/out of range/);
  });
});

describe('fakeResolver', () => {
  it('resolves refs and attributes by resource type', () => {
    expect(resolve({ Ref: 'DropBucketABC' })).toBe('local-drop');
    expect(resolve({ Ref: 'JobTableXYZ' })).toBe('local-jobs');
    expect(resolve({ Ref: 'PipelineSM' })).toBe(`arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:PipelineSM`);
    expect(resolve({ Ref: 'PrepareFn1' })).toBe('PrepareFn1');
    expect(resolve({ Ref: 'BootstrapVersion' })).toBe('/cdk-bootstrap/hnb659fds/version');
    expect(resolve({ Ref: 'AWS::StackName' })).toBe('bedrock-batch-local');
    expect(resolve({ GetAtt: ['PrepareFn1', 'Arn'] })).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:function:PrepareFn1`);
    expect(resolve({ GetAtt: ['PrepareRole1', 'Arn'] })).toBe(`arn:aws:iam::${ACCOUNT}:role/PrepareRole1`);
    expect(resolve({ GetAtt: ['DropBucketABC', 'Arn'] })).toBe('arn:aws:s3:::local-drop');
    expect(resolve({ GetAtt: ['JobTableXYZ', 'Arn'] })).toBe(`arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/local-jobs`);
    expect(resolve({ GetAtt: ['PipelineSM', 'Name'] })).toBe('PipelineSM');
    expect(resolve({ GetAtt: ['PrepareFn1', 'SnapStartResponse'] })).toBe('PrepareFn1.SnapStartResponse');
  });

  it('names a bucket without a given name by its lowercased logical id', () => {
    expect(fakeResolver(template)({ Ref: 'DropBucketABC' })).toBe('dropbucketabc');
  });

  it('throws for unknown logical ids', () => {
    expect(() => resolve({ Ref: 'Nope' })).toThrow(/unknown logical id Nope/);
    expect(() => resolve({ GetAtt: ['Nope', 'Arn'] })).toThrow(/unknown logical id Nope/);
  });
});

describe('stateMachineDefinition', () => {
  it('parses the resolved DefinitionString with its substitutions', () => {
    const def = stateMachineDefinition(template, resolve) as { States: Record<string, Record<string, unknown>> };
    expect(def.States.Prepare).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:PrepareFn1`, 'Payload.$': '$' },
    });
    expect(def.States.Done).toMatchObject({ Result: 'hello-us-east-1' });
  });

  it('accepts a Definition object with substitutions', () => {
    const t: CfnTemplate = {
      Resources: {
        M: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: {
            Definition: { StartAt: 'A', States: { A: { Type: 'Task', Resource: '${Fn}', End: true } } },
            DefinitionSubstitutions: { Fn: { 'Fn::GetAtt': ['F', 'Arn'] } },
          },
        },
        F: { Type: 'AWS::Lambda::Function' },
      },
    };
    expect(stateMachineDefinition(t, fakeResolver(t))).toEqual({
      StartAt: 'A',
      States: { A: { Type: 'Task', Resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:F`, End: true } },
    });
  });

  it('needs exactly one state machine, or a logical id', () => {
    const none: CfnTemplate = { Resources: {} };
    expect(() => stateMachineDefinition(none, resolve)).toThrow(/No AWS::StepFunctions::StateMachine/);
    const M = { Type: 'AWS::StepFunctions::StateMachine', Properties: { DefinitionString: '{"StartAt":"A","States":{}}' } };
    const two: CfnTemplate = { Resources: { M1: M, M2: M } };
    expect(() => stateMachineDefinition(two, resolve)).toThrow(/2 state machines \(M1, M2\)/);
    expect(stateMachineDefinition(two, resolve, 'M2')).toEqual({ StartAt: 'A', States: {} });
    const broken: CfnTemplate = { Resources: { M: { ...M, Properties: { DefinitionString: '{' } } } };
    expect(() => stateMachineDefinition(broken, resolve)).toThrow(/not valid JSON/);
  });
});

describe('lambdaFunctions', () => {
  it('lists the functions with handler metadata and their resolved environment', () => {
    const fns = lambdaFunctions(template, resolve);
    expect(fns.map((f) => f.handlerName)).toEqual(['prepare', 'start-run']);
    expect(fns[0]).toEqual({
      logicalId: 'PrepareFn1',
      handlerName: 'prepare',
      arn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:PrepareFn1`,
      memoryMb: 1024,
      timeoutSeconds: 900,
      environment: {
        BUCKET_NAME: 'local-drop',
        TABLE_NAME: 'local-jobs',
        BEDROCK_ROLE_ARN: `arn:aws:iam::${ACCOUNT}:role/PrepareRole1`,
        PIPELINE_CONFIG: '{"maxConcurrentJobs":10,"bucket":"local-drop"}',
        EVENT_BUS_NAME: 'default',
        REGION_HINT: `us-east-1/${ACCOUNT}/local-drop/arn:aws:iam::${ACCOUNT}:role/PrepareRole1/\${Literal}`,
        MAX: '5',
      },
    });
    expect(fns[1]!.environment).toEqual({ STATE_MACHINE_ARN: `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:PipelineSM` });
    // Lambda's defaults when the template sets none.
    expect(fns[1]).toMatchObject({ memoryMb: 128, timeoutSeconds: 3 });
  });

  it('refuses a memory size or timeout that is not a positive number', () => {
    const withProps = (props: Record<string, unknown>): CfnTemplate => ({
      Resources: { F: { Type: 'AWS::Lambda::Function', Metadata: { 'bedrock-batch:handler': 'prepare' }, Properties: props } },
    });
    expect(() => lambdaFunctions(withProps({ MemorySize: 'lots' }), resolve)).toThrow(/F: MemorySize must be a number of MB/);
    expect(() => lambdaFunctions(withProps({ Timeout: 0 }), resolve)).toThrow(/F: Timeout must be a number of seconds/);
  });
});

describe('eventRules', () => {
  it('lists patterns, schedules and targets, tokens resolved', () => {
    const rules = eventRules(template, resolve);
    const startRunArn = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:StartRunFn2`;
    expect(rules).toEqual([
      {
        logicalId: 'JobStateRule',
        eventPattern: { source: ['aws.bedrock'], 'detail-type': ['Batch Inference Job State Change'] },
        state: 'ENABLED',
        eventBusName: 'default',
        targets: [{ id: 'Target0', arn: startRunArn }],
      },
      {
        logicalId: 'InboxRule',
        eventPattern: {
          source: ['aws.s3'],
          'detail-type': ['Object Created'],
          detail: { bucket: { name: ['local-drop'] }, object: { key: [{ prefix: 'inbox/' }] } },
        },
        state: 'ENABLED',
        eventBusName: 'default',
        targets: [{ id: 'Target0', arn: startRunArn, inputPath: '$.detail' }],
      },
      {
        logicalId: 'NightlyRule',
        scheduleExpression: 'cron(0 2 * * ? *)',
        state: 'DISABLED',
        eventBusName: 'default',
        targets: [{ id: 'Target0', arn: startRunArn, input: '{"sweep":"default"}' }],
      },
    ]);
  });
});

describe('bucketEncryptionKey', () => {
  const resolve: TokenResolver = (ref) => `arn:aws:kms:us-east-1:123456789012:key/${ref.GetAtt?.[0] ?? ref.Ref}`;
  const bucket = (sse: unknown): CfnResource => ({
    Type: 'AWS::S3::Bucket',
    Properties: sse === undefined ? {} : { BucketEncryption: { ServerSideEncryptionConfiguration: sse } },
  });
  const rule = (SSEAlgorithm: string, KMSMasterKeyID?: unknown) => [
    { ServerSideEncryptionByDefault: { SSEAlgorithm, ...(KMSMasterKeyID ? { KMSMasterKeyID } : {}) } },
  ];

  it('gives the resolved key of an SSE-KMS (or dual-layer) bucket, nothing for SSE-S3 or none', () => {
    expect(bucketEncryptionKey(bucket(rule('aws:kms', { 'Fn::GetAtt': ['DataKey', 'Arn'] })), resolve)).toBe('arn:aws:kms:us-east-1:123456789012:key/DataKey');
    expect(bucketEncryptionKey(bucket(rule('aws:kms:dsse', 'arn:aws:kms:us-east-1:123456789012:key/d')), resolve)).toBe(
      'arn:aws:kms:us-east-1:123456789012:key/d',
    );
    expect(bucketEncryptionKey(bucket(rule('AES256')), resolve)).toBeUndefined();
    expect(bucketEncryptionKey(bucket(undefined), resolve)).toBeUndefined();
    // SSE-KMS with the AWS managed key (aws/s3): its policy lets the account use it through S3, no grant needed.
    expect(bucketEncryptionKey(bucket(rule('aws:kms')), resolve)).toBeUndefined();
  });

  it('refuses a shape it cannot read rather than checking nothing', () => {
    expect(() => bucketEncryptionKey(bucket({ 'Fn::If': ['Encrypt', [], []] }), resolve)).toThrow(/BucketEncryption.*cannot be read/);
    expect(() => bucketEncryptionKey(bucket([{ ServerSideEncryptionByDefault: { 'Fn::If': ['Encrypt', {}, {}] } }]), resolve)).toThrow(/cannot be read/);
  });
});

describe('bucketSendsEvents', () => {
  const withBucket = (notification: unknown, extra: Record<string, CfnResource> = {}): CfnTemplate => ({
    Resources: { Drop: { Type: 'AWS::S3::Bucket', Properties: notification === undefined ? {} : { NotificationConfiguration: notification } }, ...extra },
  });
  const sends = (t: CfnTemplate) => bucketSendsEvents(t, 'Drop');

  it('is true only when the bucket turns its EventBridge notifications on', () => {
    expect(sends(withBucket({ EventBridgeConfiguration: { EventBridgeEnabled: true } }))).toBe(true);
    expect(sends(withBucket(undefined))).toBe(false);
    expect(sends(withBucket({}))).toBe(false);
    expect(sends(withBucket({ EventBridgeConfiguration: { EventBridgeEnabled: false } }))).toBe(false);
    // Notifications to a queue or a function are not EventBridge's: the pipeline's rule never sees them.
    expect(sends(withBucket({ QueueConfigurations: [{ Event: 's3:ObjectCreated:*', Queue: 'arn:aws:sqs:us-east-1:1:q' }] }))).toBe(false);
  });

  it("reads CDK's notifications custom resource too (a bucket made with eventBridgeEnabled), for that bucket only", () => {
    const custom = (bucket: string, config: unknown): CfnResource => ({
      Type: 'Custom::S3BucketNotifications',
      Properties: { ServiceToken: 'x', BucketName: { Ref: bucket }, NotificationConfiguration: config, Managed: true },
    });
    expect(sends(withBucket(undefined, { Notify: custom('Drop', { EventBridgeConfiguration: {} }) }))).toBe(true);
    expect(sends(withBucket(undefined, { Notify: custom('Other', { EventBridgeConfiguration: {} }) }))).toBe(false);
    expect(sends(withBucket(undefined, { Notify: custom('Drop', { QueueConfigurations: [] }) }))).toBe(false);
  });

  it('refuses a shape it cannot read rather than guessing', () => {
    expect(() => sends(withBucket({ 'Fn::If': ['On', {}, {}] }))).toThrow(/NotificationConfiguration.*cannot be read/);
    expect(() => sends(withBucket({ EventBridgeConfiguration: { 'Fn::If': ['On', {}, {}] } }))).toThrow(/cannot be read/);
    expect(() => sends(withBucket({ EventBridgeConfiguration: { EventBridgeEnabled: { 'Fn::If': ['On', true, false] } } }))).toThrow(/cannot be read/);
  });
});

describe('dropBucketId', () => {
  it("is the bucket the functions name, not the stack's first bucket", () => {
    const fn = (bucketName: unknown): CfnResource => ({
      Type: 'AWS::Lambda::Function',
      Properties: { Environment: { Variables: { BUCKET_NAME: bucketName } } },
    });
    const resources = { Archive: { Type: 'AWS::S3::Bucket' }, Lake: { Type: 'AWS::S3::Bucket' } };
    expect(dropBucketId({ Resources: { ...resources, Fn: fn({ Ref: 'Lake' }) } })).toBe('Lake');
    // A bucket named by a literal name is outside the template.
    expect(dropBucketId({ Resources: { ...resources, Fn: fn('my-existing-bucket') } })).toBeUndefined();
    expect(dropBucketId({ Resources: { ...resources, AccessLogsBucket: { Type: 'AWS::S3::Bucket' } } })).toBe('Archive');
  });

  it("finds a user's own in-stack bucket with eventBridgeEnabled as sending events, whatever is declared first", () => {
    const app = new App();
    const stack = new Stack(app, 'Own');
    new s3.Bucket(stack, 'Archive');
    const lake = new s3.Bucket(stack, 'Lake', { eventBridgeEnabled: true });
    new BedrockBatchPipeline(stack, 'Ml', { bucket: lake, routes: { default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } } });
    const synthesized = Template.fromStack(stack).toJSON() as CfnTemplate;
    const id = dropBucketId(synthesized)!;
    expect(id).toMatch(/^Lake/);
    expect(bucketSendsEvents(synthesized, id)).toBe(true);
  });
});
