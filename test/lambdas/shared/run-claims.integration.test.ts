import type { RoundState } from '../../../lambdas/shared/contracts';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { leasedStep, RunClaims, RunIdInUse, RunStopping } from '../../../lambdas/shared/run-claims';
import { leaseTiming, withRunStep } from '../../../lambdas/shared/run-steps';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const ARN_A = 'arn:aws:states:us-east-1:123456789012:execution:Workflow:run-a';
const ARN_B = 'arn:aws:states:us-east-1:123456789012:execution:Workflow:other';
const SUCCESSOR = 'arn:aws:states:us-east-1:123456789012:execution:Workflow:run-a-r1-c10';
const ROUND: RoundState = { number: 1, chunkCount: 20, nextChunk: 10, hasMoreChunks: true };
/** A lease that outlasts the test: a step that is still running. */
const LIVE = Date.now() + 3_600_000;

let dynamo: TestDynamo;
let claims: RunClaims;
beforeAll(async () => {
  dynamo = await startTestDynamo();
  claims = new RunClaims(dynamo.ddb, dynamo.table);
});
afterAll(() => dynamo.stop());

describe('RunClaims against dynalite', () => {
  it('gives a run id to the first execution only; the same execution may claim again (a retried Prepare)', async () => {
    await claims.claim('run-a', ARN_A);
    await expect(claims.claim('run-a', ARN_A)).resolves.toBeUndefined();
    const err = await claims.claim('run-a', ARN_B).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunIdInUse);
    expect((err as Error).name).toBe('InvalidRunInput');
    expect((err as Error).message).toBe('runId run-a is already used by execution run-a; choose another runId (a run owns its id)');
    expect(await claims.get('run-a')).toMatchObject({ runId: 'run-a', owner: ARN_A });
    expect(await claims.isOwner('run-a', ARN_A)).toBe(true);
    expect(await claims.isOwner('run-a', ARN_B)).toBe(false);
    expect(await claims.isOwner('no-such-run', ARN_A)).toBe(false);
  });

  it('hands a run over to a successor execution with its round, only from the owner, and can take it back', async () => {
    await claims.claim('run-h', ARN_A);
    await expect(claims.handOver('run-h', ARN_B, SUCCESSOR, ROUND)).rejects.toThrow('run run-h is not owned by execution other');
    await claims.handOver('run-h', ARN_A, SUCCESSOR, ROUND);
    // A retried NextWindow hands over again: no error, nothing changes.
    await claims.handOver('run-h', ARN_A, SUCCESSOR, ROUND);
    expect(await claims.get('run-h')).toMatchObject({ owner: SUCCESSOR, handedOverBy: ARN_A, round: ROUND });
    await claims.takeBack('run-h', ARN_A, SUCCESSOR);
    expect(await claims.get('run-h')).toMatchObject({ owner: ARN_A });
  });

  it('a stop mark closes the run to new steps; steps in flight hold their leases until they leave', async () => {
    await claims.claim('run-s', ARN_A);
    const submit = await claims.enterStep('run-s', 'submit:r01-c00000', LIVE);
    const reconcile = await claims.enterStep('run-s', 'reconcile:r01-c00001', LIVE);
    await claims.leaveStep('run-s', reconcile);
    expect(await claims.isStopped('run-s')).toBe(false);
    expect(await claims.requestStop('run-s', ARN_B)).toEqual({ owned: false, owner: ARN_A });
    expect(await claims.isStopped('run-s')).toBe(false);
    expect(await claims.requestStop('run-s', ARN_A)).toEqual({ owned: true, owner: ARN_A });
    // What a running step's on-demand remainder checks before each call.
    expect(await claims.isStopped('run-s')).toBe(true);
    expect(await claims.isStopped('no-such-run')).toBe(false);
    const err = await claims.enterStep('run-s', 'submit:r01-c00002', LIVE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunStopping);
    expect(await claims.runningSteps('run-s')).toEqual(['submit:r01-c00000']);
    // A step that outlived the stop still renews its lease.
    expect(await claims.renewStep('run-s', submit, LIVE + 1)).toBe(true);
    await claims.leaveStep('run-s', submit);
    expect(await claims.hasRunningSteps('run-s')).toBe(false);
    expect((await claims.get('run-s'))?.stepLeases).toEqual({});
    // Renewing a lease whose step has left brings nothing back.
    expect(await claims.renewStep('run-s', submit, LIVE)).toBe(false);
    expect(await claims.hasRunningSteps('run-s')).toBe(false);
  });

  it('a lease ends unless renewed: a step Lambda killed (it never leaves) stops counting once its lease has ended', async () => {
    let now = Date.parse('2026-12-07T16:00:00.000Z');
    const clocked = new RunClaims(dynamo.ddb, dynamo.table, () => now);
    await clocked.claim('run-k', ARN_A);
    const killed = await clocked.enterStep('run-k', 'reconcile:r01-c00000', now + 60_000);
    const alive = await clocked.enterStep('run-k', 'prepare', now + 60_000);
    expect(leasedStep(killed)).toBe('reconcile:r01-c00000');
    expect(await clocked.runningSteps('run-k')).toEqual(['prepare', 'reconcile:r01-c00000']);
    now += 40_000;
    expect(await clocked.renewStep('run-k', alive, now + 60_000)).toBe(true);
    now += 30_000;
    expect(await clocked.runningSteps('run-k')).toEqual(['prepare']);
    // A lease that has ended is not taken back (stop-run may have gone on without its step).
    expect(await clocked.renewStep('run-k', killed, now + 60_000)).toBe(false);
    expect(await clocked.runningSteps('run-k')).toEqual(['prepare']);
    await clocked.leaveStep('run-k', alive);
    expect(await clocked.hasRunningSteps('run-k')).toBe(false);
  });

  it('a step that leaves removes its own lease only: another attempt of the same step (a retry running at once) still counts', async () => {
    await claims.claim('run-r', ARN_A);
    const first = await claims.enterStep('run-r', 'reconcile:r01-c00000', LIVE);
    const second = await claims.enterStep('run-r', 'reconcile:r01-c00000', LIVE);
    expect(first).not.toBe(second);
    await claims.leaveStep('run-r', second);
    expect(await claims.runningSteps('run-r')).toEqual(['reconcile:r01-c00000']);
    await claims.leaveStep('run-r', first);
    expect(await claims.hasRunningSteps('run-r')).toBe(false);
  });

  it('a claim written by the version before leases (no lease map; names in `steps`) takes leases, and its names still count', async () => {
    await dynamo.ddb.send(
      new PutCommand({
        TableName: dynamo.table,
        Item: { pk: 'RUN#run-old', sk: 'RUN', runId: 'run-old', owner: ARN_A, claimedAt: '2026-12-01T00:00:00.000Z', steps: new Set(['submit:r01-c00000']) },
      }),
    );
    const lease = await claims.enterStep('run-old', 'reconcile:r01-c00001', LIVE);
    expect(await claims.runningSteps('run-old')).toEqual(['reconcile:r01-c00001', 'submit:r01-c00000']);
    await claims.leaveStep('run-old', lease);
    expect(await claims.runningSteps('run-old')).toEqual(['submit:r01-c00000']);
  });

  it('withRunStep renews its lease while the work runs and removes it when the work ends', async () => {
    await claims.claim('run-w', ARN_A);
    // A 15 s invocation: a 1 s lease, renewed every third of a second.
    const budget = { totalMs: 15_000, remainingMs: () => 15_000 };
    expect(leaseTiming(budget)).toEqual({ leaseMs: 1_000, renewEveryMs: 1_000 / 3 });
    expect(leaseTiming({ totalMs: 900_000, remainingMs: () => 900_000 })).toEqual({ leaseMs: 60_000, renewEveryMs: 20_000 });
    const leaseOf = async () => Object.values((await claims.get('run-w'))?.stepLeases ?? {})[0];
    const seen: number[] = [];
    await withRunStep(
      claims,
      'run-w',
      'end-round:r01',
      async () => {
        // Wait (on the condition, not a fixed time) until the lease was renewed twice.
        while (seen.length < 3) {
          const until = await leaseOf();
          if (until !== undefined && until !== seen[seen.length - 1]) seen.push(until);
          await new Promise((r) => setImmediate(r));
        }
      },
      budget,
    );
    expect(seen[2]!).toBeGreaterThan(seen[0]!);
    expect((await claims.get('run-w'))?.stepLeases).toEqual({});
  });

  it('a stop before any claim claims the run for the stopped execution, so its own Prepare may still go on', async () => {
    expect(await claims.requestStop('run-early', ARN_A)).toEqual({ owned: true, owner: ARN_A });
    await expect(claims.claim('run-early', ARN_A)).resolves.toBeUndefined();
    await expect(claims.claim('run-early', ARN_B)).rejects.toBeInstanceOf(RunIdInUse);
    await expect(claims.enterStep('run-early', 'submit:r01-c00000', LIVE)).rejects.toBeInstanceOf(RunStopping);
  });

  it('a step of a run that was never claimed is refused', async () => {
    await expect(claims.enterStep('never-claimed', 'submit:r01-c00000', LIVE)).rejects.toThrow('run never-claimed has no claim');
  });
  it('does not hand a stopped run over to a successor', async () => {
    await claims.claim('run-hs', ARN_A);
    await claims.requestStop('run-hs', ARN_A);
    await expect(claims.handOver('run-hs', ARN_A, SUCCESSOR, ROUND)).rejects.toBeInstanceOf(RunStopping);
    expect(await claims.get('run-hs')).toMatchObject({ owner: ARN_A });
  });
});
