/**
 * Run claims: a run owns its id. The execution that creates a run claims `RUN#<runId>` in the
 * job table with a conditional write naming its execution ARN; a second execution asking for the
 * same id is refused and touches nothing of the first run. Only the owner may finalize or wind up
 * the run, and the owner hands the run over to its successor execution explicitly (with the round
 * to resume at), so a `resume` input is believed only when the claim agrees.
 *
 * The claim is also the run's stop mark: stop-run sets `stopRequestedAt`, after which no step
 * may start a job or reconcile a chunk (`enterStep` fails), and the steps that were already
 * running are listed in `steps` until they leave, so stop-run can wait for them.
 *
 * Claims have no `expiresAt`: a run id stays owned for as long as the table keeps it, so a later
 * run can never take the id (and so the `results/<runId>/` prefix) of an earlier one.
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './conditional-writes';
import type { RoundState } from './contracts';
import { logger } from './logger';
import { InvalidRunInput } from './run-input';

/** The claim item of a run (`pk = RUN#<runId>`, `sk = RUN`). */
export interface RunClaim {
  readonly runId: string;
  /** ARN of the execution that owns the run now (the first one, or its latest successor). */
  readonly owner: string;
  readonly claimedAt: string;
  /** The execution that handed the run over to `owner`, if any. */
  readonly handedOverBy?: string;
  /** The round the successor `owner` resumes at (set at hand-over). */
  readonly round?: RoundState;
  /** Set once the run was stopped: no job may be created or chunk reconciled after it. */
  readonly stopRequestedAt?: string;
  /** Steps running now (`submit:r01-c00003`, `reconcile:r01-c00003`), sorted. */
  readonly steps?: string[];
}

/** A second execution asked for a run id that another execution owns. Fails the run input. */
export class RunIdInUse extends InvalidRunInput {}

/** A step was refused because the run was stopped. */
export class RunStopping extends Error {
  override readonly name = 'RunStopping';
}

/** The name of an execution from its ARN (`…:execution:<machine>:<name>`). */
export function executionNameOf(executionArn: string): string {
  return executionArn.slice(executionArn.lastIndexOf(':') + 1);
}

const key = (runId: string) => ({ pk: `RUN#${runId}`, sk: 'RUN' });

