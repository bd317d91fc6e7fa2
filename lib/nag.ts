/**
 * cdk-nag (v3) acknowledgements. cdk-nag 3 reads CDK's native `Validations.of(x).acknowledge()`
 * records; a rule that reports several findings (IAM5: one per wildcard) must be acknowledged
 * finding by finding, as `AwsSolutions-IAM5[Resource::<Bucket1234.Arn>/*]`. These helpers build
 * those exact finding names from the ARNs the code grants, so an acknowledgement covers
 * exactly the wildcard it explains and follows logical-id changes.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Flattens a resolved CloudFormation value the way cdk-nag names resources in findings. */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const o = node as Record<string, unknown>;
    if (Array.isArray(o['Fn::Join'])) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if ('Fn::Sub' in o) return flatten(o['Fn::Sub']);
    if (Array.isArray(o['Fn::GetAtt'])) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if ('Fn::ImportValue' in o) return flatten(o['Fn::ImportValue']);
    if ('Ref' in o) return `<${flatten(o.Ref)}>`;
  }
  return JSON.stringify(node);
}

/** The IAM5 finding name of a resource ARN (a string that may contain tokens): `Resource::...`. */
export function nagResourceFinding(scope: IConstruct, arn: string): string {
  return `Resource::${flatten(Stack.of(scope).resolve(arn))}`;
}

/**
 * Acknowledges a cdk-nag rule on `scope` (and everything under it) with a reason. With
 * `findings`, only those findings of the rule are acknowledged (`<rule>[<finding>]`).
 */
export function acknowledgeNag(scope: IConstruct, rule: string, reason: string, findings?: readonly string[]): void {
  const v = Validations.of(scope);
  if (!findings) {
    v.acknowledge({ id: rule, reason });
    return;
  }
  for (const finding of findings) v.acknowledge({ id: `${rule}[${finding}]`, reason });
}
