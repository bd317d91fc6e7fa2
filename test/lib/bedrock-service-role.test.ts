import { Match } from 'aws-cdk-lib/assertions';
import { buildStack, config } from './helpers';

const JOB_ARN = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':bedrock:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':model-invocation-job/*']],
};

function serviceRole(template: ReturnType<typeof buildStack>['template']): any {
  const roles = Object.values(template.findResources('AWS::IAM::Role')).filter((r: any) =>
    JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('bedrock.amazonaws.com'),
  );
  expect(roles).toHaveLength(1);
  return roles[0];
}

describe('BedrockServiceRole', () => {
  const { stack, template } = buildStack();
  const bucketId = stack.resolve((stack.dropBucket.bucket.node.defaultChild as any).logicalId) as string;
  const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
  const objects = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${prefix}*`]] });

  test("is assumable only by Bedrock, for this account's model-invocation jobs in this region", () => {
    expect(serviceRole(template).Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'sts:AssumeRole',
          Principal: { Service: 'bedrock.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
            ArnEquals: { 'aws:SourceArn': JOB_ARN },
          },
        },
      ],
    });
  });

  test('reads only jobs-input/, writes only jobs-output/, lists only those prefixes', () => {
    const role = serviceRole(template);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toHaveLength(1);
    const sameAccount = { StringEquals: { 'aws:ResourceAccount': { Ref: 'AWS::AccountId' } } };
    expect(role.Properties.Policies[0].PolicyDocument.Statement).toEqual([
      { Sid: 'ReadChunkInputs', Effect: 'Allow', Action: 's3:GetObject', Resource: objects('jobs-input/'), Condition: sameAccount },
      { Sid: 'WriteJobOutputs', Effect: 'Allow', Action: 's3:PutObject', Resource: objects('jobs-output/'), Condition: sameAccount },
      {
        Sid: 'ListJobPrefixes',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { ...sameAccount, StringLikeIfExists: { 's3:prefix': ['jobs-input/*', 'jobs-output/*'] } },
      },
    ]);
    // No other policy is attached to the service role.
    const roleId = Object.entries(template.findResources('AWS::IAM::Role')).find(([, r]) => r === role)![0];
    const attached = Object.values(template.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId));
    expect(attached).toHaveLength(0);
  });

  test('is what the functions get as BEDROCK_ROLE_ARN, and only submit-job may pass it, to Bedrock', () => {
    const roleId = Object.entries(template.findResources('AWS::IAM::Role')).find(([, r]) => r === serviceRole(template))![0];
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ BEDROCK_ROLE_ARN: { 'Fn::GetAtt': [roleId, 'Arn'] } }) },
    });
    const passRole = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p: any) =>
      (p.Properties.PolicyDocument.Statement as any[]).filter((s) => s.Action === 'iam:PassRole'),
    );
    expect(passRole).toEqual([
      {
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: { 'Fn::GetAtt': [roleId, 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
      },
    ]);
  });
});

describe('BedrockServiceRole with inference profiles', () => {
  test('may invoke the profile and its foundation model in every region', () => {
    const { template } = buildStack(
      config({
        direct: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' },
        profiled: { modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0' },
      }),
    );
    const statements = serviceRole(template).Properties.Policies[0].PolicyDocument.Statement as any[];
    const invoke = statements.filter((s) => s.Action === 'bedrock:InvokeModel');
    expect(invoke).toEqual([
      {
        Sid: 'InvokeProfileModels',
        Effect: 'Allow',
        Action: 'bedrock:InvokeModel',
        Resource: [
          {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':bedrock:',
                { Ref: 'AWS::Region' },
                ':',
                { Ref: 'AWS::AccountId' },
                ':inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
              ],
            ],
          },
          { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0']] },
        ],
      },
    ]);
  });

  test('has no model permission when no route uses a profile', () => {
    const { template } = buildStack();
    const statements = serviceRole(template).Properties.Policies[0].PolicyDocument.Statement as any[];
    expect(statements.map((s) => s.Action)).not.toContain('bedrock:InvokeModel');
  });
});
