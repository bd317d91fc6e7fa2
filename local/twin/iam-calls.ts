/**
 * What IAM authorizes for each SDK call a handler makes: the action(s), the resource ARN(s)
 * and the condition keys the template's policies use, per AWS's Service Authorization
 * Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/). A call this
 * map does not know is reported as `<service>:<Command>` on `*`, which no grant allows: a new
 * kind of call fails in the twin until it is mapped here, rather than passing unchecked.
 */
import { parseModelId } from '../../lambdas/shared/model-catalog';
import { profileModelArns } from '../emulator/profile-regions';
import type { AccessRequest } from './iam-policies';

/** What the map needs of the twin's account. */
export interface CallEnvironment {
  readonly region: string;
  readonly account: string;
  /** The state machine whose task tokens SendTask* answer (the twin runs one). */
  readonly stateMachineArn: string;
  /** The job table's partition key attribute (`dynamodb:LeadingKeys`). */
  readonly partitionKey: string;
  /** The KMS key ARN of each bucket whose objects are SSE-KMS encrypted by default, by bucket name. */
  readonly bucketKeys?: Readonly<Record<string, string>>;
}

type Input = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The ARNs IAM checks for a model id: a bare id's foundation model in this region; for a system
 * inference profile (id or ARN), the profile and its foundation model in every region the
 * profile routes to (profile-regions.ts); any other ARN, itself.
 */
function modelResources(modelId: string, env: CallEnvironment): string[] {
  if (parseModelId(modelId).form === 'bare') return [`arn:aws:bedrock:${env.region}::foundation-model/${modelId}`];
  return profileModelArns(modelId, env) ?? [modelId];
}

/** A job identifier (ARN or id) as its ARN. */
function jobArn(identifier: string, env: CallEnvironment): string {
  return identifier.startsWith('arn:') ? identifier : `arn:aws:bedrock:${env.region}:${env.account}:model-invocation-job/${identifier}`;
}

/** A partition key value from a plain or marshalled (`{S: ...}`) item or key. */
function partitionKeyOf(item: unknown, env: CallEnvironment): string[] {
  if (typeof item !== 'object' || item === null) return [];
  const v = (item as Input)[env.partitionKey];
  if (typeof v === 'string') return [v];
  if (typeof v === 'object' && v !== null && typeof (v as Input).S === 'string') return [(v as Input).S as string];
  return [];
}

/**
 * What S3 asks KMS on the caller's behalf for an object of an SSE-KMS bucket, through S3 in this
 * region (`kms:ViaService`): `kms:Decrypt` to read it, `kms:GenerateDataKey` to write it; for an
 * upload in parts, GenerateDataKey to start it and Decrypt for each part (CreateMultipartUpload's
 * "Permissions"). A HEAD and a list need no key
 * (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html>,
 * <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html>).
 */
function kmsRequests(bucket: unknown, uses: ReadonlyArray<'kms:Decrypt' | 'kms:GenerateDataKey'>, env: CallEnvironment): AccessRequest[] {
  const key = env.bucketKeys?.[str(bucket)];
  if (!key) return [];
  return uses.map((action) => ({ action, resource: key, context: { 'kms:ViaService': `s3.${env.region}.amazonaws.com` } }));
}

