import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { HANDLER_METADATA_KEY } from '../lambdas/shared/contracts';
import { acknowledgeNag } from './nag';

export { HANDLER_METADATA_KEY };

/**
 * The package root: where `lambdas/` is, next to `lib/`. That is this checkout when the sources
 * run (`lib/*.ts`, `lambdas/<name>/handler.ts`), and `dist/` when the compiled package runs,
 * from this checkout or from a consumer's `node_modules/bedrock-batch/` (`dist/lib/*.js`,
 * `dist/lambdas/<name>/handler.js`).
 */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/**
 * The entry of a handler: `<root>/lambdas/<handlerName>/handler.ts` (sources), else
 * `handler.js` (the compiled package).
 * @throws Error when the folder holds neither
 */
export function handlerEntry(handlerName: string, root: string = PROJECT_ROOT): string {
  const dir = path.join(root, 'lambdas', handlerName);
  for (const file of ['handler.ts', 'handler.js']) {
    const entry = path.join(dir, file);
    if (fs.existsSync(entry)) return entry;
  }
  throw new Error(`bedrock-batch: no handler.ts or handler.js for function '${handlerName}' in ${dir}`);
}

/** The Powertools service name every function logs under. */
export const POWERTOOLS_SERVICE_NAME = 'bedrock-batch';

/** Properties of {@link BatchFunction}. */
export interface BatchFunctionProps {
  /** The handler's folder under `lambdas/`; the entry is `lambdas/<handlerName>/handler.ts`, export `handler`. */
  readonly handlerName: string;
  /** What the function does, shown in the console. @default - none */
  readonly description?: string;
  /** Environment variables, added to the Powertools and source-map ones. @default - none */
  readonly environment?: Record<string, string>;
  /** Function timeout. @default Duration.minutes(15) */
  readonly timeout?: Duration;
  /** Memory in MB. @default 1024 */
  readonly memorySize?: number;
  /** How long the function's logs are kept. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the log group when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** Powertools log level (`POWERTOOLS_LOG_LEVEL`). @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
  /**
   * The root holding `lambdas/`. Its `package-lock.json`, if any, pins the bundled dependencies
   * and makes it esbuild's project root; without one (the package installed in an app's
   * `node_modules`), NodejsFunction uses the lock file it finds from the working directory up,
   * i.e. the app's. @default PROJECT_ROOT
   */
  readonly projectRoot?: string;
}

/**
 * The house construct for every Lambda function of the pipeline, so all are built the same
 * way: NodejsFunction bundled by esbuild (SDK included, so the code runs against the SDK
 * versions it was tested with), arm64, Node.js 22, source maps, its own log group with a
 * retention, its own role (logs to that group only, no managed policy), Powertools
 * environment, and the {@link HANDLER_METADATA_KEY} metadata.
 */
export class BatchFunction extends Construct {
  /** The Lambda function. */
  readonly function: NodejsFunction;
  /** The function's execution role. */
  readonly role: iam.Role;
  /** The function's log group. */
  readonly logGroup: logs.LogGroup;
  /** The handler's folder name under `lambdas/`. */
  readonly handlerName: string;

  constructor(scope: Construct, id: string, props: BatchFunctionProps) {
    super(scope, id);
    this.handlerName = props.handlerName;
    const root = props.projectRoot ?? PROJECT_ROOT;
    const lockFile = path.join(root, 'package-lock.json');

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `bedrock-batch ${props.handlerName} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: handlerEntry(props.handlerName, root),
      handler: 'handler',
      ...(fs.existsSync(lockFile) ? { projectRoot: root, depsLockFilePath: lockFile } : {}),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.minutes(15),
      memorySize: props.memorySize ?? 1024,
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        sourceMap: true,
        target: 'node22',
        format: OutputFormat.CJS,
        // Bundle the SDK too: the handlers are tested against the versions in package-lock.json.
        externalModules: [],
      },
    });
    const cfn = this.function.node.defaultChild as lambda.CfnFunction;
    cfn.addMetadata(HANDLER_METADATA_KEY, props.handlerName);

    acknowledgeNag(
      this.function,
      'AwsSolutions-L1',
      'Node.js 22 is the runtime the handlers are built and tested for (esbuild target node22, local twin on Node 20/22); moving to a newer runtime is a deliberate, tested upgrade, not an automatic one.',
    );
  }

  /** Adds an environment variable to the function. */
  addEnvironment(key: string, value: string): this {
    this.function.addEnvironment(key, value);
    return this;
  }
}
