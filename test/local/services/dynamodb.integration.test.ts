import { DescribeTableCommand, DynamoDBClient, PutItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import {
  createTableInput,
  createTablesFromTemplate,
  localDynamoClientConfig,
  localDynamoEnvironment,
  startLocalDynamo,
  type LocalDynamo,
} from '../../../local/services/dynamodb';

/** The shape CDK synthesizes for the job table, with properties dynalite does not take. */
const template = {
  Resources: {
    JobTable1234: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        TableName: { 'Fn::Join': ['', [{ Ref: 'AWS::StackName' }, '-jobs']] },
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'status', AttributeType: 'S' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byStatus',
            KeySchema: [
              { AttributeName: 'status', KeyType: 'HASH' },
              { AttributeName: 'sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['jobArn'] },
            ContributorInsightsSpecification: { Enabled: false },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
        DeletionProtectionEnabled: true,
        Tags: [{ Key: 'a', Value: 'b' }],
      },
      UpdateReplacePolicy: 'Retain',
      DeletionPolicy: 'Retain',
    },
    GlobalTbl: {
      Type: 'AWS::DynamoDB::GlobalTable',
      Properties: {
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        Replicas: [{ Region: { Ref: 'AWS::Region' } }],
        BillingMode: 'PROVISIONED',
        WriteProvisionedThroughputSettings: { WriteCapacityAutoScalingSettings: {} },
      },
    },
    Bucket: { Type: 'AWS::S3::Bucket', Properties: {} },
  },
};

describe('local DynamoDB', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    client = new DynamoDBClient(localDynamoClientConfig(dynamo.endpoint));
  });

  afterAll(async () => {
    client.destroy();
    await dynamo.stop();
    await dynamo.stop();
  });

  it('creates the template tables, ACTIVE, under the names given', async () => {
    const names = await createTablesFromTemplate(template, client, (id) => `twin-${id}`);
    expect(names).toEqual({ JobTable1234: 'twin-JobTable1234', GlobalTbl: 'twin-GlobalTbl' });

    const { Table } = await client.send(new DescribeTableCommand({ TableName: 'twin-JobTable1234' }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(Table?.GlobalSecondaryIndexes?.[0]).toMatchObject({
      IndexName: 'byStatus',
      IndexStatus: 'ACTIVE',
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['jobArn'] },
    });
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('reuses a table that already exists', async () => {
    const names = await createTablesFromTemplate(template, client, (id) => `twin-${id}`);
    expect(names.JobTable1234).toBe('twin-JobTable1234');
  });

  it('serves conditional writes and GSI queries on the created table', async () => {
    const TableName = 'twin-JobTable1234';
    await client.send(new PutItemCommand({ TableName, Item: { pk: { S: 'JOB#a' }, sk: { S: 'JOB' }, status: { S: 'InProgress' }, jobArn: { S: 'arn:x' } } }));
    const acquire = () =>
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: { pk: { S: 'CAP#m' }, sk: { S: 'CAP' } },
          UpdateExpression: 'ADD inUse :one',
          ConditionExpression: 'attribute_not_exists(inUse) OR inUse < :limit',
          ExpressionAttributeValues: { ':one': { N: '1' }, ':limit': { N: '3' } },
        }),
      );
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, acquire));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    const q = await client.send(
      new QueryCommand({
        TableName,
        IndexName: 'byStatus',
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': { S: 'InProgress' } },
      }),
    );
    expect(q.Items?.map((i) => i.pk?.S)).toEqual(['JOB#a']);
  });

  it('gives the endpoint environment variable', () => {
    expect(localDynamoEnvironment(dynamo.endpoint)).toEqual({ AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint });
  });
});

describe('createTableInput', () => {
  it('keeps only the shape and makes the table on-demand', () => {
    const input = createTableInput('T', template.Resources.JobTable1234.Properties, 'n');
    expect(Object.keys(input).sort()).toEqual(['AttributeDefinitions', 'BillingMode', 'GlobalSecondaryIndexes', 'KeySchema', 'TableName']);
    expect(input.BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('defaults a missing projection to ALL and keeps local indexes', () => {
    const input = createTableInput(
      'T',
      {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'x', AttributeType: 'N' },
        ],
        LocalSecondaryIndexes: [
          {
            IndexName: 'byX',
            KeySchema: [
              { AttributeName: 'pk', KeyType: 'HASH' },
              { AttributeName: 'x', KeyType: 'RANGE' },
            ],
          },
        ],
      },
      'n',
    );
    expect(input.LocalSecondaryIndexes).toEqual([
      {
        IndexName: 'byX',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'x', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    expect(input.GlobalSecondaryIndexes).toBeUndefined();
  });

  it('throws a clear error without a key schema', () => {
    expect(() => createTableInput('Broken', { AttributeDefinitions: [] }, 'n')).toThrow(/Broken: KeySchema/);
  });
});
