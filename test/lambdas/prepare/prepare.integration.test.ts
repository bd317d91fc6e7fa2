import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { expandInputs, prepareRun, type PrepareEvent } from '../../../lambdas/prepare/prepare';
import { runKeys } from '../../../lambdas/shared/contracts';
import type { PrepareStats } from '../../../lambdas/shared/outcomes';
import type { QuotaReading } from '../../../lambdas/shared/model-quotas';
import { InvalidRunInput } from '../../../lambdas/shared/run-input';
import { RemainderIncomplete } from '../../../lambdas/shared/small-remainder';
import { anthropicResponse, invokeResponse } from '../support/bedrock-runtime';
import { anthropicInput, anthropicLine, pipeline, route } from '../support/fixtures';
import { startTestS3, type TestS3 } from '../support/local-s3';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';
import { RunClaims } from '../../../lambdas/shared/run-claims';

const runtimeMock = mockClient(BedrockRuntimeClient);
let s3: TestS3;
let deps: { s3: TestS3['client']; bedrockRuntime: BedrockRuntimeClient };

const PIPELINE = pipeline({
  default: route(),
  small: route({ minRecordsPerJob: 2, maxRecordsPerJob: 3, smallRemainder: 'fail' }),
});
let dynamo: TestDynamo;
const env = () => ({ bucket: s3.bucket, pipeline: PIPELINE, claims: new RunClaims(dynamo.ddb, dynamo.table) });
const NO_QUOTAS: QuotaReading['quotas'] = {
  minRecordsPerJob: undefined,
  maxRecordsPerJob: undefined,
  maxRecordsPerFile: undefined,
  maxFileBytes: undefined,
  maxJobBytes: undefined,
  maxConcurrentJobs: undefined,
};
const arnOf = (executionName: string) => `arn:aws:states:us-east-1:123456789012:execution:Workflow:${executionName}`;
const event = (input: unknown, executionName = 'exec'): PrepareEvent => ({
  input,
  executionName,
  executionArn: arnOf(executionName),
  startTime: '2025-01-01T00:00:00.000Z',
});

beforeAll(async () => {
  s3 = await startTestS3();
  dynamo = await startTestDynamo();
  deps = { s3: s3.client, bedrockRuntime: new BedrockRuntimeClient({ region: 'us-east-1' }) };
});
afterAll(async () => {
  runtimeMock.restore();
  await s3.stop();
  await dynamo.stop();
});

