/**
 * The IAM policies the synthesized template gives each function's role, and their evaluation,
 * so that the twin refuses a call the deployed function would be refused (AccessDenied).
 *
 * A small evaluator of exactly the policy grammar the template uses: identity policies of
 * `Effect` Allow or Deny, `Action` and `Resource` as strings or lists with `*` and `?`
 * wildcards, and the condition operators `StringEquals`, `StringLike`, `StringLikeIfExists`,
 * `ForAllValues:StringEquals` and `ForAllValues:StringLike`. Anything else (NotAction,
 * NotResource, other operators, managed policies) is refused when the policies are read, so the
 * twin never guesses at a grant it does not understand. Evaluation follows IAM's order for one
 * identity policy set: an explicit Deny wins, then an Allow, else the call is denied.
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
 */
import { HANDLER_METADATA_KEY } from '../../lambdas/shared/contracts';
import { resolveTokens, type CfnTemplate, type TokenResolver } from '../services/template-intrinsics';

/** A condition operator this evaluator understands. */
type Operator = 'StringEquals' | 'StringLike' | 'StringLikeIfExists' | 'ForAllValues:StringEquals' | 'ForAllValues:StringLike';
const OPERATORS: readonly string[] = ['StringEquals', 'StringLike', 'StringLikeIfExists', 'ForAllValues:StringEquals', 'ForAllValues:StringLike'];

interface Condition {
  readonly operator: Operator;
  readonly key: string;
  readonly values: readonly string[];
}

/** One statement of a function's policies, tokens resolved. */
export interface PolicyStatement {
  /** Where it comes from, for messages: `<policy logical id>[<index>]`. */
  readonly source: string;
  readonly effect: 'Allow' | 'Deny';
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly conditions: readonly Condition[];
}

/** One request to authorize: an action on a resource, with the condition keys it carries. */
export interface AccessRequest {
  readonly action: string;
  readonly resource: string;
  /** Condition keys of the request (`s3:prefix`, `dynamodb:LeadingKeys` ...); absent keys are absent. */
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
}

/** The outcome of one request: allowed or not, and the Allow statement that allowed it. */
export interface AccessDecision {
  readonly allowed: boolean;
  readonly allowedBy?: PolicyStatement;
  readonly deniedBy?: PolicyStatement;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

function strings(v: unknown, where: string): string[] {
  return list(v).map((s) => {
    if (typeof s !== 'string') throw new Error(`${where}: expected strings, got ${JSON.stringify(s)}`);
    return s;
  });
}

/** Reads one statement, refusing what this evaluator does not understand. */
function readStatement(raw: unknown, source: string): PolicyStatement {
  if (typeof raw !== 'object' || raw === null) throw new Error(`${source}: a statement must be an object`);
  const s = raw as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!['Effect', 'Action', 'Resource', 'Condition', 'Sid'].includes(key)) {
      throw new Error(`${source}: the twin's policy evaluator does not understand the statement element ${key}`);
    }
  }
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new Error(`${source}: Effect must be Allow or Deny`);
  const conditions: Condition[] = [];
  for (const [operator, keys] of Object.entries((s.Condition ?? {}) as Record<string, unknown>)) {
    if (!OPERATORS.includes(operator)) throw new Error(`${source}: the twin's policy evaluator does not understand the condition operator ${operator}`);
    for (const [key, values] of Object.entries(keys as Record<string, unknown>)) {
      conditions.push({ operator: operator as Operator, key, values: strings(values, `${source} ${operator} ${key}`) });
    }
  }
  return {
    source,
    effect: s.Effect,
    actions: strings(s.Action, `${source} Action`),
    resources: strings(s.Resource, `${source} Resource`),
    conditions,
  };
}

/**
 * Each function's policy statements, by its handler name (the `bedrock-batch:handler`
 * metadata): every `AWS::IAM::Policy` attached to its role and the role's inline policies.
 * @throws Error for a managed policy or a statement the evaluator does not understand
 */
