import { matchesEventPattern } from '../../../local/services/event-pattern';

/** A Bedrock batch job state change, as EventBridge delivers it. */
const jobEvent = {
  version: '0',
  id: 'e1',
  'detail-type': 'Batch Inference Job State Change',
  source: 'aws.bedrock',
  account: '123456789012',
  time: '2024-05-01T12:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123'],
  detail: {
    batchJobArn: 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123',
    batchJobName: 'bb-run1-r01-c00000',
    status: 'Completed',
    records: 120,
    ratio: 0.5,
    cancelled: false,
    reason: null,
    tags: ['a', 'b', ['c']],
    source_ip: '10.0.0.33',
    outputs: [
      { kind: 'out', size: 10 },
      { kind: 'manifest', size: 2 },
    ],
  },
};

const m = (pattern: object, event: object = jobEvent) => matchesEventPattern(pattern, event);

describe('matchesEventPattern: exact values and structure', () => {
  it('matches the job-state rule of the stack', () => {
    expect(m({ source: ['aws.bedrock'], 'detail-type': ['Batch Inference Job State Change'] })).toBe(true);
    expect(m({ source: ['aws.s3'], 'detail-type': ['Batch Inference Job State Change'] })).toBe(false);
  });

  it('matches an S3 Object Created under a prefix', () => {
    const s3Event = {
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: { bucket: { name: 'drop' }, object: { key: 'inbox/default/a.jsonl', etag: 'x', size: 10 } },
    };
    const pattern = { source: ['aws.s3'], 'detail-type': ['Object Created'], detail: { bucket: { name: ['drop'] }, object: { key: [{ prefix: 'inbox/' }] } } };
    expect(m(pattern, s3Event)).toBe(true);
    expect(m(pattern, { ...s3Event, detail: { ...s3Event.detail, object: { key: 'results/x' } } })).toBe(false);
    expect(m(pattern, { ...s3Event, detail: { ...s3Event.detail, bucket: { name: 'other' } } })).toBe(false);
  });

  it('needs every field (AND) and any value of a field (OR)', () => {
    expect(m({ detail: { status: ['Failed', 'Completed'], batchJobName: ['bb-run1-r01-c00000'] } })).toBe(true);
    expect(m({ detail: { status: ['Failed', 'Completed'], batchJobName: ['other'] } })).toBe(false);
    expect(m({ detail: { status: [] } })).toBe(false);
  });

  it('matches numbers by value and never mixes strings and numbers', () => {
    expect(m({ detail: { records: [120] } })).toBe(true);
    expect(m({ detail: { records: [120.0] } })).toBe(true);
    expect(m({ detail: { records: ['120'] } })).toBe(false);
    expect(m({ detail: { status: [0] } })).toBe(false);
  });

  it('matches booleans and null exactly, null is not the empty string', () => {
    expect(m({ detail: { cancelled: [false] } })).toBe(true);
    expect(m({ detail: { cancelled: [true] } })).toBe(false);
    expect(m({ detail: { cancelled: ['false'] } })).toBe(false);
    expect(m({ detail: { reason: [null] } })).toBe(true);
    expect(m({ detail: { reason: [''] } })).toBe(false);
    expect(m({ detail: { missing: [null] } })).toBe(false);
    expect(m({ detail: { e: [''] } }, { detail: { e: '' } })).toBe(true);
  });

  it('matches an event array if any element matches, nested arrays flattened', () => {
    expect(m({ resources: ['arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123'] })).toBe(true);
    expect(m({ detail: { tags: ['b'] } })).toBe(true);
    expect(m({ detail: { tags: ['c'] } })).toBe(true);
    expect(m({ detail: { tags: ['z'] } })).toBe(false);
  });

  it('matches a nested pattern against an array of objects element by element', () => {
    expect(m({ detail: { outputs: { kind: ['manifest'], size: [2] } } })).toBe(true);
    // Fields from different elements do not combine.
    expect(m({ detail: { outputs: { kind: ['manifest'], size: [10] } } })).toBe(false);
  });

  it('does not match a nested pattern against a missing or primitive field', () => {
    expect(m({ detail: { nope: { a: ['x'] } } })).toBe(false);
    expect(m({ detail: { status: { a: ['x'] } } })).toBe(false);
    expect(m({ nothing: { here: ['x'] } })).toBe(false);
  });

  it('does not treat an object as a value', () => {
    expect(m({ detail: [{ exists: true }] })).toBe(false);
    expect(m({ detail: { outputs: ['out'] } })).toBe(false);
  });

  it('matches everything with an empty pattern', () => {
    expect(m({})).toBe(true);
  });
});

