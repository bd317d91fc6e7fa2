import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { RouteConfig } from './pipeline-config';
import { s3PrefixesUnder } from '../lambdas/shared/contracts';
import type { TargetDelivery } from './event-delivery';

/** Properties of {@link PipelineTriggers}. */
export interface PipelineTriggersProps {
  /** The drop bucket (EventBridge notifications on). */
  readonly bucket: s3.IBucket;
  /** The function that turns a dropped object or a sweep into a run. */
  readonly startRun: lambda.IFunction;
  /** The function that polls tracked jobs and recovers slots. */
  readonly sweeper: lambda.IFunction;
  /** Dead-letter queue and retry policy of the start-run targets (inbox and nightly rules). */
  readonly startRunDelivery: TargetDelivery;
  /** Dead-letter queue and retry policy of the sweeper target. */
  readonly sweeperDelivery: TargetDelivery;
  /**
   * The routes; each with `trigger: 'nightly'` or `smallRemainder: 'hold'` gets a nightly sweep
   * rule (see {@link needsNightlySweep}).
   */
  readonly routes: Readonly<Record<string, RouteConfig>>;
  /** Schedule expression of the nightly sweeps, e.g. `cron(0 2 * * ? *)`. */
  readonly nightlySchedule: string;
  /** The pipeline's key prefix in the bucket: drops are under `<keyPrefix>inbox/`. @default '' */
  readonly keyPrefix?: string;
  /** How often the sweeper runs. @default Duration.minutes(5) */
  readonly sweepInterval?: Duration;
}

/**
 * The input a nightly rule gives `start-run`: sweep the route's accumulated files. `time` is the
 * scheduled event's own timestamp (`$.time`, filled in by EventBridge's input transformer): the
 * same on every redelivery of one tick, so start-run derives the sweep's run id from it and a
 * retried delivery cannot start a second run.
 */
export function nightlySweepInput(route: string): { sweep: { route: string; time: string } } {
  return { sweep: { route, time: events.EventField.time } };
}

/**
 * Whether a route gets a nightly sweep: a nightly route for its `inbox/<route>/` files, and any
 * route with the `hold` small-remainder policy for what that policy writes to `held/<route>/`
 * (an immediate route too: nothing else ever picks a held file up). Start-run decides what an
 * immediate route's sweep takes: only `held/<route>/`.
 */
export function needsNightlySweep(settings: Pick<RouteConfig, 'trigger' | 'smallRemainder'>): boolean {
  return settings.trigger === 'nightly' || settings.smallRemainder === 'hold';
}

/**
 * What starts work: an S3 Object Created under `inbox/` (start-run; EventBridge delivers at
 * least once, start-run deduplicates), one nightly sweep rule per nightly or holding route
 * (start-run), and the periodic sweeper.
 */
export class PipelineTriggers extends Construct {
  /** Object Created under `inbox/` of the drop bucket -> start-run. */
  readonly objectCreatedRule: events.Rule;
  /** Nightly sweep rules by route name (routes with `trigger: 'nightly'` or `smallRemainder: 'hold'`). */
  readonly nightlyRules: Readonly<Record<string, events.Rule>>;
  /** The periodic sweeper rule. */
  readonly sweeperRule: events.Rule;

  constructor(scope: Construct, id: string, props: PipelineTriggersProps) {
    super(scope, id);
    const prefixes = s3PrefixesUnder(props.keyPrefix ?? '');
    this.objectCreatedRule = new events.Rule(this, 'InboxObjectCreated', {
      description: 'A file dropped under inbox/ starts a run',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.bucket.bucketName] },
          object: { key: events.Match.prefix(prefixes.inbox) },
        },
      },
      targets: [new targets.LambdaFunction(props.startRun, { ...props.startRunDelivery })],
    });

    const nightlyRules: Record<string, events.Rule> = {};
    for (const [route, settings] of Object.entries(props.routes)) {
      if (!needsNightlySweep(settings)) continue;
      const swept = settings.trigger === 'nightly' ? `${prefixes.inbox}${route}/ and ${prefixes.held}${route}/` : `${prefixes.held}${route}/`;
      nightlyRules[route] = new events.Rule(this, `NightlySweep-${route}`, {
        description: `Nightly sweep of ${swept}`,
        schedule: events.Schedule.expression(props.nightlySchedule),
        targets: [
          new targets.LambdaFunction(props.startRun, { ...props.startRunDelivery, event: events.RuleTargetInput.fromObject(nightlySweepInput(route)) }),
        ],
      });
    }
    this.nightlyRules = nightlyRules;

    this.sweeperRule = new events.Rule(this, 'Sweeper', {
      description: 'Polls tracked Bedrock jobs whose state-change event was lost; recovers leaked slots',
      schedule: events.Schedule.rate(props.sweepInterval ?? Duration.minutes(5)),
      targets: [new targets.LambdaFunction(props.sweeper, { ...props.sweeperDelivery })],
    });
  }
}
