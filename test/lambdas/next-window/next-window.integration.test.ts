import { DescribeExecutionCommand, ExecutionAlreadyExists, GetExecutionHistoryCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import {
  EVENTS_PER_CHUNK,
  EVENTS_RESERVE,
  nextWindow,
  stateMachineArnOf,
  successorName,
  WINDOW_SIZE,
  windowSizeFor,
  type NextWindowEvent,
} from '../../../lambdas/next-window/next-window';
import { RunClaims } from '../../../lambdas/shared/run-claims';
import { runConfig } from '../support/fixtures';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const sfnMock = mockClient(SFNClient);
const CAP = 4;
const RESERVE = EVENTS_RESERVE;
const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:RunMachine:run-1';
let dynamo: TestDynamo;
let claims: RunClaims;
const SUCCESSOR_ARN = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:RunMachine:${name}`;
const SUFFIX = '0a1b2c3d';
const deps = (historyEventBudget = 20000, randomSuffix = () => SUFFIX) => ({
  sfn: new SFNClient({ region: 'us-east-1' }),
  historyEventBudget,
  claims,
  randomSuffix,
});
/** A successor's name: the run position, then 8 random hex digits nobody can guess ahead. */
const SUCCESSOR_NAME = /^run-1-r2-c300-[0-9a-f]{8}$/;
const event = (chunkCount: number, nextChunk: number): NextWindowEvent => ({
  run: runConfig({ runId: 'run-1', maxConcurrentJobs: CAP }),
  round: { number: 2, chunkCount, nextChunk, hasMoreChunks: nextChunk < chunkCount },
  executionArn: EXECUTION,
});
const historyAt = (events: number) =>
  sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [{ id: events, type: 'TaskStateEntered', timestamp: new Date() }] });

beforeAll(async () => {
  dynamo = await startTestDynamo();
  claims = new RunClaims(dynamo.ddb, dynamo.table);
});
beforeEach(async () => {
  sfnMock.reset();
  // A fresh claim of run-1 by the running execution for every test.
  await dynamo.ddb.send(new DeleteCommand({ TableName: dynamo.table, Key: { pk: 'RUN#run-1', sk: 'RUN' } }));
  await claims.claim('run-1', EXECUTION);
});
afterAll(async () => {
  sfnMock.restore();
  await dynamo.stop();
});

describe('nextWindow', () => {
  it('hands out full windows while the history budget allows, and advances the round', async () => {
    historyAt(40);
    const first = await nextWindow(deps(), event(250, 0));
    expect(first.continued).toBe(false);
    expect(first.window.items).toEqual(Array.from({ length: WINDOW_SIZE }, (_, chunk) => ({ chunk })));
    expect(first.round).toEqual({ number: 2, chunkCount: 250, nextChunk: 100, hasMoreChunks: true });
    const last = await nextWindow(deps(), event(250, 200));
    expect(last.window.items.map((i) => i.chunk)).toEqual(Array.from({ length: 50 }, (_, i) => 200 + i));
    expect(last.round.hasMoreChunks).toBe(false);
    expect(sfnMock.commandCalls(GetExecutionHistoryCommand)[0]!.args[0].input).toEqual({
      executionArn: EXECUTION,
      reverseOrder: true,
      maxResults: 1,
      includeExecutionData: false,
    });
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('shrinks the window to the budget left', async () => {
    const used = 20000 - RESERVE - 25 * EVENTS_PER_CHUNK;
    historyAt(used);
    const result = await nextWindow(deps(), event(500, 0));
    expect(result.window.items).toHaveLength(25);
    expect(windowSizeFor(used, 20000)).toBe(25);
    // Every chunk of a window may wait for a slot its full SLOT_WAIT_ATTEMPTS tries, 3 events each.
    expect(EVENTS_PER_CHUNK).toBe(30 + 40 * 3);
  });

  it('continues the run in a successor execution when too little budget is left', async () => {
    historyAt(19900);
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: 'x', startDate: new Date() });
    const e = event(500, 300);
    // The real random source: the name is the run position and 8 fresh hex digits.
    const result = await nextWindow({ sfn: new SFNClient({ region: 'us-east-1' }), historyEventBudget: 20000, claims }, e);
    expect(result).toMatchObject({ continued: true, window: { items: [] }, round: e.round });
    expect(result.successor).toMatch(SUCCESSOR_NAME);
    const start = sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(start.stateMachineArn).toBe('arn:aws:states:us-east-1:123456789012:stateMachine:RunMachine');
    expect(start.name).toBe(result.successor);
    expect(JSON.parse(start.input!)).toEqual({ resume: { run: e.run, round: e.round } });
    // The claim names the successor, with the round it resumes at, before it starts.
    expect(await claims.get('run-1')).toMatchObject({ owner: SUCCESSOR_ARN(result.successor!), handedOverBy: EXECUTION, round: e.round });
  });

  it('names a successor nobody could have started ahead of the hand-over', async () => {
    historyAt(19900);
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: 'x', startDate: new Date() });
    const names = new Set<string>();
    for (let i = 0; i < 3; i++) {
      await dynamo.ddb.send(new DeleteCommand({ TableName: dynamo.table, Key: { pk: 'RUN#run-1', sk: 'RUN' } }));
      await claims.claim('run-1', EXECUTION);
      const result = await nextWindow({ sfn: new SFNClient({ region: 'us-east-1' }), historyEventBudget: 20000, claims }, event(500, 300));
      names.add(result.successor!);
    }
    expect(names.size).toBe(3);
  });

  it('a retried NextWindow reuses the successor name its first attempt recorded in the claim', async () => {
    historyAt(19900);
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: 'x', startDate: new Date() });
    const e = event(500, 300);
    const first = await nextWindow(
      deps(20000, () => 'aaaaaaaa'),
      e,
    );
    expect(first.successor).toBe('run-1-r2-c300-aaaaaaaa');
    // The retry would draw another suffix: it must not, the claim already names the successor.
    const retry = await nextWindow(
      deps(20000, () => 'bbbbbbbb'),
      e,
    );
    expect(retry.successor).toBe('run-1-r2-c300-aaaaaaaa');
    expect(sfnMock.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name)).toEqual(['run-1-r2-c300-aaaaaaaa', 'run-1-r2-c300-aaaaaaaa']);
    expect(await claims.get('run-1')).toMatchObject({ owner: SUCCESSOR_ARN('run-1-r2-c300-aaaaaaaa'), handedOverBy: EXECUTION });
  });

  it('does not hand over a run this execution does not own', async () => {
    historyAt(19900);
    await claims.handOver('run-1', EXECUTION, SUCCESSOR_ARN('someone-else'), event(500, 0).round);
    await expect(nextWindow(deps(), event(500, 300))).rejects.toThrow('run run-1 is not owned by execution run-1: it cannot hand the run over');
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('refuses a successor name taken by an execution it did not start, and keeps the run', async () => {
    historyAt(24000);
    sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    sfnMock
      .on(DescribeExecutionCommand)
      .resolves({ input: JSON.stringify({ resume: { run: runConfig({ runId: 'run-1', maxConcurrentJobs: 1000 }), round: event(50, 0).round } }) });
    const err = (await nextWindow(deps(), event(50, 0)).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('SuccessorNameTaken');
    expect(err.message).toBe(`cannot continue run run-1: an execution named run-1-r2-c0-${SUFFIX} exists already and was not started by this run's hand-over`);
    expect(sfnMock.commandCalls(DescribeExecutionCommand)[0]!.args[0].input).toEqual({ executionArn: SUCCESSOR_ARN(`run-1-r2-c0-${SUFFIX}`) });
    expect(await claims.get('run-1')).toMatchObject({ owner: EXECUTION });
  });

  it('gives the run back when the successor cannot be started', async () => {
    historyAt(24000);
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    await expect(nextWindow(deps(), event(50, 0))).rejects.toThrow('slow down');
    expect(await claims.get('run-1')).toMatchObject({ owner: EXECUTION });
  });

  it('still finishes a small last window in this execution', async () => {
    historyAt(20000 - 4 * EVENTS_PER_CHUNK - RESERVE);
    const result = await nextWindow(deps(), event(103, 100));
    expect(result.continued).toBe(false);
    expect(result.window.items.map((i) => i.chunk)).toEqual([100, 101, 102]);
  });

  it.each(['RUNNING', 'SUCCEEDED'] as const)('treats a successor that already exists %s (a retried NextWindow) as started', async (status) => {
    historyAt(24000);
    sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    const e = event(50, 0);
    sfnMock.on(DescribeExecutionCommand).resolves({ status, input: JSON.stringify({ resume: { run: e.run, round: e.round } }) });
    await expect(nextWindow(deps(), e)).resolves.toMatchObject({ continued: true });
    // The first attempt had handed over already; the retry's hand-over is the same.
    await expect(
      nextWindow(
        deps(24000, () => 'ffffffff'),
        e,
      ),
    ).resolves.toMatchObject({ continued: true, successor: `run-1-r2-c0-${SUFFIX}` });
    expect(await claims.get('run-1')).toMatchObject({ owner: SUCCESSOR_ARN(`run-1-r2-c0-${SUFFIX}`) });
  });

  it.each(['FAILED', 'ABORTED', 'TIMED_OUT'] as const)(
    'fails loudly when its own successor has already ended %s, rather than ending ContinuedInSuccessor',
    async (status) => {
      historyAt(24000);
      sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
      const e = event(50, 0);
      sfnMock.on(DescribeExecutionCommand).resolves({ status, input: JSON.stringify({ resume: { run: e.run, round: e.round } }) });
      const err = (await nextWindow(deps(), e).catch((x: unknown) => x)) as Error;
      expect(err.name).toBe('SuccessorEnded');
      expect(err.message).toBe(
        `cannot continue run run-1: its successor execution run-1-r2-c0-${SUFFIX} has already ended ${status}; the run ends with it (see that execution)`,
      );
      // The run stays with the successor, whose own end (FinalizeFailed, or stop-run) finalized it.
      expect(await claims.get('run-1')).toMatchObject({ owner: SUCCESSOR_ARN(`run-1-r2-c0-${SUFFIX}`), handedOverBy: EXECUTION });
    },
  );

  it('propagates other errors', async () => {
    sfnMock.on(GetExecutionHistoryCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    await expect(nextWindow(deps(), event(5, 0))).rejects.toThrow('denied');
  });
});

