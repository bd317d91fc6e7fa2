import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { TargetDelivery } from './event-delivery';

/** The EventBridge pattern of Bedrock batch job state changes. */
export const JOB_STATE_CHANGE_PATTERN = {
  source: ['aws.bedrock'],
  detailType: ['Batch Inference Job State Change'],
} as const satisfies events.EventPattern;

/** Properties of {@link JobStateRule}. */
export interface JobStateRuleProps {
  /** The function that completes a job's task token on a terminal status. */
  readonly handler: lambda.IFunction;
  /** Dead-letter queue and retry policy of the rule's target. */
  readonly delivery: TargetDelivery;
}

/**
 * Routes Bedrock's `Batch Inference Job State Change` events (default bus) to the job-state
 * function. Every status change is delivered; the function acts on terminal ones. Events are
 * best effort: the sweeper covers lost ones.
 */
export class JobStateRule extends Construct {
  /** The rule. */
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: JobStateRuleProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      description: 'Bedrock batch job state changes -> job-state',
      eventPattern: { source: [...JOB_STATE_CHANGE_PATTERN.source], detailType: [...JOB_STATE_CHANGE_PATTERN.detailType] },
      targets: [new targets.LambdaFunction(props.handler, { ...props.delivery })],
    });
  }
}
