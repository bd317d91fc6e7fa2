import { readHandlerConfig } from '../../../lambdas/shared/config';
import { pipeline } from '../support/fixtures';

const ENV = {
  PIPELINE_CONFIG: JSON.stringify(pipeline()),
  BUCKET_NAME: 'b',
  TABLE_NAME: 't',
  BEDROCK_ROLE_ARN: 'arn:role',
};

describe('readHandlerConfig', () => {
  it('reads the variables the stack sets, with defaults for the optional ones', () => {
    expect(readHandlerConfig(ENV)).toEqual({
      bucket: 'b',
      table: 't',
      bedrockRoleArn: 'arn:role',
      eventBusName: 'default',
      stateMachineArn: undefined,
      pipeline: pipeline(),
    });
    expect(readHandlerConfig({ ...ENV, EVENT_BUS_NAME: 'bus', STATE_MACHINE_ARN: 'arn:sm' })).toMatchObject({ eventBusName: 'bus', stateMachineArn: 'arn:sm' });
    expect(readHandlerConfig({ ...ENV, STACK_NAME: 'BedrockBatch' }).stackName).toBe('BedrockBatch');
  });

  it.each(['BUCKET_NAME', 'TABLE_NAME', 'BEDROCK_ROLE_ARN'])('names a missing %s', (name) => {
    expect(() => readHandlerConfig({ ...ENV, [name]: '' })).toThrow(`environment variable ${name} is not set`);
  });

  it('names PIPELINE_CONFIG when it is missing or not JSON', () => {
    expect(() => readHandlerConfig({ ...ENV, PIPELINE_CONFIG: undefined })).toThrow(/PIPELINE_CONFIG.*not set/);
    expect(() => readHandlerConfig({ ...ENV, PIPELINE_CONFIG: '{oops' })).toThrow(/^PIPELINE_CONFIG is not valid JSON: /);
  });
});
