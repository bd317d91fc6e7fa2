import { Arn, ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { PipelineConfig } from '../bin/config';
import { BatchFunction } from './batch-function';
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

/** What each function may do besides writing its logs. The one place to read the pipeline's IAM. */
interface FunctionAccess {
  readonly description: string;
  /** List the drop bucket, read and write its objects. */
  readonly s3?: boolean;
  /** Read and write the job table. */
  readonly table?: boolean;
  readonly bedrockJobs?: readonly JobAction[];
  /** `bedrock:InvokeModel` on the routes' models (on-demand small remainders). */
  readonly invokeModel?: boolean;
  /** `iam:PassRole` of the Bedrock service role, to Bedrock only. */
  readonly passServiceRole?: boolean;
  /** `events:PutEvents` on the default bus. */
  readonly putEvents?: boolean;
}

// Matches what the handlers call (lambdas/<name>/ and the shared code they use); a handler
// that starts calling something new needs its line here, and test/lib says so.
const ACCESS: Record<PipelineFunctionName, FunctionAccess> = {
  // Lists inbox/ and held/ for sweeps; sweep marks in the table; starts executions (connectWorkflow).
  'start-run': { description: 'Starts (deduplicated) runs for dropped files and nightly sweeps', s3: true, table: true },
  // Opening a round may apply the small-remainder policy (on-demand InvokeModel) when a file is
  // below the model's minimum job size.
  prepare: { description: 'Validates a run, rejects bad lines, writes round-1 chunks', s3: true, invokeModel: true },
  // Reads its execution's history length and may start the run's successor execution (connectWorkflow).
  'next-window': { description: 'Hands the next window of chunks to the Map, or continues the run in a successor execution' },
  'acquire-slot': { description: 'Takes a slot of the model\'s global job cap', table: true },
  // Also completes its own task token when a retried submit finds the job already terminal
  // (connectWorkflow).
  'submit-job': {
    description: 'Stores the task token and creates the chunk\'s Bedrock batch job',
    table: true,
    bedrockJobs: ['Create', 'Get'],
    passServiceRole: true,
  },
  // Stops a job whose wait ended without its outcome, before freeing its slot.
  'reconcile-chunk': {
    description: 'Joins a job\'s output with its input; frees the slot',
    s3: true,
    table: true,
    bedrockJobs: ['Get', 'Stop'],
  },
  'end-round': { description: 'Re-chunks retryable records or applies the small-remainder policy', s3: true, invokeModel: true },
  finalize: { description: 'Writes results and the summary; puts Batch Run Completed', s3: true, putEvents: true },
  // Completes task tokens (connectWorkflow).
  'job-state': { description: 'Completes the task token of a job that reached a terminal status', table: true },
  // Completes task tokens (connectWorkflow).
  sweeper: { description: 'Polls tracked jobs whose events were lost; recovers leaked slots', table: true, bedrockJobs: ['Get'] },
  // Stops a stopped run's open jobs, frees its slots, fails its unfinished records, finalizes it.
  'stop-run': {
    description: 'Winds up a run whose execution a user stopped',
    s3: true,
    table: true,
    bedrockJobs: ['Stop'],
    putEvents: true,
  },
};

/** Lambda's limit on the total size of a function's environment variables. */
const LAMBDA_ENV_LIMIT_BYTES = 4096;

/** Properties of {@link PipelineFunctions}. */
export interface PipelineFunctionsProps {
  /** The validated configuration; its routes and limits go to `PIPELINE_CONFIG`. */
  readonly config: PipelineConfig;
  /** The drop bucket (`BUCKET_NAME`); functions with S3 access read and write its objects. */
  readonly dropBucket: DropBucket;
  /** The job table (`TABLE_NAME`). */
  readonly table: dynamodb.ITable;
  /** The role Bedrock assumes for the jobs (`BEDROCK_ROLE_ARN`). */
  readonly bedrockServiceRole: iam.IRole;
  /** Powertools log level of every function. @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
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
        `bedrockBatch.routes: PIPELINE_CONFIG would be ${Buffer.byteLength(pipelineConfig)} bytes, over the ~3 KB left by Lambda's 4 KB environment limit; use fewer routes`,
      );
    }
    const environment = {
      BUCKET_NAME: props.dropBucket.bucket.bucketName,
      TABLE_NAME: props.table.tableName,
      BEDROCK_ROLE_ARN: props.bedrockServiceRole.roleArn,
      PIPELINE_CONFIG: pipelineConfig,
      EVENT_BUS_NAME: 'default',
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
      });
      byName[name] = fn;
      const ack = (reason: string, findings: string[]) => acknowledgeNag(fn.role, 'AwsSolutions-IAM5', reason, findings);

      if (access.s3) {
        props.dropBucket.grantPipelineData(fn.role);
        ack(
          'Run files are keyed by run id, round and chunk (docs/ARCHITECTURE.md, "Data layout"), only known at run time; access is to objects of the drop bucket only, without delete.',
          [nagResourceFinding(this, props.dropBucket.bucket.arnForObjects('*'))],
        );
      }
      if (access.table) props.table.grantReadWriteData(fn.role);

      const jobActions = access.bedrockJobs ?? [];
      const perJob = jobActions.filter((a) => a === 'Get' || a === 'Stop');
      if (perJob.length > 0) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: perJob.map((a) => `bedrock:${a}ModelInvocationJob`), resources: [jobArns] }),
        );
      }
      if (jobActions.includes('Create')) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: ['bedrock:CreateModelInvocationJob'], resources: [jobArns, ...modelArns] }),
        );
      }
      if (jobActions.length > 0) {
        ack(
          'Batch job ids are generated by Bedrock at creation; the functions act on this account\'s model-invocation jobs in this region only.',
          [nagResourceFinding(this, jobArns)],
        );
      }
      if (access.invokeModel) {
        fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: modelArns }));
      }
      const anyRegionModels = modelArns.filter((arn) => arn.includes(':bedrock:*::'));
      if ((jobActions.includes('Create') || access.invokeModel) && anyRegionModels.length > 0) {
        ack(
          'A route on an inference profile is served in every region the profile spans, and Bedrock authorizes the foundation model in each; only the routes\' foundation models get the region wildcard.',
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
    }
    this.byName = byName;
  }

  /**
   * Wires the functions that act on the workflow: `start-run` starts executions
   * (`STATE_MACHINE_ARN`); `job-state`, `sweeper` and `submit-job` complete task tokens.
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
        new iam.PolicyStatement({ actions: ['states:GetExecutionHistory'], resources: [executionsArn] }),
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachine.stateMachineArn] }),
      ],
    });
    acknowledgeNag(
      continuation,
      'AwsSolutions-IAM5',
      "GetExecutionHistory is granted on this state machine's executions (<state machine>:*): a function cannot name the execution it runs in before it exists.",
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
