/**
 * The CloudFormation template's value model as the twin reads it, and its intrinsic functions
 * (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`, `Fn::Base64`, pseudo
 * parameters) resolved to local values.
 */
import { LOCAL_ACCOUNT, LOCAL_PARTITION, LOCAL_REGION } from './fake-arns';

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

/** A template value as a string (numbers and booleans too); `fn` names the intrinsic or property for the error. */
export function asString(value: unknown, fn: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`${fn}: expected a string, got ${JSON.stringify(value)}`);
}
