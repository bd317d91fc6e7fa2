/**
 * The job items of the table: one per chunk job, keyed by the Bedrock job name, written before
 * the job is created so that a state-change event can always find its task token.
 */
import { GetCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface JobItem {
  readonly jobName: string;
  readonly runId: string;
  readonly round: number;
  readonly chunk: number;
  readonly modelId: string;
  /** The token of the attempt that stored the item last. */
  readonly taskToken: string;
  /**
   * Every attempt's token (a string set): attempts of SubmitJob can overlap (Step Functions
   * retries on a Lambda service error while the first one may still run), so the last one to
   * store its token is not always the live one. Completion sends to all of them.
   */
  readonly taskTokens?: ReadonlySet<string>;
  readonly jobArn?: string;
  /** `Submitting` until the job exists, then Bedrock's status as last seen. */
  readonly status: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Set once the task token has been completed. */
  readonly tokenCompletedAt?: string;
}

/** Days a job item is kept after its last change (table TTL on `expiresAt`). */
const RETENTION_DAYS = 30;

const key = (jobName: string) => ({ pk: `JOB#${jobName}`, sk: 'JOB' });

export class JobRecords {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /**
   * Stores the item with this attempt's task token, added to the tokens of earlier attempts
   * (a retried submit), and opens it again: the new token is not completed yet.
   */
  async putSubmitting(item: Omit<JobItem, 'status' | 'createdAt' | 'updatedAt' | 'taskTokens'>, now = new Date()): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(item.jobName),
        UpdateExpression:
          'SET jobName = :name, runId = :run, #round = :round, chunk = :chunk, modelId = :model, taskToken = :token, #s = :submitting, ' +
          'createdAt = if_not_exists(createdAt, :now), updatedAt = :now, expiresAt = :exp ADD taskTokens :tokens REMOVE tokenCompletedAt',
        ExpressionAttributeNames: { '#s': 'status', '#round': 'round' },
        ExpressionAttributeValues: {
          ':name': item.jobName,
          ':run': item.runId,
          ':round': item.round,
          ':chunk': item.chunk,
          ':model': item.modelId,
          ':token': item.taskToken,
          ':tokens': new Set([item.taskToken]),
          ':submitting': 'Submitting',
          ':now': now.toISOString(),
          ':exp': expiry(now),
        },
      }),
    );
  }

  async get(jobName: string): Promise<JobItem | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: key(jobName), ConsistentRead: true }));
    return res.Item as JobItem | undefined;
  }

  /** Records the job ARN and Bedrock's status. */
  async setStatus(jobName: string, status: string, jobArn?: string, now = new Date()): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(jobName),
        UpdateExpression: `SET #s = :s, updatedAt = :now, expiresAt = :exp${jobArn ? ', jobArn = :arn' : ''}`,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': status, ':now': now.toISOString(), ':exp': expiry(now), ...(jobArn ? { ':arn': jobArn } : {}) },
      }),
    );
  }

  /**
   * Records the ARN of a job just created, and `Submitted` unless a state-change event got
   * there first with a later status (a retried submit's item already holds the ARN, so its
   * job's events are recorded while the retry's create call runs).
   */
  async setCreated(jobName: string, jobArn: string, now = new Date()): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(jobName),
          UpdateExpression: 'SET jobArn = :arn, updatedAt = :now, #s = :submitted',
          ConditionExpression: '#s = :submitting',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':arn': jobArn, ':now': now.toISOString(), ':submitted': 'Submitted', ':submitting': 'Submitting' },
        }),
      );
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
      // An event recorded a later status first; keep it, and make sure the ARN is there.
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(jobName),
          UpdateExpression: 'SET jobArn = :arn, updatedAt = :now',
          ExpressionAttributeValues: { ':arn': jobArn, ':now': now.toISOString() },
        }),
      );
    }
  }

  /**
   * Marks the item's task tokens completed. Given `tokenCount` (how many tokens the caller sent
   * to), only while the item still holds that many: a retried submit may have added one
   * meanwhile, which must stay open for its own completion. Returns false when it has more, or
   * when the item is gone (deleted by TTL after it was read): an update would create a stub.
   */
  async markTokenCompleted(jobName: string, opts: { readonly tokenCount?: number; readonly now?: Date } = {}): Promise<boolean> {
    const { tokenCount, now = new Date() } = opts;
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(jobName),
          UpdateExpression: 'SET tokenCompletedAt = :now',
          ConditionExpression: tokenCount === undefined ? 'attribute_exists(pk)' : 'size(taskTokens) = :n',
          ExpressionAttributeValues: { ':now': now.toISOString(), ...(tokenCount === undefined ? {} : { ':n': tokenCount }) },
        }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  /** Jobs whose task token is still open (of one run, when given): what the sweeper polls. */
  async openJobs(runId?: string): Promise<JobItem[]> {
    const out: JobItem[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: `begins_with(pk, :job) AND attribute_not_exists(tokenCompletedAt)${runId ? ' AND runId = :run' : ''}`,
          ExpressionAttributeValues: { ':job': 'JOB#', ...(runId ? { ':run': runId } : {}) },
          ExclusiveStartKey: start,
        }),
      );
      out.push(...((res.Items ?? []) as JobItem[]));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }
}

function expiry(now: Date): number {
  return Math.floor(now.getTime() / 1000) + RETENTION_DAYS * 86400;
}

/** Every task token of an item: its attempts' set, and the last one stored (items written before the set had only that). */
export function tokensOf(item: Pick<JobItem, 'taskToken' | 'taskTokens'>): string[] {
  return [...new Set([...(item.taskTokens ?? []), item.taskToken])];
}
