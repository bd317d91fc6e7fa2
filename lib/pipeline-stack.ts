import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { PipelineConfig } from './pipeline-config';
import { BedrockServiceRole } from './bedrock-service-role';
import { AlarmTopic } from './alarm-topic';
import { PipelineDashboard } from './dashboard';
import { DropBucket } from './drop-bucket';
import { EventDelivery, periodicDelivery } from './event-delivery';
import { JobStateRule } from './job-state-rule';
import { RunStoppedRule } from './run-stopped-rule';
import { JobTable } from './job-table';
import { PipelineFunctions } from './pipeline-functions';
import { BatchWorkflow } from './state-machine';
import { PipelineTriggers } from './triggers';

/** The stack's default id (and CloudFormation stack name). */
export const DEFAULT_STACK_NAME = 'BedrockBatch';

/** Properties of {@link BedrockBatchStack}. */
export interface BedrockBatchStackProps extends StackProps {
  /** The validated configuration (lib/pipeline-config.ts `loadPipelineConfig`). */
  readonly config: PipelineConfig;
}

/**
 * The bedrock-batch pipeline: drop bucket, Bedrock service role, job table, functions, the run
 * workflow, triggers (with dead-letter queues) and monitoring (alarms to one topic).
 * Composition only; each part is its own construct.
 */
export class BedrockBatchStack extends Stack {
  /** Where users drop files and runs keep their workspace and results. */
  readonly dropBucket: DropBucket;
  /** Jobs, task tokens, slot leases, sweep marks. */
  readonly jobTable: JobTable;
  /** The role Bedrock assumes for the batch jobs. */
  readonly bedrockServiceRole: BedrockServiceRole;
  /** The eleven functions, by name. */
  readonly functions: PipelineFunctions;
  /** The run state machine. */
  readonly workflow: BatchWorkflow;
  /** Dead-letter queues and retry policies of the event-driven functions. */
  readonly eventDelivery: EventDelivery;
  /** The topic every alarm notifies. */
  readonly alarmTopic: AlarmTopic;

  constructor(scope: Construct, id: string, props: BedrockBatchStackProps) {
    super(scope, id, {
      description: 'bedrock-batch: Amazon Bedrock batch inference pipeline (drop JSONL in inbox/<route>/, get results/)',
      ...props,
    });
    const { config } = props;

    this.dropBucket = new DropBucket(this, 'DropBucket', { workRetentionDays: config.workRetentionDays });
    this.jobTable = new JobTable(this, 'JobTable');
    this.bedrockServiceRole = new BedrockServiceRole(this, 'BedrockServiceRole', {
      bucket: this.dropBucket.bucket,
      modelIds: Object.values(config.routes).map((r) => r.modelId),
    });
    this.functions = new PipelineFunctions(this, 'Functions', {
      config,
      dropBucket: this.dropBucket,
      table: this.jobTable.table,
      bedrockServiceRole: this.bedrockServiceRole.role,
    });
    const fn = (name: keyof PipelineFunctions['byName']) => this.functions.byName[name].function;

    this.workflow = new BatchWorkflow(this, 'Workflow', {
      functions: {
        prepare: fn('prepare'),
        nextWindow: fn('next-window'),
        acquireSlot: fn('acquire-slot'),
        submitJob: fn('submit-job'),
        reconcileChunk: fn('reconcile-chunk'),
        endRound: fn('end-round'),
        finalize: fn('finalize'),
      },
      maxConcurrentJobs: config.maxConcurrentJobs,
      jobTimeoutHours: config.jobTimeoutHours,
    });
    this.functions.connectWorkflow(this.workflow.stateMachine);

    const sweepInterval = Duration.minutes(5);
    this.eventDelivery = new EventDelivery(this, 'EventDelivery', {
      functions: {
        'start-run': { function: fn('start-run') },
        'job-state': { function: fn('job-state') },
        'stop-run': { function: fn('stop-run') },
        sweeper: { function: fn('sweeper'), policy: periodicDelivery(sweepInterval) },
      },
    });
    const delivery = (name: string) => this.eventDelivery.of(name);
    new PipelineTriggers(this, 'Triggers', {
      bucket: this.dropBucket.bucket,
      startRun: fn('start-run'),
      sweeper: fn('sweeper'),
      startRunDelivery: delivery('start-run'),
      sweeperDelivery: delivery('sweeper'),
      routes: config.routes,
      nightlySchedule: config.nightlySchedule,
      sweepInterval,
    });
    new JobStateRule(this, 'JobStateRule', { handler: fn('job-state'), delivery: delivery('job-state') });
    new RunStoppedRule(this, 'RunStoppedRule', { stateMachine: this.workflow.stateMachine, handler: fn('stop-run'), delivery: delivery('stop-run') });
    this.alarmTopic = new AlarmTopic(this, 'AlarmTopic', { existingTopicArn: config.alarmTopicArn });
    new PipelineDashboard(this, 'Monitoring', {
      stateMachine: this.workflow.stateMachine,
      functions: Object.fromEntries(Object.entries(this.functions.byName).map(([name, f]) => [name, f.function])),
      flowControlFunctions: ['acquire-slot'],
      deadLetterQueues: this.eventDelivery.queues,
      alarmTopic: this.alarmTopic.topic,
    });

    new CfnOutput(this, 'BucketName', {
      value: this.dropBucket.bucket.bucketName,
      description: 'Drop .jsonl files under inbox/<route>/; results appear under results/<runId>/',
    });
    new CfnOutput(this, 'StateMachineArn', {
      value: this.workflow.stateMachine.stateMachineArn,
      description: 'The run workflow (start an execution with the input documented in the README)',
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.alarmTopic.topic.topicArn,
      description: 'Every alarm notifies this SNS topic: subscribe to it (docs/OPERATIONS.md, "Alarms")',
    });
  }
}
