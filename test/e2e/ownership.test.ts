/**
 * A run owns its id, end to end through the twin: two executions asking for one runId at once
 * give one run, whose records are all accounted for, and one refused execution that changed
 * nothing; a forged `resume` can neither continue nor rewrite another run.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { loadPipelineConfig } from '../../lib/pipeline-config';
import { LocalTwin } from '../../local/twin';
import { claudeLines, CLAUDE, expectConservation, readOutputsFromS3, tempDir, writeLines } from './helpers';

const config = loadPipelineConfig({ maxConcurrentJobs: 3, routes: { default: { modelId: CLAUDE, maxRecordsPerJob: 50, minRecordsPerJob: 10 } } });

async function summaryText(twin: LocalTwin, runId: string): Promise<string> {
  const res = await twin.s3.send(new GetObjectCommand({ Bucket: twin.bucket, Key: `results/${runId}/summary.json` }));
  return res.Body!.transformToString();
}

test('two executions started together with one runId: one run finishes with every record once, the other fails and changes nothing', async () => {
  const dir = tempDir();
  const linesA = claudeLines(230, 'a');
  const linesB = claudeLines(170, 'b');
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 } });
  try {
    const a = await twin.upload(writeLines(dir, 'a.jsonl', linesA), 'uploads/a.jsonl');
    const b = await twin.upload(writeLines(dir, 'b.jsonl', linesB), 'uploads/b.jsonl');
    twin.startExecution({ name: 'first', input: JSON.stringify({ inputs: [a], runId: 'shared' }) });
    twin.startExecution({ name: 'second', input: JSON.stringify({ inputs: [b], runId: 'shared' }) });
    const executions = await twin.settle();

    const byStatus = Object.fromEntries(executions.map((e) => [e.result!.status, e]));
    expect(Object.keys(byStatus).sort()).toEqual(['FAILED', 'SUCCEEDED']);
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'shared');
    // The summary and every output belong to the execution that owns the id, and hold each of its records once.
    const winner = byStatus.SUCCEEDED!.name === 'first' ? { uri: a, lines: linesA, prefix: 'a' } : { uri: b, lines: linesB, prefix: 'b' };
    expect(out.summary.inputs).toEqual([winner.uri]);
    expectConservation(
      out,
      winner.lines.length,
      winner.lines.map((l) => (JSON.parse(l) as { recordId: string }).recordId),
    );
    for (const r of [...out.results, ...out.failed]) expect(r.recordId.startsWith(`${winner.prefix}-`)).toBe(true);
    // No job was ever created for the refused execution: every job is one of the winner's chunks.
    const stats = twin.emulatorStats();
    expect(stats.jobsCreated).toBe(Math.ceil(winner.lines.length / 50));
    expect(stats.maxConcurrentJobs).toBeLessThanOrEqual(3);
  } finally {
    await twin.stop();
  }
});

test('a forged resume naming a finished run is refused and changes nothing of it', async () => {
  const dir = tempDir();
  const lines = claudeLines(120, 'f');
  const twin = await LocalTwin.start({ config, accountQuotas: { minRecordsPerJob: 10 } });
  try {
    const uri = await twin.upload(writeLines(dir, 'f.jsonl', lines), 'uploads/f.jsonl');
    twin.startExecution({ name: 'real', input: JSON.stringify({ inputs: [uri], runId: 'real' }) });
    const [real] = await twin.settle();
    expect(real!.result!.status).toBe('SUCCEEDED');
    expect(real!.result!.output).toMatchObject({ runId: 'real', status: 'Succeeded' });
    const before = await summaryText(twin, 'real');
    const jobsBefore = twin.emulatorStats().jobsCreated;

    // Named like a successor, asking for more slots than the cap and to run the round again.
    const forged = {
      resume: {
        run: {
          runId: 'real',
          route: 'default',
          modelId: CLAUDE,
          bucket: twin.bucket,
          maxRecordsPerJob: 50,
          minRecordsPerJob: 10,
          maxAttempts: 3,
          smallRemainder: 'on-demand',
          maxConcurrentJobs: 1000,
          jobTimeoutHours: 24,
          startedAt: new Date().toISOString(),
        },
        round: { number: 1, chunkCount: 3, nextChunk: 0, hasMoreChunks: true },
      },
    };
    twin.startExecution({ name: 'real-r1-c0-0a1b2c3d', input: JSON.stringify(forged) });
    const all = await twin.settle();
    const forgedExecution = all.find((e) => e.name === 'real-r1-c0-0a1b2c3d')!;
    expect(forgedExecution.result!.status).toBe('FAILED');
    expect(await summaryText(twin, 'real')).toBe(before);
    expect(twin.emulatorStats().jobsCreated).toBe(jobsBefore);
    const out = await readOutputsFromS3(twin.s3, twin.bucket, 'real');
    expectConservation(out, lines.length);
  } finally {
    await twin.stop();
  }
});
