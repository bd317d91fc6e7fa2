/**
 * The whole twin's peak memory as a user runs it: `bedrock-batch local run` through the command
 * line (the CLI's default route, no faults) on a small and a large input, its RSS summed over
 * the command's processes (the thin parent and the twin it relaunches, see bin/relaunch.js, and
 * any other descendant) and sampled every 20 ms from /proc. The small input is the baseline,
 * measured in the same run, interleaved with the large one; every run must conserve its records.
 * Linux only (/proc). Takes minutes. See docs/PERFORMANCE.md, "The whole twin's memory".
 *
 *   npm run -s bench:memory -- [--small 30000] [--large 300000] [--runs 3] [--no-relaunch]
 *
 * `--no-relaunch` runs the twin in the command's own process (`BEDROCK_BATCH_NO_RELAUNCH=1`),
 * with glibc's default malloc arenas, for comparison. Progress goes to stderr, JSON to stdout.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

const BIN = join(__dirname, '..', 'bin', 'bedrock-batch.js');
const MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';
const SAMPLE_MS = 20;
/** How often the process tree is walked again (sampling reads only the known processes). */
const TREE_MS = 250;

interface Measured {
  readonly records: number;
  readonly peakMiB: number;
  /** Processes alive at the peak. */
  readonly processes: number;
  readonly wallS: number;
  readonly conserved: boolean;
}

function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not ${text}`);
  return value;
}

/** The n-th input record's id. */
function recordIdOf(n: number): string {
  return `rec-${String(n).padStart(7, '0')}`;
}

/** The input: `records` Claude requests, written in pieces (never whole in memory). */
function writeInput(path: string, records: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < records; i += 1000) {
      const lines: string[] = [];
      for (let j = i; j < Math.min(records, i + 1000); j++) {
        const recordId = recordIdOf(j);
        const modelInput = {
          anthropic_version: 'bedrock-2023-05-31',
          max_tokens: 64,
          messages: [{ role: 'user', content: [{ type: 'text', text: `Summarize item ${recordId}.` }] }],
        };
        lines.push(`${JSON.stringify({ recordId, modelInput })}\n`);
      }
      writeSync(fd, lines.join(''));
    }
  } finally {
    closeSync(fd);
  }
}

/** `root` and its descendants, from each process's parent in /proc/<pid>/stat. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while being read.
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** Resident bytes of a process (`VmRSS`; 0 once it is gone). */
function rss(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** One `local run` under the sampler. */
async function measure(input: string, records: number, out: string, relaunch: boolean): Promise<Measured> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
  delete env.MALLOC_ARENA_MAX;
  if (relaunch) delete env.BEDROCK_BATCH_NO_RELAUNCH;
  else env.BEDROCK_BATCH_NO_RELAUNCH = '1';
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'local', 'run', input, '--model', MODEL_ID, '--out', out, '--quiet'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let pids = [child.pid!];
  let peak = 0;
  let processes = 0;
  const walk = setInterval(() => (pids = descendants(child.pid!)), TREE_MS);
  const sample = setInterval(() => {
    const sizes = pids.map(rss);
    const sum = sizes.reduce((total, bytes) => total + bytes, 0);
    if (sum > peak) [peak, processes] = [sum, sizes.filter((bytes) => bytes > 0).length];
  }, SAMPLE_MS);
  const [code, signal] = await new Promise<[number | null, string | null]>((done) => child.once('exit', (c, s) => done([c, s])));
  clearInterval(walk);
  clearInterval(sample);
  if (code !== 0) throw new Error(`local run of ${records} records ${signal ? `ended by ${signal}` : `exited with ${code}`}`);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
    records: Record<'input' | 'succeeded' | 'failed' | 'rejected', number>;
    outputs: { results: string[]; failed: string; rejected: string };
  };
  const ids = new Set<string>();
  let lines = 0;
  // The output files as the summary names them (results may come in parts), in the --out folder.
  for (const file of [...summary.outputs.results, summary.outputs.failed, summary.outputs.rejected].map((uri) => basename(uri))) {
    for (const line of readFileSync(join(out, file), 'utf8').split('\n')) {
      if (!line) continue;
      lines += 1;
      ids.add((JSON.parse(line) as { recordId: string }).recordId);
    }
  }
  const { input: inLines, succeeded, failed, rejected } = summary.records;
  const everyInputId = ids.size === records && Array.from({ length: records }, (_, n) => recordIdOf(n)).every((id) => ids.has(id));
  const conserved = inLines === records && inLines === succeeded + failed + rejected && lines === records && everyInputId;
  return { records, peakMiB: Math.round(peak / 2 ** 20), processes, wallS: Math.round((Date.now() - started) / 100) / 10, conserved };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('this benchmark reads /proc: Linux only');
  const { values } = parseArgs({
    options: {
      small: { type: 'string', default: '30000' },
      large: { type: 'string', default: '300000' },
      runs: { type: 'string', default: '3' },
      'no-relaunch': { type: 'boolean', default: false },
    },
  });
  const small = positive('small', values.small);
  const large = positive('large', values.large);
  const runs = positive('runs', values.runs);
  const relaunch = !values['no-relaunch'];
  const dir = mkdtempSync(join(tmpdir(), 'bb-twin-memory-'));
  try {
    const inputs = new Map<number, string>();
    for (const records of [small, large]) {
      inputs.set(records, join(dir, `in-${records}.jsonl`));
      writeInput(inputs.get(records)!, records);
    }
    const measured: Measured[] = [];
    for (let run = 1; run <= runs; run++) {
      for (const records of [small, large]) {
        const out = join(dir, `out-${records}-${run}`);
        const one = await measure(inputs.get(records)!, records, out, relaunch);
        rmSync(out, { recursive: true, force: true });
        process.stderr.write(
          `run ${run}/${runs}, ${records} records: ${one.peakMiB} MiB in ${one.processes} process(es), ${one.wallS} s${one.conserved ? '' : ', NOT CONSERVED'}\n`,
        );
        measured.push(one);
      }
    }
    const peaks = (records: number) => measured.filter((m) => m.records === records).map((m) => m.peakMiB);
    const smallMedian = median(peaks(small));
    const largeMedian = median(peaks(large));
    const report = {
      relaunch,
      cpus: cpus().length,
      loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
      runs: measured,
      medianPeakMiB: { [small]: smallMedian, [large]: largeMedian },
      /** Median peak of the large input over the small one's. */
      ratio: Math.round((largeMedian / smallMedian) * 1000) / 1000,
      /** The largest of any large run over the smallest of any small run. */
      worstRatio: Math.round((Math.max(...peaks(large)) / Math.min(...peaks(small))) * 1000) / 1000,
      allConserved: measured.every((m) => m.conserved),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.allConserved) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`twin-memory: ${err.message}\n`);
  process.exitCode = 1;
});
