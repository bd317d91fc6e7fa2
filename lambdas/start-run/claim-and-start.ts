/**
 * Starting a run's execution exactly once: the run id is claimed for the execution about to be
 * started, then the execution is started; a repeat of the same event (same execution name, same
 * input) is a duplicate, and a run id or execution name taken first by someone else is refused
 * ({@link RunIdTaken}) rather than lost silently.
 */
import { DescribeExecutionCommand, ExecutionAlreadyExists, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { executionArnOf } from '../next-window/next-window';
import type { PipelineEnvConfig } from '../shared/config';
import { logger } from '../shared/logger';
import { executionNameOf, RunClaims, RunIdInUse } from '../shared/run-claims';
import type { RunInput } from '../shared/run-input';

/**
 * The run id (or execution name) of a dropped file or a sweep was taken first by an execution
 * this event did not start: nothing is started, a sweep's marks are removed, and the event fails
 * (to its retries, dead-letter queue and alarm).
 */
export class RunIdTaken extends Error {
  override readonly name = 'RunIdTaken';
}

/** The clients and settings start-run works with. */
export interface StartDeps {
  readonly sfn: SFNClient;
  readonly s3: S3Client;
  readonly ddb: DynamoDBDocumentClient;
  readonly table: string;
  readonly stateMachineArn: string;
  readonly bucket: string;
  readonly pipeline: PipelineEnvConfig;
}

/** What start-run did with an event: started a run, saw a repeat, or had nothing to start. */
export type StartOutcome =
  { readonly started: string; readonly runId: string; readonly files: number } | { readonly duplicate: string } | { readonly ignored: string };

/** The first `length` hex digits of the SHA-256 of `text`. */
export function shortHash(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * The route as the start of a run id: at most `length` characters, no leading, trailing or
 * doubled hyphen (route names may be `-a` or `a--b`; run ids may not).
 */
export function runIdPrefix(route: string, length: number): string {
  return route.replace(/-+/g, '-').replace(/^-/, '').slice(0, length).replace(/-$/, '') || 'run';
}

/** True when execution `executionArn` exists and was started with exactly `input` (parsed JSON, deep-equal). */
async function startedWith(deps: StartDeps, executionArn: string, input: RunInput): Promise<boolean> {
  let res;
  try {
    res = await deps.sfn.send(new DescribeExecutionCommand({ executionArn }));
  } catch (err) {
    if ((err as Error).name === 'ExecutionDoesNotExist') return false;
    throw err;
  }
  try {
    return isDeepStrictEqual(JSON.parse(res.input ?? 'null'), JSON.parse(JSON.stringify(input)));
  } catch {
    return false; // not JSON: not an input start-run wrote
  }
}

/**
 * Claims the run id for execution `name`, then starts it. A repeat of the same event (same name,
 * same input) is a duplicate, also after the run was handed over to a successor execution.
 * `what` names the work in errors ("for s3://…", "for the sweep of route r").
 *
 * @throws RunIdTaken when another execution holds the run id, or an execution of the same name
 *   exists with another input
 */
export async function claimAndStart(deps: StartDeps, name: string, input: RunInput, files: number, what: string): Promise<StartOutcome> {
  const runId = input.runId!;
  const executionArn = executionArnOf(deps.stateMachineArn, name);
  const claims = new RunClaims(deps.ddb, deps.table);
  try {
    // Claiming again for the same execution (a redelivery) changes nothing.
    await claims.claim(runId, executionArn);
  } catch (err) {
    if (!(err instanceof RunIdInUse)) throw err;
    const claim = await claims.get(runId);
    const owner = claim?.owner ?? 'unknown';
    // The run this event started may have handed its claim over to a successor since: then the
    // execution of this name exists with this input. (A claim never handed over is held by the
    // execution that claimed it first: not this one, or the claim above would have succeeded.)
    if (claim?.handedOverBy !== undefined && (await startedWith(deps, executionArn, input))) {
      logger.info('run already started for this input (and continued by a successor)', { executionName: name, owner: executionNameOf(owner) });
      return { duplicate: name };
    }
    throw new RunIdTaken(`cannot start run ${runId} ${what}: its run id is held by execution ${executionNameOf(owner)}, not by ${name}`, { cause: err });
  }
  try {
    await deps.sfn.send(new StartExecutionCommand({ stateMachineArn: deps.stateMachineArn, name, input: JSON.stringify(input) }));
  } catch (err) {
    if (!(err instanceof ExecutionAlreadyExists) && (err as Error).name !== 'ExecutionAlreadyExists') throw err;
    if (!(await startedWith(deps, executionArn, input))) {
      throw new RunIdTaken(`cannot start run ${runId} ${what}: an execution named ${name} exists already with another input`, { cause: err });
    }
    logger.info('run already started for this input', { executionName: name });
    return { duplicate: name };
  }
  logger.info('run started', { runId, executionName: name, files });
  return { started: name, runId, files };
}
