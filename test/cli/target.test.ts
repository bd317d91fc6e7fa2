import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockClient } from 'aws-sdk-client-mock';
import { awsProblem, readEndpoints, resolveTarget, TargetError } from '../../cli/target';

const cfn = mockClient(CloudFormationClient);
const factories = { cloudFormation: () => new CloudFormationClient({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }) };
const output = (OutputKey: string, OutputValue: string) => ({ OutputKey, OutputValue });

beforeEach(() => cfn.reset());
afterAll(() => cfn.restore());

describe('resolveTarget --stack', () => {
  it("takes the bucket, state machine and table from the stack's outputs", async () => {
    cfn.on(DescribeStacksCommand, { StackName: 'Mine' }).resolves({
      Stacks: [
        {
          StackName: 'Mine',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [output('BucketName', 'b-1'), output('StateMachineArn', 'arn:aws:states:eu-west-1:1:stateMachine:sm'), output('JobTableName', 't-1')],
        },
      ],
    });
    const target = await resolveTarget({ stack: 'Mine' }, factories);
    expect({ bucket: target.bucket, sm: target.stateMachineArn, table: target.tableName, d: target.description }).toEqual({
      bucket: 'b-1',
      sm: 'arn:aws:states:eu-west-1:1:stateMachine:sm',
      table: 't-1',
      d: 'stack Mine (eu-west-1)',
    });
    expect(await target.s3.config.region()).toBe('eu-west-1');
    target.close();
  });

  it('asks for the default stack, BedrockBatch, when none is named', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id BedrockBatch does not exist'), { name: 'ValidationError', $metadata: {} }));
    await expect(resolveTarget({}, factories)).rejects.toThrow(/^stack BedrockBatch does not exist in this region/);
    expect(cfn.commandCalls(DescribeStacksCommand)[0]!.args[0].input).toEqual({ StackName: 'BedrockBatch' });
  });

  it('names the outputs a stack lacks', async () => {
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'Old', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: [output('BucketName', 'b')] }],
    });
    await expect(resolveTarget({ stack: 'Old' }, factories)).rejects.toThrow('stack Old has no output StateMachineArn, JobTableName');
  });

  it('says in one line that there are no credentials', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    const err = await resolveTarget({ stack: 'X' }, factories).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as Error).message).toMatch(/^no AWS credentials found/);
  });

  it('refuses --stack with --local', async () => {
    await expect(resolveTarget({ stack: 'X', local: '/tmp/x' })).rejects.toThrow('give --stack or --local, not both');
  });
});

describe('readEndpoints (--local DIR)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bb-endpoints-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));
  const endpoints = (pid: number) => ({
    version: 1,
    pid,
    region: 'us-east-1',
    bucket: 'b',
    stateMachineArn: 'arn:sm',
    tableName: 't',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    endpoints: { s3: 'http://127.0.0.1:1', sfn: 'http://127.0.0.1:2', dynamodb: 'http://127.0.0.1:3', bedrock: 'http://127.0.0.1:4' },
  });

  it('says how to start a twin when the folder has none', async () => {
    await expect(readEndpoints(dir)).rejects.toThrow(
      `no twin is running in ${dir} (no endpoints.json; start one with 'bedrock-batch local up --state-dir ${dir} --model <modelId>')`,
    );
  });

  it("reads a running twin's endpoints", async () => {
    await writeFile(join(dir, 'endpoints.json'), JSON.stringify(endpoints(process.pid)));
    expect((await readEndpoints(dir)).endpoints.sfn).toBe('http://127.0.0.1:2');
  });

  it('tells a twin that has ended from one that runs', async () => {
    // A pid far above any the kernel hands out (pid_max is at most 2^22).
    await writeFile(join(dir, 'endpoints.json'), JSON.stringify(endpoints(2 ** 30)));
    await expect(readEndpoints(dir)).rejects.toThrow(/is no longer running \(process 1073741824 has ended\)/);
  });

  it('refuses a file that is not an endpoints file', async () => {
    await writeFile(join(dir, 'endpoints.json'), JSON.stringify({ version: 1, pid: process.pid }));
    await expect(readEndpoints(dir)).rejects.toThrow(/is not an endpoints file/);
  });
});

describe('awsProblem', () => {
  it('keeps an access denial in one line naming where', () => {
    const err = awsProblem(Object.assign(new Error('User: x is not authorized\nmore'), { name: 'AccessDeniedException' }), 'stack S (eu-west-1)');
    expect(err.message).toBe('stack S (eu-west-1): AccessDeniedException: User: x is not authorized');
  });
});

describe('resolveTarget by resources (a pipeline in a stack of your own)', () => {
  afterEach(() => delete process.env.KEY_PREFIX);

  it('takes the bucket, state machine and table as given, and the key prefix the keys are made under', async () => {
    const target = await resolveTarget({
      bucket: 'lake',
      stateMachine: 'arn:aws:states:eu-west-1:1:stateMachine:m',
      table: 't',
      keyPrefix: 'teams/ml/',
      region: 'eu-west-1',
    });
    expect({ bucket: target.bucket, table: target.tableName, d: target.description }).toEqual({
      bucket: 'lake',
      table: 't',
      d: 'the pipeline of bucket lake (eu-west-1)',
    });
    expect(process.env.KEY_PREFIX).toBe('teams/ml/');
    target.close();
  });

  it('wants all three, and no --stack or --local beside them', async () => {
    await expect(resolveTarget({ bucket: 'lake', table: 't' })).rejects.toThrow('--bucket, --state-machine and --table go together');
    await expect(resolveTarget({ bucket: 'l', stateMachine: 'a', table: 't', stack: 'S' })).rejects.toThrow('not several');
    await expect(resolveTarget({ stack: 'S', keyPrefix: '/bad' })).rejects.toThrow("--key-prefix must be /-separated segments ending in '/', got '/bad'");
  });
});