describe('matchesEventPattern: content filters', () => {
  it('prefix and suffix, strings only, with ignore-case variants', () => {
    expect(m({ detail: { batchJobName: [{ prefix: 'bb-run1-' }] } })).toBe(true);
    expect(m({ detail: { batchJobName: [{ prefix: 'BB-' }] } })).toBe(false);
    expect(m({ detail: { batchJobName: [{ prefix: { 'equals-ignore-case': 'BB-RUN1' } }] } })).toBe(true);
    expect(m({ detail: { batchJobName: [{ suffix: 'c00000' }] } })).toBe(true);
    expect(m({ detail: { batchJobName: [{ suffix: { 'equals-ignore-case': 'C00000' } }] } })).toBe(true);
    expect(m({ detail: { batchJobName: [{ suffix: 'c00001' }] } })).toBe(false);
    expect(m({ detail: { records: [{ prefix: '12' }] } })).toBe(false);
    expect(m({ detail: { missing: [{ prefix: '' }] } })).toBe(false);
  });

  it('equals-ignore-case', () => {
    expect(m({ detail: { status: [{ 'equals-ignore-case': 'COMPLETED' }] } })).toBe(true);
    expect(m({ detail: { status: [{ 'equals-ignore-case': 'complete' }] } })).toBe(false);
  });

  it('wildcard, with escapes and regex characters taken literally', () => {
    expect(m({ detail: { batchJobName: [{ wildcard: 'bb-*-c*' }] } })).toBe(true);
    expect(m({ detail: { batchJobName: [{ wildcard: 'bb-*-x*' }] } })).toBe(false);
    expect(m({ k: [{ wildcard: 'a\\*b' }] }, { k: 'a*b' })).toBe(true);
    expect(m({ k: [{ wildcard: 'a\\*b' }] }, { k: 'axxb' })).toBe(false);
    expect(m({ k: [{ wildcard: 'a.b*' }] }, { k: 'axb' })).toBe(false);
    expect(m({ k: [{ wildcard: 'a.b*' }] }, { k: 'a.b\nc' })).toBe(true);
    expect(m({ k: [{ wildcard: 'a\\\\b' }] }, { k: 'a\\b' })).toBe(true);
    expect(m({ k: [{ wildcard: '*' }] }, { k: 1 })).toBe(false);
  });

  it('anything-but with a value or a list of values', () => {
    expect(m({ detail: { status: [{ 'anything-but': 'InProgress' }] } })).toBe(true);
    expect(m({ detail: { status: [{ 'anything-but': 'Completed' }] } })).toBe(false);
    expect(m({ detail: { status: [{ 'anything-but': ['Failed', 'Stopped'] }] } })).toBe(true);
    expect(m({ detail: { status: [{ 'anything-but': ['Failed', 'Completed'] }] } })).toBe(false);
    expect(m({ detail: { records: [{ 'anything-but': [100, 200] }] } })).toBe(true);
    expect(m({ detail: { records: [{ 'anything-but': 120 }] } })).toBe(false);
    expect(m({ detail: { records: [{ 'anything-but': '120' }] } })).toBe(true);
  });

  it('anything-but needs the field to be present, and any array element may satisfy it', () => {
    expect(m({ detail: { missing: [{ 'anything-but': 'x' }] } })).toBe(false);
    expect(m({ detail: { tags: [{ 'anything-but': 'a' }] } })).toBe(true);
    expect(m({ k: [{ 'anything-but': 'a' }] }, { k: ['a', 'a'] })).toBe(false);
    expect(m({ k: [{ 'anything-but': 'a' }] }, { k: [] })).toBe(false);
  });

  it('anything-but with prefix, suffix, wildcard and equals-ignore-case', () => {
    expect(m({ region: [{ 'anything-but': { prefix: 'us-' } }] })).toBe(false);
    expect(m({ region: [{ 'anything-but': { prefix: 'eu-' } }] })).toBe(true);
    expect(m({ detail: { batchJobName: [{ 'anything-but': { suffix: '00' } }] } })).toBe(false);
    expect(m({ detail: { batchJobName: [{ 'anything-but': { wildcard: '*-r01-*' } }] } })).toBe(false);
    expect(m({ detail: { batchJobName: [{ 'anything-but': { wildcard: '*-r02-*' } }] } })).toBe(true);
    expect(m({ detail: { status: [{ 'anything-but': { 'equals-ignore-case': 'COMPLETED' } }] } })).toBe(false);
    expect(m({ detail: { status: [{ 'anything-but': { 'equals-ignore-case': ['failed', 'STOPPED'] } }] } })).toBe(true);
    expect(m({ detail: { status: [{ 'anything-but': { 'equals-ignore-case': ['failed', 'completed'] } }] } })).toBe(false);
  });

  it('exists: true needs a leaf value, false matches a missing field or an object', () => {
    expect(m({ detail: { status: [{ exists: true }] } })).toBe(true);
    expect(m({ detail: { reason: [{ exists: true }] } })).toBe(true);
    expect(m({ detail: { missing: [{ exists: true }] } })).toBe(false);
    expect(m({ detail: { missing: [{ exists: false }] } })).toBe(true);
    expect(m({ detail: { status: [{ exists: false }] } })).toBe(false);
    expect(m({ detail: [{ exists: false }] })).toBe(true);
    expect(m({ nowhere: { deeper: [{ exists: false }] } })).toBe(true);
    expect(m({ nowhere: { deeper: [{ exists: true }] } })).toBe(false);
    expect(m({ k: [{ exists: false }] }, { k: [] })).toBe(true);
  });

  it('numeric comparisons and ranges, numbers only', () => {
    expect(m({ detail: { records: [{ numeric: ['>', 100] }] } })).toBe(true);
    expect(m({ detail: { records: [{ numeric: ['>', 100, '<=', 120] }] } })).toBe(true);
    expect(m({ detail: { records: [{ numeric: ['>', 100, '<', 120] }] } })).toBe(false);
    expect(m({ detail: { records: [{ numeric: ['>=', 120, '<=', 120] }] } })).toBe(true);
    expect(m({ detail: { records: [{ numeric: ['=', 1.2e2] }] } })).toBe(true);
    expect(m({ detail: { ratio: [{ numeric: ['<', 1] }] } })).toBe(true);
    expect(m({ detail: { status: [{ numeric: ['>', 0] }] } })).toBe(false);
    expect(m({ k: [{ numeric: ['>', 0] }] }, { k: '5' })).toBe(false);
    expect(m({ k: [{ numeric: ['>', 0] }] }, { k: [-1, 3] })).toBe(true);
  });

  it('cidr for IPv4 and IPv6', () => {
    expect(m({ detail: { source_ip: [{ cidr: '10.0.0.0/24' }] } })).toBe(true);
    expect(m({ detail: { source_ip: [{ cidr: '10.0.1.0/24' }] } })).toBe(false);
    expect(m({ ip: [{ cidr: '2001:db8::/32' }] }, { ip: '2001:db8::1' })).toBe(true);
    expect(m({ ip: [{ cidr: '2001:db8::/32' }] }, { ip: '10.0.0.1' })).toBe(false);
  });

  it('mixes matchers in one array as OR', () => {
    expect(m({ detail: { status: ['Failed', { prefix: 'Comp' }] } })).toBe(true);
    expect(m({ detail: { status: ['Failed', { prefix: 'Stop' }, { exists: false }] } })).toBe(false);
  });
});

