import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { main } from '../../cli/main';

const cfn = mockClient(CloudFormationClient);
afterAll(() => cfn.restore());

function io(tty = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: { write: (t: string) => out.push(t) > 0, isTTY: tty } as never, err: { write: (t: string) => err.push(t) > 0 } as never },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

describe('bedrock-batch command line', () => {
  test.each(['submit', 'status', 'list', 'results', 'stop', 'local up'])('%s --help describes the command and exits 0', async (command) => {
    const t = io();
    expect(await main([...command.split(' '), '--help'], t.io)).toBe(0);
    expect(t.out()).toMatch(new RegExp(`^Usage: bedrock-batch ${command} `));
  });

  it('local run --help prints its usage', async () => {
    const t = io();
    expect(await main(['local', 'run', '--help'], t.io)).toBe(0);
    expect(t.out()).toMatch(/^usage: bedrock-batch local run/);
  });

  test.each([
    [['status'], "bedrock-batch: missing required argument 'runId'"],
    [
      ['status', 'bad--id'],
      "bedrock-batch: command-argument value 'bad--id' is invalid for argument 'runId'. a run id is 1..40 letters, digits and single hyphens",
    ],
    [
      ['submit', 'a.jsonl', '--max-attempts', '0'],
      "bedrock-batch: option '--max-attempts <n>' argument '0' is invalid. --max-attempts must be an integer in 1..10",
    ],
    [
      ['submit', 'a.jsonl', '--small-remainder', 'later'],
      "bedrock-batch: option '--small-remainder <policy>' argument 'later' is invalid. Allowed choices are on-demand, hold, fail.",
    ],
    [
      ['estimate', 'a.jsonl', '--model', 'cohere.command-r-v1:0'],
      "bedrock-batch: option '--model <modelId>' argument 'cohere.command-r-v1:0' is invalid. unknown model family",
    ],
    [['list', '--stack', 'A', '--local', 'b'], "bedrock-batch: option '--local <dir>' cannot be used with option '--stack <name>'"],
    [['list', '--bogus'], "bedrock-batch: unknown option '--bogus'"],
    [
      ['local', 'up', '--state-dir', 's', '--model', 'anthropic.claude-3-haiku-20240307-v1:0', '--lambda-time-scale', '2'],
      "bedrock-batch: option '--lambda-time-scale <x>' argument '2' is invalid. --lambda-time-scale must be a number in 0.001..1, got '2'",
    ],
    [['sumbit'], "bedrock-batch: unknown command 'sumbit' (Did you mean submit?)"],
  ])('bad usage %j exits 2 with one line naming the argument', async (argv, message) => {
    const t = io();
    expect(await main(argv, t.io)).toBe(2);
    const lines = t.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(message)).toBe(true);
    expect(t.out()).toBe('');
  });

  it('estimate of a missing file is bad usage: exit 2, one line naming it', async () => {
    const t = io();
    expect(await main(['estimate', '/no/such.jsonl', '--model', 'anthropic.claude-3-haiku-20240307-v1:0'], t.io)).toBe(2);
    expect(t.err().trim().split('\n')).toHaveLength(1);
    expect(t.err()).toMatch(/^bedrock-batch: .*\/no\/such\.jsonl/);
  });

  it('no arguments: the help on stderr, exit 2', async () => {
    const t = io();
    expect(await main([], t.io)).toBe(2);
    expect(t.err()).toMatch(/^Usage: bedrock-batch /);
  });

  it('an unknown stack is one line and exit 1, never a stack trace', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError', $metadata: {} }));
    const t = io();
    const factories = { cloudFormation: () => new CloudFormationClient({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }) };
    expect(await main(['list', '--stack', 'Nope'], t.io, factories)).toBe(1);
    expect(t.err()).toBe('bedrock-batch: stack Nope does not exist in this region (Stack with id Nope does not exist)\n');
  });
});
