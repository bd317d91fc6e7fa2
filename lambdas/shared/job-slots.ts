/**
 * JobSlotLimiter: the global cap on submitted + in-progress jobs per model, shared by every run
 * (Bedrock's quota is per model per account). One item per model holds the set of holders (job
 * names); taking and freeing a slot are each a single conditional update of that set, so the
 * cap can never be exceeded, a retried acquire or release changes nothing, and no crash can
 * leave a count without a holder. A holder whose run died is found and freed by the sweeper.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { baseModelId } from './model-family';

/** Thrown when the model's cap is reached; the workflow retries AcquireSlot after a pause. */
export class SlotUnavailable extends Error {
  override readonly name = 'SlotUnavailable';
}

/**
 * One cap per base model: Bedrock's quota is per model, so a bare id, a system inference
 * profile and an ARN of the same model share it.
 */
const capKey = (modelId: string) => ({ pk: `CAP#${baseModelId(modelId)}`, sk: 'CAP' });

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
   * holder that already has a slot keeps it and takes nothing more.
   */
  async acquire(modelId: string, holder: string, limit: number): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: capKey(modelId),
          UpdateExpression: 'ADD holders :holderSet',
          ConditionExpression: 'attribute_not_exists(holders) OR size(holders) < :limit OR contains(holders, :holder)',
          ExpressionAttributeValues: { ':holderSet': new Set([holder]), ':holder': holder, ':limit': limit },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new SlotUnavailable(`all ${limit} job slots of ${modelId} are in use`);
      throw err;
    }
  }

  /** Frees `holder`'s slot; returns false (and changes nothing) when it holds none. */
  async release(modelId: string, holder: string): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: capKey(modelId),
          UpdateExpression: 'DELETE holders :holderSet',
          ConditionExpression: 'contains(holders, :holder)',
          ExpressionAttributeValues: { ':holderSet': new Set([holder]), ':holder': holder },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** The holders of a model's slots. */
  async holders(modelId: string): Promise<string[]> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: capKey(modelId), ConsistentRead: true }));
    const holders = res.Item?.holders as Set<string> | undefined;
    return holders ? [...holders].sort() : [];
  }

  /** The models that have a slot item. */
  async models(): Promise<string[]> {
    const out: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :cap) AND sk = :sk',
          ExpressionAttributeValues: { ':cap': 'CAP#', ':sk': 'CAP' },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of res.Items ?? []) out.push(String(item.pk).slice('CAP#'.length));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /** Frees every slot whose holder `isLeaked` says is gone; returns how many were freed. */
  async recoverLeaked(modelId: string, isLeaked: (holder: string) => Promise<boolean>): Promise<number> {
    let freed = 0;
    for (const holder of await this.holders(modelId)) {
      if ((await isLeaked(holder)) && (await this.release(modelId, holder))) freed += 1;
    }
    return freed;
  }
}
