/** Shared fixtures of the lib/ tests: a stack built from a config, and its resolved workflow. */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { loadPipelineConfig, type PipelineConfig } from '../../lib/pipeline-config';
import { BedrockBatchStack } from '../../lib/pipeline-stack';

/** The cdk.json-shaped context most tests start from. */
export function rawConfig(routes?: Record<string, unknown>): Record<string, unknown> {
  return {
    maxConcurrentJobs: 7,
    jobTimeoutHours: 48,
    workRetentionDays: 9,
    nightlySchedule: 'cron(0 3 * * ? *)',
    routes: routes ?? {
      default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' },
    },
  };
}

export function config(routes?: Record<string, unknown>): PipelineConfig {
  return loadPipelineConfig(rawConfig(routes));
}

/** Builds the stack with bundling skipped (as `synthesizePipelineTemplate` does). */
export function buildStack(cfg: PipelineConfig = config()): { app: App; stack: BedrockBatchStack; template: Template } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new BedrockBatchStack(app, 'TestStack', { config: cfg });
  return { app, stack, template: Template.fromStack(stack) };
}

export const FAKE = { partition: 'aws', region: 'us-east-1', account: '123456789012' };

/** Replaces CloudFormation references in a value with fake but well-formed literals. */
export function resolveFake(value: unknown): unknown {
  if (typeof value === 'string' || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(resolveFake);
  const o = value as Record<string, unknown>;
  if ('Ref' in o) {
    const ref = o.Ref as string;
    if (ref === 'AWS::Partition') return FAKE.partition;
    if (ref === 'AWS::Region') return FAKE.region;
    if (ref === 'AWS::AccountId') return FAKE.account;
    return `ref-${ref}`;
  }
  if ('Fn::GetAtt' in o) {
    const [id, attr] = o['Fn::GetAtt'] as [string, string];
    if (attr === 'Arn') return `arn:aws:lambda:${FAKE.region}:${FAKE.account}:function:${id}`;
    return `${id}.${attr}`;
  }
  if ('Fn::Join' in o) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => String(resolveFake(p))).join(sep);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveFake(v)]));
}

/** A resource of the template by type, failing unless exactly one exists. */
export function onlyResource(template: Template, type: string): { id: string; resource: any } {
  const found = Object.entries(template.findResources(type));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  const [id, resource] = found[0]!;
  return { id, resource };
}

/** The state machine's ASL, with its Fn::Join resolved against fake ARNs. */
export function workflowDefinition(template: Template): any {
  const { resource } = onlyResource(template, 'AWS::StepFunctions::StateMachine');
  return JSON.parse(resolveFake(resource.Properties.DefinitionString) as string);
}

/** Every state of an ASL definition, including those inside Map item processors, by name. */
export function allStates(definition: any): Record<string, any> {
  const out: Record<string, any> = {};
  const visit = (states: Record<string, any>) => {
    for (const [name, state] of Object.entries(states)) {
      out[name] = state;
      const inner = state.ItemProcessor ?? state.Iterator;
      if (inner) visit(inner.States);
      for (const branch of state.Branches ?? []) visit(branch.States);
    }
  };
  visit(definition.States);
  return out;
}

/** The logical id of the Lambda function bound to a handler by its metadata. */
export function functionIdOf(template: Template, handlerName: string): string {
  const matches = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([, r]) => r.Metadata?.['bedrock-batch:handler'] === handlerName);
  if (matches.length !== 1) throw new Error(`expected one function for ${handlerName}, found ${matches.length}`);
  return matches[0]![0];
}

/** All policy statements attached to the role of a function (inline DefaultPolicy). */
export function statementsOfFunction(template: Template, handlerName: string): any[] {
  const fnId = functionIdOf(template, handlerName);
  const fn = template.findResources('AWS::Lambda::Function')[fnId]!;
  const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p: any) => (p.Properties.Roles as any[]).some((r) => r.Ref === roleId));
  return policies.flatMap((p: any) => p.Properties.PolicyDocument.Statement as any[]);
}

export function actionsOf(statements: any[]): string[] {
  return statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();
}