/** Reads and changes run claims in the job table. Every change is one conditional write. */
export class RunClaims {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The run's claim, or undefined when no execution has claimed the id. */
  async get(runId: string): Promise<RunClaim | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: key(runId), ConsistentRead: true }));
    if (!res.Item) return undefined;
    const item = res.Item as Omit<RunClaim, 'steps'> & { steps?: Set<string> };
    const { steps, ...rest } = item;
    return { ...rest, ...(steps && steps.size > 0 ? { steps: [...steps].sort() } : {}) } as RunClaim;
  }

  /** True once the run was stopped (its stop mark is set). */
  async isStopped(runId: string): Promise<boolean> {
    return (await this.get(runId))?.stopRequestedAt !== undefined;
  }

  /** True while a step of the run is listed as running (`withRunStep`). */
  async hasRunningSteps(runId: string): Promise<boolean> {
    return ((await this.get(runId))?.steps ?? []).length > 0;
  }

  /** True when `executionArn` owns the run now. */
  async isOwner(runId: string, executionArn: string): Promise<boolean> {
    return (await this.get(runId))?.owner === executionArn;
  }

  /**
   * Claims `runId` for `executionArn`. Claiming again from the same execution (a retried
   * Prepare, or a claim stop-run made for it) changes nothing.
   * @throws RunIdInUse when another execution owns the id
   */
  async claim(runId: string, executionArn: string, now = new Date()): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(runId),
          UpdateExpression: 'SET #owner = if_not_exists(#owner, :arn), runId = :runId, claimedAt = if_not_exists(claimedAt, :now)',
          ConditionExpression: 'attribute_not_exists(pk) OR #owner = :arn',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':arn': executionArn, ':runId': runId, ':now': now.toISOString() },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const owner = (await this.get(runId))?.owner ?? 'unknown';
      throw new RunIdInUse(`runId ${runId} is already used by execution ${executionNameOf(owner)}; choose another runId (a run owns its id)`);
    }
  }

  /**
   * Hands the run from `fromArn` to the successor `toArn`, which resumes at `round`. Repeating
   * the same hand-over (a retried NextWindow) changes nothing.
   */
  async handOver(runId: string, fromArn: string, toArn: string, round: RoundState): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(runId),
          UpdateExpression: 'SET #owner = :to, handedOverBy = :from, #round = :round',
          // Never once the run was stopped: a NextWindow that outlived the stop must not start a successor.
          ConditionExpression: '(#owner = :from OR (#owner = :to AND handedOverBy = :from)) AND attribute_not_exists(stopRequestedAt)',
          ExpressionAttributeNames: { '#owner': 'owner', '#round': 'round' },
          ExpressionAttributeValues: { ':from': fromArn, ':to': toArn, ':round': round },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      if ((await this.get(runId))?.stopRequestedAt) throw new RunStopping(`run ${runId} was stopped: it is not handed over to a successor`);
      throw new Error(`run ${runId} is not owned by execution ${executionNameOf(fromArn)}: it cannot hand the run over`, { cause: err });
    }
  }

  /** Undoes a hand-over whose successor could not be started. */
  async takeBack(runId: string, fromArn: string, toArn: string): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(runId),
        UpdateExpression: 'SET #owner = :from REMOVE handedOverBy, #round',
        ConditionExpression: '#owner = :to AND handedOverBy = :from',
        ExpressionAttributeNames: { '#owner': 'owner', '#round': 'round' },
        ExpressionAttributeValues: { ':from': fromArn, ':to': toArn },
      }),
    );
  }

  /**
   * Marks the run stopped on behalf of the stopped execution `executionArn`. When no execution
   * has claimed the id yet (the stop came while Prepare was starting), the claim is made for that
   * execution, so its own Prepare may still claim it, and no other execution can.
   * @returns whether the stopped execution owns the run, and who does
   */
  async requestStop(runId: string, executionArn: string, now = new Date()): Promise<{ owned: boolean; owner: string }> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(runId),
          UpdateExpression:
            'SET #owner = if_not_exists(#owner, :arn), runId = :runId, claimedAt = if_not_exists(claimedAt, :now), stopRequestedAt = if_not_exists(stopRequestedAt, :now)',
          ConditionExpression: 'attribute_not_exists(pk) OR #owner = :arn',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':arn': executionArn, ':runId': runId, ':now': now.toISOString() },
        }),
      );
      return { owned: true, owner: executionArn };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return { owned: false, owner: (await this.get(runId))?.owner ?? 'unknown' };
    }
  }

  /**
   * Records that `step` runs now, unless the run was stopped.
   * @throws RunStopping when the run was stopped; an Error when the run has no claim
   */
  async enterStep(runId: string, step: string): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(runId),
          UpdateExpression: 'ADD steps :step',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(stopRequestedAt)',
          ExpressionAttributeValues: { ':step': new Set([step]) },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      if (!(await this.get(runId))) throw new Error(`run ${runId} has no claim: its steps cannot run`, { cause: err });
      throw new RunStopping(`run ${runId} was stopped: ${step} does not run`);
    }
  }

  /** Records that `step` has finished (whatever its outcome). */
  async leaveStep(runId: string, step: string): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(runId),
        UpdateExpression: 'DELETE steps :step',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':step': new Set([step]) },
      }),
    );
  }
}

/**
 * Runs `work` as a step of the run: refused (RunStopping) once the run was stopped, and listed
 * on the claim while it runs, so stop-run can wait for it. A failure to unlist the step is only
 * logged: the work's own outcome matters more, and a step left listed only makes a later stop
 * wait longer.
 */
export async function withRunStep<T>(claims: RunClaims, runId: string, step: string, work: () => Promise<T>): Promise<T> {
  await claims.enterStep(runId, step);
  try {
    return await work();
  } finally {
    await claims
      .leaveStep(runId, step)
      .catch((err: unknown) => logger.warn('could not unlist a finished step from the run claim', { runId, step, error: (err as Error).message }));
  }
}
