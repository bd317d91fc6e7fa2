/**
 * The twin's start-up: the synthesized template read, then local S3 (s3rver), DynamoDB
 * (dynalite, tables from the template), the event bus, the Step Functions API, the Bedrock
 * emulator and Service Quotas started on loopback; the handlers' environment set as a deployed function's
 * (template variables plus `AWS_ENDPOINT_URL_<SERVICE>`) and their code loaded.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invocationKey } from '../crash-plan';
import { BedrockEmulator } from '../emulator';
import { FaultDecider } from '../emulator/faults';
import { createTablesFromTemplate, startLocalDynamo } from '../services/dynamodb';
import { LocalEventBus, type BusEvent } from '../services/event-bus';
import { localS3ClientConfig, startLocalS3 } from '../services/s3';
import { LocalServiceQuotas } from '../services/service-quotas';
import { StepFunctionsApi, type StepFunctionsApiOptions } from '../services/step-functions-api';
import { fakeResolver, LOCAL_ACCOUNT, LOCAL_REGION } from '../services/fake-arns';
import {
  bucketEncryptionKey,
  bucketSendsEvents,
  declaredBucketKey,
  dropBucketId,
  functionsBucketName,
  eventRules,
  lambdaFunctions,
  stateMachineDefinition,
  type TemplateEventRule,
} from '../services/template';
import type { CfnTemplate } from '../services/template-intrinsics';
import { cachedPipelineTemplate } from '../template-cache';
import type { TwinOptions } from '../twin';
import { KEY_PREFIX_VARIABLE } from '../../lambdas/shared/contracts';
import { AccessChecker } from './access-checks';
import { bedrockServiceRoles, decide, functionPolicies } from './iam-policies';
import { LambdaRuntime } from './lambda-runtime';
import type { LocalFunction } from './task-bindings';
import type { CrashRecord } from '../crash-injector';

/**
 * A function's time limit in the twin, as a fraction of its `Timeout`: 15 minutes are 90 s. The
 * twin's waits run 50 times faster than AWS's (retry pauses, job steps), but a handler's own work
 * runs at this machine's speed, so its limit is cut less: enough for the largest documented local
 * runs, short enough that a handler that hangs or loops fails a test within it.
 */
export const LAMBDA_TIME_SCALE = 0.1;

/** The drop bucket's local name. */
const LOCAL_BUCKET = 'bedrock-batch-local';
/** The job table's local name. */
const LOCAL_TABLE = 'bedrock-batch-jobs';

/** What the running services call back into the twin for. */
export interface TwinServiceHooks {
  /** A rule delivery was made twice by the `duplicate-invocation` fault. */
  readonly onDuplicateDelivery: () => void;
  /** The Step Functions API's execution calls (`StartExecution`, ...), played by the twin. */
  readonly stepFunctions: StepFunctionsApiOptions;
  /** A sandbox crashed under the `handler-crash` fault. */
  readonly onCrash: (crash: CrashRecord) => void;
}

/** The twin's running services and what it read from the template. */
export interface TwinServices {
  readonly bucket: string;
  /** Whether S3 announces the bucket's new objects on EventBridge (its notification setting), or why the twin cannot tell. */
  readonly objectEvents: boolean | Error;
  readonly s3: S3Client;
  readonly emulator: BedrockEmulator;
  readonly bus: LocalEventBus;
  readonly stepFunctions: StepFunctionsApi;
  /** The state machine's definition, tokens resolved. */
  readonly definition: Record<string, unknown>;
  readonly stateMachineArn: string;
  /** Function ARN -> the function. */
  readonly functions: Map<string, LocalFunction>;
  /** Runs the functions, each invocation in a sandbox (lambda-runtime.ts). */
  readonly lambda: LambdaRuntime;
  readonly rules: TemplateEventRule[];
  /** Checks every AWS call of the handlers against their roles' policies (IAM in the twin). */
  readonly access: AccessChecker;
  /** The job table's local name. */
  readonly tableName: string;
  /** Where each local service listens (what `local up` writes to `endpoints.json`). */
  readonly endpoints: { readonly s3: string; readonly sfn: string; readonly dynamodb: string; readonly bedrock: string };
  /** Stops, in start order; {@link stopServices} runs them newest first. */
  readonly stops: Array<() => Promise<void>>;
}

