/**
 * JobSlotLimiter: the global cap on submitted + in-progress jobs per model, shared by every run
 * (Bedrock's quota is per model per account). One item per model holds the set of holders (job
 * names); taking and freeing a slot are each a single conditional update of that set, so the
 * cap can never be exceeded, a retried acquire or release changes nothing, and no crash can
 * leave a count without a holder. The same updates keep when each holder took its slot (an
 * attribute `acquired:<holder>`, epoch milliseconds), so that the sweeper can tell a holder whose
 * run died before its job item was written from one that is about to write it.
 */
import { GetCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './conditional-writes';
import { SLOT_UNAVAILABLE_ERROR } from './contracts';
import { baseModelId } from './model-family';

/** Thrown when the model's cap is reached; the workflow retries AcquireSlot after a pause. */
export class SlotUnavailable extends Error {
  override readonly name = SLOT_UNAVAILABLE_ERROR;
}

/**
 * One cap per base model: Bedrock's quota is per model, so a bare id, a system inference
 * profile and an ARN of the same model share it.
 */
const capKey = (modelId: string) => ({ pk: `CAP#${baseModelId(modelId)}`, sk: 'CAP' });

/** The cap item's attribute holding when `holder` took its slot. */
const ACQUIRED_PREFIX = 'acquired:';
const acquiredAttribute = (holder: string) => `${ACQUIRED_PREFIX}${holder}`;

/** A holder of a model's slots, with when it took the slot (unknown for slots taken before this was recorded). */
export interface SlotHolder {
  readonly holder: string;
  readonly acquiredAt: Date | undefined;
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
  async acquire(modelId: string, holder: string, limit: number, now = new Date()): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: capKey(modelId),
          UpdateExpression: 'ADD holders :holderSet SET #acquired = :now',
          ConditionExpression: 'attribute_not_exists(holders) OR size(holders) < :limit OR contains(holders, :holder)',
          ExpressionAttributeNames: { '#acquired': acquiredAttribute(holder) },
          ExpressionAttributeValues: { ':holderSet': new Set([holder]), ':holder': holder, ':limit': limit, ':now': now.getTime() },
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
          UpdateExpression: 'DELETE holders :holderSet REMOVE #acquired',
          ConditionExpression: 'contains(holders, :holder)',
          ExpressionAttributeNames: { '#acquired': acquiredAttribute(holder) },
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
    return (await this.slotHolders(modelId)).map((h) => h.holder);
  }

  /** The holders of a model's slots, with when each took its slot. */
  async slotHolders(modelId: string): Promise<SlotHolder[]> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: capKey(modelId), ConsistentRead: true }));
    const item = res.Item ?? {};
    const holders = item.holders as Set<string> | undefined;
    return [...(holders ?? [])].sort().map((holder) => {
      const at = item[acquiredAttribute(holder)] as number | undefined;
      return { holder, acquiredAt: typeof at === 'number' ? new Date(at) : undefined };
    });
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
  async recoverLeaked(modelId: string, isLeaked: (holder: SlotHolder) => Promise<boolean>): Promise<number> {
    let freed = 0;
    for (const holder of await this.slotHolders(modelId)) {
      if ((await isLeaked(holder)) && (await this.release(modelId, holder.holder))) freed += 1;
    }
    return freed;
  }
}
