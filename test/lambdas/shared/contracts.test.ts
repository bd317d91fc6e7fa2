import fc from 'fast-check';
import { PIPELINE_DEFAULTS } from '../../../lib/pipeline-config';
import { HANDLER_METADATA_KEY as LIB_HANDLER_METADATA_KEY } from '../../../lib/batch-function';
import { SLOT_UNAVAILABLE_ERROR as WORKFLOW_SLOT_UNAVAILABLE_ERROR } from '../../../lib/state-machine';
import { HANDLER_METADATA_KEY as TWIN_HANDLER_METADATA_KEY } from '../../../local/services/template';
import { SlotUnavailable } from '../../../lambdas/shared/job-slots';
import {
  chunkLabel,
  DEFAULT_HISTORY_EVENT_BUDGET,
  HANDLER_METADATA_KEY,
  SLOT_UNAVAILABLE_ERROR,
  clientRequestTokenFor,
  isTerminalStatus,
  isValidRunId,
  jobNameFor,
  parseJobName,
  parseS3Uri,
  roundLabel,
  runKeys,
  s3Uri,
} from '../../../lambdas/shared/contracts';

/** Bedrock's patterns (docs/BEDROCK-FACTS.md §1), anchored as Bedrock matches the whole value. */
const JOB_NAME = /^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$/;
const CLIENT_REQUEST_TOKEN = /^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$/;

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('');

/** Valid run ids: 1..40 letters, digits and single hyphens, alphanumeric at both ends. */
const runIdArb = fc
  .array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ALNUM) }, { weight: 1, arbitrary: fc.constant('-') }), { minLength: 1, maxLength: 40 })
  .map((cs) =>
    cs
      .join('')
      .replace(/-+/g, '-')
      .replace(/^-+|-+$/g, ''),
  )
  .filter((s) => s.length > 0);

describe('run ids', () => {
  it.each(['a', 'run-1', 'A1-b2-C3', 'x'.repeat(40), '0'])('accepts %s', (id) => expect(isValidRunId(id)).toBe(true));
  it.each(['', '-a', 'a-', 'a--b', 'a_b', 'a.b', 'a b', 'x'.repeat(41), 'é'])('rejects %j', (id) => expect(isValidRunId(id)).toBe(false));

  it('accepts every generated run id', () => {
    fc.assert(fc.property(runIdArb, (id) => isValidRunId(id)));
  });
});

describe('job names and client request tokens', () => {
  it('match Bedrock patterns and length for every valid run id, round and chunk', () => {
    fc.assert(
      fc.property(runIdArb, fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 99999 }), (runId, round, chunk) => {
        const name = jobNameFor(runId, round, chunk);
        expect(name).toMatch(JOB_NAME);
        expect(name.length).toBeLessThanOrEqual(63);
        const token = clientRequestTokenFor(runId, round, chunk);
        expect(token).toMatch(CLIENT_REQUEST_TOKEN);
        expect(token.length).toBeLessThanOrEqual(256);
        expect(parseJobName(name)).toEqual({ runId, round, chunk });
      }),
      { numRuns: 1000 },
    );
  });

  it('fits the worst case: a 40-character run id, round 10, chunk 99999', () => {
    const runId = 'a1'.repeat(20);
    const name = jobNameFor(runId, 10, 99999);
    expect(name).toBe(`bb-${runId}-r10-c99999`);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(JOB_NAME);
    expect(clientRequestTokenFor(runId, 10, 99999)).toMatch(CLIENT_REQUEST_TOKEN);
  });

  it('is stable and distinct per (run, round, chunk)', () => {
    expect(clientRequestTokenFor('r', 1, 2)).toBe(clientRequestTokenFor('r', 1, 2));
    const all = new Set<string>();
    for (const runId of ['a', 'a-r01']) for (const round of [1, 2, 11]) for (const chunk of [0, 1, 10]) all.add(clientRequestTokenFor(runId, round, chunk));
    expect(all.size).toBe(18);
  });

  it('parses names that embed round-like text in the run id', () => {
    expect(parseJobName('bb-x-r12-c12345-r01-c00002')).toEqual({ runId: 'x-r12-c12345', round: 1, chunk: 2 });
  });

  it.each(['job-1', 'bb-run-r1-c00001', 'bb-run-r01-c0001', 'bb--r01-c00001', 'xbb-run-r01-c00001', 'bb-run-r01-c00001-x'])('does not parse %s', (name) => {
    expect(parseJobName(name)).toBeUndefined();
  });

  it('pads labels', () => {
    expect(roundLabel(1)).toBe('r01');
    expect(roundLabel(10)).toBe('r10');
    expect(chunkLabel(0)).toBe('c00000');
    expect(chunkLabel(123456)).toBe('c123456');
  });
});