describe('matchesEventPattern: $or', () => {
  it('matches if any alternative matches, AND with the other fields', () => {
    const pattern = {
      source: ['aws.bedrock'],
      $or: [{ detail: { status: ['Failed'] } }, { detail: { records: [{ numeric: ['>', 100] }] } }],
    };
    expect(m(pattern)).toBe(true);
    expect(m({ ...pattern, source: ['aws.s3'] })).toBe(false);
    expect(m({ $or: [{ detail: { status: ['Failed'] } }, { region: ['eu-west-1'] }] })).toBe(false);
  });

  it('works nested, with an AND inside an alternative', () => {
    const pattern = {
      detail: {
        $or: [{ status: ['Failed'] }, { status: ['Completed'], $or: [{ records: [1] }, { cancelled: [false] }] }],
      },
    };
    expect(m(pattern)).toBe(true);
    expect(m(pattern, { detail: { status: 'Completed', cancelled: true } })).toBe(false);
  });
});

describe('matchesEventPattern: invalid patterns', () => {
  it.each([
    ['a leaf that is not an array', { source: 'aws.bedrock' }],
    ['an unknown matcher', { source: [{ contains: 'bed' }] }],
    ['a matcher with two operators', { source: [{ prefix: 'a', suffix: 'b' }] }],
    ['a bad numeric', { n: [{ numeric: ['~', 1] }] }],
    ['an odd numeric', { n: [{ numeric: ['>', 1, '<'] }] }],
    ['a bad exists', { n: [{ exists: 'yes' }] }],
    ['a non-string prefix', { n: [{ prefix: 1 }] }],
    ['a bad cidr', { n: [{ cidr: '10.0.0.0/33' }] }],
    ['anything-but with a boolean', { n: [{ 'anything-but': true }] }],
    ['anything-but with numeric', { n: [{ 'anything-but': { numeric: ['>', 1] } }] }],
    ['$or with a non-object', { $or: ['x'] }],
  ])('throws for %s', (_name, pattern) => {
    expect(() => matchesEventPattern(pattern, { source: 'aws.bedrock', n: 5 })).toThrow(/Invalid event pattern/);
  });

  it('throws for a pattern that is not an object', () => {
    expect(() => matchesEventPattern([] as unknown as object, {})).toThrow(/must be a JSON object/);
  });
});
