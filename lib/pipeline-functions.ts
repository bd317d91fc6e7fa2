import { Arn, ArnFormat, Aws, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { PipelineSettings } from './pipeline-config';
import { BatchFunction } from './batch-function';
import { S3_PREFIXES } from '../lambdas/shared/contracts';
import type { DropBucket } from './drop-bucket';
import { modelInvocationJobArnPattern, modelResourceArnsOf } from './model-arns';
import { acknowledgeNag, nagResourceFinding } from './nag';

/** The pipeline's functions; each name is its folder under `lambdas/`. */
export const PIPELINE_FUNCTION_NAMES = [
  'start-run',
  'prepare',
  'next-window',
  'acquire-slot',
  'submit-job',
  'reconcile-chunk',
  'end-round',
  'finalize',
  'job-state',
  'sweeper',
  'stop-run',
] as const;

/** One of {@link PIPELINE_FUNCTION_NAMES}. */
export type PipelineFunctionName = (typeof PIPELINE_FUNCTION_NAMES)[number];

/**
 * Bedrock batch job operations a function may call. (ListModelInvocationJobs is left out on
 * purpose: it cannot be scoped to resources and no handler needs it; jobs are tracked in the table.)
 */
type JobAction = 'Create' | 'Get' | 'Stop';

/** A prefix of the drop bucket, by its name in `S3_PREFIXES` (lambdas/shared/contracts.ts). */
type Prefix = keyof typeof S3_PREFIXES;

/**
 * What a function may do in the drop bucket, by prefix. `read` is GetObject (also what HeadObject
 * and the source of a CopyObject need); `write` is PutObject and AbortMultipartUpload (a streamed
 * upload's parts and the abort of a failed one; also the destination of a CopyObject); `list` is
 * ListBucket limited by `s3:prefix`. No function may delete.
 */
interface S3Access {
  /** Prefixes read, or `'run-inputs'`: any object but {@link NOT_RUN_INPUTS} (prepare's inputs). */
  readonly read?: readonly Prefix[] | 'run-inputs';
  readonly write?: readonly Prefix[];
  /** Prefixes listed, or `'run-inputs'`: the whole bucket (an input prefix may be anywhere). */
  readonly list?: readonly Prefix[] | 'run-inputs';
  /**
   * Reads keys that may not exist (finalize's `run-stats.json`, stop-run's `run.json` and
   * `plan.json`) and must see `NoSuchKey` for a missing one. S3 answers 404 rather than 403 only
   * to a caller allowed `s3:ListBucket`, and a GetObject carries no `s3:prefix` for a `StringLike`
   * to match: the listing condition is then `StringLikeIfExists` (a listing without a prefix is
   * allowed too; key names only).
   */
  readonly readsMissingKeys?: boolean;
}

/**
 * The items of the job table, by the leading part of their partition key (docs/ARCHITECTURE.md,
 * "DynamoDB"): jobs (`lambdas/shared/job-records.ts`), job caps (`job-slots.ts`), sweep marks
 * (start-run) and run claims.
 */
const ITEM_KEYS = { job: 'JOB#', cap: 'CAP#', swept: 'SWEPT#', run: 'RUN#' } as const;
type ItemKind = keyof typeof ITEM_KEYS;
type ItemAction = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';

/** What a function may do in the job table. */
interface TableAccess {
  /** Single-item actions by item kind, limited with `dynamodb:LeadingKeys` to that kind's keys. */
  readonly items: Partial<Record<ItemKind, readonly ItemAction[]>>;
  /** `dynamodb:Scan` of the table (no key condition can limit a Scan). */
  readonly scan?: boolean;
}

/** What each function may do besides writing its logs. The one place to read the pipeline's IAM. */
interface FunctionAccess {
  readonly description: string;
  readonly s3?: S3Access;
  readonly table?: TableAccess;
  readonly bedrockJobs?: readonly JobAction[];
  /** `bedrock:InvokeModel` on the routes' models (on-demand small remainders). */
  readonly invokeModel?: boolean;
  /** `iam:PassRole` of the Bedrock service role, to Bedrock only. */
  readonly passServiceRole?: boolean;
  /** `events:PutEvents` on the default bus. */
  readonly putEvents?: boolean;
  /** `servicequotas:ListServiceQuotas` and `GetServiceQuota`: the model's quotas, read at run time. */
  readonly readQuotas?: boolean;
}

/**
 * The pipeline's prefixes a run input may never be under and that prepare never reads: its
 * GetObject on the whole bucket comes with an explicit Deny of these, so the run-input check's
 * refusal is enforced by IAM as well. (`jobs-input/` and `work/` are refused as inputs too, but
 * prepare reads its own chunk and tail files there.)
 */
const NOT_RUN_INPUTS: readonly Prefix[] = ['jobsOutput', 'results'];

// Matches what the handlers call (lambdas/<name>/ and the shared code they use; the table in
// docs/ARCHITECTURE.md, "Functions", says which call needs which grant); a handler that starts
// calling something new needs its line here, and test/lib says so.
const ACCESS: Record<PipelineFunctionName, FunctionAccess> = {
  // Lists a route's inbox/ and held/ for sweeps (never reads them); marks swept files and unmarks
  // them when the start fails; claims the run id for the execution it starts (a conditional
  // update, reading the holder when refused); starts executions and describes an existing one of
  // the same name (connectWorkflow).
  'start-run': {
    description: 'Starts (deduplicated) runs for dropped files and nightly sweeps',
    s3: { list: ['inbox', 'held'] },
    table: { items: { swept: ['PutItem', 'DeleteItem'], run: ['UpdateItem', 'GetItem'] } },
  },
  // Reads the run's inputs (HeadObject, listing of prefix inputs); writes run.json, rejections,
  // stats, round 1's chunks, its plan and tail files (copied over chunks), held remainders.
  // Opening a round may apply the small-remainder policy (on-demand InvokeModel) when a file is
  // below the model's minimum job size. Claims the run id (a conditional update), lists itself as
  // a running step of the run, and reads the claim to resume a successor (lambdas/shared/run-claims.ts).
  prepare: {
    description: 'Validates a run, rejects bad lines, writes round-1 chunks',
    s3: { read: 'run-inputs', list: 'run-inputs', write: ['jobsInput', 'work', 'held'] },
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
    invokeModel: true,
    readQuotas: true,
  },
  // Reads its execution's history length and may start the run's successor execution
  // (connectWorkflow, which also grants DescribeExecution to check an existing successor); hands
  // the run claim over to the successor, and takes it back when the start fails.
  'next-window': {
    description: 'Hands the next window of chunks to the Map, or continues the run in a successor execution',
    table: { items: { run: ['UpdateItem'] } },
  },
  'acquire-slot': { description: "Takes a slot of the model's global job cap", table: { items: { cap: ['UpdateItem'] } } },
  // Also completes its own task token when a retried submit finds the job already terminal
  // (connectWorkflow).
  'submit-job': {
    description: "Stores the task token and creates the chunk's Bedrock batch job",
    // run: the stop mark, checked as it lists itself as a running step of the run.
    table: { items: { job: ['PutItem', 'UpdateItem', 'GetItem'], run: ['GetItem', 'UpdateItem'] } },
    bedrockJobs: ['Create', 'Get'],
    passServiceRole: true,
  },
  // Reads the chunk's input and its job's output; writes the chunk's parts and stats. Reads the
  // job item and stops a job whose wait ended without its outcome, before freeing its slot.
  'reconcile-chunk': {
    description: "Joins a job's output with its input; frees the slot",
    s3: { read: ['jobsInput', 'jobsOutput'], list: ['jobsOutput'], write: ['work'] },
    table: { items: { job: ['GetItem'], cap: ['UpdateItem'], run: ['GetItem', 'UpdateItem'] } },
    bedrockJobs: ['Get', 'Stop'],
  },
  // Lists and reads the round's retry parts; writes the next round's chunks (re-reading them for
  // a tail re-split), exhausted records, remainders and held files.
  'end-round': {
    description: 'Re-chunks retryable records or applies the small-remainder policy',
    s3: { read: ['work', 'jobsInput'], list: ['work'], write: ['work', 'jobsInput', 'held'] },
    // run: the stop mark, checked as it lists itself as a running step of the run.
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
    invokeModel: true,
  },
  // Reads the run's claim to check it owns the run; FinalizeFailed of an execution that never
  // claimed its run id claims it (a conditional update).
  finalize: {
    description: 'Writes results and the summary; puts Batch Run Completed',
    // Lists results/<runId>/ as well: a rerun empties results parts an earlier attempt left.
    s3: { read: ['work'], list: ['work', 'results'], write: ['results'], readsMissingKeys: true },
    table: { items: { run: ['GetItem', 'UpdateItem'] } },
    putEvents: true,
  },
  // Completes task tokens (connectWorkflow).
  'job-state': {
    description: 'Completes the task token of a job that reached a terminal status',
    table: { items: { job: ['GetItem', 'UpdateItem'] } },
  },
  // Scans for open jobs and capped models; completes task tokens (connectWorkflow).
  sweeper: {
    description: 'Polls tracked jobs whose events were lost; recovers leaked slots',
    table: { items: { job: ['GetItem', 'UpdateItem'], cap: ['GetItem', 'UpdateItem'] }, scan: true },
    bedrockJobs: ['Get'],
  },
  // Stops a stopped run's open jobs (found by a Scan), frees its slots, fails its unfinished
  // records (reading its work files and chunk inputs), finalizes it; reads and winds up the run
  // claim.
  'stop-run': {
    description: 'Winds up a run whose execution a user stopped',
    s3: { read: ['work', 'jobsInput'], list: ['work', 'results'], write: ['work', 'results'], readsMissingKeys: true },
    table: { items: { job: ['UpdateItem'], cap: ['GetItem', 'UpdateItem'], run: ['GetItem', 'UpdateItem'] }, scan: true },
    bedrockJobs: ['Stop'],
    putEvents: true,
  },
};

/**
 * The tag keys every batch job is created with (lambdas/submit-job/submit-job.ts): the run, the
 * route and the stack that created it. Bedrock's tag keys allow `[a-zA-Z0-9\s._:/=+@-]`.
 */
const JOB_TAG_KEYS = ['bedrock-batch:run', 'bedrock-batch:route', 'bedrock-batch:stack'] as const;

/** The key pattern of a prefix's objects: `work/*`. */
function prefixPattern(prefix: Prefix): string {
  return `${S3_PREFIXES[prefix]}*`;
}

/**
 * Grants a function its {@link S3Access} to the drop bucket. Returns the object ARNs it allowed
 * (every one ends in a wildcard: keys are made of run ids, rounds and chunks) and the reason to
 * acknowledge them with.
 */
function grantBucketAccess(role: iam.IRole, bucket: s3.IBucket, access: S3Access): { allowed: string[]; reason: string } {
  const allowed: string[] = [];
  const allow = (actions: string[], resources: string[]) => {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
    allowed.push(...resources);
  };
  if (access.read === 'run-inputs') {
    allow(['s3:GetObject'], [bucket.arnForObjects('*')]);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ['s3:GetObject'],
        resources: NOT_RUN_INPUTS.map((p) => bucket.arnForObjects(prefixPattern(p))),
      }),
    );
  } else if (access.read?.length) {
    allow(
      ['s3:GetObject'],
      access.read.map((p) => bucket.arnForObjects(prefixPattern(p))),
    );
  }
  if (access.write?.length) {
    allow(
      ['s3:PutObject', 's3:AbortMultipartUpload'],
      access.write.map((p) => bucket.arnForObjects(prefixPattern(p))),
    );
  }
  if (access.list === 'run-inputs') {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
  } else if (access.list?.length) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { [access.readsMissingKeys ? 'StringLikeIfExists' : 'StringLike']: { 's3:prefix': access.list.map(prefixPattern) } },
      }),
    );
  }
  const reason =
    access.read === 'run-inputs'
      ? 'A run\'s input files may be anywhere in the drop bucket but the pipeline\'s own output prefixes (jobs-output/, results/: read explicitly denied); written run files are keyed by run id, round and chunk (docs/ARCHITECTURE.md, "Data layout"), only known at run time; no delete.'
      : 'Run files are keyed by run id, round and chunk (docs/ARCHITECTURE.md, "Data layout"), only known at run time; access is to the prefixes this function uses, without delete.';
  return { allowed, reason };
}

