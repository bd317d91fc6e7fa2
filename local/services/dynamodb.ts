/**
 * Local DynamoDB for the twin: an in-process, in-memory dynalite, and the tables of the
 * synthesized template created in it.
 *
 * dynalite 4 implements CreateTable with GSIs, conditional writes, Query and BatchWrite, but
 * not transactions or TTL (see docs/TOOLCHAIN.md): expired items simply stay.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type AttributeDefinition,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type DynamoDBClientConfig,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
  type Projection,
} from '@aws-sdk/client-dynamodb';

type DynaliteFactory = (options: { createTableMs: number; deleteTableMs: number; updateTableMs: number }) => Server;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as DynaliteFactory;

/** A running local DynamoDB. */
export interface LocalDynamo {
  /** Base URL, e.g. `http://127.0.0.1:40124`. */
  readonly endpoint: string;
  /** Closes open connections and the server; the in-memory data is gone. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts an in-memory dynalite on 127.0.0.1 on a free port. Tables become ACTIVE (and are
 * deleted or updated) without dynalite's default 500 ms delay.
 */
export async function startLocalDynamo(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop() {
      stopped ??= new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
      return stopped;
    },
  };
}

/**
 * Client configuration for the local DynamoDB: the endpoint, region us-east-1 and dummy
 * credentials (dynalite checks none).
 */
export function localDynamoClientConfig(endpoint: string): DynamoDBClientConfig {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  };
}

/** Environment variables that point an unmodified DynamoDB client at the local DynamoDB. */
export function localDynamoEnvironment(endpoint: string): Record<string, string> {
  return { AWS_ENDPOINT_URL_DYNAMODB: endpoint };
}

/** The part of a CloudFormation template this module reads. */
export interface TemplateWithResources {
  readonly Resources?: Record<string, { readonly Type: string; readonly Properties?: Record<string, unknown> }>;
}

/** Resource types created as tables: `Table` (CDK `Table`) and `GlobalTable` (CDK `TableV2`). */
const TABLE_TYPES = new Set(['AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable']);

/**
 * Creates every `AWS::DynamoDB::Table` (and `AWS::DynamoDB::GlobalTable`) of a template in the
 * given DynamoDB, and waits until each is ACTIVE.
 *
 * Only the shape is kept: key schema, attribute definitions, global and local secondary indexes
 * (name, keys, projection). Every table is on-demand (`PAY_PER_REQUEST`). Properties that are
 * not part of CreateTable or that dynalite does not take (TTL, point-in-time recovery, SSE,
 * streams, tags, deletion protection, replicas, throughput) are dropped. A table that already
 * exists under the same name is reused as it is.
 *
 * @param template - the synthesized template
 * @param client - a client pointed at the local DynamoDB
 * @param nameFor - the table name to use for a logical id (the template's `TableName`, if
 *   any, is ignored: it is usually a token)
 * @returns the table name created for each table's logical id
 */
export async function createTablesFromTemplate(
  template: TemplateWithResources,
  client: DynamoDBClient,
  nameFor: (logicalId: string) => string,
): Promise<Record<string, string>> {
  const created: Record<string, string> = {};
  for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
    if (!TABLE_TYPES.has(resource.Type)) continue;
    const input = createTableInput(logicalId, resource.Properties ?? {}, nameFor(logicalId));
    try {
      await client.send(new CreateTableCommand(input));
    } catch (err) {
      if ((err as Error).name !== 'ResourceInUseException') throw err;
    }
    await waitUntilActive(client, input.TableName!);
    created[logicalId] = input.TableName!;
  }
  return created;
}

/**
 * The CreateTable input for one table resource's properties (exported for tests).
 *
 * @throws Error when the key schema or attribute definitions are missing
 */
export function createTableInput(logicalId: string, props: Record<string, unknown>, tableName: string): CreateTableCommandInput {
  const keySchema = props.KeySchema as KeySchemaElement[] | undefined;
  const attributes = props.AttributeDefinitions as AttributeDefinition[] | undefined;
  if (!Array.isArray(keySchema) || !Array.isArray(attributes)) {
    throw new Error(`Table ${logicalId}: KeySchema and AttributeDefinitions are required`);
  }
  const gsis = (props.GlobalSecondaryIndexes as GlobalSecondaryIndex[] | undefined)?.map((i): GlobalSecondaryIndex => ({
    IndexName: i.IndexName,
    KeySchema: keys(i.KeySchema),
    Projection: projection(i.Projection),
  }));
  const lsis = (props.LocalSecondaryIndexes as LocalSecondaryIndex[] | undefined)?.map((i): LocalSecondaryIndex => ({
    IndexName: i.IndexName,
    KeySchema: keys(i.KeySchema),
    Projection: projection(i.Projection),
  }));
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: keys(keySchema),
    AttributeDefinitions: attributes.map((a) => ({ AttributeName: a.AttributeName, AttributeType: a.AttributeType })),
    ...(gsis?.length ? { GlobalSecondaryIndexes: gsis } : {}),
    ...(lsis?.length ? { LocalSecondaryIndexes: lsis } : {}),
  };
}

function keys(schema: KeySchemaElement[] | undefined): KeySchemaElement[] {
  return (schema ?? []).map((k) => ({ AttributeName: k.AttributeName, KeyType: k.KeyType }));
}

function projection(p: Projection | undefined): Projection {
  if (!p) return { ProjectionType: 'ALL' };
  return {
    ProjectionType: p.ProjectionType ?? 'ALL',
    ...(p.NonKeyAttributes?.length ? { NonKeyAttributes: p.NonKeyAttributes } : {}),
  };
}

async function waitUntilActive(client: DynamoDBClient, tableName: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE');
    if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
    if (Date.now() > deadline) throw new Error(`Table ${tableName} not ACTIVE after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
