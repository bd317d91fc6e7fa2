/**
 * Reads what the local twin needs out of the CloudFormation template synthesized from the CDK
 * stack: the state machine definition, the functions (bound to handler code by their
 * `bedrock-batch:handler` metadata) with their environment, and the EventBridge rules. Tokens
 * are resolved (template-intrinsics.ts) to local names and fake ARNs (fake-arns.ts), so the twin
 * runs the definition that deploys, not a copy of it.
 */
import { BUCKET_KEY_METADATA_KEY, HANDLER_METADATA_KEY } from '../../lambdas/shared/contracts';
import { fakeArn } from './fake-arns';
import { asString, resolveTokens, type CfnResource, type CfnTemplate, type TokenResolver } from './template-intrinsics';

/** Metadata key naming a function's handler folder under `lambdas/` (defined in lambdas/shared/contracts.ts). */
export { HANDLER_METADATA_KEY };

function resourcesOfType(template: CfnTemplate, ...types: string[]): Array<[string, CfnResource]> {
  return Object.entries(template.Resources ?? {}).filter(([, r]) => types.includes(r.Type));
}

/**
 * The state machine's Amazon States Language definition, tokens resolved: from
 * `DefinitionString` (a string or a `Fn::Join`, as CDK writes it) or a `Definition` object,
 * with `DefinitionSubstitutions` (`${name}`) applied.
 *
 * @param logicalId - which state machine, when the template has more than one
 * @throws Error when there is no state machine, more than one and no `logicalId`, or the
 *   definition is not valid JSON
 */
