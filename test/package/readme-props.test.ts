/**
 * The README's props table of `BedrockBatchPipeline` is the one scripts/props-table.ts generates
 * from the TSDoc of `BedrockBatchPipelineProps` (`npm run docs:props`): same props, same
 * `@default` text. Parsing only, no synth.
 */
import * as fs from 'node:fs';
import { PIPELINE_SETTING_KEYS } from '../../lib/pipeline-config';
import { pipelinePropDocs, propsTable, README, readmeTable } from '../../scripts/props-table';

describe('the README props table', () => {
  const docs = pipelinePropDocs();

  test('is the table generated from the TSDoc (run npm run docs:props after changing a prop)', () => {
    const readme = fs.readFileSync(README, 'utf8');
    expect(readmeTable(readme)).toBe(propsTable(docs));
  });

  test('lists every setting the props validation knows, the resource props, and each route key', () => {
    const names = docs.map((d) => d.name);
    expect(names).toEqual(expect.arrayContaining([...PIPELINE_SETTING_KEYS, 'alarmTopic', 'logRetention', 'removalPolicy', 'encryptionKey']));
    expect(names.filter((n) => n.startsWith('routes.<name>.'))).toEqual(
      ['modelId', 'maxRecordsPerJob', 'minRecordsPerJob', 'maxAttempts', 'smallRemainder', 'trigger'].map((k) => `routes.<name>.${k}`),
    );
  });

  test('every optional prop documents its @default and every prop says what it is', () => {
    for (const d of docs) {
      const required = d.name === 'routes' || d.name === 'routes.<name>.modelId';
      expect({ name: d.name, required: d.defaultText === 'required' }).toEqual({ name: d.name, required });
      expect({ name: d.name, summary: d.summary.length > 20 }).toEqual({ name: d.name, summary: true });
    }
    expect(docs.find((d) => d.name === 'maxConcurrentJobs')?.defaultText).toBe('10');
    expect(docs.find((d) => d.name === 'workRetentionDays')?.summary).toContain('`longestRunHours`');
  });

  test('a table that differs from the TSDoc is told apart', () => {
    const stale = propsTable(docs.map((d) => (d.name === 'jobTimeoutHours' ? { ...d, defaultText: '48' } : d)));
    expect(stale).not.toBe(propsTable(docs));
    expect(readmeTable(`intro\n${stale}\noutro`)).toBe(stale);
    expect(readmeTable('no markers')).toBeUndefined();
  });
});
