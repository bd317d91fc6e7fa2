import { Arn, ArnFormat, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

/** Properties of {@link AlarmTopic}. */
export interface AlarmTopicProps {
  /**
   * An existing SNS topic to notify instead of creating one (`BedrockBatchPipeline`'s
   * `alarmTopic`). It must be in the stack's region (CloudWatch alarms notify topics of their
   * own region only) and let CloudWatch publish (and use its KMS key, if encrypted).
   * @default - a new topic, encrypted with a key of its own, TLS-only
   */
  readonly existingTopic?: sns.ITopic;
}

/**
 * The one SNS topic every alarm of the pipeline notifies. A created topic is encrypted with a
 * customer managed KMS key (rotation on) whose policy lets CloudWatch use it: alarms cannot
 * publish to a topic encrypted with the AWS managed `aws/sns` key. Its policy refuses
 * requests without TLS. Subscribe to it (email, chat, paging) after deploying: see
 * docs/OPERATIONS.md.
 */
export class AlarmTopic extends Construct {
  /** The topic alarms notify. */
  readonly topic: sns.ITopic;
  /** Whether this construct created the topic (false: `existingTopic`). */
  readonly created: boolean;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    if (props.existingTopic !== undefined) {
      checkTopicRegion(this, props.existingTopic.topicArn, 'props.alarmTopic');
      this.topic = props.existingTopic;
      this.created = false;
      return;
    }
    const key = new kms.Key(this, 'Key', {
      description: 'bedrock-batch alarm topic: encrypts notifications; CloudWatch alarms may use it to publish',
      enableKeyRotation: true,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    const topic = new sns.Topic(this, 'Topic', { masterKey: key, enforceSSL: true, displayName: 'bedrock-batch alarms' });
    // The TLS-only policy replaces SNS's default topic policy, so CloudWatch needs its own allow.
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['sns:Publish'],
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        resources: [topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = topic;
    this.created = true;
  }
}

/**
 * Throws when the topic `topicArn` names is in another region than `scope`'s stack (CloudWatch
 * alarms notify only topics of their own region). Unknown regions (tokens) pass.
 * @param what how the caller names the topic in the error, e.g. `bedrockBatch.alarmTopicArn`
 */
export function checkTopicRegion(scope: Construct, topicArn: string, what: string): void {
  const stack = Stack.of(scope);
  if (Token.isUnresolved(topicArn) || Token.isUnresolved(stack.region)) return;
  const region = Arn.split(topicArn, ArnFormat.NO_RESOURCE_NAME).region;
  if (region !== stack.region) {
    throw new Error(`${what} is in region ${region}, the stack in ${stack.region}: CloudWatch alarms can notify only an SNS topic of their own region`);
  }
}
