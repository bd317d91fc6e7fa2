/**
 * SDK clients, built once per process. Endpoints come from the SDK's own configuration
 * (`AWS_ENDPOINT_URL_<SERVICE>`), which is how the local twin points the same code at local
 * services; there is no local-mode branch here or anywhere in lambdas/.
 */
import { BedrockClient } from '@aws-sdk/client-bedrock';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The clients a handler may use; logic functions take the ones they need as arguments. */
export interface AwsClients {
  readonly s3: S3Client;
  readonly ddb: DynamoDBDocumentClient;
  readonly bedrock: BedrockClient;
  readonly bedrockRuntime: BedrockRuntimeClient;
  readonly sfn: SFNClient;
  readonly events: EventBridgeClient;
  readonly serviceQuotas: ServiceQuotasClient;
}

let cached: { key: string; clients: AwsClients } | undefined;

/** What the clients were built from; a change (a new endpoint, region) builds them anew. */
function environmentKey(): string {
  return Object.keys(process.env)
    .filter((k) => k.startsWith('AWS_ENDPOINT_URL') || k === 'AWS_REGION' || k.startsWith('AWS_REQUEST_CHECKSUM') || k.startsWith('AWS_RESPONSE_CHECKSUM'))
    .sort()
    .map((k) => `${k}=${process.env[k]}`)
    .join('\n');
}

/** The process's clients, created on first use and kept while the environment they came from stands. */
export function awsClients(): AwsClients {
  const key = environmentKey();
  if (cached?.key === key) return cached.clients;
  const clients: AwsClients = {
    s3: new S3Client({}),
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }),
    bedrock: new BedrockClient({ maxAttempts: 6 }),
    bedrockRuntime: new BedrockRuntimeClient({ maxAttempts: 6 }),
    sfn: new SFNClient({}),
    events: new EventBridgeClient({}),
    serviceQuotas: new ServiceQuotasClient({}),
  };
  cached = { key, clients };
  return clients;
}
