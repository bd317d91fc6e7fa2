import { needsNightlySweep } from '../../lib/triggers';
import { buildStack, config, functionIdOf } from './helpers';

function rules(template: ReturnType<typeof buildStack>['template']): any[] {
  return Object.values(template.findResources('AWS::Events::Rule'));
}

const EVENT_TIME = '2026-12-03T02:00:00Z';

/**
 * The input a nightly rule's target gets for a scheduled event at {@link EVENT_TIME}: its input
 * transformer applied as EventBridge applies it (a string value placed unquoted in a JSON
 * template is inserted as a JSON string).
 */
function sweepInputOf(rule: any): any {
  const { InputPathsMap: paths, InputTemplate: template } = rule.Properties.Targets[0].InputTransformer;
  expect(paths).toEqual({ time: '$.time' });
  return JSON.parse((template as string).replace('<time>', JSON.stringify(EVENT_TIME)));
}

function targetFunction(rule: any): string {
  expect(rule.Properties.Targets).toHaveLength(1);
  return rule.Properties.Targets[0].Arn['Fn::GetAtt'][0];
}

describe('triggers', () => {
  const { stack, template } = buildStack(
    config({
      now: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' },
      'night-a': { modelId: 'amazon.nova-lite-v1:0', trigger: 'nightly' },
      'night-b': { modelId: 'meta.llama3-1-8b-instruct-v1:0', trigger: 'nightly' },
    }),
  );
  const bucketId = stack.resolve((stack.dropBucket.bucket.node.defaultChild as any).logicalId) as string;
  const all = rules(template);

  test('an Object Created under inbox/ of the drop bucket starts a run', () => {
    const created = all.filter((r) => r.Properties.EventPattern?.source?.[0] === 'aws.s3');
    expect(created).toHaveLength(1);
    expect(created[0].Properties.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: { bucket: { name: [{ Ref: bucketId }] }, object: { key: [{ prefix: 'inbox/' }] } },
    });
    expect(created[0].Properties.State).toBe('ENABLED');
    expect(targetFunction(created[0])).toBe(functionIdOf(template, 'start-run'));
  });

  test('one nightly sweep per nightly route, on the schedule, with the sweep input', () => {
    const nightly = all.filter((r) => r.Properties.ScheduleExpression === 'cron(0 3 * * ? *)');
    expect(nightly).toHaveLength(2);
    const inputs = nightly.map((r) => {
      expect(targetFunction(r)).toBe(functionIdOf(template, 'start-run'));
      expect(r.Properties.Targets[0].Input).toBeUndefined();
      return sweepInputOf(r);
    });
    expect(inputs).toEqual(expect.arrayContaining([{ sweep: { route: 'night-a', time: EVENT_TIME } }, { sweep: { route: 'night-b', time: EVENT_TIME } }]));
    expect(JSON.stringify(inputs)).not.toContain('"now"');
  });

  test('a holding immediate route gets a nightly sweep of its held files; an immediate on-demand or fail route gets none', () => {
    const { template: t } = buildStack(
      config({
        holding: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0', smallRemainder: 'hold' },
        'on-demand': { modelId: 'anthropic.claude-3-haiku-20240307-v1:0', smallRemainder: 'on-demand' },
        failing: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0', smallRemainder: 'fail' },
        'night-hold': { modelId: 'amazon.nova-lite-v1:0', trigger: 'nightly', smallRemainder: 'hold' },
      }),
    );
    const nightly = rules(t).filter((r) => r.Properties.ScheduleExpression === 'cron(0 3 * * ? *)');
    const byRoute = Object.fromEntries(nightly.map((r) => [sweepInputOf(r).sweep.route, r]));
    expect(Object.keys(byRoute).sort()).toEqual(['holding', 'night-hold']);
    expect(targetFunction(byRoute.holding)).toBe(functionIdOf(t, 'start-run'));
    expect(byRoute.holding.Properties.Description).toBe('Nightly sweep of held/holding/');
    expect(byRoute['night-hold'].Properties.Description).toBe('Nightly sweep of inbox/night-hold/ and held/night-hold/');
  });

  test.each([
    ['immediate', 'on-demand', false],
    ['immediate', 'fail', false],
    ['immediate', 'hold', true],
    ['nightly', 'on-demand', true],
    ['nightly', 'hold', true],
  ] as const)('a %s route with smallRemainder %s needs a nightly sweep: %s', (trigger, smallRemainder, expected) => {
    expect(needsNightlySweep({ trigger, smallRemainder })).toBe(expected);
  });

  test('no nightly rule when no route is nightly', () => {
    const { template: t } = buildStack();
    expect(rules(t).filter((r) => r.Properties.ScheduleExpression?.startsWith('cron('))).toHaveLength(0);
  });

  test('the sweeper runs every 5 minutes', () => {
    const sweeper = all.filter((r) => r.Properties.ScheduleExpression === 'rate(5 minutes)');
    expect(sweeper).toHaveLength(1);
    expect(targetFunction(sweeper[0])).toBe(functionIdOf(template, 'sweeper'));
    expect(sweeper[0].Properties.Targets[0].Input).toBeUndefined();
  });

  test('Bedrock job state changes go to job-state, pattern exactly', () => {
    const jobState = all.filter((r) => r.Properties.EventPattern?.source?.[0] === 'aws.bedrock');
    expect(jobState).toHaveLength(1);
    expect(jobState[0].Properties.EventPattern).toEqual({
      source: ['aws.bedrock'],
      'detail-type': ['Batch Inference Job State Change'],
    });
    expect(jobState[0].Properties.EventBusName).toBeUndefined(); // the default bus
    expect(targetFunction(jobState[0])).toBe(functionIdOf(template, 'job-state'));
  });

  test('there are no other rules', () => {
    // inbox, two nightly sweeps, the sweeper, job-state, stopped executions.
    expect(all).toHaveLength(1 + 2 + 1 + 1 + 1);
  });

  test('stopped executions of the workflow, and only those, go to stop-run', () => {
    const sm = Object.keys(template.findResources('AWS::StepFunctions::StateMachine'))[0]!;
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: { status: ['ABORTED'], stateMachineArn: [{ Ref: sm }] },
      },
      Targets: [{ Arn: { 'Fn::GetAtt': [functionIdOf(template, 'stop-run'), 'Arn'] } }],
    });
  });

  test("every rule target has a retry policy and its function's dead-letter queue", () => {
    const queueOf = (fn: string) => stack.resolve(stack.eventDelivery.queues[fn]!.queueArn);
    const targets = all.flatMap((r) => r.Properties.Targets as any[]);
    expect(targets).toHaveLength(all.length);
    for (const target of targets) {
      const fnId = target.Arn['Fn::GetAtt'][0] as string;
      const name = ['start-run', 'sweeper', 'job-state', 'stop-run'].find((n) => functionIdOf(template, n) === fnId)!;
      expect(target.DeadLetterConfig).toEqual({ Arn: queueOf(name) });
      const { MaximumRetryAttempts: attempts, MaximumEventAgeInSeconds: age } = target.RetryPolicy;
      // Work events are retried for hours; a sweeper tick no longer than one interval (the next tick replaces it).
      expect({ name, attempts, age }).toEqual(name === 'sweeper' ? { name, attempts: 2, age: 300 } : { name, attempts: 20, age: 6 * 3600 });
    }
  });

  test('each dead-letter queue lets EventBridge send, from its own rules only', () => {
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy')) as any[];
    for (const [name, rulesOf] of [
      ['start-run', (r: any) => r.Properties.EventPattern?.source?.[0] === 'aws.s3' || r.Properties.ScheduleExpression?.startsWith('cron(')],
      ['sweeper', (r: any) => r.Properties.ScheduleExpression?.startsWith('rate(')],
      ['job-state', (r: any) => r.Properties.EventPattern?.source?.[0] === 'aws.bedrock'],
      ['stop-run', (r: any) => r.Properties.EventPattern?.source?.[0] === 'aws.states'],
    ] as const) {
      const queueRef = stack.resolve(stack.eventDelivery.queues[name]!.queueUrl);
      const policy = policies.find((p) => JSON.stringify(p.Properties.Queues) === JSON.stringify([queueRef]));
      const sends = (policy.Properties.PolicyDocument.Statement as any[]).filter((s) => s.Principal?.Service === 'events.amazonaws.com');
      const ruleIds = Object.entries(template.findResources('AWS::Events::Rule'))
        .filter(([, r]) => rulesOf(r))
        .map(([id]) => id);
      expect(ruleIds.length).toBeGreaterThan(0);
      expect(sends.map((s) => ({ effect: s.Effect, action: s.Action, source: s.Condition.ArnEquals['aws:SourceArn']['Fn::GetAtt'][0] }))).toEqual(
        expect.arrayContaining(ruleIds.map((id) => ({ effect: 'Allow', action: 'sqs:SendMessage', source: id }))),
      );
      expect(sends).toHaveLength(ruleIds.length);
    }
  });

  test('EventBridge may invoke exactly the rule targets', () => {
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission'));
    expect(permissions.every((p: any) => p.Properties.Principal === 'events.amazonaws.com')).toBe(true);
    const invoked = permissions.map((p: any) => p.Properties.FunctionName['Fn::GetAtt'][0]);
    expect(new Set(invoked)).toEqual(new Set(['start-run', 'sweeper', 'job-state', 'stop-run'].map((n) => functionIdOf(template, n))));
  });
});
