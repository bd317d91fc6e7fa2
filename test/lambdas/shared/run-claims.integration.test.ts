import type { RoundState } from '../../../lambdas/shared/contracts';
import { RunClaims, RunIdInUse, RunStopping } from '../../../lambdas/shared/run-claims';
import { startTestDynamo, type TestDynamo } from '../support/local-dynamo';

const ARN_A = 'arn:aws:states:us-east-1:123456789012:execution:Workflow:run-a';
const ARN_B = 'arn:aws:states:us-east-1:123456789012:execution:Workflow:other';
const SUCCESSOR = 'arn:aws:states:us-east-1:123456789012:execution:Workflow:run-a-r1-c10';
const ROUND: RoundState = { number: 1, chunkCount: 20, nextChunk: 10, hasMoreChunks: true };

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

  it('a stop mark closes the run to new steps; steps in flight are listed until they leave', async () => {
    await claims.claim('run-s', ARN_A);
    await claims.enterStep('run-s', 'submit:r01-c00000');
    await claims.enterStep('run-s', 'reconcile:r01-c00001');
    await claims.leaveStep('run-s', 'reconcile:r01-c00001');
    expect(await claims.isStopped('run-s')).toBe(false);
    expect(await claims.requestStop('run-s', ARN_B)).toEqual({ owned: false, owner: ARN_A });
    expect(await claims.isStopped('run-s')).toBe(false);
    expect(await claims.requestStop('run-s', ARN_A)).toEqual({ owned: true, owner: ARN_A });
    // What a running step's on-demand remainder checks before each call.
    expect(await claims.isStopped('run-s')).toBe(true);
    expect(await claims.isStopped('no-such-run')).toBe(false);
    const err = await claims.enterStep('run-s', 'submit:r01-c00002').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunStopping);
    expect((await claims.get('run-s'))?.steps).toEqual(['submit:r01-c00000']);
    await claims.leaveStep('run-s', 'submit:r01-c00000');
    expect((await claims.get('run-s'))?.steps ?? []).toEqual([]);
  });

  it('a stop before any claim claims the run for the stopped execution, so its own Prepare may still go on', async () => {
    expect(await claims.requestStop('run-early', ARN_A)).toEqual({ owned: true, owner: ARN_A });
    await expect(claims.claim('run-early', ARN_A)).resolves.toBeUndefined();
    await expect(claims.claim('run-early', ARN_B)).rejects.toBeInstanceOf(RunIdInUse);
    await expect(claims.enterStep('run-early', 'submit:r01-c00000')).rejects.toBeInstanceOf(RunStopping);
  });

  it('a step of a run that was never claimed is refused', async () => {
    await expect(claims.enterStep('never-claimed', 'submit:r01-c00000')).rejects.toThrow('run never-claimed has no claim');
  });
  it('does not hand a stopped run over to a successor', async () => {
    await claims.claim('run-hs', ARN_A);
    await claims.requestStop('run-hs', ARN_A);
    await expect(claims.handOver('run-hs', ARN_A, SUCCESSOR, ROUND)).rejects.toBeInstanceOf(RunStopping);
    expect(await claims.get('run-hs')).toMatchObject({ owner: ARN_A });
  });
});