export function functionPolicies(template: CfnTemplate, resolve: TokenResolver): Map<string, PolicyStatement[]> {
  const resources = template.Resources ?? {};
  const result = new Map<string, PolicyStatement[]>();
  for (const [fnId, fn] of Object.entries(resources)) {
    if (fn.Type !== 'AWS::Lambda::Function') continue;
    const name = fn.Metadata?.[HANDLER_METADATA_KEY];
    if (typeof name !== 'string') continue;
    const roleAtt = (fn.Properties?.Role as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
    if (!roleAtt) throw new Error(`${fnId}: the twin needs the function's Role as a Fn::GetAtt of a role in the template`);
    result.set(name, roleStatements(template, resolve, roleAtt[0]));
  }
  return result;
}

/** Every statement a role of the template has: its inline policies and the AWS::IAM::Policy resources attached to it. */
export function roleStatements(template: CfnTemplate, resolve: TokenResolver, roleId: string): PolicyStatement[] {
  const resources = template.Resources ?? {};
  const role = resources[roleId];
  const managed = (role?.Properties?.ManagedPolicyArns as unknown[] | undefined) ?? [];
  if (managed.length > 0) throw new Error(`${roleId}: the twin's policy evaluator does not read managed policies`);
  const statements: PolicyStatement[] = [];
  const inline = (role?.Properties?.Policies as Array<{ PolicyName: string; PolicyDocument: { Statement: unknown[] } }> | undefined) ?? [];
  for (const p of inline) {
    for (const [i, st] of resolveTokens<unknown[]>(p.PolicyDocument.Statement, resolve).entries())
      statements.push(readStatement(st, `${roleId}.${p.PolicyName}[${i}]`));
  }
  for (const [policyId, policy] of Object.entries(resources)) {
    if (policy.Type !== 'AWS::IAM::Policy') continue;
    const roles = (policy.Properties?.Roles as Array<{ Ref?: string }> | undefined) ?? [];
    if (!roles.some((r) => r.Ref === roleId)) continue;
    const doc = policy.Properties?.PolicyDocument as { Statement: unknown[] };
    for (const [i, st] of resolveTokens<unknown[]>(doc.Statement, resolve).entries()) statements.push(readStatement(st, `${policyId}[${i}]`));
  }
  return statements;
}

/** The roles Bedrock may assume (trusted by `bedrock.amazonaws.com`), by ARN, with their statements. */
export function bedrockServiceRoles(template: CfnTemplate, resolve: TokenResolver): Map<string, PolicyStatement[]> {
  const result = new Map<string, PolicyStatement[]>();
  for (const [roleId, role] of Object.entries(template.Resources ?? {})) {
    if (role.Type !== 'AWS::IAM::Role') continue;
    const trust = JSON.stringify(role.Properties?.AssumeRolePolicyDocument ?? {});
    if (!trust.includes('bedrock.amazonaws.com')) continue;
    const arn = resolveTokens<string>({ 'Fn::GetAtt': [roleId, 'Arn'] }, resolve);
    result.set(arn, roleStatements(template, resolve, roleId));
  }
  return result;
}

/** IAM's wildcard match: `*` any run of characters, `?` one; case-sensitive unless `ignoreCase`. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'is' : 's').test(value);
}

function conditionHolds(c: Condition, context: AccessRequest['context']): boolean {
  const raw = context?.[c.key];
  const values = raw === undefined ? undefined : list(raw).map(String);
  const like = c.operator.endsWith('StringLike') || c.operator === 'StringLikeIfExists';
  const matches = (v: string) => c.values.some((p) => (like ? wildcardMatch(p, v) : p === v));
  switch (c.operator) {
    case 'StringEquals':
    case 'StringLike':
      return values !== undefined && values.length > 0 && values.some(matches);
    case 'StringLikeIfExists':
      return values === undefined || values.some(matches);
    case 'ForAllValues:StringEquals':
    case 'ForAllValues:StringLike':
      // True for a request without the key (or with none of its values): IAM's documented vacuous truth.
      return values === undefined || values.every(matches);
  }
}

function statementApplies(s: PolicyStatement, request: AccessRequest): boolean {
  return (
    s.actions.some((a) => wildcardMatch(a, request.action, true)) &&
    s.resources.some((r) => wildcardMatch(r, request.resource)) &&
    s.conditions.every((c) => conditionHolds(c, request.context))
  );
}

/** Decides one request against one function's statements: an explicit Deny wins, then an Allow. */
export function decide(statements: readonly PolicyStatement[], request: AccessRequest): AccessDecision {
  const deniedBy = statements.find((s) => s.effect === 'Deny' && statementApplies(s, request));
  if (deniedBy) return { allowed: false, deniedBy };
  const allowedBy = statements.find((s) => s.effect === 'Allow' && statementApplies(s, request));
  return allowedBy ? { allowed: true, allowedBy } : { allowed: false };
}