describe('S3 layout', () => {
  it('keeps every run key out of inbox/ and scopes Bedrock to jobs-input/ and jobs-output/', () => {
    expect(runKeys.chunkInput('run', 2, 3)).toBe('jobs-input/run/r02/c00003.jsonl');
    expect(runKeys.chunkOutputPrefix('run', 2, 3)).toBe('jobs-output/run/r02/c00003/');
    expect(runKeys.chunkPart('run', 1, 0, 'retry')).toBe('work/run/r01/c00000/retry.jsonl');
    expect(runKeys.chunkStats('run', 1, 0)).toBe('work/run/r01/c00000/stats.json');
    expect(runKeys.roundTail('run', 1, 0)).toBe('work/run/r01/tail-0.jsonl');
    expect(runKeys.roundRemainder('run', 1)).toBe('work/run/r01/remainder.jsonl');
    expect(runKeys.roundPart('run', 1, 'failed')).toBe('work/run/r01/remainder-failed.jsonl');
    expect(runKeys.remainderStats('run', 1)).toBe('work/run/r01/remainder-stats.json');
    expect(runKeys.exhausted('run', 3)).toBe('work/run/r03/exhausted.jsonl');
    expect(runKeys.workRejected('run')).toBe('work/run/rejected.jsonl');
    expect(runKeys.runStats('run')).toBe('work/run/run-stats.json');
    expect(runKeys.results('run', 'summary.json')).toBe('results/run/summary.json');
    expect(runKeys.held('tickets', 'run', 2)).toBe('held/tickets/run-r02.jsonl');
  });

  it('parses and builds S3 URIs', () => {
    expect(parseS3Uri('s3://b/a/b.jsonl')).toEqual({ bucket: 'b', key: 'a/b.jsonl' });
    expect(parseS3Uri('s3://b/')).toEqual({ bucket: 'b', key: '' });
    expect(() => parseS3Uri('s3:///k')).toThrow(/not an S3 URI/);
    expect(() => parseS3Uri('https://b/k')).toThrow(/not an S3 URI/);
    expect(s3Uri('b', 'k/x')).toBe('s3://b/k/x');
  });

  it('knows the terminal statuses', () => {
    for (const s of ['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired']) expect(isTerminalStatus(s)).toBe(true);
    for (const s of ['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Stopping', undefined]) expect(isTerminalStatus(s)).toBe(false);
  });
});

describe('constants that cross layers (defined once here; lib/, lambdas/ and local/ import them)', () => {
  it('the error AcquireSlot throws is the one the workflow catches', () => {
    expect(new SlotUnavailable('cap full').name).toBe(SLOT_UNAVAILABLE_ERROR);
    expect(WORKFLOW_SLOT_UNAVAILABLE_ERROR).toBe(SLOT_UNAVAILABLE_ERROR);
  });

  it('the handler metadata key the stack writes is the one the twin reads', () => {
    expect(HANDLER_METADATA_KEY).toBe('bedrock-batch:handler');
    expect(LIB_HANDLER_METADATA_KEY).toBe(HANDLER_METADATA_KEY);
    expect(TWIN_HANDLER_METADATA_KEY).toBe(HANDLER_METADATA_KEY);
  });

  it('the history budget default of the configuration is the one next-window falls back to', () => {
    expect(DEFAULT_HISTORY_EVENT_BUDGET).toBeLessThan(25000);
    expect(PIPELINE_DEFAULTS.historyEventBudget).toBe(DEFAULT_HISTORY_EVENT_BUDGET);
  });
});