export function stateMachineDefinition(template: CfnTemplate, resolve: TokenResolver, logicalId?: string): Record<string, unknown> {
  const machines = resourcesOfType(template, 'AWS::StepFunctions::StateMachine').filter(([id]) => !logicalId || id === logicalId);
  if (machines.length !== 1) {
    throw new Error(
      machines.length === 0
        ? `No AWS::StepFunctions::StateMachine${logicalId ? ` ${logicalId}` : ''} in the template`
        : `Template has ${machines.length} state machines (${machines.map(([id]) => id).join(', ')}): pass a logicalId`,
    );
  }
  const [id, resource] = machines[0]!;
  const props = resource.Properties ?? {};
  const substitutions = resolveTokens<Record<string, unknown>>(props.DefinitionSubstitutions ?? {}, resolve);
  const substitute = (text: string): string =>
    text.replace(/\$\{([^}]+)\}/g, (whole, name: string) =>
      Object.prototype.hasOwnProperty.call(substitutions, name) ? asString(substitutions[name], 'DefinitionSubstitutions') : whole,
    );

  if (props.DefinitionString !== undefined) {
    const text = substitute(resolveTokens<string>(props.DefinitionString, resolve));
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`State machine ${id}: DefinitionString is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  if (props.Definition !== undefined) {
    return mapStrings(resolveTokens(props.Definition, resolve), substitute) as Record<string, unknown>;
  }
  throw new Error(`State machine ${id} has neither DefinitionString nor Definition`);
}

function mapStrings(value: unknown, fn: (s: string) => string): unknown {
  if (typeof value === 'string') return fn(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, fn));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, fn)]));
  }
  return value;
}

/** A function of the template bound to handler code. */
export interface TemplateFunction {
  readonly logicalId: string;
  /** Folder of the handler under `lambdas/` (the `bedrock-batch:handler` metadata). */
  readonly handlerName: string;
  /** The function's environment variables, tokens resolved. */
  readonly environment: Record<string, string>;
  /** The fake function ARN (see {@link fakeArn}). */
  readonly arn: string;
  /** `MemorySize` in MB (Lambda's default, 128, when the template sets none). */
  readonly memoryMb: number;
  /** `Timeout` in seconds (Lambda's default, 3, when the template sets none). */
  readonly timeoutSeconds: number;
}

/**
 * The functions that carry `bedrock-batch:handler` metadata, with their environment resolved.
 * Functions without it (CDK's own custom-resource providers) are left out.
 */
export function lambdaFunctions(template: CfnTemplate, resolve: TokenResolver): TemplateFunction[] {
  return resourcesOfType(template, 'AWS::Lambda::Function').flatMap(([logicalId, resource]) => {
    const handlerName = resource.Metadata?.[HANDLER_METADATA_KEY];
    if (typeof handlerName !== 'string') return [];
    const variables = (resource.Properties?.Environment as { Variables?: unknown } | undefined)?.Variables ?? {};
    const resolved = resolveTokens<Record<string, unknown>>(variables, resolve);
    const environment = Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, asString(v, `Environment ${k}`)]));
    const memoryMb = Number(resource.Properties?.MemorySize ?? 128);
    const timeoutSeconds = Number(resource.Properties?.Timeout ?? 3);
    if (!Number.isFinite(memoryMb) || memoryMb <= 0)
      throw new Error(`${logicalId}: MemorySize must be a number of MB, not ${String(resource.Properties?.MemorySize)}`);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
      throw new Error(`${logicalId}: Timeout must be a number of seconds, not ${String(resource.Properties?.Timeout)}`);
    return [{ logicalId, handlerName, environment, arn: fakeArn(logicalId, resource.Type), memoryMb, timeoutSeconds }];
  });
}

/** One target of a rule. */
export interface TemplateRuleTarget {
  readonly id?: string;
  /** The target's ARN, resolved (a fake ARN for the template's own resources). */
  readonly arn: string;
  /** Constant JSON text sent instead of the event (`Input`). */
  readonly input?: string;
  /** JSONPath of the part of the event sent (`InputPath`). */
  readonly inputPath?: string;
  /** `InputTransformer` as in the template (`InputPathsMap`, `InputTemplate`), resolved. */
  readonly inputTransformer?: { readonly InputPathsMap?: Record<string, string>; readonly InputTemplate: string };
}

/** An EventBridge rule of the template. */
export interface TemplateEventRule {
  readonly logicalId: string;
  readonly eventPattern?: Record<string, unknown>;
  readonly scheduleExpression?: string;
  /** `ENABLED` unless the template says otherwise. */
  readonly state: string;
  /** The bus name, `default` unless the template says otherwise. */
  readonly eventBusName: string;
  readonly targets: TemplateRuleTarget[];
}

/** The EventBridge rules of the template, tokens resolved. */
export function eventRules(template: CfnTemplate, resolve: TokenResolver): TemplateEventRule[] {
  return resourcesOfType(template, 'AWS::Events::Rule').map(([logicalId, resource]) => {
    const props = resolveTokens<Record<string, unknown>>(resource.Properties ?? {}, resolve);
    const pattern = typeof props.EventPattern === 'string' ? JSON.parse(props.EventPattern) : props.EventPattern;
    const targets = ((props.Targets as Array<Record<string, unknown>> | undefined) ?? []).map((t): TemplateRuleTarget => ({
      arn: asString(t.Arn, `Rule ${logicalId} target Arn`),
      ...(t.Id !== undefined ? { id: String(t.Id) } : {}),
      ...(t.Input !== undefined ? { input: asString(t.Input, 'Input') } : {}),
      ...(t.InputPath !== undefined ? { inputPath: asString(t.InputPath, 'InputPath') } : {}),
      ...(t.InputTransformer !== undefined ? { inputTransformer: t.InputTransformer as TemplateRuleTarget['inputTransformer'] } : {}),
    }));
    const eventBus = props.EventBusName;
    return {
      logicalId,
      ...(pattern !== undefined ? { eventPattern: pattern as Record<string, unknown> } : {}),
      ...(props.ScheduleExpression !== undefined ? { scheduleExpression: asString(props.ScheduleExpression, 'ScheduleExpression') } : {}),
      state: typeof props.State === 'string' ? props.State : 'ENABLED',
      eventBusName: typeof eventBus === 'string' ? eventBus : 'default',
      targets,
    };
  });
}

/**
 * The KMS key a bucket resource encrypts its objects with by default (`BucketEncryption` with
 * `SSEAlgorithm` `aws:kms` or `aws:kms:dsse` and a `KMSMasterKeyID`), resolved; undefined for
 * SSE-S3, none, or the AWS managed key (no `KMSMasterKeyID`: its policy lets the account use it
 * through S3, no grant needed).
 * @throws Error for a configuration it cannot read (a condition, say): the twin would otherwise
 *   check no key at all
 */
export function bucketEncryptionKey(bucket: CfnResource, resolve: TokenResolver): string | undefined {
  const encryption = bucket.Properties?.BucketEncryption as { ServerSideEncryptionConfiguration?: unknown } | undefined;
  if (encryption === undefined) return undefined;
  const rules = encryption.ServerSideEncryptionConfiguration;
  const unreadable = () => new Error(`the drop bucket's BucketEncryption cannot be read by the twin: ${JSON.stringify(encryption)}`);
  if (!Array.isArray(rules)) throw unreadable();
  for (const rule of rules) {
    const byDefault = (rule as { ServerSideEncryptionByDefault?: Record<string, unknown> }).ServerSideEncryptionByDefault;
    if (byDefault === undefined) continue;
    if (typeof byDefault.SSEAlgorithm !== 'string') throw unreadable();
    if (!byDefault.SSEAlgorithm.startsWith('aws:kms') || byDefault.KMSMasterKeyID === undefined) continue;
    return asString(resolveTokens(byDefault.KMSMasterKeyID, resolve), 'BucketEncryption KMSMasterKeyID');
  }
  return undefined;
}

