/** A {@link Target} of plain clients, for tests that mock them with aws-sdk-client-mock. */
import { BedrockClient } from '@aws-sdk/client-bedrock';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Target } from '../../cli/target';

const config = { region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } };

export function mockedTarget(): Target {
  return {
    description: 'stack Test (eu-west-1)',
    bucket: 'bb-bucket',
    stateMachineArn: 'arn:aws:states:eu-west-1:111122223333:stateMachine:bb',
    tableName: 'bb-table',
    s3: new S3Client(config),
    sfn: new SFNClient(config),
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient(config)),
    bedrock: new BedrockClient(config),
    close: () => undefined,
  };
}

/** A GetObject answer whose body is `value` as JSON. */
export function jsonBody(value: unknown): { Body: never } {
  const text = JSON.stringify(value);
  return { Body: { transformToString: async () => text } as never };
}

export const noSuchKey = () => Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: {} });