describe('prepareRun', () => {
  it("validates every line of every file, writes round 1's chunks, rejected and run-stats in one pass", async () => {
    const fileA = 'inbox/small/a.jsonl';
    const fileB = 'inbox/small/b.jsonl';
    await s3.put(
      fileA,
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(
          [
            anthropicLine('r1'), // 1
            '', // 2 blank
            'not json', // 3
            anthropicLine(undefined, 'no id'), // 4 -> a-L4
            JSON.stringify({ recordId: 'r5', modelInput: { messages: [] } }), // 5 invalid for anthropic
            anthropicLine('r1'), // 6 duplicate within the file
            anthropicLine('r7') + '\r', // 7 CRLF
            '   ', // 8 blank
          ].join('\n') + '\n',
        ),
      ]),
    );
    await s3.put(fileB, [anthropicLine('r7'), anthropicLine('r9'), '[1]', anthropicLine('r10')].join('\n')); // no final newline

    const result = await prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/${fileA}`, `s3://${s3.bucket}/${fileB}`], runId: 'prep-1' }));
    expect(result.run).toMatchObject({ runId: 'prep-1', route: 'small', bucket: s3.bucket, minRecordsPerJob: 2, maxRecordsPerJob: 3 });
    // 5 valid records, jobs of 2..3: 3 + 2.
    expect(result.round).toEqual({ number: 1, chunkCount: 2, nextChunk: 0, hasMoreChunks: true });

    const chunk0 = await s3.jsonl<{ recordId: string; modelInput: unknown }>(runKeys.chunkInput('prep-1', 1, 0));
    const chunk1 = await s3.jsonl<{ recordId: string; modelInput: unknown }>(runKeys.chunkInput('prep-1', 1, 1));
    expect([...chunk0, ...chunk1].map((p) => p.recordId)).toEqual(['r1', 'a-L4', 'r7', 'r9', 'r10']);
    expect(chunk0[1]).toEqual({ recordId: 'a-L4', modelInput: anthropicInput('no id') });
    expect(await s3.json(runKeys.roundPlan('prep-1', 1))).toEqual({ chunkCount: 2, remainder: 0 });
    // Each chunk line is compact and holds only recordId + modelInput.
    const chunkText = (await s3.text(runKeys.chunkInput('prep-1', 1, 0)))!;
    expect(chunkText.split('\n')[0]).toBe(JSON.stringify({ recordId: 'r1', modelInput: anthropicInput() }));

    const uriA = `s3://${s3.bucket}/${fileA}`;
    const uriB = `s3://${s3.bucket}/${fileB}`;
    expect(await s3.jsonl(runKeys.workRejected('prep-1'))).toEqual([
      { file: uriA, line: 3, reason: expect.stringMatching(/^not valid JSON: /) },
      { file: uriA, line: 5, recordId: 'r5', reason: expect.stringMatching(/^modelInput\.anthropic_version is required.*\(model family anthropic\)$/) },
      { file: uriA, line: 6, recordId: 'r1', reason: 'duplicate recordId (first seen at a:1)' },
      { file: uriB, line: 1, recordId: 'r7', reason: 'duplicate recordId (first seen at a:7)' },
      { file: uriB, line: 3, reason: 'not a JSON object (got array)' },
    ]);

    const stats = await s3.json<PrepareStats>(runKeys.runStats('prep-1'));
    expect(stats).toEqual({ inputFiles: 2, inputLines: 10, blankLines: 2, valid: 5, rejected: 5, inputs: [uriA, uriB] });
    expect(stats!.inputLines).toBe(stats!.valid + stats!.rejected);

    expect((await s3.jsonl<{ recordId: string }>(runKeys.chunkInput('prep-1', 1, 0))).map((r) => r.recordId)).toEqual(['r1', 'a-L4', 'r7']);
    expect((await s3.jsonl<{ recordId: string }>(runKeys.chunkInput('prep-1', 1, 1))).map((r) => r.recordId)).toEqual(['r9', 'r10']);
  });

  it('expands prefix inputs to the .jsonl files under them, with their sizes', async () => {
    await s3.put('inbox/default/dir/x.jsonl', anthropicLine('x1') + '\n');
    await s3.put('inbox/default/dir/sub/y.jsonl', anthropicLine('y1') + '\n');
    await s3.put('inbox/default/dir/notes.txt', 'ignore me');
    await s3.put('single.jsonl', 'abc\n');
    const bytes = Buffer.byteLength(anthropicLine('x1')) + 1;
    expect(await expandInputs(s3.client, [`s3://${s3.bucket}/inbox/default/dir/`, `s3://${s3.bucket}/single.jsonl`, `s3://${s3.bucket}/other.jsonl`])).toEqual([
      { uri: `s3://${s3.bucket}/inbox/default/dir/sub/y.jsonl`, bytes },
      { uri: `s3://${s3.bucket}/inbox/default/dir/x.jsonl`, bytes },
      { uri: `s3://${s3.bucket}/single.jsonl`, bytes: 4 },
      // Missing: no size; reading it reports the error.
      { uri: `s3://${s3.bucket}/other.jsonl`, bytes: undefined },
    ]);

    const result = await prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/inbox/default/dir/`], runId: 'prep-prefix', minRecordsPerJob: 1 }));
    expect(result.run.route).toBe('default');
    expect((await s3.jsonl<{ recordId: string }>(runKeys.chunkInput('prep-prefix', 1, 0))).map((r) => r.recordId)).toEqual(['y1', 'x1']);
  });

  it('balances round 1 over every file from their sizes, in one pass', async () => {
    // 2 files, 23 valid records of varied length and 3 rejected lines, jobs of at most 10:
    // three jobs of about 23 / 3 (the estimate from line sizes is not exact), not 10 + 10 + 3
    // re-split afterwards.
    const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => anthropicLine(`b${from + i}`, 'x'.repeat(((from + i) * 37) % 200)));
    await s3.put('inbox/default/bal/1.jsonl', [...lines(0, 12), 'not json', '{}'].join('\n') + '\n');
    await s3.put('inbox/default/bal/2.jsonl', [...lines(12, 11), '[]'].join('\n') + '\n');
    const result = await prepareRun(
      deps,
      env(),
      event({ inputs: [`s3://${s3.bucket}/inbox/default/bal/`], runId: 'prep-bal', maxRecordsPerJob: 10, minRecordsPerJob: 2 }),
    );
    expect(result.round.chunkCount).toBe(3);
    const chunks = await Promise.all([0, 1, 2].map((c) => s3.jsonl<{ recordId: string }>(runKeys.chunkInput('prep-bal', 1, c))));
    const sizes = chunks.map((c) => c.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(2);
    expect(chunks.flat().map((r) => r.recordId)).toEqual(Array.from({ length: 23 }, (_, i) => `b${i}`));
    expect(await s3.keys('work/prep-bal/r01/tail-')).toEqual([]);
  });

  it('gives records without recordId distinct ids in two files of the same name', async () => {
    await s3.put('inbox/default/2025-01-01/data.jsonl', [anthropicLine(undefined, 'a'), anthropicLine(undefined, 'b')].join('\n'));
    await s3.put('inbox/default/2025-01-02/data.jsonl', [anthropicLine(undefined, 'c'), anthropicLine(undefined, 'd')].join('\n'));
    // A file whose own stem is what a renamed stem could be.
    await s3.put('inbox/default/2025-01-03/data-2.jsonl', [anthropicLine(undefined, 'e'), anthropicLine(undefined, 'f')].join('\n'));
    const dirs = ['2025-01-01', '2025-01-02', '2025-01-03'].map((d) => `s3://${s3.bucket}/inbox/default/${d}/`);
    await prepareRun(deps, env(), event({ inputs: dirs, runId: 'prep-stems', minRecordsPerJob: 1 }));

    const stats = await s3.json<PrepareStats>(runKeys.runStats('prep-stems'));
    expect(stats).toMatchObject({ inputLines: 6, valid: 6, rejected: 0 });
    const pending = [
      ...(await s3.jsonl<{ recordId: string }>(runKeys.chunkInput('prep-stems', 1, 0))),
      ...(await s3.jsonl<{ recordId: string }>(runKeys.chunkInput('prep-stems', 1, 1))),
    ];
    expect(new Set(pending.map((p) => p.recordId)).size).toBe(6);
    // The first file keeps the plain `<stem>-L<line>` ids.
    expect(pending.slice(0, 2).map((p) => p.recordId)).toEqual(['data-L1', 'data-L2']);
  });

  it('derives the run id from the execution name and writes an empty round for a file with no valid line', async () => {
    await s3.put('inbox/default/bad.jsonl', 'oops\n\n[]\n');
    const result = await prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/inbox/default/bad.jsonl`] }, 'exec-bad'));
    expect(result.run.runId).toBe('exec-bad');
    expect(result.round).toEqual({ number: 1, chunkCount: 0, nextChunk: 0, hasMoreChunks: false });
    expect(await s3.json(runKeys.runStats('exec-bad'))).toMatchObject({ inputLines: 2, blankLines: 1, valid: 0, rejected: 2 });
  });

  it('fails with InputUnreadable naming the file when an input does not exist', async () => {
    const uri = `s3://${s3.bucket}/inbox/default/missing.jsonl`;
    const err = (await prepareRun(deps, env(), event({ inputs: [uri], runId: 'prep-missing' })).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('InputUnreadable');
    expect(err.message).toBe(`cannot read input ${uri}: NoSuchKey`);
  });

  it("plans with the stricter of the model's quotas and the route's settings, and keeps them in run.json", async () => {
    await s3.put('inbox/small/q.jsonl', ['q1', 'q2', 'q3', 'q4', 'q5', 'q6'].map((id) => anthropicLine(id)).join('\n'));
    const reading: QuotaReading = {
      quotas: {
        minRecordsPerJob: { value: 3, source: 'service-quotas' },
        maxRecordsPerJob: { value: 50000, source: 'service-quotas' },
        maxRecordsPerFile: { value: 50000, source: 'default' },
        maxFileBytes: undefined,
        maxJobBytes: undefined,
        maxConcurrentJobs: { value: 2, source: 'service-quotas' },
      },
      warnings: ['Service Quotas has no "x": the documented default was used'],
    };
    const asked: string[] = [];
    const readQuotas = async (modelId: string) => (asked.push(modelId), reading);
    const result = await prepareRun(deps, { ...env(), readQuotas }, event({ inputs: [`s3://${s3.bucket}/inbox/small/q.jsonl`], runId: 'prep-quotas' }));
    expect(asked).toEqual([PIPELINE.routes.small!.modelId]);
    // The route says 2..3 records and the pipeline's cap; the model's minimum of 3 and cap of 2 are stricter.
    expect(result.run).toMatchObject({ minRecordsPerJob: 3, maxRecordsPerJob: 3, maxConcurrentJobs: 2 });
    expect(result.run.quotas).toEqual({
      values: {
        minRecordsPerJob: { value: 3, source: 'service-quotas' },
        maxRecordsPerJob: { value: 3, source: 'route' },
        maxConcurrentJobs: { value: 2, source: 'service-quotas' },
      },
      warnings: reading.warnings,
    });
    expect(result.round.chunkCount).toBe(2);
    for (const chunk of [0, 1]) expect(await s3.jsonl(runKeys.chunkInput('prep-quotas', 1, chunk))).toHaveLength(3);
    expect(await s3.json(runKeys.runConfig('prep-quotas'))).toEqual(result.run);
  });

  it('a retried Prepare whose remainder ran out of time goes on from its remainder, without reading the input again', async () => {
    // The default route: 100 records per job at least, so 7 records are all remainder, on demand.
    const file = 'inbox/default/late.jsonl';
    const ids = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7'];
    await s3.put(file, ids.map((id) => anthropicLine(id)).join('\n'));
    // Each call takes 1 s of an invocation of 10 s; the input pass left 4 s of it (1 s reserved).
    const budget = { totalMs: 10_000, left: 4_000, remainingMs: () => budget.left };
    runtimeMock.reset();
    runtimeMock.on(InvokeModelCommand).callsFake(() => {
      budget.left -= 1_000;
      return invokeResponse(anthropicResponse('ok', 1, 2));
    });
    const ev = event({ inputs: [`s3://${s3.bucket}/${file}`], runId: 'prep-late' }, 'late');
    await expect(prepareRun({ ...deps, budget }, env(), ev)).rejects.toThrow(RemainderIncomplete);
    const first = runtimeMock.commandCalls(InvokeModelCommand).length;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(7);
    expect(await s3.text(runKeys.roundPlan('prep-late', 1))).toBeUndefined();

    // The retry: were it to read the input, it would fail (the file is gone).
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: file }));
    budget.left = 10_000;
    const result = await prepareRun({ ...deps, budget }, env(), ev);
    expect(result.round).toEqual({ number: 1, chunkCount: 0, nextChunk: 0, hasMoreChunks: false });
    expect(result.run).toEqual(await s3.json(runKeys.runConfig('prep-late')));
    // 7 calls in all: the retry invoked only the records without an outcome.
    expect(runtimeMock.commandCalls(InvokeModelCommand)).toHaveLength(7);
    const answered = (await s3.jsonl<{ recordId: string }>(runKeys.roundPart('prep-late', 1, 'succeeded'))).map((r) => r.recordId);
    expect(answered.sort()).toEqual(ids);
    expect(await s3.json(runKeys.roundPlan('prep-late', 1))).toEqual({ chunkCount: 0, remainder: 7 });
    expect(await s3.json(runKeys.remainderStats('prep-late', 1))).toMatchObject({ records: 7, succeeded: 7, onDemandRecords: 7 });
    expect(await s3.json(runKeys.runStats('prep-late'))).toMatchObject({ inputLines: 7, valid: 7, rejected: 0 });
  });

  it("refuses a run whose model's minimum job size is above the route's largest job, naming both", async () => {
    await s3.put('inbox/small/r.jsonl', anthropicLine('r1'));
    const readQuotas = async (): Promise<QuotaReading> => ({
      quotas: { ...NO_QUOTAS, minRecordsPerJob: { value: 100, source: 'service-quotas' } },
      warnings: [],
    });
    const err = await prepareRun(deps, { ...env(), readQuotas }, event({ inputs: [`s3://${s3.bucket}/inbox/small/r.jsonl`], runId: 'prep-q-refused' })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidRunInput);
    expect((err as Error).message).toMatch(
      /minimum of 100 records per job \(service-quotas\) .* above the maximum of 3 \(route\); raise maxRecordsPerJob to at least 100/,
    );
    expect(await s3.keys('jobs-input/prep-q-refused/')).toEqual([]);
  });

  it('fails with InvalidRunInput before reading anything', async () => {
    await expect(prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/x.jsonl`], runId: 'bad_id' }))).rejects.toBeInstanceOf(InvalidRunInput);
    expect(await s3.keys('work/bad_id/')).toEqual([]);
  });
  it("refuses a runId another execution owns, and touches none of that run's files", async () => {
    await s3.put('inbox/default/own-a.jsonl', [anthropicLine('a1'), anthropicLine('a2')].join('\n'));
    await s3.put('inbox/default/own-b.jsonl', [anthropicLine('b1')].join('\n'));
    const first = await prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/inbox/default/own-a.jsonl`], runId: 'owned' }, 'exec-a'));
    const before = await Promise.all([s3.json(runKeys.runConfig('owned')), s3.jsonl(runKeys.chunkInput('owned', 1, 0)), s3.json(runKeys.runStats('owned'))]);

    const err = (await prepareRun(
      deps,
      env(),
      event({ inputs: [`s3://${s3.bucket}/inbox/default/own-b.jsonl`], runId: 'owned', maxAttempts: 1 }, 'exec-b'),
    ).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(InvalidRunInput);
    expect(err.message).toBe('runId owned is already used by execution exec-a; choose another runId (a run owns its id)');
    expect(await Promise.all([s3.json(runKeys.runConfig('owned')), s3.jsonl(runKeys.chunkInput('owned', 1, 0)), s3.json(runKeys.runStats('owned'))])).toEqual(
      before,
    );

    // The owner's own retry is no second run: it prepares again.
    await expect(prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/inbox/default/own-a.jsonl`], runId: 'owned' }, 'exec-a'))).resolves.toEqual(first);
  });

  it('believes a resume only from the execution the run was handed over to, with the run and round of its own files', async () => {
    await s3.put('inbox/default/res.jsonl', [anthropicLine('x1'), anthropicLine('x2')].join('\n'));
    const { run } = await prepareRun(deps, env(), event({ inputs: [`s3://${s3.bucket}/inbox/default/res.jsonl`], runId: 'res-run' }, 'res-exec'));
    const forged = {
      resume: {
        run: { ...run, maxConcurrentJobs: 1000, modelId: 'anthropic.claude-opus-4-v1:0' },
        round: { number: 1, chunkCount: 1, nextChunk: 0, hasMoreChunks: true },
      },
    };

    // Nobody handed the run over: a resume from any execution is refused.
    const err = (await prepareRun(deps, env(), event(forged, 'res-run-r1-c0')).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(InvalidRunInput);
    expect(err.message).toBe(
      "resume is accepted only from the pipeline's own hand-over: run res-run was not handed over to execution res-run-r1-c0 (it is owned by res-exec)",
    );
    await expect(prepareRun(deps, env(), event({ resume: { run: { runId: 'no-such-run' } } }, 'x'))).rejects.toThrow(
      'run no-such-run was not handed over to execution x (no such run)',
    );
    await expect(prepareRun(deps, env(), event({ resume: null }, 'x'))).rejects.toThrow('resume.run.runId must be a valid run id');

    // Handed over: the successor resumes with run.json and the claim's round, whatever its input says.
    const round = { number: 1, chunkCount: 1, nextChunk: 1, hasMoreChunks: false };
    await env().claims.handOver('res-run', arnOf('res-exec'), arnOf('res-run-r1-c0'), round);
    await expect(prepareRun(deps, env(), event(forged, 'res-run-r1-c0'))).resolves.toEqual({ run, round });
    // Stopped after the hand-over (or a successor started by a NextWindow that outlived the stop): not resumed.
    await env().claims.requestStop('res-run', arnOf('res-run-r1-c0'));
    await expect(prepareRun(deps, env(), event(forged, 'res-run-r1-c0'))).rejects.toThrow('run res-run was stopped: it is not resumed');
  });
  it('reads an input named in inputETags only while it has that ETag: an overwritten file fails the run, not reads the new content', async () => {
    const key = 'inbox/small/etag.jsonl';
    await s3.put(key, [anthropicLine('old-1'), anthropicLine('old-2')].join('\n'));
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    const uri = `s3://${s3.bucket}/${key}`;
    // The ETag as S3's Object Created event gives it: bare, without quotes.
    const dropped = head.ETag!.replace(/"/g, '');
    await expect(prepareRun(deps, env(), event({ inputs: [uri], runId: 'etag-same', inputETags: { [uri]: dropped } }, 'etag-same'))).resolves.toMatchObject({
      round: { chunkCount: 1 },
    });

    await s3.put(key, [anthropicLine('new-1')].join('\n'));
    const err = (await prepareRun(deps, env(), event({ inputs: [uri], runId: 'etag-changed', inputETags: { [uri]: dropped } }, 'etag-changed')).catch(
      (e: unknown) => e,
    )) as Error;
    expect(err).toBeInstanceOf(InvalidRunInput);
    expect(err.message).toBe(
      `input ${uri} changed after the run was started (it no longer has ETag ${dropped}): its new content runs in the run its own upload started`,
    );
    expect(await s3.keys(runKeys.chunkInput('etag-changed', 1, 0))).toEqual([]);
  });
});
