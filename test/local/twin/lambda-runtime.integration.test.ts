import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INVOKE_PAYLOAD_LIMIT_BYTES } from '../../../local/twin/lambda-errors';
import { LambdaRuntime, type SandboxFunction } from '../../../local/twin/lambda-runtime';

const bootstrap = `require(${JSON.stringify(join(__dirname, 'fixtures', 'sandbox-handlers.js'))});`;

function fn(name: string, overrides: Partial<SandboxFunction> = {}): SandboxFunction {
  return { name, arn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`, environment: {}, memoryMb: 256, timeoutSeconds: 60, ...overrides };
}

describe('LambdaRuntime (each invocation in a worker sandbox, with Lambda limits)', () => {
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });
  const start = (options: Partial<ConstructorParameters<typeof LambdaRuntime>[0]> = {}) =>
    (runtime = new LambdaRuntime({ environment: { AWS_REGION: 'us-east-1' }, timeScale: 0.1, bootstrap, ...options }));

  it("gives the handler its function's environment (not the twin's), Lambda's context and JSON back", async () => {
    process.env.BEDROCK_BATCH_TEST_PARENT_ONLY = 'leaked';
    try {
      const r = start();
      const out = (await r.invoke(fn('echo', { environment: { FROM_FUNCTION: 'yes' }, memoryMb: 512, timeoutSeconds: 100 }), { a: [1, 'b'] })) as Record<
        string,
        unknown
      >;
      expect(out).toMatchObject({
        event: { a: [1, 'b'] },
        fromFunction: 'yes',
        fromTwinProcess: null,
        region: 'us-east-1',
        functionName: 'echo',
        memoryLimitInMB: '512',
      });
      // 100 s scaled by 0.1: at most 10 s remain, and some time does.
      expect(out.remainingMs).toBeGreaterThan(0);
      expect(out.remainingMs).toBeLessThanOrEqual(10_000);
    } finally {
      delete process.env.BEDROCK_BATCH_TEST_PARENT_ONLY;
    }
  });

  it('freezes a sandbox between invocations, as Lambda does: what a handler left running waits until it is invoked again', async () => {
    const r = start();
    const dir = mkdtempSync(join(tmpdir(), 'bb-freeze-'));
    try {
      const file = join(dir, 'ticks');
      await r.invoke(fn('background'), { file });
      const frozenAt = Number(readFileSync(file, 'utf8'));
      // Real work elsewhere meanwhile (another function's cold start, 100 ms or more): the
      // interval left running in the first sandbox does not tick.
      await expect(r.invoke(fn('echo'), 1)).resolves.toMatchObject({ event: 1 });
      await expect(r.invoke(fn('echo'), 2)).resolves.toMatchObject({ event: 2 });
      expect(Number(readFileSync(file, 'utf8'))).toBe(frozenAt);
      // Invoked again, the same (warm) sandbox thaws and the interval runs on.
      const again = (await r.invoke(fn('background'), { file, wait: true })) as { ticks: number };
      expect(again.ticks).toBeGreaterThan(frozenAt);
      expect(r.stats()).toMatchObject({ coldStarts: 2 });
    } finally {
      await r.stop(); // before the folder goes: the interval writes into it
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a sandbox warm after a handled error, which keeps its name', async () => {
    const r = start();
    await expect(r.invoke(fn('fail'), {})).rejects.toMatchObject({ name: 'RecordsMissing', message: 'the handler said no' });
    await expect(r.invoke(fn('fail'), {})).rejects.toMatchObject({ name: 'RecordsMissing' });
    expect(r.stats()).toMatchObject({ invocations: 2, coldStarts: 1 });
  });

  it("times an invocation out at its function's scaled timeout with Sandbox.Timedout, and starts afresh", async () => {
    const r = start({ timeScale: 0.05 });
    await expect(r.invoke(fn('hang', { timeoutSeconds: 2 }), {})).rejects.toMatchObject({
      name: 'Sandbox.Timedout',
      message: expect.stringContaining('Task timed out after 2.00 seconds'),
    });
    await expect(r.invoke(fn('echo'), 1)).resolves.toMatchObject({ event: 1 });
    expect(r.stats()).toMatchObject({ timeouts: 1, coldStarts: 2 });
  });

  it('kills a handler over its memory size with Runtime.OutOfMemory', async () => {
    const r = start();
    await expect(r.invoke(fn('hog', { memoryMb: 48 }), {})).rejects.toMatchObject({ name: 'Runtime.OutOfMemory' });
    expect(r.stats().outOfMemory).toBe(1);
    await expect(r.invoke(fn('echo'), 2)).resolves.toMatchObject({ event: 2 });
  });

  it('fails a result over 6 MB with Function.ResponseSizeTooLarge and an event over 6 MB before it runs', async () => {
    const r = start();
    await expect(r.invoke(fn('big'), {})).rejects.toMatchObject({ name: 'Function.ResponseSizeTooLarge' });
    const before = r.stats().invocations;
    await expect(r.invoke(fn('echo'), 'y'.repeat(INVOKE_PAYLOAD_LIMIT_BYTES))).rejects.toMatchObject({ name: 'Lambda.RequestTooLargeException' });
    expect(r.stats().invocations).toBe(before);
  });

  it('counts Buffers (outside the V8 heap) against the memory size too', async () => {
    const r = start();
    await expect(r.invoke(fn('buffers', { memoryMb: 64 }), {})).rejects.toMatchObject({
      name: 'Runtime.OutOfMemory',
      message: expect.stringMatching(/^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: signal: killed/),
    });
    expect(r.stats().outOfMemory).toBe(1);
  });

  it('answers null for a result that is not JSON, and fails a result JSON cannot write, without harm to the twin', async () => {
    const r = start();
    await expect(r.invoke(fn('notJson'), {})).resolves.toBeNull();
    await expect(r.invoke(fn('bigint'), {})).rejects.toMatchObject({ name: 'TypeError', message: expect.stringContaining('BigInt') });
    await expect(r.invoke(fn('echo'), 3)).resolves.toMatchObject({ event: 3 });
  });

  it("gives a sandbox Lambda's UTC clock and no AWS config files of the machine", async () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      const out = (await start().invoke(fn('environment'), {})) as Record<string, string>;
      expect(out.tz).toBe('UTC');
      expect(out.config).toMatch(/no-aws-config/);
      expect(out.credentials).toMatch(/no-aws-config/);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('fails an initialization that does not end within its limit, and stops cleanly while one runs', async () => {
    const r = start({ initTimeoutMs: 300 });
    await expect(r.invoke(fn('slowInit'), {})).rejects.toMatchObject({ name: 'Sandbox.Timedout', message: expect.stringContaining('init') });
    const other = start({ initTimeoutMs: 60_000 });
    const pending = other.invoke(fn('slowInit'), {}).catch((e: Error) => e);
    await waitFor(() => other.stats().coldStarts === 1);
    await other.stop();
    expect(await pending).toMatchObject({ name: 'Lambda.ServiceException' });
    await r.stop();
  });

  it('fails an invocation still running when the twin stops, not as a timeout', async () => {
    const r = start();
    const pending = r.invoke(fn('hang'), {}).catch((e: Error) => e);
    await waitFor(() => r.stats().coldStarts === 1 && r.stats().coldStartMs > 0);
    await r.stop();
    expect(await pending).toMatchObject({ name: 'Lambda.ServiceException' });
    expect(r.stats().timeouts).toBe(0);
  });

  it('reports a sandbox whose process exits as Runtime.ExitError', async () => {
    const r = start();
    await expect(r.invoke(fn('exit'), {})).rejects.toMatchObject({ name: 'Runtime.ExitError' });
  });

  it('never has more sandboxes alive than allowed: invocations wait, warm ones of other functions are retired', async () => {
    const r = start({ maxSandboxes: 2 });
    const names = ['echo', 'fail', 'echo2'];
    const out = await Promise.all(Array.from({ length: 9 }, (_, i) => r.invoke(fn(names[i % 3]!), i).catch((e: Error) => e.name)));
    expect(out.filter((o) => o === 'RecordsMissing')).toHaveLength(3);
    expect(out.filter((o) => typeof o === 'object').map((o) => (o as { event: number }).event)).toEqual([0, 2, 3, 5, 6, 8]);
    const stats = r.stats();
    expect(stats.peakSandboxes).toBe(2);
    // Three functions through two sandboxes: some warm sandbox was retired for another function.
    expect(stats.coldStarts).toBeGreaterThan(2);
  });

  it("names what a handler throws as Lambda's Node.js runtime does: a value that is not an Error by its type", async () => {
    const r = start();
    await expect(r.invoke(fn('throwString'), {})).rejects.toMatchObject({ name: 'string', message: 'not an Error' });
    await expect(r.invoke(fn('throwErrorLike'), {})).rejects.toMatchObject({ name: 'LikeAnError', message: 'duck typed' });
    await expect(r.invoke(fn('throwNull'), {})).rejects.toMatchObject({
      name: 'handled',
      message: expect.stringContaining('there was a problem while retrieving one or more of its message, name, and stack'),
    });
  });

  it("limits a sandbox's old generation to its memory size and its young generation to the twin's small default", async () => {
    const r = start();
    await expect(r.invoke(fn('limits', { memoryMb: 384 }), {})).resolves.toMatchObject({ maxOldGenerationSizeMb: 384, maxYoungGenerationSizeMb: 8 });
    const roomy = new LambdaRuntime({ environment: {}, timeScale: 0.1, bootstrap, youngGenerationMb: 16 });
    try {
      await expect(roomy.invoke(fn('limits'), {})).resolves.toMatchObject({ maxYoungGenerationSizeMb: 16 });
    } finally {
      await roomy.stop();
    }
  });

  it('keeps at most 10 sandboxes alive by default, however many functions run at once', async () => {
    const r = start();
    const out = await Promise.all(Array.from({ length: 12 }, (_, i) => r.invoke(fn(`echo-${i}`), i)));
    expect(out.map((o) => (o as { event: number }).event)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(r.stats()).toMatchObject({ invocations: 12, coldStarts: 12, peakSandboxes: 10 });
  });
});

/** Resolves once `condition` holds, checking every few milliseconds. */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
