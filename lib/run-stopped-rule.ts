import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { TargetDelivery } from './event-delivery';

/** Properties of {@link RunStoppedRule}. */
export interface RunStoppedRuleProps {
  /** The workflow whose stopped executions are wound up. */
  readonly stateMachine: sfn.IStateMachine;
  /** The function that stops the run's jobs and finalizes it as `Stopped`. */
  readonly handler: lambda.IFunction;
  /** Dead-letter queue and retry policy of the rule's target. */
  readonly delivery: TargetDelivery;
}

/**
 * Routes the workflow's `Step Functions Execution Status Change` events with status `ABORTED`
 * (a user stopped the execution) to stop-run. Nothing inside an aborted execution runs again,
 * so the run's jobs, slots and unfinished records are wound up from outside.
 */
export class RunStoppedRule extends Construct {
  /** The rule. */
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: RunStoppedRuleProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      description: 'Stopped bedrock-batch executions -> stop-run',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { status: ['ABORTED'], stateMachineArn: [props.stateMachine.stateMachineArn] },
      },
      targets: [new targets.LambdaFunction(props.handler, { ...props.delivery })],
    });
  }
}
