import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { RUN_COMPLETED_DETAIL_TYPE, RUN_COMPLETED_SOURCE } from '../lambdas/shared/contracts';
import { AlarmTopic } from './alarm-topic';
import { BedrockServiceRole } from './bedrock-service-role';
import { PipelineDashboard } from './dashboard';
import { DropBucket } from './drop-bucket';
import { checkKeyRegion } from './encryption-key';
import { EventDelivery, periodicDelivery } from './event-delivery';
import { JobStateRule } from './job-state-rule';
import { JobTable } from './job-table';
import { PipelineFunctions } from './pipeline-functions';
import { validatePipelineSettings, type PipelineSettings, type PipelineSettingsProps } from './pipeline-config';
import { RunStoppedRule } from './run-stopped-rule';
import { BatchWorkflow } from './state-machine';
import { PipelineTriggers } from './triggers';

/**
 * Properties of {@link BedrockBatchPipeline}: the pipeline's settings (the same as the
 * `bedrockBatch` object of this repository's cdk.json context; see {@link PipelineSettingsProps})
 * and what a stack may bring of its own.
 */
export interface BedrockBatchPipelineProps extends PipelineSettingsProps {
  /**
   * An existing SNS topic every alarm notifies (e.g. the team's paging topic): a standard topic
   * in the stack's region that lets `cloudwatch.amazonaws.com` publish (and use its KMS key, if
   * encrypted).
   * @default - a new topic, encrypted with a KMS key of its own (rotation on), TLS-only
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * How long the functions' and the state machine's execution logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the drop bucket, its access-log bucket, the job table and the functions' log
   * groups when the pipeline is removed from the stack or the stack is deleted. `DESTROY` deletes
   * a bucket only if it is empty. (The execution log group is always destroyed: its name is
   * fixed, and a retained group would block a re-deploy.)
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * A KMS key of the stack's region to encrypt the drop bucket's objects with (SSE-KMS, S3 Bucket
   * Keys on), e.g. the key the stack already uses for its data. Every role that reads or writes
   * the bucket's objects, the Bedrock service role included, may then use it through S3
   * (`kms:Decrypt`, `kms:GenerateDataKey`); the key's policy must let the account's IAM policies
   * grant that (the default key policy does). The key itself, not an alias (IAM checks the
   * key's ARN). The access-log bucket stays SSE-S3.
   * @default - SSE-S3 (S3 managed keys)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * A bucket of yours to use instead of creating one (a data lake shared with other data: give a
   * `keyPrefix` too). Nothing is set on it: turn on its EventBridge notifications (drops start
   * runs only then) and add lifecycle rules expiring `<keyPrefix>jobs-input/`, `jobs-output/`
   * and `work/` (a synth warning says both). Give `encryptionKey` if it is SSE-KMS encrypted, so
   * the roles may use the key. `removalPolicy` does not touch it.
   * @default - a drop bucket is created (private, TLS-only, access-logged, EventBridge on)
   */
  readonly bucket?: s3.IBucket;
  /**
   * Every key the pipeline reads or writes is under this prefix (`teams/ml/` gives
   * `teams/ml/inbox/<route>/`, `teams/ml/results/<runId>/`, ...), and its roles are scoped to it:
   * run inputs too must be under it. Letters, digits and `!-_.*'()` in `/`-separated segments,
   * ending in `/`, at most 100 characters. Prefer letters, digits, `-`, `_` and `.`: were S3 to
   * URL-encode `!*'()` in the keys of its EventBridge events (not documented either way), the
   * inbox rule's prefix would not match and drops would start nothing.
   * @default '' (the bucket's top level)
   */
  readonly keyPrefix?: string;
}

/** Keys of {@link BedrockBatchPipelineProps} beyond the settings. */
const RESOURCE_PROP_KEYS = ['alarmTopic', 'logRetention', 'removalPolicy', 'encryptionKey', 'bucket', 'keyPrefix'] as const;

const REMOVAL_POLICIES: readonly string[] = Object.values(RemovalPolicy);
const RETENTION_DAYS: readonly unknown[] = Object.values(logs.RetentionDays);

/**
 * The bedrock-batch pipeline as one construct, to place in any stack (several times if need be:
 * no fixed physical or export names): the drop bucket (`inbox/<route>/` in, `results/<runId>/`
 * out), the Bedrock service role, the job table, eleven functions, the run state machine, the
 * triggers (with dead-letter queues), and a dashboard with alarms to one SNS topic.
 * Composition only; each part is its own construct.
 *
 * Bad props throw at synth, every problem named by its path (`props.routes.default.maxAttempts`).
 */