describe('naming', () => {
  it('derives the state machine ARN from an execution ARN', () => {
    expect(stateMachineArnOf(EXECUTION)).toBe('arn:aws:states:us-east-1:123456789012:stateMachine:RunMachine');
    expect(() => stateMachineArnOf('arn:aws:states:us-east-1:1:stateMachine:X')).toThrow('not an execution ARN');
  });

  it('names a successor by run position and a random suffix, within the 80 characters of an execution name', () => {
    const long = event(10, 7);
    const name = successorName({ ...long, run: runConfig({ runId: 'a'.repeat(40) }), round: { ...long.round, number: 10, nextChunk: 99999 } }, 'deadbeef');
    expect(name).toBe(`${'a'.repeat(40)}-r10-c99999-deadbeef`);
    expect(name.length).toBeLessThanOrEqual(80);
    expect(name).toMatch(/^[a-zA-Z0-9-_]+$/);
    expect(() => successorName(long, 'DEADBEEF')).toThrow('a successor name suffix is 8 lowercase hex digits, not DEADBEEF');
  });
});

describe('progress under any budget', () => {
  it('a fresh execution always takes a window, so a too-small budget cannot chain successors forever', async () => {
    historyAt(12);
    const result = await nextWindow(deps(300), event(500, 40));
    expect(result.continued).toBe(false);
    expect(result.window.items.map((i) => i.chunk)).toEqual(Array.from({ length: 10 }, (_, i) => 40 + i));
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});
