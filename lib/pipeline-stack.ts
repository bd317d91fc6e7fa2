import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { checkTopicRegion, type AlarmTopic } from './alarm-topic';
import type { BedrockServiceRole } from './bedrock-service-role';
import { BedrockBatchPipeline } from './bedrock-batch-pipeline';
import type { DropBucket } from './drop-bucket';
import type { EventDelivery } from './event-delivery';
import type { JobTable } from './job-table';
import type { PipelineConfig } from './pipeline-config';
import type { PipelineFunctions } from './pipeline-functions';
import type { BatchWorkflow } from './state-machine';

/** The stack's default id (and CloudFormation stack name). */
export const DEFAULT_STACK_NAME = 'BedrockBatch';

/** Properties of {@link BedrockBatchStack}. */
export interface BedrockBatchStackProps extends StackProps {
  /** The validated configuration (lib/pipeline-config.ts `loadPipelineConfig`). */
  readonly config: PipelineConfig;
}

/**
 * This repository's app stack: one {@link BedrockBatchPipeline} built from the `bedrockBatch`
 * context (bin/app.ts), and the outputs `BucketName`, `StateMachineArn` and `AlarmTopicArn`.
 */
export class BedrockBatchStack extends Stack {
  /** The pipeline. */
  readonly pipeline: BedrockBatchPipeline;
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
    const { alarmTopicArn, ...settings } = props.config;

    let alarmTopic: sns.ITopic | undefined;
    if (alarmTopicArn !== undefined) {
      checkTopicRegion(this, alarmTopicArn, 'bedrockBatch.alarmTopicArn');
      alarmTopic = sns.Topic.fromTopicArn(this, 'ExistingAlarmTopic', alarmTopicArn);
    }
    // The id `Default` is left out of logical ids: the resources keep the ids they had when this
    // stack built them itself, so an existing deployment updates in place.
    this.pipeline = new BedrockBatchPipeline(this, 'Default', { ...settings, ...(alarmTopic ? { alarmTopic } : {}) });
    this.dropBucket = this.pipeline.dropBucket;
    this.jobTable = this.pipeline.jobTableConstruct;
    this.bedrockServiceRole = this.pipeline.bedrockServiceRole;
    this.functions = this.pipeline.functions;
    this.workflow = this.pipeline.workflow;
    this.eventDelivery = this.pipeline.eventDelivery;
    this.alarmTopic = this.pipeline.alarmTopicConstruct;

    new CfnOutput(this, 'BucketName', {
      value: this.pipeline.bucket.bucketName,
      description: 'Drop .jsonl files under inbox/<route>/; results appear under results/<runId>/',
    });
    new CfnOutput(this, 'StateMachineArn', {
      value: this.pipeline.stateMachine.stateMachineArn,
      description: 'The run workflow (start an execution with the input documented in the README)',
    });
    new CfnOutput(this, 'JobTableName', {
      value: this.pipeline.jobTable.tableName,
      description: 'Run claims, job items and job slots: what `bedrock-batch status` and `list` read',
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.pipeline.alarmTopic.topicArn,
      description: 'Every alarm notifies this SNS topic: subscribe to it (docs/OPERATIONS.md, "Alarms")',
    });
  }
}
