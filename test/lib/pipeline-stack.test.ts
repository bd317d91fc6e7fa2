import { Match } from 'aws-cdk-lib/assertions';
import { buildStack, onlyResource } from './helpers';

/** CloudFormation references of a resource: Ref, Fn::GetAtt and DependsOn targets. */
function references(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => references(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Ref' && typeof v === 'string') out.add(v);
      else if (k === 'Fn::GetAtt' && Array.isArray(v)) out.add(v[0] as string);
      else references(v, out);
    }
  }
  return out;
}

describe('BedrockBatchStack', () => {
  const { stack, template } = buildStack();
  const json = template.toJSON();

  test('outputs the bucket name, the state machine ARN and the job table name (what the operator commands read)', () => {
    const bucketId = stack.resolve((stack.dropBucket.bucket.node.defaultChild as any).logicalId);
    const sm = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    template.hasOutput('BucketName', { Value: { Ref: bucketId } });
    template.hasOutput('StateMachineArn', { Value: { Ref: sm.id } });
    template.hasOutput('JobTableName', { Value: { Ref: onlyResource(template, 'AWS::DynamoDB::Table').id } });
  });

  test("keeps the logical ids the stack's resources had before the pipeline became a construct", () => {
    // A changed logical id replaces the resource on deploy (a new, empty bucket and table).
    const parts = [
      'DropBucket',
      'JobTable',
      'BedrockServiceRole',
      'Functions',
      'Workflow',
      'EventDelivery',
      'Triggers',
      'JobStateRule',
      'RunStoppedRule',
      'AlarmTopic',
      'Monitoring',
    ];
    for (const id of Object.keys(json.Resources as object)) expect({ id, part: parts.some((p) => id.startsWith(p)) }).toEqual({ id, part: true });
    expect(onlyResource(template, 'AWS::StepFunctions::StateMachine').id).toMatch(/^WorkflowStateMachine[0-9A-F]{8}$/);
    expect(onlyResource(template, 'AWS::DynamoDB::Table').id).toMatch(/^JobTable[0-9A-F]{8}$/);
    expect(stack.resolve((stack.dropBucket.bucket.node.defaultChild as any).logicalId)).toMatch(/^DropBucket[0-9A-F]{8}$/);
    template.hasOutput('AlarmTopicArn', { Value: { Ref: Match.stringLikeRegexp('^AlarmTopic') } });
  });

  test('has no dependency cycle between resources', () => {
    const resources = json.Resources as Record<string, any>;
    const edges = new Map<string, string[]>();
    for (const [id, r] of Object.entries(resources)) {
      const deps = references({ p: r.Properties, d: (r.DependsOn ?? []).map((x: string) => ({ Ref: x })) });
      edges.set(
        id,
        [...deps].filter((d) => d in resources),
      );
    }
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string, path: string[]): void => {
      if (state.get(id) === 'done') return;
      if (state.get(id) === 'visiting') throw new Error(`cycle: ${[...path, id].join(' -> ')}`);
      state.set(id, 'visiting');
      for (const d of edges.get(id) ?? []) visit(d, [...path, id]);
      state.set(id, 'done');
    };
    expect(() => Object.keys(resources).forEach((id) => visit(id, []))).not.toThrow();
  });

  test('deploys no custom resources or helper functions of its own', () => {
    const types = new Set(Object.values(json.Resources as Record<string, any>).map((r) => r.Type as string));
    expect([...types].filter((t) => t.startsWith('Custom::') || t === 'AWS::CloudFormation::CustomResource')).toEqual([]);
    template.resourceCountIs('AWS::Lambda::Function', 11);
  });
});
