/** What a DynamoDB conditional write that was refused looks like, whichever client threw it. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/** True when `err` is DynamoDB's refusal of a write whose condition did not hold. */
export function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException';
}