/**
 * The logical id of the drop bucket: the bucket the pipeline's functions name (`BUCKET_NAME:
 * {Ref}`), whatever else the stack declares. Undefined when they name a bucket by a literal name
 * (one outside the template). A template whose functions name none falls back to its first
 * bucket that is not a log bucket.
 */
export function dropBucketId(template: CfnTemplate): string | undefined {
  const resources = template.Resources ?? {};
  const name = functionsBucketName(template);
  if (typeof name === 'string' && name !== '') return undefined;
  const ref = (name as { Ref?: unknown } | undefined)?.Ref;
  if (typeof ref === 'string' && resources[ref]?.Type === 'AWS::S3::Bucket') return ref;
  return Object.keys(resources).find((id) => resources[id]!.Type === 'AWS::S3::Bucket' && !/log/i.test(id));
}

/** The bucket the pipeline's functions name: the first function's `BUCKET_NAME`, unresolved (a literal, a `{Ref}` ...), if any. */
export function functionsBucketName(template: CfnTemplate): unknown {
  for (const r of Object.values(template.Resources ?? {})) {
    if (r.Type !== 'AWS::Lambda::Function') continue;
    const name = (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables?.BUCKET_NAME;
    if (name !== undefined) return name;
  }
  return undefined;
}

/**
 * Whether S3 sends the bucket's events to EventBridge: when its
 * `NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled` is true (how the
 * pipeline's own bucket says it), or when a CDK `Custom::S3BucketNotifications` resource of the
 * bucket sets an `EventBridgeConfiguration` (how `new s3.Bucket(..., { eventBridgeEnabled: true })`
 * says it). Without either a dropped file starts nothing on AWS (the pipeline's rule listens on
 * EventBridge).
 *
 * @throws Error for a setting it cannot read (a condition, say), rather than guessing
 */
export function bucketSendsEvents(template: CfnTemplate, bucketId: string): boolean {
  const resources = template.Resources ?? {};
  const notification = resources[bucketId]?.Properties?.NotificationConfiguration as Record<string, unknown> | undefined;
  const unreadable = (what: unknown) => new Error(`the drop bucket's NotificationConfiguration cannot be read by the twin: ${JSON.stringify(what)}`);
  const hasIntrinsic = (v: unknown) => typeof v === 'object' && v !== null && Object.keys(v).some((k) => k.startsWith('Fn::'));
  if (notification !== undefined) {
    if (typeof notification !== 'object' || notification === null || hasIntrinsic(notification)) throw unreadable(notification);
    const eventBridge = notification.EventBridgeConfiguration as { EventBridgeEnabled?: unknown } | undefined;
    if (eventBridge !== undefined) {
      if (typeof eventBridge !== 'object' || eventBridge === null || hasIntrinsic(eventBridge)) throw unreadable(notification);
      const enabled = eventBridge.EventBridgeEnabled;
      if (enabled === true || enabled === 'true') return true;
      if (enabled !== false && enabled !== 'false' && enabled !== undefined) throw unreadable(notification);
    }
  }
  return Object.values(resources).some((r) => {
    if (r.Type !== 'Custom::S3BucketNotifications' || (r.Properties?.BucketName as { Ref?: unknown } | undefined)?.Ref !== bucketId) return false;
    const config = r.Properties?.NotificationConfiguration as Record<string, unknown> | undefined;
    if (config !== undefined && (typeof config !== 'object' || config === null || hasIntrinsic(config))) throw unreadable(config);
    return config?.EventBridgeConfiguration !== undefined;
  });
}

/**
 * The KMS key the construct was told the drop bucket is encrypted with (its
 * {@link BUCKET_KEY_METADATA_KEY} metadata), resolved; undefined when none was given. For a
 * bucket of the user's, which the template does not define.
 */
export function declaredBucketKey(template: CfnTemplate, resolve: TokenResolver): string | undefined {
  for (const resource of Object.values(template.Resources ?? {})) {
    const key = resource.Metadata?.[BUCKET_KEY_METADATA_KEY];
    if (key !== undefined) return asString(resolveTokens(key, resolve), `Metadata ${BUCKET_KEY_METADATA_KEY}`);
  }
  return undefined;
}