export class BedrockBatchPipeline extends Construct {
  /** Where users drop `.jsonl` files (`inbox/<route>/`) and runs keep their workspace and results (`results/<runId>/`). */
  readonly bucket: s3.IBucket;
  /** The run state machine (start an execution with the input documented in the README). */
  readonly stateMachine: sfn.IStateMachine;
  /** The role Bedrock assumes for the batch jobs. */
  readonly serviceRole: iam.IRole;
  /** Jobs, task tokens, slot leases and sweep marks. */
  readonly jobTable: dynamodb.ITable;
  /** The topic every alarm notifies (`props.alarmTopic`, or the one created). */
  readonly alarmTopic: sns.ITopic;
  /**
   * The `Batch Run Completed` events of this pipeline's runs (on the default bus; the detail is
   * the run's `summary.json`), for a rule of your own:
   * `new events.Rule(this, 'OnRun', { eventPattern: pipeline.completionEventPattern })`.
   * Runs are told apart by their outputs, which are always in this pipeline's bucket.
   */
  readonly completionEventPattern: events.EventPattern;
  /** The key the drop bucket is encrypted with (`props.encryptionKey`), if any. */
  readonly encryptionKey?: kms.IKey;
  /** The validated settings, defaults applied. */
  readonly settings: PipelineSettings;

  /** The drop bucket's construct (with its access-log bucket). */
  readonly dropBucket: DropBucket;
  /** The job table's construct. */
  readonly jobTableConstruct: JobTable;
  /** The Bedrock service role's construct. */
  readonly bedrockServiceRole: BedrockServiceRole;
  /** The eleven functions, by name. */
  readonly functions: PipelineFunctions;
  /** The run workflow's construct (state machine and its log group). */
  readonly workflow: BatchWorkflow;
  /** Dead-letter queues and retry policies of the event-driven functions. */
  readonly eventDelivery: EventDelivery;
  /** The alarm topic's construct. */
  readonly alarmTopicConstruct: AlarmTopic;
  /** The dashboard and alarms. */
  readonly monitoring: PipelineDashboard;

  constructor(scope: Construct, id: string, props: BedrockBatchPipelineProps) {
    super(scope, id);
    const heading = `Invalid BedrockBatchPipeline props (${this.node.path})`;
    const settings = validatePipelineSettings(props, 'props', heading, RESOURCE_PROP_KEYS);
    checkResourceProps(props, heading);
    if (props.encryptionKey) checkKeyRegion(this, props.encryptionKey, 'props.encryptionKey');
    this.encryptionKey = props.encryptionKey;
    this.settings = settings;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    const keyPrefix = props.keyPrefix ?? '';
    this.dropBucket = new DropBucket(this, 'DropBucket', {
      workRetentionDays: settings.workRetentionDays,
      removalPolicy,
      keyPrefix,
      ...(props.bucket ? { existingBucket: props.bucket } : {}),
      ...(props.encryptionKey ? { encryptionKey: props.encryptionKey } : {}),
    });
    this.jobTableConstruct = new JobTable(this, 'JobTable', { removalPolicy });
    this.bedrockServiceRole = new BedrockServiceRole(this, 'BedrockServiceRole', {
      bucket: this.dropBucket.bucket,
      modelIds: Object.values(settings.routes).map((r) => r.modelId),
      keyPrefix,
      ...(props.encryptionKey ? { encryptionKey: props.encryptionKey } : {}),
    });
    this.functions = new PipelineFunctions(this, 'Functions', {
      config: settings,
      dropBucket: this.dropBucket,
      table: this.jobTableConstruct.table,
      bedrockServiceRole: this.bedrockServiceRole.role,
      logRetention,
      logRemovalPolicy: removalPolicy,
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
      maxConcurrentJobs: settings.maxConcurrentJobs,
      jobTimeoutHours: settings.jobTimeoutHours,
      logRetention,
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
      routes: settings.routes,
      nightlySchedule: settings.nightlySchedule,
      sweepInterval,
      keyPrefix,
    });
    new JobStateRule(this, 'JobStateRule', { handler: fn('job-state'), delivery: delivery('job-state') });
    new RunStoppedRule(this, 'RunStoppedRule', { stateMachine: this.workflow.stateMachine, handler: fn('stop-run'), delivery: delivery('stop-run') });
    this.alarmTopicConstruct = new AlarmTopic(this, 'AlarmTopic', { existingTopic: props.alarmTopic });
    this.monitoring = new PipelineDashboard(this, 'Monitoring', {
      stateMachine: this.workflow.stateMachine,
      functions: Object.fromEntries(Object.entries(this.functions.byName).map(([name, f]) => [name, f.function])),
      flowControlFunctions: ['acquire-slot'],
      deadLetterQueues: this.eventDelivery.queues,
      alarmTopic: this.alarmTopicConstruct.topic,
    });

    this.bucket = this.dropBucket.bucket;
    this.stateMachine = this.workflow.stateMachine;
    this.serviceRole = this.bedrockServiceRole.role;
    this.jobTable = this.jobTableConstruct.table;
    this.alarmTopic = this.alarmTopicConstruct.topic;
    this.completionEventPattern = {
      source: [RUN_COMPLETED_SOURCE],
      detailType: [RUN_COMPLETED_DETAIL_TYPE],
      // Every run of this pipeline writes its outputs to this bucket (finalize, summary.outputs):
      // the one field of the event that names the pipeline.
      detail: { outputs: { failed: [{ prefix: `s3://${this.bucket.bucketName}/${keyPrefix}` }] } },
    };
  }
}

