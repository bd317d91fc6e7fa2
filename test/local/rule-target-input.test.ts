import { ruleTargetInput } from '../../local/twin/rule-bindings';
import type { BusEvent } from '../../local/services/event-bus';

const EVENT = {
  version: '0',
  id: 'id-1',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2026-12-03T02:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:events:us-east-1:123456789012:rule/r'],
  detail: { nested: { n: 3 } },
} as unknown as BusEvent;

describe('ruleTargetInput (what the twin gives a rule target, as EventBridge does)', () => {
  it('applies an input transformer: a string placed unquoted in a JSON template arrives as a JSON string', () => {
    // What RuleTargetInput.fromObject({ sweep: { route, time: EventField.time } }) synthesizes.
    const target = { arn: 'a', inputTransformer: { InputPathsMap: { time: '$.time' }, InputTemplate: '{"sweep":{"route":"n","time":<time>}}' } };
    expect(ruleTargetInput(target, EVENT)).toEqual({ sweep: { route: 'n', time: '2026-12-03T02:00:00Z' } });
  });

  it('inserts numbers and objects as JSON, a missing path as null', () => {
    const target = {
      arn: 'a',
      inputTransformer: { InputPathsMap: { n: '$.detail.nested.n', d: '$.detail', x: '$.nope.deeper' }, InputTemplate: '{"n":<n>,"d":<d>,"x":<x>}' },
    };
    expect(ruleTargetInput(target, EVENT)).toEqual({ n: 3, d: { nested: { n: 3 } }, x: null });
  });

  it('sends a constant Input, the part at InputPath, or the whole event', () => {
    expect(ruleTargetInput({ arn: 'a', input: '{"k":1}' }, EVENT)).toEqual({ k: 1 });
    expect(ruleTargetInput({ arn: 'a', inputPath: '$.detail.nested' }, EVENT)).toEqual({ n: 3 });
    expect(ruleTargetInput({ arn: 'a' }, EVENT)).toBe(EVENT);
  });

  it('refuses what it does not emulate, clearly', () => {
    expect(() => ruleTargetInput({ arn: 'a', inputPath: '$.resources[0]' }, EVENT)).toThrow(
      'the twin supports only $.a.b paths in rule targets (got $.resources[0])',
    );
    expect(() => ruleTargetInput({ arn: 'a', inputTransformer: { InputTemplate: 'time is <time>' } }, EVENT)).toThrow(
      'rule target input template did not give JSON (the twin supports JSON templates only): time is <time>',
    );
  });
});
