import { chance, FAULT_NAMES, FaultDecider, parseFaultSpec } from '../../../local/emulator/faults';

describe('parseFaultSpec', () => {
  it('parses name=rate pairs', () => {
    expect(parseFaultSpec('record-error=0.1,job-fail=0.2')).toEqual({ 'record-error': 0.1, 'job-fail': 0.2 });
    expect(parseFaultSpec(' drop-events = 1 , duplicate-events=0 ')).toEqual({ 'drop-events': 1, 'duplicate-events': 0 });
    expect(parseFaultSpec('')).toEqual({});
  });

  it('knows every documented fault', () => {
    expect(FAULT_NAMES).toEqual([
      'record-error',
      'record-throttle',
      'job-fail',
      'job-partial',
      'job-expire',
      'create-throttle',
      'drop-events',
      'duplicate-events',
      'reorder-events',
      'arn-model-id',
      'long-outputs',
      'handler-crash',
      'duplicate-invocation',
    ]);
    for (const name of FAULT_NAMES) expect(parseFaultSpec(`${name}=0.5`)).toEqual({ [name]: 0.5 });
  });

  it.each([
    ['record-eror=0.1', /unknown fault "record-eror"/],
    ['record-error', /fault "record-error" has no rate/],
    ['record-error=', /needs a rate from 0 to 1, got ""/],
    ['record-error=abc', /needs a rate from 0 to 1, got "abc"/],
    ['record-error=1.5', /needs a rate from 0 to 1, got "1.5"/],
    ['record-error=-0.1', /needs a rate from 0 to 1/],
    ['job-fail=0.1,,job-expire=0.1', /empty fault/],
    ['job-fail=0.1,job-fail=0.2', /"job-fail" is given more than once/],
  ])('rejects %p with a one-line message naming the bad part', (spec, message) => {
    let error: Error | undefined;
    try {
      parseFaultSpec(spec);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain('\n');
  });
});

describe('FaultDecider', () => {
  it('is deterministic per seed and subject, and near its rate', () => {
    const a = new FaultDecider({ 'record-error': 0.3 }, 5);
    const b = new FaultDecider({ 'record-error': 0.3 }, 5);
    const c = new FaultDecider({ 'record-error': 0.3 }, 6);
    const ids = Array.from({ length: 2000 }, (_, i) => `r${i}`);
    const fired = (d: FaultDecider) => ids.filter((id) => d.fires('record-error', 'job', id));
    expect(fired(a)).toEqual(fired(b));
    expect(fired(a)).not.toEqual(fired(c));
    expect(fired(a).length / ids.length).toBeGreaterThan(0.25);
    expect(fired(a).length / ids.length).toBeLessThan(0.35);
  });

  it('never fires an unset fault and always fires a rate of 1', () => {
    const d = new FaultDecider({ 'job-fail': 1 });
    expect(d.fires('job-fail', 'x')).toBe(true);
    expect(d.fires('job-expire', 'x')).toBe(false);
    expect(d.seed).toBe(1);
  });

  it('spreads chance() over [0, 1)', () => {
    const values = Array.from({ length: 1000 }, (_, i) => chance(1, 'k', i));
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(values.filter((v) => v < 0.5).length).toBeGreaterThan(400);
  });
});