function s3Requests(command: string, input: Input, env: CallEnvironment): AccessRequest[] | undefined {
  const object = (bucket: unknown, key: unknown) => `arn:aws:s3:::${str(bucket)}/${str(key)}`;
  const target = object(input.Bucket, input.Key);
  switch (command) {
    // Decrypt only once the object is found (foundObjectRequests): a missing key asks KMS nothing.
    case 'GetObjectCommand':
      return [{ action: 's3:GetObject', resource: target }];
    case 'HeadObjectCommand':
      return [{ action: 's3:GetObject', resource: target }];
    case 'PutObjectCommand':
      return [{ action: 's3:PutObject', resource: target }, ...kmsRequests(input.Bucket, ['kms:GenerateDataKey'], env)];
    case 'CreateMultipartUploadCommand':
      return [{ action: 's3:PutObject', resource: target }, ...kmsRequests(input.Bucket, ['kms:GenerateDataKey'], env)];
    case 'UploadPartCommand':
      return [{ action: 's3:PutObject', resource: target }, ...kmsRequests(input.Bucket, ['kms:Decrypt'], env)];
    case 'CompleteMultipartUploadCommand':
      return [{ action: 's3:PutObject', resource: target }];
    case 'AbortMultipartUploadCommand':
      return [{ action: 's3:AbortMultipartUpload', resource: target }];
    case 'DeleteObjectCommand':
      return [{ action: 's3:DeleteObject', resource: target }];
    case 'CopyObjectCommand': {
      const source = decodeURIComponent(str(input.CopySource).replace(/^\//, ''));
      const slash = source.indexOf('/');
      return [
        { action: 's3:GetObject', resource: object(source.slice(0, slash), source.slice(slash + 1)) },
        { action: 's3:PutObject', resource: target },
        ...kmsRequests(source.slice(0, slash), ['kms:Decrypt'], env),
        ...kmsRequests(input.Bucket, ['kms:GenerateDataKey'], env),
      ];
    }
    case 'ListObjectsV2Command':
      return [
        {
          action: 's3:ListBucket',
          resource: `arn:aws:s3:::${str(input.Bucket)}`,
          ...(typeof input.Prefix === 'string' ? { context: { 's3:prefix': input.Prefix } } : {}),
        },
      ];
    default:
      return undefined;
  }
}

function dynamoRequests(command: string, input: Input, env: CallEnvironment): AccessRequest[] | undefined {
  const table = `arn:aws:dynamodb:${env.region}:${env.account}:table/${str(input.TableName)}`;
  const op = command.replace(/Command$/, '');
  switch (op) {
    case 'Get':
    case 'GetItem':
    case 'Update':
    case 'UpdateItem':
    case 'Delete':
    case 'DeleteItem':
      return [
        { action: `dynamodb:${op.endsWith('Item') ? op : `${op}Item`}`, resource: table, context: { 'dynamodb:LeadingKeys': partitionKeyOf(input.Key, env) } },
      ];
    case 'Put':
    case 'PutItem':
      return [{ action: 'dynamodb:PutItem', resource: table, context: { 'dynamodb:LeadingKeys': partitionKeyOf(input.Item, env) } }];
    case 'Scan':
      // A Scan of an index is authorized against the index's ARN, which a grant on the table's
      // alone does not cover (AWS's DynamoDB guide, "IAM policy to grant access to a specific
      // DynamoDB table and its indexes", grants `table/Books/index/*` beside the table).
      return [{ action: 'dynamodb:Scan', resource: input.IndexName === undefined ? table : `${table}/index/${str(input.IndexName)}` }];
    default:
      return undefined;
  }
}

function bedrockRequests(command: string, input: Input, env: CallEnvironment): AccessRequest[] | undefined {
  switch (command) {
    case 'CreateModelInvocationJobCommand': {
      // The job's ARN is not known before it exists: the job name stands in for its id.
      const job = `arn:aws:bedrock:${env.region}:${env.account}:model-invocation-job/${str(input.jobName)}`;
      const tags = Array.isArray(input.tags) ? (input.tags as Array<{ key?: unknown }>).map((t) => str(t.key)) : [];
      return [
        { action: 'bedrock:CreateModelInvocationJob', resource: job },
        ...modelResources(str(input.modelId), env).map((resource) => ({ action: 'bedrock:CreateModelInvocationJob', resource })),
        ...(tags.length > 0 ? [{ action: 'bedrock:TagResource', resource: job, context: { 'aws:TagKeys': tags } }] : []),
        { action: 'iam:PassRole', resource: str(input.roleArn), context: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
      ];
    }
    case 'GetModelInvocationJobCommand':
      return [{ action: 'bedrock:GetModelInvocationJob', resource: jobArn(str(input.jobIdentifier), env) }];
    case 'StopModelInvocationJobCommand':
      return [{ action: 'bedrock:StopModelInvocationJob', resource: jobArn(str(input.jobIdentifier), env) }];
    case 'InvokeModelCommand':
      return modelResources(str(input.modelId), env).map((resource) => ({ action: 'bedrock:InvokeModel', resource }));
    default:
      return undefined;
  }
}

function stepFunctionsRequests(command: string, input: Input, env: CallEnvironment): AccessRequest[] | undefined {
  switch (command) {
    case 'SendTaskSuccessCommand':
    case 'SendTaskFailureCommand':
    case 'SendTaskHeartbeatCommand':
      return [{ action: `states:${command.replace(/Command$/, '')}`, resource: env.stateMachineArn }];
    case 'StartExecutionCommand':
      return [{ action: 'states:StartExecution', resource: str(input.stateMachineArn) }];
    case 'DescribeExecutionCommand':
    case 'GetExecutionHistoryCommand':
      return [{ action: `states:${command.replace(/Command$/, '')}`, resource: str(input.executionArn) }];
    default:
      return undefined;
  }
}

function eventsRequests(command: string, input: Input, env: CallEnvironment): AccessRequest[] | undefined {
  if (command !== 'PutEventsCommand') return undefined;
  const entries = Array.isArray(input.Entries) ? (input.Entries as Input[]) : [];
  const buses = new Set(entries.map((e) => str(e.EventBusName) || 'default'));
  return [...buses].map((bus) => ({
    action: 'events:PutEvents',
    resource: bus.startsWith('arn:') ? bus : `arn:aws:events:${env.region}:${env.account}:event-bus/${bus}`,
  }));
}

function serviceQuotasRequests(command: string): AccessRequest[] | undefined {
  if (command === 'ListServiceQuotasCommand' || command === 'GetServiceQuotaCommand' || command === 'ListAWSDefaultServiceQuotasCommand') {
    // Service Quotas' actions take no resource-level permissions: the policy must grant "*".
    return [{ action: `servicequotas:${command.replace(/Command$/, '')}`, resource: '*' }];
  }
  return undefined;
}

/** The IAM service prefix of each client the handlers use (its SDK `serviceId`, lowercased). */
export type ClientService = 's3' | 'dynamodb' | 'bedrock' | 'bedrock-runtime' | 'sfn' | 'eventbridge' | 'service-quotas';

/**
 * What a call asks of KMS once S3 has found the object it reads: S3 decrypts an SSE-KMS object's
 * data key with the caller's permissions only to serve it, so a read of a missing key is a
 * NoSuchKey (or a 403 without ListBucket), never a KMS refusal.
 */
export function foundObjectRequests(service: ClientService, command: string, input: Input, env: CallEnvironment): AccessRequest[] {
  return service === 's3' && command === 'GetObjectCommand' ? kmsRequests(input.Bucket, ['kms:Decrypt'], env) : [];
}

/** The requests IAM authorizes for one SDK call. */
export function accessRequestsOf(service: ClientService, command: string, input: Input, env: CallEnvironment): AccessRequest[] {
  const known =
    service === 's3'
      ? s3Requests(command, input, env)
      : service === 'dynamodb'
        ? dynamoRequests(command, input, env)
        : service === 'bedrock' || service === 'bedrock-runtime'
          ? bedrockRequests(command, input, env)
          : service === 'sfn'
            ? stepFunctionsRequests(command, input, env)
            : service === 'eventbridge'
              ? eventsRequests(command, input, env)
              : serviceQuotasRequests(command);
  const prefix = {
    s3: 's3',
    dynamodb: 'dynamodb',
    bedrock: 'bedrock',
    'bedrock-runtime': 'bedrock',
    sfn: 'states',
    eventbridge: 'events',
    'service-quotas': 'servicequotas',
  }[service];
  return known ?? [{ action: `${prefix}:${command.replace(/Command$/, '')}`, resource: '*' }];
}
