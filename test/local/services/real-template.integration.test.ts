/**
 * The template helpers over the real synthesized stack (lib/synth.ts), so the twin's reading of
 * the template stays in step with what lib/ writes.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadPipelineConfig } from '../../../lib/pipeline-config';
import { HANDLER_METADATA_KEY as LIB_HANDLER_METADATA_KEY } from '../../../lib/batch-function';
import { synthesizePipelineTemplate } from '../../../lib/synth';
import { createTablesFromTemplate, localDynamoClientConfig, startLocalDynamo } from '../../../local/services/dynamodb';
import { matchesEventPattern } from '../../../local/services/event-pattern';
import { runStateMachine, taskStateNames } from '../../../local/services/step-functions';
import { fakeResolver, logicalIdFromFakeArn } from '../../../local/services/fake-arns';
import { eventRules, HANDLER_METADATA_KEY, lambdaFunctions, stateMachineDefinition } from '../../../local/services/template';
import type { CfnTemplate } from '../../../local/services/template-intrinsics';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const cdkJson = require('../../../cdk.json') as { context: { bedrockBatch: unknown } };

describe('template helpers over the synthesized stack', () => {
  const template = synthesizePipelineTemplate(loadPipelineConfig(cdkJson.context.bedrockBatch)) as CfnTemplate;
  // The drop bucket: the one the inbox rule's pattern names.
  const bucketId = Object.values(template.Resources ?? {})
    .filter((r) => r.Type === 'AWS::Events::Rule')
    .map((r) => (r.Properties?.EventPattern as { detail?: { bucket?: { name?: Array<{ Ref?: string }> } } } | undefined)?.detail?.bucket?.name?.[0]?.Ref)
    .find((ref) => ref !== undefined);
  const resolve = fakeResolver(template, { names: bucketId ? { [bucketId]: 'local-drop' } : {} });
  const functions = lambdaFunctions(template, resolve);
  const definition = stateMachineDefinition(template, resolve);

  it('uses the same handler metadata key as lib/', () => {
    expect(bucketId).toBeDefined();
    expect(HANDLER_METADATA_KEY).toBe(LIB_HANDLER_METADATA_KEY);
  });

  it('finds every function with its handler name and a fully resolved environment', () => {
    expect(functions.length).toBeGreaterThanOrEqual(5);
    for (const f of functions) {
      expect(f.handlerName).toMatch(/^[a-z][a-z-]*$/);
      for (const value of Object.values(f.environment)) expect(typeof value).toBe('string');
      expect(JSON.stringify(f.environment)).not.toMatch(/"(Ref|Fn::[A-Za-z]+)"/);
    }
    expect(functions.map((f) => f.handlerName)).toEqual(expect.arrayContaining(['prepare', 'submit-job', 'job-state']));
  });

  it('gives a definition whose every Task invokes one of those functions', () => {
    expect(JSON.stringify(definition)).not.toMatch(/"(Ref|Fn::[A-Za-z]+)"/);
    const byLogicalId = new Map(functions.map((f) => [f.logicalId, f]));
    const invoked = new Set<string>();
    const visit = (machine: { States?: Record<string, Record<string, unknown>> }): void => {
      for (const state of Object.values(machine.States ?? {})) {
        if (state.Type === 'Task') {
          const params = state.Parameters as { FunctionName?: string } | undefined;
          const arn = String(state.Resource).startsWith('arn:aws:states:::lambda:invoke') ? params?.FunctionName : String(state.Resource);
          const id = logicalIdFromFakeArn(arn ?? '');
          expect(id && byLogicalId.has(id)).toBe(true);
          invoked.add(byLogicalId.get(id!)!.handlerName);
        }
        const inner = (state.ItemProcessor ?? state.Iterator) as typeof machine | undefined;
        if (inner) visit(inner);
      }
    };
    visit(definition as Parameters<typeof visit>[0]);
    expect([...invoked]).toEqual(expect.arrayContaining(['prepare', 'acquire-slot', 'submit-job', 'reconcile-chunk', 'finalize']));
  });

  it('runs in the interpreter: the definition validates and a failing Prepare is handled', async () => {
    const names = taskStateNames(definition);
    const handlers = Object.fromEntries(
      names.map((name) => [
        name,
        async () => {
          throw Object.assign(new Error(`stub ${name}`), { name: 'StubError' });
        },
      ]),
    );
    const result = await runStateMachine(definition, { inputs: [] }, { taskHandlers: handlers, newToken: () => 'token', retryIntervalMs: 0 });
    expect(['FAILED', 'SUCCEEDED']).toContain(result.status);
    expect(result.eventCount).toBeGreaterThan(2);
  });

  it('creates the job table in dynalite', async () => {
    const dynamo = await startLocalDynamo();
    const client = new DynamoDBClient(localDynamoClientConfig(dynamo.endpoint));
    try {
      const tables = await createTablesFromTemplate(template, client, (id) => `local-${id}`);
      expect(Object.keys(tables)).toHaveLength(1);
    } finally {
      client.destroy();
      await dynamo.stop();
    }
  });

  it('routes a Bedrock job state change and an inbox Object Created by the rules’ own patterns', () => {
    const rules = eventRules(template, resolve).filter((r) => r.eventPattern);
    const jobEvent = {
      source: 'aws.bedrock',
      'detail-type': 'Batch Inference Job State Change',
      detail: { batchJobArn: 'arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/x', batchJobName: 'n', status: 'Completed' },
    };
    const jobTargets = rules.filter((r) => matchesEventPattern(r.eventPattern!, jobEvent)).flatMap((r) => r.targets);
    expect(jobTargets.map((t) => functions.find((f) => f.arn === t.arn)?.handlerName)).toEqual(['job-state']);

    const s3Event = (key: string) => ({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: { bucket: { name: 'local-drop' }, object: { key, size: 10, etag: 'e' } },
    });
    const inboxTargets = rules.filter((r) => matchesEventPattern(r.eventPattern!, s3Event('inbox/default/a.jsonl'))).flatMap((r) => r.targets);
    expect(inboxTargets.map((t) => functions.find((f) => f.arn === t.arn)?.handlerName)).toEqual(['start-run']);
    expect(rules.filter((r) => matchesEventPattern(r.eventPattern!, s3Event('results/run/summary.json')))).toHaveLength(0);
  });
});
