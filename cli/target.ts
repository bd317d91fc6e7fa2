/**
 * Where the operator commands act: a deployed stack (`--stack NAME`: the bucket, state machine
 * and job table from the stack's outputs; region and credentials the AWS SDK's usual way) or a
 * running twin (`--local DIR`: the endpoints `bedrock-batch local up` wrote to
 * `DIR/endpoints.json`). Both give the same clients, so every command runs the same code on
 * either.
 */
import { BedrockClient } from '@aws-sdk/client-bedrock';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readFile } from 'node:fs/promises';
import { KEY_PREFIX_VARIABLE } from '../lambdas/shared/contracts';
import { join } from 'node:path';

/** The stack outputs the commands need (lib/pipeline-stack.ts writes them). */
export const STACK_OUTPUTS = { bucket: 'BucketName', stateMachineArn: 'StateMachineArn', tableName: 'JobTableName' } as const;

/** The default stack name (bin/app.ts). */
export const DEFAULT_STACK = 'BedrockBatch';

/** The file `local up` writes once every service of the twin is ready. */
export const ENDPOINTS_FILE = 'endpoints.json';

/** `DIR/endpoints.json`: how to reach a running twin. */
export interface LocalEndpoints {
  readonly version: 1;
  readonly pid: number;
  readonly region: string;
  readonly bucket: string;
  readonly stateMachineArn: string;
  readonly tableName: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints: { readonly s3: string; readonly sfn: string; readonly dynamodb: string; readonly bedrock: string };
}

/** The pipeline's resources and a client for each service the commands call. */
export interface Target {
  /** `stack BedrockBatch (eu-west-1)` or `local twin in DIR`: for messages. */
  readonly description: string;
  readonly bucket: string;
  readonly stateMachineArn: string;
  readonly tableName: string;
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly ddb: DynamoDBDocumentClient;
  readonly bedrock: BedrockClient;
  close(): void;
}

/** A problem the user can fix (no stack, no credentials, no twin): one line, exit 1. */
export class TargetError extends Error {
  override readonly name = 'TargetError';
}

/** Where `--stack` / `--local` point. */
export interface TargetOptions {
  readonly stack?: string;
  readonly local?: string;
  readonly region?: string;
  /** A pipeline named by its resources (one placed in a stack of the user's): all three together. */
  readonly bucket?: string;
  readonly stateMachine?: string;
  readonly table?: string;
  /** The pipeline's `keyPrefix` in its bucket, if it has one. */
  readonly keyPrefix?: string;
}

/** Clients the stack lookup uses; replaced in tests. */
export interface TargetFactories {
  readonly cloudFormation?: (region: string | undefined) => CloudFormationClient;
}

