import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { loadPipelineConfig } from '../../lib/pipeline-config';
import { BedrockBatchStack } from '../../lib/pipeline-stack';
import { buildStack, onlyResource, rawConfig } from './helpers';

const PAGING = 'arn:aws:sns:eu-west-1:111122223333:team-paging';

/** Every alarm of a template. */
function alarmsOf(template: ReturnType<typeof buildStack>['template']): any[] {
  return Object.values(template.findResources('AWS::CloudWatch::Alarm'));
}

describe('alarm topic: created by the stack', () => {
  const { template } = buildStack();
  const topic = onlyResource(template, 'AWS::SNS::Topic');

  test('every alarm (the 12 of runs and functions, and one per dead-letter queue) notifies the topic, and only it', () => {
    const alarms = alarmsOf(template);
    expect(alarms).toHaveLength(12 + 4);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic.id }]);
  });

  test('the topic is encrypted with a rotated key CloudWatch may use, and refuses requests without TLS', () => {
    const key = onlyResource(template, 'AWS::KMS::Key');
    expect(topic.resource.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [key.id, 'Arn'] });
    expect(key.resource.Properties.EnableKeyRotation).toBe(true);
    expect(key.resource.Properties.KeyPolicy.Statement).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Effect: 'Allow',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        }),
      ]),
    );
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topic.id }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Allow', Action: 'sns:Publish', Principal: { Service: 'cloudwatch.amazonaws.com' } }),
        ]),
      },
    });
  });

  test('its ARN is a stack output', () => {
    template.hasOutput('AlarmTopicArn', { Value: { Ref: topic.id } });
  });

  test('each dead-letter queue has an alarm on any visible message', () => {
    const { stack } = buildStack();
    for (const name of ['start-run', 'job-state', 'stop-run', 'sweeper']) {
      const queueName = stack.resolve(stack.eventDelivery.queues[name]!.queueName);
      const alarm = alarmsOf(template).find((a) => JSON.stringify(a.Properties.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: queueName }]));
      expect(alarm?.Properties).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Statistic: 'Maximum',
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        TreatMissingData: 'notBreaching',
      });
    }
  });
});

describe('alarm topic: an existing one named in the configuration', () => {
  const build = (region?: string) => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const config = loadPipelineConfig({ ...rawConfig(), alarmTopicArn: PAGING });
    return new BedrockBatchStack(app, 'TopicStack', { config, ...(region ? { env: { region, account: '111122223333' } } : {}) });
  };

  test('is notified by every alarm, and no topic or key is created', () => {
    const template = Template.fromStack(build());
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('AWS::KMS::Key', 0);
    const alarms = alarmsOf(template);
    expect(alarms).toHaveLength(16);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([PAGING]);
    template.hasOutput('AlarmTopicArn', { Value: PAGING });
  });

  test('in another region than the stack is refused at synth', () => {
    expect(() => build('us-east-1')).toThrow(
      'bedrockBatch.alarmTopicArn is in region eu-west-1, the stack in us-east-1: CloudWatch alarms can notify only an SNS topic of their own region',
    );
    expect(() => build('eu-west-1')).not.toThrow();
  });
});
