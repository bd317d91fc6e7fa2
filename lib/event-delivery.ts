import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeNag } from './nag';

/**
 * How EventBridge delivers to one function's rule targets: the options of
 * `targets.LambdaFunction(fn, { ...delivery })`.
 */
export interface TargetDelivery {
  /** Where EventBridge puts an event it could not deliver (the queue policy lets the rule send). */
  readonly deadLetterQueue: sqs.IQueue;
  /** How many times EventBridge retries a failed delivery. */
  readonly retryAttempts: number;
  /** How long EventBridge keeps retrying an event. */
  readonly maxEventAge: Duration;
}

/** The retry policy of one event-driven function. */
export interface DeliveryPolicy {
  /** EventBridge's retries of a failed delivery to the function (0..185). */
  readonly targetRetryAttempts: number;
  /** How long EventBridge retries a delivery (1 minute..24 hours). */
  readonly targetMaxEventAge: Duration;
  /** Lambda's retries of a failed asynchronous invocation (0..2). */
  readonly asyncRetryAttempts: number;
  /** How long Lambda keeps an asynchronous invocation queued or retried (1 minute..6 hours). */
  readonly asyncMaxEventAge: Duration;
}

/**
 * The retry policy of a function whose every event is work that must not be lost (a dropped
 * file, a job's terminal state, a stopped run): retried for hours, then kept. Each of these
 * functions is idempotent (docs/ARCHITECTURE.md, "Every step may run twice"), so a retry of an
 * event that did reach it changes nothing.
 */
export const WORK_EVENT_DELIVERY: DeliveryPolicy = {
  targetRetryAttempts: 20,
  targetMaxEventAge: Duration.hours(6),
  asyncRetryAttempts: 2,
  asyncMaxEventAge: Duration.hours(6),
};

/**
 * The retry policy of a periodic function (the sweeper): the next tick does the same work, so a
 * failed tick is not retried (it would overlap the next one) and is kept only to be seen.
 *
 * @param interval the schedule's interval (at least 1 minute)
 */
export function periodicDelivery(interval: Duration): DeliveryPolicy {
  const age = Duration.seconds(Math.max(60, interval.toSeconds()));
  return { targetRetryAttempts: 2, targetMaxEventAge: age, asyncRetryAttempts: 0, asyncMaxEventAge: age };
}

/** Days a dead-lettered event is kept: SQS's longest retention. */
export const DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * An on-failure destination that grants the function `sqs:SendMessage` on the queue and nothing
 * else (CDK's `SqsDestination` also grants `GetQueueAttributes` and `GetQueueUrl`, which Lambda
 * does not need to deliver an invocation record).
 */
function sendOnlyQueueDestination(queue: sqs.IQueue): lambda.IDestination {
  return {
    bind: (_scope, fn) => {
      queue.grant(fn, 'sqs:SendMessage');
      return { destination: queue.queueArn };
    },
  };
}

/** One event-driven function and its retry policy. */
export interface DeliveredFunction {
  /** The function EventBridge rules target. */
  readonly function: lambda.IFunction;
  /** @default WORK_EVENT_DELIVERY */
  readonly policy?: DeliveryPolicy;
}

/** Properties of {@link EventDelivery}. */
export interface EventDeliveryProps {
  /** The functions invoked by EventBridge (asynchronously), by name. */
  readonly functions: Readonly<Record<string, DeliveredFunction>>;
}

/**
 * Nothing an event-driven function was meant to handle is dropped silently. For each function
 * EventBridge invokes: one dead-letter queue (SQS-managed encryption, TLS-only, kept 14 days)
 * that receives both what EventBridge could not deliver to the function (the rule targets'
 * dead-letter queue, see {@link of}) and the asynchronous invocations that still failed after
 * Lambda's retries (the function's on-failure destination), and the retry policy of both.
 * docs/OPERATIONS.md says what lands in each queue and how to redrive it.
 */
export class EventDelivery extends Construct {
  /** The dead-letter queue of each function, by name. */
  readonly queues: Readonly<Record<string, sqs.Queue>>;
  private readonly delivery: Readonly<Record<string, TargetDelivery>>;

  constructor(scope: Construct, id: string, props: EventDeliveryProps) {
    super(scope, id);
    const queues: Record<string, sqs.Queue> = {};
    const delivery: Record<string, TargetDelivery> = {};
    for (const [name, { function: fn, policy = WORK_EVENT_DELIVERY }] of Object.entries(props.functions)) {
      const queue = new sqs.Queue(this, `DeadLetters-${name}`, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: DEAD_LETTER_RETENTION,
      });
      acknowledgeNag(
        queue,
        'AwsSolutions-SQS3',
        `This queue is itself the dead-letter queue of the ${name} function and of the EventBridge rules targeting it: its messages are read by an operator (docs/OPERATIONS.md), not consumed by a function that could fail them again.`,
      );
      fn.configureAsyncInvoke({
        onFailure: sendOnlyQueueDestination(queue),
        retryAttempts: policy.asyncRetryAttempts,
        maxEventAge: policy.asyncMaxEventAge,
      });
      queues[name] = queue;
      delivery[name] = { deadLetterQueue: queue, retryAttempts: policy.targetRetryAttempts, maxEventAge: policy.targetMaxEventAge };
    }
    this.queues = queues;
    this.delivery = delivery;
  }

  /**
   * The rule-target options of a function (its dead-letter queue and retry policy).
   *
   * @throws Error when the function was not given to this construct
   */
  of(name: string): TargetDelivery {
    const d = this.delivery[name];
    if (!d) throw new Error(`EventDelivery has no function '${name}' (known: ${Object.keys(this.delivery).join(', ')})`);
    return d;
  }
}
