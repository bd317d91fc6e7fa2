import { synthesizePipelineTemplate } from '../../lib/synth';
import { allStates, config, resolveFake } from './helpers';

describe('synthesizePipelineTemplate', () => {
  test('returns the template with the workflow and the handler-bound functions, silently', () => {
    const writes: string[] = [];
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => (writes.push(String(chunk)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: any) => (writes.push(String(chunk)), true));
    const log = jest.spyOn(console, 'log').mockImplementation((...a) => void writes.push(a.join(' ')));
    const warn = jest.spyOn(console, 'warn').mockImplementation((...a) => void writes.push(a.join(' ')));
    let template: any;
    try {
      template = synthesizePipelineTemplate(config());
    } finally {
      out.mockRestore();
      err.mockRestore();
      log.mockRestore();
      warn.mockRestore();
    }
    expect(writes).toEqual([]);

    const resources = Object.values(template.Resources) as any[];
    const handlers = resources.filter((r) => r.Type === 'AWS::Lambda::Function').map((r) => r.Metadata['bedrock-batch:handler']);
    expect(handlers).toHaveLength(11);
    const sm = resources.find((r) => r.Type === 'AWS::StepFunctions::StateMachine');
    const definition = JSON.parse(resolveFake(sm.Properties.DefinitionString) as string);
    expect(Object.keys(allStates(definition))).toContain('SubmitJob');
  });

  test('uses the given stack name, and is deterministic', () => {
    const a = synthesizePipelineTemplate(config(), { stackName: 'LocalTwin' });
    const b = synthesizePipelineTemplate(config(), { stackName: 'LocalTwin' });
    expect(a).toEqual(b);
    expect(JSON.stringify(a)).toContain('/aws/vendedlogs/states/LocalTwin-Workflow');
  });

  test('follows the config (cap and timeout in the definition)', () => {
    const t = synthesizePipelineTemplate({ ...config(), maxConcurrentJobs: 3, jobTimeoutHours: 24 });
    const sm = (Object.values(t.Resources) as any[]).find((r) => r.Type === 'AWS::StepFunctions::StateMachine');
    const states = allStates(JSON.parse(resolveFake(sm.Properties.DefinitionString) as string));
    expect(states.ProcessChunks.MaxConcurrency).toBe(3);
    expect(states.SubmitJob.TimeoutSeconds).toBe(30 * 3600);
  });
});