/** The checks TypeScript makes on the resource props, for callers in plain JavaScript. */
function checkResourceProps(props: BedrockBatchPipelineProps, heading: string): void {
  const problems: string[] = [];
  const { alarmTopic, logRetention, removalPolicy, encryptionKey, bucket, keyPrefix } = props;
  if (bucket !== undefined && (typeof bucket !== 'object' || bucket === null || typeof bucket.bucketArn !== 'string')) {
    problems.push(`props.bucket must be an s3.IBucket, e.g. s3.Bucket.fromBucketName(this, 'Lake', name) (got ${JSON.stringify(bucket)})`);
  }
  if (keyPrefix !== undefined && !isKeyPrefix(keyPrefix)) {
    problems.push(
      `props.keyPrefix must be '' or /-separated segments of letters, digits and !-_.*'() ending in '/', at most 100 characters, no '.' or '..' segment (got ${JSON.stringify(keyPrefix)})`,
    );
  }
  if (alarmTopic !== undefined && (typeof alarmTopic !== 'object' || alarmTopic === null || typeof alarmTopic.topicArn !== 'string')) {
    problems.push(`props.alarmTopic must be an sns.ITopic, e.g. sns.Topic.fromTopicArn(this, 'Paging', arn) (got ${JSON.stringify(alarmTopic)})`);
  }
  if (logRetention !== undefined && !(Token.isUnresolved(logRetention) || RETENTION_DAYS.includes(logRetention))) {
    problems.push(`props.logRetention must be a logs.RetentionDays value (got ${JSON.stringify(logRetention)})`);
  }
  if (removalPolicy !== undefined && !REMOVAL_POLICIES.includes(removalPolicy)) {
    problems.push(`props.removalPolicy must be a RemovalPolicy (${REMOVAL_POLICIES.join(', ')}) (got ${JSON.stringify(removalPolicy)})`);
  }
  if (encryptionKey !== undefined && (typeof encryptionKey !== 'object' || encryptionKey === null || typeof encryptionKey.keyArn !== 'string')) {
    problems.push(`props.encryptionKey must be a kms.IKey, e.g. kms.Key.fromKeyArn(this, 'DataKey', arn) (got ${JSON.stringify(encryptionKey)})`);
  } else if (encryptionKey !== undefined && typeof (encryptionKey as unknown as { aliasName?: unknown }).aliasName === 'string') {
    // S3 takes an alias as the bucket's key, but IAM checks the key's own ARN: grants on the
    // alias's ARN would refuse every read and write of the bucket on AWS.
    problems.push(
      `props.encryptionKey is a KMS alias (${(encryptionKey as unknown as { aliasName: string }).aliasName}): IAM grants use of a key by the key's ARN, not its alias; give the key, e.g. kms.Key.fromKeyArn(this, 'DataKey', arn)`,
    );
  }
  if (problems.length > 0) throw new Error(`${heading}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

/** A key prefix the pipeline accepts: '' or safe segments ending in `/` (no `.`/`..` segment, no leading `/`). */
function isKeyPrefix(value: unknown): boolean {
  if (value === '') return true;
  if (typeof value !== 'string' || value.length > 100 || !/^(?:[A-Za-z0-9!_.*'()-]+\/)+$/.test(value)) return false;
  return value.split('/').every((segment) => segment !== '.' && segment !== '..');
}
