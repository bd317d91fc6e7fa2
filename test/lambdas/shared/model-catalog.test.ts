import { batchModelProblem, catalogModel, MODEL_CATALOG, parseModelId } from '../../../lambdas/shared/model-catalog';
import { modelFamily } from '../../../lambdas/shared/model-family';

test.each([
  ['anthropic.claude-3-haiku-20240307-v1:0', 'bare', 'anthropic.claude-3-haiku-20240307-v1:0'],
  ['global.anthropic.claude-sonnet-4-5-20250929-v1:0', 'profile', 'anthropic.claude-sonnet-4-5-20250929-v1:0'],
  ['arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0', 'foundation-model-arn', 'amazon.nova-lite-v1:0'],
  ['arn:aws:bedrock:eu-west-1:111122223333:inference-profile/eu.amazon.nova-pro-v1:0', 'inference-profile-arn', 'amazon.nova-pro-v1:0'],
  ['arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abcdef123456', 'application-inference-profile-arn', undefined],
])('%s is a %s id of %s', (id, form, baseId) => {
  expect(parseModelId(id)).toEqual({ form, baseId });
});

test('accepts a batch model by its bare id or a profile, and a profile-only model through a profile only', () => {
  expect(batchModelProblem('anthropic.claude-3-haiku-20240307-v1:0')).toBeUndefined();
  expect(batchModelProblem('us.anthropic.claude-3-haiku-20240307-v1:0')).toBeUndefined();
  expect(batchModelProblem('us.amazon.nova-premier-v1:0')).toBeUndefined();
  expect(batchModelProblem('amazon.nova-premier-v1:0')).toMatch(/inference profile/);
  expect(batchModelProblem('anthropic.claude-instant-v1')).toMatch(/not supported/);
  expect(batchModelProblem('cohere.command-r-v1:0')).toMatch(/invalid/);
});

test('every entry is of a family the pipeline knows, with sane quotas', () => {
  for (const model of MODEL_CATALOG.values()) {
    expect(modelFamily(model.id)).toBe(model.family);
    expect(catalogModel(model.id)).toBe(model);
    expect(model.quotas.minRecordsPerJob).toBeLessThanOrEqual(model.quotas.maxRecordsPerJob);
    if (!model.confirmed) expect(model.note).toBeTruthy();
  }
});
