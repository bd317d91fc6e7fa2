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
 * Each model's profile has its own list, the list can depend on the calling region
 * (<https://docs.aws.amazon.com/bedrock/latest/userguide/cross-region-inference.html>:
 * `us.anthropic.claude-3-haiku-20240307-v1:0` called from us-east-2 routes to us-east-1,
 * us-east-2 or us-west-2, from us-west-2 to us-east-1 and us-west-2 only), and the lists grow.
 * The twin uses, per geography, the regions its profiles route to in the AWS pages above and in
 * the CDK Bedrock constructs' `CrossRegionInferenceProfileRegion` (read 2026-12-07), as both the
 * regions a profile may be called from and the regions it is authorized against; a profile
 * called from a region outside its list is refused (profileRegionProblem). A `global` profile
 * is authorized differently: against the model in the caller's region and the model's
 * region-less ARN, `arn:aws:bedrock:::foundation-model/<id>`, not one ARN per region
 * (<https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html>,
 * "IAM policy requirements"), so its one "region" here is the empty one. A grant with a region
 * wildcard (`arn:aws:bedrock:*::foundation-model/...`, what lib/model-arns.ts grants) matches
 * every one of these, the empty region too.
 */
import { parseModelId } from '../../lambdas/shared/model-catalog';

/** Bedrock's answer to a profile called from outside it (user-reported wording, see below). */
export const INVALID_MODEL_IDENTIFIER = 'The provided model identifier is invalid.';

/** Destination regions by profile prefix (`us.anthropic...` routes within `us`). */
export const PROFILE_DESTINATIONS: Readonly<Record<string, readonly string[]>> = {
  us: ['us-east-1', 'us-east-2', 'us-west-2'],
  eu: ['eu-central-1', 'eu-west-1', 'eu-west-3'],
  apac: ['ap-northeast-1', 'ap-northeast-2', 'ap-south-1', 'ap-southeast-1', 'ap-southeast-2'],
  // Region-less: `arn:aws:bedrock:::foundation-model/<id>` (see above).
  global: [''],
  'us-gov': ['us-gov-west-1', 'us-gov-east-1'],
  ca: ['ca-central-1', 'ca-west-1'],
  jp: ['ap-northeast-1', 'ap-northeast-3'],
  au: ['ap-southeast-2', 'ap-southeast-4'],
};

/**
 * The ARNs a call on a system inference profile (id or ARN) is authorized against: the profile
 * and its foundation model in each of the profile's destinations.
 * Undefined for anything else (a bare id, a foundation-model ARN, another ARN).
 */
export function profileModelArns(modelId: string, env: { readonly region: string; readonly account: string }): string[] | undefined {
  const { form, baseId } = parseModelId(modelId);
  const prefix = profilePrefix(modelId);
  if (prefix === undefined || !baseId) return undefined;
  // A geographic profile is called from inside its geography (profileRegionProblem), so its list
  // holds the caller's region; a global one adds the caller's region to the region-less ARN.
  const regions = new Set(prefix === 'global' ? [env.region, ''] : (PROFILE_DESTINATIONS[prefix] ?? [env.region]));
  const profile = form === 'profile' ? `arn:aws:bedrock:${env.region}:${env.account}:inference-profile/${modelId}` : modelId;
  return [profile, ...[...regions].map((region) => `arn:aws:bedrock:${region}::foundation-model/${baseId}`)];
}

/**
 * Why Bedrock would refuse a system inference profile (id or ARN) called from `region`, or
 * undefined when it would not (anything that is not such a profile included). A profile is
 * usable only "from any Region that is included in it"
 * (<https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-use.html>): a
 * geographic profile from a region of its geography (the twin's lists above), a profile ARN
 * from the region in the ARN; a `global` one from anywhere. The error is a
 * ValidationException whose text, `The provided model identifier is invalid.`, is as users
 * report it (<https://github.com/opensearch-project/agent-health/issues/298>: a `us.` profile
 * from eu-central-1); AWS does not document it.
 */
export function profileRegionProblem(modelId: string, region: string): string | undefined {
  const prefix = profilePrefix(modelId);
  if (prefix === undefined) return undefined;
  if (parseModelId(modelId).form === 'inference-profile-arn' && modelId.split(':')[3] !== region) return INVALID_MODEL_IDENTIFIER;
  const regions = PROFILE_DESTINATIONS[prefix];
  if (prefix === 'global' || !regions) return undefined;
  return regions.includes(region) ? undefined : INVALID_MODEL_IDENTIFIER;
}

/** The geography prefix (`us`, `global` ...) of a system inference profile's id or ARN; undefined for anything else. */
function profilePrefix(modelId: string): string | undefined {
  const { form } = parseModelId(modelId);
  if (form !== 'profile' && form !== 'inference-profile-arn') return undefined;
  const id = form === 'profile' ? modelId : modelId.slice(modelId.indexOf('/') + 1);
  return id.slice(0, id.indexOf('.'));
}
