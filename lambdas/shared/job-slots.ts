/**
 * JobSlotLimiter: the global cap on submitted + in-progress jobs per model, shared by every run
 * (Bedrock's quota is per model per account). A counter item and one lease item per holder,
 * changed with conditional writes only, ordered so that a crash can leak a slot (recovered by
 * the sweeper) but never exceed the cap.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Thrown when the model's cap is reached; the workflow retries AcquireSlot after a pause. */
export class SlotUnavailable extends Error {
  override readonly name = 'SlotUnavailable';
}

const capKey = (modelId: string) => ({ pk: `CAP#${modelId}`, sk: 'CAP' });
const leaseKey = (modelId: string, holder: string) => ({ pk: `CAP#${modelId}`, sk: `LEASE#${holder}` });

function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException';
}

export class JobSlotLimiter {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /**
   * Takes a slot for `holder` (a job name) or throws {@link SlotUnavailable}. Idempotent: a
   * holder that already has a lease keeps it and takes nothing more.
   */
  async acquire(modelId: string, holder: string, limit: number, now = new Date()): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: capKey(modelId),
          UpdateExpression: 'SET inUse = if_not_exists(inUse, :zero) + :one',
          ConditionExpression: 'attribute_not_exists(inUse) OR inUse < :limit',
          ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':limit': limit },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) {
        if (await this.holds(modelId, holder)) return;
        throw new SlotUnavailable(`all ${limit} job slots of ${modelId} are in use`);
      }
      throw err;
    }
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...leaseKey(modelId, holder), holder, acquiredAt: now.toISOString() },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      // Already held (a retried acquire): give back the count just taken.
      if (isConditionFailure(err)) {
        await this.decrement(modelId);
        return;
      }
      throw err;
    }
  }

  /** Frees `holder`'s slot; a no-op when it holds none. */
  async release(modelId: string, holder: string): Promise<boolean> {
    const res = await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: leaseKey(modelId, holder), ReturnValues: 'ALL_OLD' }));
    if (!res.Attributes) return false;
    await this.decrement(modelId);
    return true;
  }

  /** True when `holder` has a lease. */
  async holds(modelId: string, holder: string): Promise<boolean> {
    const res = await this.ddb.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk = :sk',
        ExpressionAttributeValues: { ':pk': leaseKey(modelId, holder).pk, ':sk': leaseKey(modelId, holder).sk },
      }),
    );
    return (res.Items ?? []).length > 0;
  }

  /** The current leases of a model. */
  async leases(modelId: string): Promise<Array<{ holder: string; acquiredAt: string }>> {
    const out: Array<{ holder: string; acquiredAt: string }> = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :lease)',
          ExpressionAttributeValues: { ':pk': `CAP#${modelId}`, ':lease': 'LEASE#' },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of res.Items ?? []) out.push({ holder: String(item.holder), acquiredAt: String(item.acquiredAt) });
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /**
   * Sets the counter back to the number of leases when it drifted above it (a crash between
   * the two writes of acquire). Only lowers the counter, so it can never open the cap wider.
   */
  async recoverLeakedCount(modelId: string): Promise<number> {
    const leases = (await this.leases(modelId)).length;
    try {
      const res = await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: capKey(modelId),
          UpdateExpression: 'SET inUse = :n',
          ConditionExpression: 'inUse > :n',
          ExpressionAttributeValues: { ':n': leases },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      return Number(res.Attributes?.inUse ?? leases) - leases;
    } catch (err) {
      if (isConditionFailure(err)) return 0;
      throw err;
    }
  }

  private async decrement(modelId: string): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: capKey(modelId),
          UpdateExpression: 'SET inUse = inUse - :one',
          ConditionExpression: 'inUse > :zero',
          ExpressionAttributeValues: { ':one': 1, ':zero': 0 },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
}
