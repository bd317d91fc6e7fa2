/**
 * What the twin's Lambda sandboxes (local/twin/lambda-runtime.ts) cost per invocation: the same
 * trivial handler called with the same event directly in this process (the baseline, as the
 * twin ran handlers before the sandboxes) and through a warm sandbox (a worker thread: the
 * event and result cross as JSON). Cold starts of the pipeline's own handlers are measured by a
 * real run instead (`npm run -s big-run`, `lambda.coldStartMs / lambda.coldStarts`).
 *
 *   npx tsx scripts/lambda-overhead.ts [--invocations N] [--event-kb K]
 *
 * Prints JSON on stdout. See docs/PERFORMANCE.md, "The whole twin's memory".
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LambdaRuntime, type SandboxFunction } from '../local/twin/lambda-runtime';

/** The handler both ways: returns a small part of its event, as the pipeline's tasks do. */
const HANDLER_SOURCE = `async (event) => ({ runId: event.runId, chunks: event.chunks.length })`;

/** An event shaped like a task's input: a run id and a list of chunk descriptions. */
function event(kb: number): { runId: string; chunks: Array<{ key: string; records: number }> } {
  const chunks = Array.from({ length: Math.max(1, Math.round((kb * 1024) / 60)) }, (_, i) => ({
    key: `work/run-1/chunks/${String(i).padStart(5, '0')}.jsonl`,
    records: 100,
  }));
  return { runId: 'run-1', chunks };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { invocations: { type: 'string', default: '2000' }, 'event-kb': { type: 'string', default: '8' } } });
  const invocations = Number(values.invocations);
  const eventKb = Number(values['event-kb']);
  if (!Number.isInteger(invocations) || invocations < 10) throw new Error(`--invocations must be an integer of at least 10, not ${values.invocations}`);
  if (!(eventKb > 0 && eventKb <= 1024)) throw new Error(`--event-kb must be in (0, 1024], not ${values['event-kb']}`);
  const payload = event(eventKb);

  // Baseline: in-process, with the JSON copy a task's input gets from the interpreter.
  const direct = new Function(`return ${HANDLER_SOURCE}`)() as (e: unknown) => Promise<unknown>;
  const directMs = await timed(invocations, () => direct(JSON.parse(JSON.stringify(payload))));

  const worker = join(__dirname, '..', 'local', 'twin', 'lambda-worker.ts');
  const bootstrap = `require('tsx/cjs/api').register();
require(${JSON.stringify(worker)}).runSandbox(() => ${HANDLER_SOURCE});`;
  const runtime = new LambdaRuntime({ environment: {}, timeScale: 1, bootstrap, maxSandboxes: 1, maxSandboxesPerFunction: 1 });
  const fn: SandboxFunction = {
    name: 'overhead',
    arn: 'arn:aws:lambda:us-east-1:000000000000:function:overhead',
    environment: {},
    memoryMb: 256,
    timeoutSeconds: 60,
  };
  try {
    const coldStarted = Date.now();
    await runtime.invoke(fn, payload);
    const firstInvocationMs = Date.now() - coldStarted;
    const sandboxMs = await timed(invocations, () => runtime.invoke(fn, payload));
    const perDirect = directMs / invocations;
    const perSandbox = sandboxMs / invocations;
    process.stdout.write(
      `${JSON.stringify(
        {
          invocations,
          eventBytes: Buffer.byteLength(JSON.stringify(payload)),
          directMsPerInvocation: round(perDirect),
          sandboxMsPerInvocation: round(perSandbox),
          overheadMsPerInvocation: round(perSandbox - perDirect),
          ratio: round(perSandbox / perDirect),
          firstInvocationMs,
          stats: runtime.stats(),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await runtime.stop();
  }
}

/** Milliseconds for `n` sequential calls. */
async function timed(n: number, call: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1) await call();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

main().catch((err: unknown) => {
  process.stderr.write(`lambda-overhead: ${(err as Error).message}\n`);
  process.exit(1);
});