/** The bucket the functions of a pipeline with an existing bucket name (their `BUCKET_NAME`). */
function existingBucketName(template: CfnTemplate): string {
  const name = functionsBucketName(template);
  if (typeof name === 'string' && name !== '') return name;
  throw new Error(
    "the synthesized template has no drop bucket, and its functions name no bucket (BUCKET_NAME) the twin could create: give the pipeline's bucket a literal name",
  );
}

/** Stops services newest first; a failed stop does not keep the others running. */
export async function stopServices(stops: Array<() => Promise<void>>): Promise<void> {
  for (const stop of [...stops].reverse()) await stop().catch(() => undefined);
}

/** Starts every local service for the template of `options.config`; stops them all if one fails. */
export async function startTwinServices(options: TwinOptions, hooks: TwinServiceHooks): Promise<TwinServices> {
  if (!options.template && !options.config) throw new Error('the twin needs a pipeline configuration or a template');
  const template = (options.template ?? cachedPipelineTemplate(options.config!)) as CfnTemplate;
  const resources = template.Resources ?? {};
  const bucketId = dropBucketId(template);
  const tableId = Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::DynamoDB::Table');
  if (!tableId) throw new Error('the synthesized template has no job table');
  // A pipeline given a bucket of the user's (props.bucket) creates none: its functions name it.
  const bucket = bucketId ? LOCAL_BUCKET : existingBucketName(template);
  const resolve = fakeResolver(template, { names: { ...(bucketId ? { [bucketId]: bucket } : {}), [tableId]: LOCAL_TABLE } });
  const serviceRoles = bedrockServiceRoles(template, resolve);
  // An SSE-KMS drop bucket: S3 asks its key on the caller's behalf, which IAM checks too. A
  // bucket of the user's is not in the template: the key the construct was given stands for it.
  const bucketKey = bucketId ? bucketEncryptionKey(resources[bucketId]!, resolve) : declaredBucketKey(template, resolve);
  const bucketKeys = bucketKey ? { [bucket]: bucketKey } : undefined;
  // S3 announces a drop on EventBridge only if the bucket says so. A bucket outside the
  // template: the README tells them to turn it on, and the twin takes it as done. A setting the
  // twin cannot read matters only to drops: kept as the error, thrown there.
  let objectEvents: boolean | Error = true;
  try {
    if (bucketId) objectEvents = bucketSendsEvents(template, bucketId);
  } catch (err) {
    objectEvents = err as Error;
  }

  const stops: Array<() => Promise<void>> = [];
  try {
    const dataDir = await mkdtemp(join(tmpdir(), 'bedrock-batch-s3-'));
    stops.push(() => rm(dataDir, { recursive: true, force: true }));
    const s3Server = await startLocalS3({ directory: dataDir, buckets: [bucket] });
    stops.push(() => s3Server.stop());
    const dynamo = await startLocalDynamo();
    stops.push(() => dynamo.stop());
    const ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await createTablesFromTemplate(template, ddb, (id) => (id === tableId ? LOCAL_TABLE : id));
    ddb.destroy();

    const s3 = new S3Client(localS3ClientConfig(s3Server.endpoint));
    // duplicate-invocation: a rule target gets the same event twice, each delivery on its own.
    const duplicates = new FaultDecider(options.faults, options.seed ?? 1);
    const bus = new LocalEventBus(LOCAL_ACCOUNT, LOCAL_REGION, {
      copies: (rule, event) => {
        if (duplicates.rate('duplicate-invocation') === 0 || !duplicates.fires('duplicate-invocation', rule, invocationKey(event))) return 1;
        hooks.onDuplicateDelivery();
        return 2;
      },
    });
    const busEndpoint = await bus.start();
    stops.push(() => bus.stop());
    const stepFunctions = new StepFunctionsApi(hooks.stepFunctions);
    const sfnEndpoint = await stepFunctions.start();
    stops.push(() => stepFunctions.stop());
    const emulator = new BedrockEmulator({
      s3,
      region: LOCAL_REGION,
      accountId: LOCAL_ACCOUNT,
      ...(options.accountQuotas ? { accountQuotas: options.accountQuotas } : {}),
      ...(options.faults ? { faults: options.faults } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      stepDelayMs: options.stepDelayMs ?? 20,
      // A model's answer takes the same share of a function's time limit as on AWS.
      invokeLatencyScale: options.lambdaTimeScale ?? LAMBDA_TIME_SCALE,
      onEvent: (event) => bus.publish(event as unknown as BusEvent),
      // IAM for Bedrock too: a job's service role must let it read the input and write the output.
      ...(bucketKeys ? { bucketKeys } : {}),
      serviceRoleAllows: (roleArn, action, resource, context) => {
        const statements = serviceRoles.get(roleArn);
        return statements ? decide(statements, { action, resource, context }).allowed : undefined;
      },
    });
    const bedrockEndpoint = await emulator.start();
    stops.push(() => emulator.stop());
    const serviceQuotas = new LocalServiceQuotas({ region: LOCAL_REGION, accountId: LOCAL_ACCOUNT, accountQuotas: options.accountQuotas ?? {} });
    const serviceQuotasEndpoint = await serviceQuotas.start();
    stops.push(() => serviceQuotas.stop());

    // What a deployed function has: its template environment, plus endpoints for the SDK. Each
    // sandbox gets its own function's variables; this process gets all of them, for the twin's
    // own reads of the pipeline's keys (KEY_PREFIX).
    const templateFunctions = lambdaFunctions(template, resolve);
    const environment: Record<string, string> = {};
    for (const fn of templateFunctions) Object.assign(environment, fn.environment);
    const sdkEnvironment: Record<string, string> = {
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      AWS_ENDPOINT_URL_S3: s3Server.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_BEDROCK: bedrockEndpoint.endpoint,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockEndpoint.endpoint,
      AWS_ENDPOINT_URL_SFN: sfnEndpoint.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: busEndpoint.endpoint,
      AWS_ENDPOINT_URL_SERVICE_QUOTAS: serviceQuotasEndpoint.endpoint,
      POWERTOOLS_LOG_LEVEL: options.logLevel ?? 'SILENT',
    };
    // Set only when the pipeline has a key prefix: an earlier twin's must not linger.
    delete process.env[KEY_PREFIX_VARIABLE];
    Object.assign(process.env, environment, sdkEnvironment);

    const functions = new Map<string, LocalFunction>();
    for (const fn of templateFunctions) {
      functions.set(fn.arn, { name: fn.handlerName, arn: fn.arn, environment: fn.environment, memoryMb: fn.memoryMb, timeoutSeconds: fn.timeoutSeconds });
    }

    const machineId = Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::StepFunctions::StateMachine')!;
    const stateMachineArn = resolve({ Ref: machineId });
    const keySchema = (resources[tableId]!.Properties?.KeySchema ?? []) as Array<{ AttributeName: string; KeyType: string }>;
    const access = new AccessChecker(functionPolicies(template, resolve), {
      region: LOCAL_REGION,
      account: LOCAL_ACCOUNT,
      stateMachineArn,
      partitionKey: keySchema.find((k) => k.KeyType === 'HASH')?.AttributeName ?? 'pk',
      ...(bucketKeys ? { bucketKeys } : {}),
    });
    const lambda = new LambdaRuntime({
      environment: sdkEnvironment,
      timeScale: options.lambdaTimeScale ?? LAMBDA_TIME_SCALE,
      access,
      ...(options.maxSandboxes !== undefined ? { maxSandboxes: options.maxSandboxes } : {}),
      onCrash: hooks.onCrash,
    });
    stops.push(() => lambda.stop());
    return {
      lambda,
      bucket,
      objectEvents,
      s3,
      emulator,
      bus,
      stepFunctions,
      definition: stateMachineDefinition(template, resolve),
      stateMachineArn,
      access,
      tableName: LOCAL_TABLE,
      endpoints: { s3: s3Server.endpoint, sfn: sfnEndpoint.endpoint, dynamodb: dynamo.endpoint, bedrock: bedrockEndpoint.endpoint },
      functions,
      rules: eventRules(template, resolve),
      stops,
    };
  } catch (err) {
    await stopServices(stops);
    throw err;
  }
}
