import { PIPELINE_FUNCTION_NAMES } from '../../lib/pipeline-functions';
import { buildStack, functionIdOf, onlyResource } from './helpers';

describe('monitoring', () => {
  const { template } = buildStack();
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as any[];

  test('alarms on failed and timed-out executions', () => {
    const sm = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      const alarm = alarms.find((a) => a.Properties.MetricName === metric);
      expect(alarm.Properties).toMatchObject({
        Namespace: 'AWS/States',
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: sm.id } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
  });

  test('alarms on errors of every function except acquire-slot (SlotUnavailable is back-pressure)', () => {
    const errorAlarms = alarms.filter((a) => a.Properties.MetricName === 'Errors' && a.Properties.Namespace === 'AWS/Lambda');
    const watched = errorAlarms.map((a) => a.Properties.Dimensions[0].Value.Ref).sort();
    const expected = PIPELINE_FUNCTION_NAMES.filter((n) => n !== 'acquire-slot').map((n) => functionIdOf(template, n));
    expect(watched).toEqual(expected.sort());
  });

  test('a dashboard exists', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});
