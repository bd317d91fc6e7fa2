/**
 * IAM resource ARNs of the models the routes use. Pure functions: the partition, region and
 * account are passed in (CloudFormation tokens in the stack, literals in tests).
 */
import { baseModelId } from '../lambdas/shared/model-family';

/** Where the ARNs are built for. */
export interface ArnEnvironment {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

function arnResourceType(arn: string): string {
  // arn:partition:service:region:account:resource-type/resource-id
  const resource = arn.split(':').slice(5).join(':');
  return resource.split('/')[0] ?? '';
}

/**
 * True when the model id goes through an inference profile: a system profile id
 * (`us.anthropic...`, `global.anthropic...`) or an `inference-profile`/`application-inference-profile` ARN.
 */
export function usesInferenceProfile(modelId: string): boolean {
  if (modelId.startsWith('arn:')) {
    const type = arnResourceType(modelId);
    return type === 'inference-profile' || type === 'application-inference-profile';
  }
  return baseModelId(modelId) !== modelId;
}

/**
 * The ARNs `bedrock:InvokeModel` (and `CreateModelInvocationJob`) are authorized against for
 * one model id:
 * - a bare model id: its foundation-model ARN in the stack's region;
 * - a foundation-model ARN: itself;
 * - an inference profile (id or ARN): the profile ARN and the foundation model in every
 *   region (`bedrock:*::foundation-model/...`), because a profile routes requests to the
 *   regions it spans and each of them authorizes the foundation model.
 */
export function modelResourceArns(modelId: string, env: ArnEnvironment): string[] {
  const foundationModelAnyRegion = (id: string) => `arn:${env.partition}:bedrock:*::foundation-model/${id}`;
  if (modelId.startsWith('arn:')) {
    const type = arnResourceType(modelId);
    if (type === 'inference-profile') return [modelId, foundationModelAnyRegion(baseModelId(modelId))];
    return [modelId];
  }
  if (usesInferenceProfile(modelId)) {
    return [`arn:${env.partition}:bedrock:${env.region}:${env.account}:inference-profile/${modelId}`, foundationModelAnyRegion(baseModelId(modelId))];
  }
  return [`arn:${env.partition}:bedrock:${env.region}::foundation-model/${modelId}`];
}

/** The ARNs of several model ids, deduplicated, in first-seen order. */
export function modelResourceArnsOf(modelIds: Iterable<string>, env: ArnEnvironment): string[] {
  const arns = new Set<string>();
  for (const id of modelIds) for (const arn of modelResourceArns(id, env)) arns.add(arn);
  return [...arns];
}

/** The ARN pattern of this account's batch inference jobs in the region. */
export function modelInvocationJobArnPattern(env: ArnEnvironment): string {
  return `arn:${env.partition}:bedrock:${env.region}:${env.account}:model-invocation-job/*`;
}
