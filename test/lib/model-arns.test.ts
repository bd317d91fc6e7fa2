import { modelInvocationJobArnPattern, modelResourceArns, modelResourceArnsOf, usesInferenceProfile } from '../../lib/model-arns';
import { FAKE } from './helpers';

describe('model ARNs', () => {
  test('a bare model id is its foundation model in the region', () => {
    expect(usesInferenceProfile('anthropic.claude-3-haiku-20240307-v1:0')).toBe(false);
    expect(modelResourceArns('anthropic.claude-3-haiku-20240307-v1:0', FAKE)).toEqual([
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
    ]);
  });

  test('a system inference profile id is the profile plus its foundation model in any region', () => {
    expect(usesInferenceProfile('us.anthropic.claude-3-5-haiku-20241022-v1:0')).toBe(true);
    expect(modelResourceArns('us.anthropic.claude-3-5-haiku-20241022-v1:0', FAKE)).toEqual([
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
      'arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
    ]);
  });

  test('ARNs are taken as given', () => {
    const fm = 'arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0';
    expect(usesInferenceProfile(fm)).toBe(false);
    expect(modelResourceArns(fm, FAKE)).toEqual([fm]);
    const profile = 'arn:aws:bedrock:eu-west-1:111122223333:inference-profile/eu.amazon.nova-lite-v1:0';
    expect(usesInferenceProfile(profile)).toBe(true);
    expect(modelResourceArns(profile, FAKE)).toEqual([profile, 'arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0']);
    const app = 'arn:aws:bedrock:eu-west-1:111122223333:application-inference-profile/abc123def456';
    expect(usesInferenceProfile(app)).toBe(true);
    expect(modelResourceArns(app, FAKE)).toEqual([app]);
  });

  test('several ids are deduplicated', () => {
    const id = 'anthropic.claude-3-haiku-20240307-v1:0';
    expect(modelResourceArnsOf([id, id], FAKE)).toHaveLength(1);
  });

  test('job ARN pattern', () => {
    expect(modelInvocationJobArnPattern(FAKE)).toBe('arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/*');
  });
});
