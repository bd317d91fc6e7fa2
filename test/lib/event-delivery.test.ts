import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { EventDelivery, periodicDelivery } from '../../lib/event-delivery';
import { buildStack, functionIdOf } from './helpers';

const EVENT_DRIVEN = ['start-run', 'job-state', 'stop-run', 'sweeper'] as const;

describe('event delivery (dead-letter queues and retry policies)', () => {
  const { stack, template } = buildStack();
  const queueArn = (name: string) => stack.resolve(stack.eventDelivery.queues[name]!.queueArn);

  test('one dead-letter queue per event-driven function: SQS-managed encryption, 14 days', () => {
    const queues = Object.values(template.findResources('AWS::SQS::Queue')) as any[];
    expect(queues).toHaveLength(EVENT_DRIVEN.length);
    for (const q of queues) expect(q.Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
  });

  test('each queue refuses requests without TLS', () => {
    for (const name of EVENT_DRIVEN) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [stack.resolve(stack.eventDelivery.queues[name]!.queueUrl)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Effect: 'Deny',
              Action: 'sqs:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Resource: queueArn(name),
            },
          ]),
        },
      });
    }
  });

  test("a failed asynchronous invocation goes to the function's queue after Lambda's retries", () => {
    const configs = Object.values(template.findResources('AWS::Lambda::EventInvokeConfig')) as any[];
    expect(configs).toHaveLength(EVENT_DRIVEN.length);
    for (const name of EVENT_DRIVEN) {
      const config = configs.find((c) => c.Properties.FunctionName.Ref === functionIdOf(template, name));
      expect({ name, ...config.Properties, FunctionName: undefined }).toEqual({
        name,
        FunctionName: undefined,
        Qualifier: '$LATEST',
        DestinationConfig: { OnFailure: { Destination: queueArn(name) } },
        // The sweeper is not retried: its next tick does the same work.
        MaximumRetryAttempts: name === 'sweeper' ? 0 : 2,
        MaximumEventAgeInSeconds: name === 'sweeper' ? 300 : 6 * 3600,
      });
    }
  });

  test('each function may send to its own queue (the on-failure destination)', () => {
    for (const name of EVENT_DRIVEN) {
      const roleId = stack.resolve((stack.functions.byName[name].role.node.defaultChild as any).logicalId) as string;
      const statements = (Object.values(template.findResources('AWS::IAM::Policy')) as any[])
        .filter((p) => (p.Properties.Roles as any[]).some((r) => r.Ref === roleId))
        .flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);
      const sqsStatements = statements.filter((s) => JSON.stringify(s.Action).includes('sqs:'));
      expect(sqsStatements.map((s) => s.Resource)).toEqual([queueArn(name)]);
    }
  });

  test('a periodic function is retried within one interval at most (and at least the 1-minute minimum)', () => {
    const seconds = (p: ReturnType<typeof periodicDelivery>) => ({
      ...p,
      targetMaxEventAge: p.targetMaxEventAge.toSeconds(),
      asyncMaxEventAge: p.asyncMaxEventAge.toSeconds(),
    });
    expect(seconds(periodicDelivery(Duration.minutes(5)))).toEqual({
      targetRetryAttempts: 2,
      targetMaxEventAge: 300,
      asyncRetryAttempts: 0,
      asyncMaxEventAge: 300,
    });
    expect(seconds(periodicDelivery(Duration.seconds(10)))).toMatchObject({ targetMaxEventAge: 60, asyncMaxEventAge: 60 });
  });

  test('asking for a function it was not given is a clear error', () => {
    const s = new Stack(new App());
    const fn = new lambda.Function(s, 'Fn', { code: lambda.Code.fromInline('x'), handler: 'index.handler', runtime: lambda.Runtime.NODEJS_22_X });
    const delivery = new EventDelivery(s, 'Delivery', { functions: { one: { function: fn } } });
    expect(() => delivery.of('two')).toThrow("EventDelivery has no function 'two' (known: one)");
    Template.fromStack(s).resourceCountIs('AWS::SQS::Queue', 1);
  });
});
