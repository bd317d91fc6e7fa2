/**
 * The twin's fake identities: the local account, region and partition, the ARN every template
 * resource gets ({@link fakeArn}), and a {@link TokenResolver} that gives each `Ref` and
 * `Fn::GetAtt` of a template its local value.
 */
import type { CfnTemplate, TokenResolver } from './template-intrinsics';

/** The fake account, region and partition every local ARN uses. */
export const LOCAL_ACCOUNT = '123456789012';
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_PARTITION = 'aws';

/**
 * Fake ARN of a resource, by its CloudFormation type (region us-east-1, account 123456789012):
 * - `AWS::Lambda::Function` → `arn:aws:lambda:us-east-1:123456789012:function:<LogicalId>`
 * - `AWS::StepFunctions::StateMachine` → `arn:aws:states:us-east-1:123456789012:stateMachine:<LogicalId>`
 * - `AWS::IAM::Role` → `arn:aws:iam::123456789012:role/<LogicalId>`
 * - `AWS::S3::Bucket` → `arn:aws:s3:::<name>`; `AWS::DynamoDB::Table` → `...:table/<name>`;
 *   `AWS::Events::EventBus` → `...:event-bus/<name>`; `AWS::Events::Rule` → `...:rule/<LogicalId>`
 * - anything else → `arn:aws:<service>:us-east-1:123456789012:<type>/<LogicalId>`, e.g.
 *   `arn:aws:logs:us-east-1:123456789012:loggroup/<LogicalId>`
 *
 * @param name - the resource's physical name where its ARN holds one (bucket, table, bus)
 *   @default logicalId
 */
export function fakeArn(logicalId: string, type: string, name: string = logicalId): string {
  const region = `${LOCAL_REGION}:${LOCAL_ACCOUNT}`;
  switch (type) {
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${region}:function:${logicalId}`;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${region}:stateMachine:${logicalId}`;
    case 'AWS::IAM::Role':
      return `arn:aws:iam::${LOCAL_ACCOUNT}:role/${logicalId}`;
    case 'AWS::S3::Bucket':
      return `arn:aws:s3:::${name}`;
    case 'AWS::DynamoDB::Table':
    case 'AWS::DynamoDB::GlobalTable':
      return `arn:aws:dynamodb:${region}:table/${name}`;
    case 'AWS::Events::EventBus':
      return `arn:aws:events:${region}:event-bus/${name}`;
    case 'AWS::Events::Rule':
      return `arn:aws:events:${region}:rule/${logicalId}`;
    default: {
      const [, service = 'unknown', kind = 'resource'] = type.split('::');
      return `arn:aws:${service.toLowerCase()}:${region}:${kind.toLowerCase()}/${logicalId}`;
    }
  }
}

/**
 * The logical id inside a fake Lambda function or state machine ARN made by {@link fakeArn}
 * (also accepts a function ARN with a version or alias suffix), or undefined for other strings.
 */
export function logicalIdFromFakeArn(arn: string): string | undefined {
  const match = /^arn:aws:(?:lambda:[^:]+:\d+:function|states:[^:]+:\d+:stateMachine):([^:]+)(?::[^:]+)?$/.exec(arn);
  return match?.[1];
}

/** Options of {@link fakeResolver}. */
export interface FakeResolverOptions {
  /**
   * Physical names by logical id, for resources whose `Ref` is a name the twin really uses:
   * buckets (the local S3 bucket), tables (the local DynamoDB table), event buses.
   * @default bucket: the logical id lowercased; table, bus and other names: the logical id
   */
  readonly names?: Record<string, string>;
  /** Value of `Ref: AWS::StackName`. @default 'bedrock-batch-local' */
  readonly stackName?: string;
}

/**
 * A {@link TokenResolver} over a template that gives every `Ref` / `Fn::GetAtt` a local value
 * following the {@link fakeArn} conventions: a function's `Ref` is its logical id (its name)
 * and its `Arn` the fake function ARN; a state machine's `Ref` is its ARN; a role's `Arn` the
 * fake role ARN; a bucket's or table's `Ref` its name from `names`; a parameter's `Ref` its
 * `Default`. Unknown attributes resolve to `<LogicalId>.<Attribute>`.
 *
 * @throws Error for a `Ref` / `Fn::GetAtt` to a logical id the template does not have
 */
export function fakeResolver(template: CfnTemplate, opts: FakeResolverOptions = {}): TokenResolver {
  const resources = template.Resources ?? {};
  const nameOf = (id: string, type: string): string => opts.names?.[id] ?? (type === 'AWS::S3::Bucket' ? id.toLowerCase().slice(0, 63) : id);

  return ({ Ref, GetAtt }) => {
    if (Ref !== undefined) {
      if (Ref === 'AWS::StackName') return opts.stackName ?? 'bedrock-batch-local';
      if (Ref === 'AWS::StackId') return `arn:aws:cloudformation:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stack/${opts.stackName ?? 'bedrock-batch-local'}/local`;
      const parameter = template.Parameters?.[Ref];
      if (parameter) return String(parameter.Default ?? Ref);
      const resource = resources[Ref];
      if (!resource) throw new Error(`Ref to unknown logical id ${Ref}`);
      switch (resource.Type) {
        case 'AWS::StepFunctions::StateMachine':
        case 'AWS::SNS::Topic':
          return fakeArn(Ref, resource.Type);
        case 'AWS::SQS::Queue':
          return `https://sqs.${LOCAL_REGION}.amazonaws.com/${LOCAL_ACCOUNT}/${Ref}`;
        default:
          return nameOf(Ref, resource.Type);
      }
    }
    const [id, attribute] = GetAtt ?? ['', ''];
    const resource = resources[id];
    if (!resource) throw new Error(`Fn::GetAtt to unknown logical id ${id}`);
    const name = nameOf(id, resource.Type);
    switch (attribute) {
      case 'Arn':
        return fakeArn(id, resource.Type, name);
      case 'Name':
      case 'RoleName':
      case 'TableName':
        return name;
      case 'StreamArn':
        return `${fakeArn(id, resource.Type, name)}/stream/local`;
      case 'DomainName':
        return `${name}.s3.amazonaws.com`;
      case 'RegionalDomainName':
        return `${name}.s3.${LOCAL_REGION}.amazonaws.com`;
      default:
        return `${id}.${attribute}`;
    }
  };
}
