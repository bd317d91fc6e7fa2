/**
 * Reads what the local twin needs out of the CloudFormation template synthesized from the CDK
 * stack: the state machine definition, the functions (bound to handler code by their
 * `bedrock-batch:handler` metadata) with their environment, the DynamoDB tables, and the
 * EventBridge rules. Tokens (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, ...) are resolved to
 * local names and fake ARNs that follow {@link fakeArn}, so the twin runs the definition that
 * deploys, not a copy of it.
 */
import { HANDLER_METADATA_KEY } from '../../lambdas/shared/contracts';

/** A synthesized CloudFormation template (the parts read here). */
export interface CfnTemplate {
  readonly Parameters?: Record<string, { readonly Type?: string; readonly Default?: unknown }>;
  readonly Resources?: Record<string, CfnResource>;
  readonly [section: string]: unknown;
}

/** One resource of a template. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

/** A reference to resolve: `{ Ref }` or `{ GetAtt: [logicalId, attribute] }`. */
export interface TokenRef {
  readonly Ref?: string;
  readonly GetAtt?: readonly [string, string];
}

/** Turns a `Ref` or `Fn::GetAtt` into its local value. */
export type TokenResolver = (ref: TokenRef) => string;

/** Metadata key naming a function's handler folder under `lambdas/` (defined in lambdas/shared/contracts.ts). */
export { HANDLER_METADATA_KEY };

/** The fake account, region and partition every local ARN uses. */
export const LOCAL_ACCOUNT = '123456789012';
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_PARTITION = 'aws';

/** Values of the pseudo parameters; `AWS::NoValue` removes the property that holds it. */
const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Region': LOCAL_REGION,
  'AWS::AccountId': LOCAL_ACCOUNT,
  'AWS::Partition': LOCAL_PARTITION,
  'AWS::URLSuffix': 'amazonaws.com',
};

const NO_VALUE = Symbol('AWS::NoValue');

/**
 * Resolves every intrinsic function in a template value: `Ref`, `Fn::GetAtt` (array or
 * `"Id.Attr"` form), `Fn::Join`, `Fn::Sub` (`${X}`, `${X.Attr}`, `${AWS::Region}`,
 * `${!Literal}`, with or without a variable map), `Fn::Select`, `Fn::Split`, `Fn::Base64`,
 * and the pseudo parameters `AWS::Region`, `AWS::AccountId`, `AWS::Partition`,
 * `AWS::URLSuffix` (`AWS::NoValue` drops the property or element). Other `Ref`s and
 * `Fn::GetAtt`s go to `resolve`.
 *
 * @throws Error for an intrinsic this function does not know (`Fn::If`, `Fn::ImportValue`, ...)
 */
export function resolveTokens<T = unknown>(value: unknown, resolve: TokenResolver): T {
  const resolved = resolveValue(value, resolve);
  return (resolved === NO_VALUE ? undefined : resolved) as T;
}

function resolveValue(value: unknown, resolve: TokenResolver): unknown {
  if (Array.isArray(value)) {
    return value.map((v) => resolveValue(v, resolve)).filter((v) => v !== NO_VALUE);
  }
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  if (entries.length === 1) {
    const [key, arg] = entries[0]!;
    if (key === 'Ref' || key.startsWith('Fn::')) return resolveIntrinsic(key, arg, resolve);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const r = resolveValue(v, resolve);
    if (r !== NO_VALUE) out[k] = r;
  }
  return out;
}

function resolveIntrinsic(fn: string, arg: unknown, resolve: TokenResolver): unknown {
  switch (fn) {
    case 'Ref': {
      const name = asString(arg, fn);
      if (name === 'AWS::NoValue') return NO_VALUE;
      return PSEUDO_PARAMETERS[name] ?? resolve({ Ref: name });
    }
    case 'Fn::GetAtt': {
      const [id, attr] = typeof arg === 'string' ? splitOnce(arg, '.') : (resolveValue(arg, resolve) as [unknown, unknown]);
      return resolve({ GetAtt: [asString(id, fn), asString(attr, fn)] });
    }
    case 'Fn::Join': {
      const [sep, list] = resolveValue(arg, resolve) as [unknown, unknown];
      if (!Array.isArray(list)) throw new Error('Fn::Join takes [separator, list]');
      return list.map((v) => asString(v, fn)).join(asString(sep, fn));
    }
    case 'Fn::Sub': {
      const [text, vars] = Array.isArray(arg) ? [arg[0], arg[1] ?? {}] : [arg, {}];
      const variables = resolveValue(vars, resolve) as Record<string, unknown>;
      return asString(text, fn).replace(/\$\{([^}]*)\}/g, (_whole, name: string) => {
        if (name.startsWith('!')) return `\${${name.slice(1)}}`;
        if (name in variables) return asString(variables[name], fn);
        if (PSEUDO_PARAMETERS[name]) return PSEUDO_PARAMETERS[name];
        const dot = name.indexOf('.');
        return dot > 0 ? resolve({ GetAtt: [name.slice(0, dot), name.slice(dot + 1)] }) : resolve({ Ref: name });
      });
    }
    case 'Fn::Select': {
      const [index, list] = resolveValue(arg, resolve) as [unknown, unknown];
      if (!Array.isArray(list)) throw new Error('Fn::Select takes [index, list]');
      const i = Number(index);
      if (!Number.isInteger(i) || i < 0 || i >= list.length) throw new Error(`Fn::Select index ${String(index)} out of range`);
      return list[i];
    }
    case 'Fn::Split': {
      const [delimiter, text] = resolveValue(arg, resolve) as [unknown, unknown];
      return asString(text, fn).split(asString(delimiter, fn));
    }
    case 'Fn::Base64':
      return Buffer.from(asString(resolveValue(arg, resolve), fn)).toString('base64');
    default:
      throw new Error(`Unsupported intrinsic function ${fn}`);
  }
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

function asString(value: unknown, fn: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`${fn}: expected a string, got ${JSON.stringify(value)}`);
}

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
    return [{ logicalId, handlerName, environment, arn: fakeArn(logicalId, resource.Type) }];
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