/** Resolves `--local DIR` or `--stack NAME` (default {@link DEFAULT_STACK}). */
export async function resolveTarget(options: TargetOptions, factories: TargetFactories = {}): Promise<Target> {
  if (options.keyPrefix !== undefined) {
    if (!/^(?:[A-Za-z0-9!_.*'()-]+\/)+$/.test(options.keyPrefix))
      throw new TargetError(`--key-prefix must be /-separated segments ending in '/', got '${options.keyPrefix}'`);
    // The keys the commands read and write (runKeys, S3_PREFIXES) are under it, as the pipeline's are.
    process.env[KEY_PREFIX_VARIABLE] = options.keyPrefix;
  }
  const named = [options.bucket, options.stateMachine, options.table];
  if (named.some((n) => n !== undefined)) {
    if (named.some((n) => n === undefined))
      throw new TargetError("--bucket, --state-machine and --table go together (the pipeline construct's bucket, stateMachine and jobTable)");
    if (options.stack !== undefined || options.local !== undefined)
      throw new TargetError('give --bucket/--state-machine/--table, --stack or --local, not several');
    const config = options.region ? { region: options.region } : {};
    const s3 = new S3Client(config);
    const where = await s3.config.region().catch((err: unknown) => {
      s3.destroy();
      throw awsProblem(err, 'the AWS region');
    });
    return withClients(
      `the pipeline of bucket ${options.bucket} (${where})`,
      { bucket: options.bucket!, stateMachineArn: options.stateMachine!, tableName: options.table! },
      { s3, sfn: new SFNClient({ region: where }), dynamo: new DynamoDBClient({ region: where }), bedrock: new BedrockClient({ region: where }) },
    );
  }
  if (options.local !== undefined) {
    if (options.stack !== undefined) throw new TargetError('give --stack or --local, not both');
    return localTarget(options.local);
  }
  return stackTarget(options.stack ?? DEFAULT_STACK, options.region, factories);
}

/** Reads and checks `DIR/endpoints.json`. */
export async function readEndpoints(dir: string): Promise<LocalEndpoints> {
  const file = join(dir, ENDPOINTS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TargetError(
      code === 'ENOENT'
        ? `no twin is running in ${dir} (no ${ENDPOINTS_FILE}; start one with 'bedrock-batch local up --state-dir ${dir} --model <modelId>')`
        : `cannot read ${file}: ${code ?? (err as Error).message}`,
    );
  }
  let value: Partial<LocalEndpoints>;
  try {
    value = JSON.parse(text) as Partial<LocalEndpoints>;
  } catch {
    throw new TargetError(`${file} is not JSON: was it written by 'bedrock-batch local up'?`);
  }
  const e = value.endpoints;
  const strings = [value.region, value.bucket, value.stateMachineArn, value.tableName, e?.s3, e?.sfn, e?.dynamodb, e?.bedrock];
  if (value.version !== 1 || strings.some((s) => typeof s !== 'string' || s === '') || typeof value.pid !== 'number' || !value.credentials) {
    throw new TargetError(`${file} is not an endpoints file of 'bedrock-batch local up' (version 1)`);
  }
  if (!isAlive(value.pid))
    throw new TargetError(`the twin of ${dir} is no longer running (process ${value.pid} has ended); start it again with 'bedrock-batch local up'`);
  return value as LocalEndpoints;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function localTarget(dir: string): Promise<Target> {
  const e = await readEndpoints(dir);
  const common = { region: e.region, credentials: e.credentials, maxAttempts: 3 };
  return withClients(`the local twin in ${dir}`, e, {
    s3: new S3Client({
      ...common,
      endpoint: e.endpoints.s3,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    sfn: new SFNClient({ ...common, endpoint: e.endpoints.sfn }),
    dynamo: new DynamoDBClient({ ...common, endpoint: e.endpoints.dynamodb }),
    bedrock: new BedrockClient({ ...common, endpoint: e.endpoints.bedrock }),
  });
}

async function stackTarget(stack: string, region: string | undefined, factories: TargetFactories): Promise<Target> {
  const cfn = factories.cloudFormation?.(region) ?? new CloudFormationClient(region ? { region } : {});
  let outputs: Record<string, string>;
  let where: string;
  try {
    where = await cfn.config.region();
    const res = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
    const found = res.Stacks?.[0];
    if (!found) throw new TargetError(`stack ${stack} not found in ${where}`);
    outputs = Object.fromEntries((found.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (err) {
    throw awsProblem(err, `stack ${stack}`);
  } finally {
    cfn.destroy();
  }
  const missing = Object.values(STACK_OUTPUTS).filter((k) => !outputs[k]);
  if (missing.length > 0) throw new TargetError(`stack ${stack} has no output ${missing.join(', ')}: is it a bedrock-batch stack, deployed from this version?`);
  const config = { region: where };
  return withClients(
    `stack ${stack} (${where})`,
    { bucket: outputs[STACK_OUTPUTS.bucket]!, stateMachineArn: outputs[STACK_OUTPUTS.stateMachineArn]!, tableName: outputs[STACK_OUTPUTS.tableName]! },
    { s3: new S3Client(config), sfn: new SFNClient(config), dynamo: new DynamoDBClient(config), bedrock: new BedrockClient(config) },
  );
}

function withClients(
  description: string,
  names: { bucket: string; stateMachineArn: string; tableName: string },
  c: { s3: S3Client; sfn: SFNClient; dynamo: DynamoDBClient; bedrock: BedrockClient },
): Target {
  const ddb = DynamoDBDocumentClient.from(c.dynamo);
  return {
    description,
    bucket: names.bucket,
    stateMachineArn: names.stateMachineArn,
    tableName: names.tableName,
    s3: c.s3,
    sfn: c.sfn,
    ddb,
    bedrock: c.bedrock,
    close: () => {
      for (const client of [c.s3, c.sfn, c.dynamo, c.bedrock]) client.destroy();
    },
  };
}

/**
 * One clear line for the AWS errors an operator meets first: no credentials, no region, an
 * unknown stack, no permission. Anything else keeps its own message.
 */
export function awsProblem(err: unknown, subject: string): Error {
  if (err instanceof TargetError) return err;
  const e = err as { name?: string; message?: string };
  const message = (e.message ?? String(err)).split('\n')[0]!;
  if (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(message))
    return new TargetError('no AWS credentials found (set AWS_PROFILE, or run `aws configure` / `aws sso login`)');
  if (/Region is missing/i.test(message)) return new TargetError('no AWS region set (give --region, or set AWS_REGION or a profile region)');
  if (e.name === 'ValidationError' && /does not exist/i.test(message)) return new TargetError(`${subject} does not exist in this region (${message})`);
  if (
    e.name === 'AccessDenied' ||
    e.name === 'AccessDeniedException' ||
    e.name === 'UnauthorizedOperation' ||
    e.name === 'ExpiredToken' ||
    e.name === 'ExpiredTokenException'
  )
    return new TargetError(`${subject}: ${e.name}: ${message}`);
  return new TargetError(`${subject}: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${message}`);
}
