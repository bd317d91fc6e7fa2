/**
 * The regions a cross-Region (system-defined) inference profile routes requests to, as the twin
 * models them. IAM authorizes a call on a profile against the profile's ARN and the foundation
 * model's ARN in each destination region, for `bedrock:InvokeModel*` and
 * `bedrock:CreateModelInvocationJob` alike, so a grant that names the model in the caller's
 * region only works for a bare model id and fails for a profile
 * (<https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html>,
 * <https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html>:
 * "update ... IAM policies to allow all required Amazon Bedrock inference actions (for example,
 * bedrock:InvokeModel* or bedrock:CreateModelInvocationJob) in all destination Regions included
 * in your selected inference profile"; docs/BEDROCK-FACTS.md §8).
 *
 * Each model's profile has its own list, and the lists grow. The twin uses, per geography, the
 * regions its profiles route to in the AWS pages above and in the CDK Bedrock constructs'
 * `CrossRegionInferenceProfileRegion` (read 2026-12-07), plus the caller's own region. A `global`
 * profile is authorized differently: against the model in the caller's region and the model's
 * region-less ARN, `arn:aws:bedrock:::foundation-model/<id>`, not one ARN per region
 * (<https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html>,
 * "IAM policy requirements"), so its one "region" here is the empty one. A grant with a region
 * wildcard (`arn:aws:bedrock:*::foundation-model/...`, what lib/model-arns.ts grants) matches
 * every one of these, the empty region too.
 */
import { parseModelId } from '../../lambdas/shared/model-catalog';

/** Destination regions by profile prefix (`us.anthropic...` routes within `us`). */
export const PROFILE_DESTINATIONS: Readonly<Record<string, readonly string[]>> = {
  us: ['us-east-1', 'us-east-2', 'us-west-2'],
  eu: ['eu-central-1', 'eu-west-1', 'eu-west-3'],
  apac: ['ap-northeast-1', 'ap-southeast-1', 'ap-southeast-2'],
  // Region-less: `arn:aws:bedrock:::foundation-model/<id>` (see above).
  global: [''],
  'us-gov': ['us-gov-west-1', 'us-gov-east-1'],
  ca: ['ca-central-1', 'ca-west-1'],
  jp: ['ap-northeast-1', 'ap-northeast-3'],
  au: ['ap-southeast-2', 'ap-southeast-4'],
};

/**
 * The ARNs a call on a system inference profile (id or ARN) is authorized against: the profile
 * and its foundation model in the caller's region and each of the profile's destinations.
 * Undefined for anything else (a bare id, a foundation-model ARN, another ARN).
 */
export function profileModelArns(modelId: string, env: { readonly region: string; readonly account: string }): string[] | undefined {
  const { form, baseId } = parseModelId(modelId);
  if ((form !== 'profile' && form !== 'inference-profile-arn') || !baseId) return undefined;
  const id = form === 'profile' ? modelId : modelId.slice(modelId.indexOf('/') + 1);
  const prefix = id.slice(0, id.indexOf('.'));
  const regions = new Set([env.region, ...(PROFILE_DESTINATIONS[prefix] ?? [])]);
  const profile = form === 'profile' ? `arn:aws:bedrock:${env.region}:${env.account}:inference-profile/${modelId}` : modelId;
  return [profile, ...[...regions].map((region) => `arn:aws:bedrock:${region}::foundation-model/${baseId}`)];
}