/**
 * Grants a function its {@link TableAccess}: one statement per item kind, limited to that kind's
 * partition keys. `ForAllValues` holds for a request without keys too, which is why no such
 * statement may hold an action that takes none (Scan): a Scan gets a statement of its own.
 */
function grantTableAccess(role: iam.IRole, table: dynamodb.ITable, access: TableAccess): void {
  for (const [kind, actions] of Object.entries(access.items) as Array<[ItemKind, readonly ItemAction[]]>) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: actions.map((a) => `dynamodb:${a}`),
        resources: [table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ITEM_KEYS[kind]}*`] } },
      }),
    );
  }
  if (access.scan) role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['dynamodb:Scan'], resources: [table.tableArn] }));
}

/** Lambda's limit on the total size of a function's environment variables. */
const LAMBDA_ENV_LIMIT_BYTES = 4096;

/** Properties of {@link PipelineFunctions}. */
export interface PipelineFunctionsProps {
  /** The validated configuration; its routes and limits go to `PIPELINE_CONFIG`. */
  readonly config: PipelineSettings;
  /** The drop bucket (`BUCKET_NAME`); functions with S3 access read and write its objects. */
  readonly dropBucket: DropBucket;
  /** The job table (`TABLE_NAME`). */
  readonly table: dynamodb.ITable;
  /** The role Bedrock assumes for the jobs (`BEDROCK_ROLE_ARN`). */
  readonly bedrockServiceRole: iam.IRole;
  /** Powertools log level of every function. @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** How long each function's logs are kept. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the functions' log groups when they are removed. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

function constructId(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash: string, c: string) => c.toUpperCase());
}

/**
 * The eleven functions of docs/ARCHITECTURE.md, built by {@link BatchFunction}, with the shared
 * environment and least-privilege grants. {@link connectWorkflow} adds what needs the state
 * machine, which itself needs the workflow functions first.
 */
export class PipelineFunctions extends Construct {
  /** The functions by name. */
  readonly byName: Readonly<Record<PipelineFunctionName, BatchFunction>>;

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    const { config } = props;
    const pipelineConfig = JSON.stringify({
      maxConcurrentJobs: config.maxConcurrentJobs,
      jobTimeoutHours: config.jobTimeoutHours,
      historyEventBudget: config.historyEventBudget,
      routes: config.routes,
    });
    // Leave room for the other variables: a too-large environment fails only at deploy time.
    if (Buffer.byteLength(pipelineConfig) > LAMBDA_ENV_LIMIT_BYTES - 1024) {
      throw new Error(
        `routes: PIPELINE_CONFIG would be ${Buffer.byteLength(pipelineConfig)} bytes, over the ~3 KB left by Lambda's 4 KB environment limit; use fewer routes`,
      );
    }
    const environment = {
      BUCKET_NAME: props.dropBucket.bucket.bucketName,
      TABLE_NAME: props.table.tableName,
      BEDROCK_ROLE_ARN: props.bedrockServiceRole.roleArn,
      PIPELINE_CONFIG: pipelineConfig,
      EVENT_BUS_NAME: 'default',
      // The value of the bedrock-batch:stack tag of the jobs submit-job creates.
      STACK_NAME: Stack.of(this).stackName,
    };

    const env = { partition: Aws.PARTITION, region: Aws.REGION, account: Aws.ACCOUNT_ID };
    const jobArns = modelInvocationJobArnPattern(env);
    const modelArns = modelResourceArnsOf(
      Object.values(config.routes).map((r) => r.modelId),
      env,
    );
    const defaultBus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    const byName = {} as Record<PipelineFunctionName, BatchFunction>;
    for (const name of PIPELINE_FUNCTION_NAMES) {
      const access = ACCESS[name];
      const fn = new BatchFunction(this, constructId(name), {
        handlerName: name,
        description: `bedrock-batch ${name}: ${access.description}`,
        environment,
        logLevel: props.logLevel,
        logRetention: props.logRetention,
        logRemovalPolicy: props.logRemovalPolicy,
      });
      byName[name] = fn;
      const ack = (reason: string, findings: string[]) => acknowledgeNag(fn.role, 'AwsSolutions-IAM5', reason, findings);

      if (access.s3) {
        const { allowed, reason } = grantBucketAccess(fn.role, props.dropBucket.bucket, access.s3);
        ack(
          reason,
          allowed.map((arn) => nagResourceFinding(this, arn)),
        );
      }
      if (access.table) grantTableAccess(fn.role, props.table, access.table);

      const jobActions = access.bedrockJobs ?? [];
      const perJob = jobActions.filter((a) => a === 'Get' || a === 'Stop');
      if (perJob.length > 0) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: perJob.map((a) => `bedrock:${a}ModelInvocationJob`), resources: [jobArns] }));
      }
      if (jobActions.includes('Create')) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:CreateModelInvocationJob'], resources: [jobArns, ...modelArns] }));
        // Jobs are created with tags (JOB_TAG_KEYS). Bedrock's guide to batch permissions lists
        // bedrock:TagResource among the caller's actions; granted for these keys only.
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ['bedrock:TagResource'],
            resources: [jobArns],
            conditions: { 'ForAllValues:StringEquals': { 'aws:TagKeys': [...JOB_TAG_KEYS] } },
          }),
        );
      }
      if (jobActions.length > 0) {
        ack("Batch job ids are generated by Bedrock at creation; the functions act on this account's model-invocation jobs in this region only.", [
          nagResourceFinding(this, jobArns),
        ]);
      }
      if (access.invokeModel) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: modelArns }));
      }
      const anyRegionModels = modelArns.filter((arn) => arn.includes(':bedrock:*::'));
      if ((jobActions.includes('Create') || access.invokeModel) && anyRegionModels.length > 0) {
        ack(
          "A route on an inference profile is served in every region the profile spans, and Bedrock authorizes the foundation model in each; only the routes' foundation models get the region wildcard.",
          anyRegionModels.map((arn) => nagResourceFinding(this, arn)),
        );
      }
      if (access.passServiceRole) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ['iam:PassRole'],
            resources: [props.bedrockServiceRole.roleArn],
            conditions: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
          }),
        );
      }
      if (access.putEvents) defaultBus.grantPutEventsTo(fn.role);
      if (access.readQuotas) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: ['servicequotas:ListServiceQuotas', 'servicequotas:GetServiceQuota'], resources: ['*'] }),
        );
        ack(
          'Service Quotas: ListServiceQuotas has no resource type to scope to, and the quota codes GetServiceQuota would name are not known before reading them.',
          ['Resource::*'],
        );
      }
    }
    this.byName = byName;
  }

  /**
   * Wires the functions that act on the workflow: `start-run` starts executions
   * (`STATE_MACHINE_ARN`) and describes an existing one of the same name; `job-state`, `sweeper` and `submit-job` complete task tokens.
   */
  connectWorkflow(stateMachine: sfn.IStateMachine): void {
    const startRun = this.byName['start-run'];
    startRun.addEnvironment('STATE_MACHINE_ARN', stateMachine.stateMachineArn);
    stateMachine.grantStartExecution(startRun.role);
    // SendTask* calls are authorized against the state machine the token belongs to.
    stateMachine.grantTaskResponse(this.byName['job-state'].role);
    stateMachine.grantTaskResponse(this.byName.sweeper.role);
    // submit-job runs inside the workflow: its function depends on its role's default policy and
    // the state machine depends on the function, so this grant lives in a separate policy that
    // nothing in the workflow depends on (else: a dependency cycle).
    // next-window measures its execution's history and starts the successor execution before the
    // 25,000-event limit; a separate policy for the same reason as below.
    const executionsArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${Arn.split(stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const continuation = new iam.Policy(this, 'NextWindowContinuation', {
      roles: [this.byName['next-window'].role],
      statements: [
        new iam.PolicyStatement({ actions: ['states:GetExecutionHistory', 'states:DescribeExecution'], resources: [executionsArn] }),
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachine.stateMachineArn] }),
      ],
    });
    // start-run compares an existing execution of the name it would start with its own input; a
    // separate policy so that its nag acknowledgement names this grant only.
    const startRunCheck = new iam.Policy(this, 'StartRunExecutionCheck', {
      roles: [startRun.role],
      statements: [new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executionsArn] })],
    });
    acknowledgeNag(
      startRunCheck,
      'AwsSolutions-IAM5',
      "DescribeExecution is granted on this state machine's executions (<state machine>:*): start-run names executions after the events it starts them for.",
      [nagResourceFinding(this, executionsArn)],
    );
    acknowledgeNag(
      continuation,
      'AwsSolutions-IAM5',
      "GetExecutionHistory and DescribeExecution are granted on this state machine's executions (<state machine>:*): a function cannot name the execution it runs in, or the successor it starts, before it exists.",
      [nagResourceFinding(this, executionsArn)],
    );
    // FinalizeFailed checks whether the successor its execution handed the run to exists.
    const handOverCheck = new iam.Policy(this, 'FinalizeHandOverCheck', {
      roles: [this.byName.finalize.role],
      statements: [new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executionsArn] })],
    });
    acknowledgeNag(
      handOverCheck,
      'AwsSolutions-IAM5',
      "DescribeExecution is granted on this state machine's executions (<state machine>:*): the successor's name is known only at run time.",
      [nagResourceFinding(this, executionsArn)],
    );
    new iam.Policy(this, 'SubmitJobTaskResponse', {
      roles: [this.byName['submit-job'].role],
      statements: [
        new iam.PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: [stateMachine.stateMachineArn],
        }),
      ],
    });
  }
}
