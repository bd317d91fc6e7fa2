/**
 * Run claims: a run owns its id. The execution that creates a run claims `RUN#<runId>` in the
 * job table with a conditional write naming its execution ARN; a second execution asking for the
 * same id is refused and touches nothing of the first run. Only the owner may finalize or wind up
 * the run, and the owner hands the run over to its successor execution explicitly (with the round
 * to resume at), so a `resume` input is believed only when the claim agrees.
 *
 * The claim is also the run's stop mark: stop-run sets `stopRequestedAt`, after which no step
 * may start a job or reconcile a chunk (`enterStep` fails), and the steps that were already
 * running hold leases in `stepLeases` until they leave, so stop-run can wait for them. A lease
 * ends unless its step renews it (run-steps.ts): a step that Lambda killed (a timeout, out of
 * memory, a lost host) never leaves, and stops counting once its lease has ended.
 *
 * Claims have no `expiresAt`: a run id stays owned for as long as the table keeps it, so a later
 * run can never take the id (and so the `results/<runId>/` prefix) of an earlier one.
 */
import { randomUUID } from 'node:crypto';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './conditional-writes';
import type { RoundState } from './contracts';
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
  /** Step names listed by an earlier version of this code (no lease): running until unlisted. */
  readonly steps?: string[];
  /**
   * The leases of the steps running now: `<step>#<attempt>` (`reconcile:r01-c00003#5f0c2a1e`)
   * to the time, ms, the lease ends unless renewed (run-steps.ts).
   */
  readonly stepLeases?: Record<string, number>;
}

/** The step a lease id names (`reconcile:r01-c00003` of `reconcile:r01-c00003#5f0c2a1e`). */
export function leasedStep(leaseId: string): string {
  const hash = leaseId.lastIndexOf('#');
  return hash < 0 ? leaseId : leaseId.slice(0, hash);
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
    /** The clock step leases are written and read with, ms. */
    readonly now: () => number = Date.now,
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

  /**
   * The steps of the run that may still be running (run-steps.ts): those whose lease has not
   * ended. A step Lambda killed (a timeout, out of memory, a lost host) renews its lease no more,
   * and writes nothing any more, once it has ended.
   */
  async runningSteps(runId: string): Promise<string[]> {
    const claim = await this.get(runId);
    const now = this.now();
    const leased = Object.entries(claim?.stepLeases ?? {}).flatMap(([id, until]) => (until > now ? [leasedStep(id)] : []));
    return [...new Set([...(claim?.steps ?? []), ...leased])].sort();
  }

  /** True while a step of the run may still be running ({@link runningSteps}). */
  async hasRunningSteps(runId: string): Promise<boolean> {
    return (await this.runningSteps(runId)).length > 0;
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
          UpdateExpression:
            'SET #owner = if_not_exists(#owner, :arn), runId = :runId, claimedAt = if_not_exists(claimedAt, :now), stepLeases = if_not_exists(stepLeases, :none)',
          ConditionExpression: 'attribute_not_exists(pk) OR #owner = :arn',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':arn': executionArn, ':runId': runId, ':now': now.toISOString(), ':none': {} },
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
            'SET #owner = if_not_exists(#owner, :arn), runId = :runId, claimedAt = if_not_exists(claimedAt, :now), stopRequestedAt = if_not_exists(stopRequestedAt, :now), stepLeases = if_not_exists(stepLeases, :none)',
          ConditionExpression: 'attribute_not_exists(pk) OR #owner = :arn',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':arn': executionArn, ':runId': runId, ':now': now.toISOString(), ':none': {} },
        }),
      );
      return { owned: true, owner: executionArn };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return { owned: false, owner: (await this.get(runId))?.owner ?? 'unknown' };
    }
  }

  /**
   * Records that `step` runs now, with a lease that ends at `until` (ms) unless renewed, unless
   * the run was stopped.
   * @returns the lease's id, for {@link renewStep} and {@link leaveStep}
   * @throws RunStopping when the run was stopped; an Error when the run has no claim
   */
  async enterStep(runId: string, step: string, until: number): Promise<string> {
    const leaseId = `${step}#${randomUUID().slice(0, 8)}`;
    const enter = () =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(runId),
          UpdateExpression: 'SET stepLeases.#lease = :until',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(stopRequestedAt)',
          ExpressionAttributeNames: { '#lease': leaseId },
          ExpressionAttributeValues: { ':until': until },
        }),
      );
    try {
      try {
        await enter();
      } catch (err) {
        // A claim written before leases existed has no map to set the lease in: add it, once.
        if (!isMissingLeaseMap(err)) throw err;
        await this.ddb.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key(runId),
            UpdateExpression: 'SET stepLeases = if_not_exists(stepLeases, :none)',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':none': {} },
          }),
        );
        await enter();
      }
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      if (!(await this.get(runId))) throw new Error(`run ${runId} has no claim: its steps cannot run`, { cause: err });
      throw new RunStopping(`run ${runId} was stopped: ${step} does not run`);
    }
    return leaseId;
  }

  /**
   * Moves a running step's lease on to `until` (ms), also after a stop (the step still runs),
   * only while the lease has not ended: one that ended stays ended (stop-run may have gone on
   * without its step).
   * @returns false when the lease is gone (the step has left) or has ended
   */
  async renewStep(runId: string, leaseId: string, until: number): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(runId),
          UpdateExpression: 'SET stepLeases.#lease = :until',
          ConditionExpression: 'stepLeases.#lease > :now',
          ExpressionAttributeNames: { '#lease': leaseId },
          ExpressionAttributeValues: { ':until': until, ':now': this.now() },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return false;
    }
  }

  /** Records that the step holding `leaseId` has finished (whatever its outcome): only its own lease goes. */
  async leaveStep(runId: string, leaseId: string): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(runId),
        UpdateExpression: 'REMOVE stepLeases.#lease',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#lease': leaseId },
      }),
    );
  }
}

/** DynamoDB's refusal to set a key in a map attribute that does not exist. */
function isMissingLeaseMap(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return e?.name === 'ValidationException' && /document path provided in the update expression is invalid/.test(e.message ?? '');
}
