/**
 * Summarizes a V8 `.cpuprofile` (as written by `npm run bench -- --cpu-prof <dir>`): where the
 * time of a phase process went, by area of code and by function, self and inclusive.
 *
 *   npx tsx scripts/bench/profile-summary.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Time per function and per area of code, in milliseconds. */
export interface ProfileSummary {
  readonly totalMs: number;
  /** Self time by area: idle, GC, this project's code, the AWS SDK, Node internals, ... */
  readonly areas: ReadonlyArray<{ area: string; ms: number }>;
  /** Functions by self time. */
  readonly self: ReadonlyArray<{ fn: string; ms: number }>;
  /** Functions by inclusive time (recursion counted once). */
  readonly inclusive: ReadonlyArray<{ fn: string; ms: number }>;
}

/** The area of code a call frame belongs to. */
export function areaOf(url: string, functionName: string): string {
  if (functionName === '(idle)') return 'idle (waiting on I/O)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)' || functionName === '(root)') return 'V8/native (program)';
  if (url.includes('/lambdas/')) return 'lambdas/ (project code)';
  if (url.includes('/scripts/bench')) return 'scripts/bench (harness)';
  if (url.includes('@smithy') || url.includes('@aws-sdk')) return 'AWS SDK (@aws-sdk, @smithy)';
  if (url.includes('node_modules')) return 'other node_modules';
  if (url.startsWith('node:') || url === '') return 'Node core and builtins (streams, JSON, Buffer, http)';
  return 'other';
}

function fnKey(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url.replace(/^.*\/(node_modules\/)/, '$1').replace(/^.*\/(lambdas|scripts|local)\//, '$1/');
  return `${functionName || '(anonymous)'} ${file}${file ? `:${lineNumber + 1}` : ''}`;
}

/** Aggregates a profile. */
export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute it to the sample, as DevTools does.
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const areas = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    total += us;
    const area = areaOf(node.callFrame.url, node.callFrame.functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    self.set(fnKey(node), (self.get(fnKey(node)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = fnKey(byId.get(cur)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>, keyName: 'fn' | 'area') =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, us]) => ({ [keyName]: k, ms: Math.round(us / 1000) }) as { fn: string; area: string; ms: number });
  return {
    totalMs: Math.round(total / 1000),
    areas: sorted(areas, 'area'),
    self: sorted(self, 'fn').slice(0, top),
    inclusive: sorted(inclusive, 'fn')
      .filter((e) => !/^\((root|program|idle|garbage collector)\)/.test(e.fn))
      .slice(0, top),
  };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const topIndex = args.indexOf('--top');
  if (!file) {
    process.stderr.write('usage: npx tsx scripts/bench/profile-summary.ts <file.cpuprofile> [--top 25]\n');
    process.exit(2);
  }
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, topIndex >= 0 ? Number(args[topIndex + 1]) : 25);
  const pct = (ms: number) => `${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)} %`;
  const out = [`${file}: ${summary.totalMs} ms sampled`, '', 'by area (self time):'];
  for (const a of summary.areas) out.push(`  ${pct(a.ms)}  ${String(a.ms).padStart(7)} ms  ${(a as { area: string }).area}`);
  out.push('', 'functions by self time:');
  for (const f of summary.self) out.push(`  ${pct(f.ms)}  ${String(f.ms).padStart(7)} ms  ${f.fn}`);
  out.push('', 'functions by inclusive time:');
  for (const f of summary.inclusive) out.push(`  ${pct(f.ms)}  ${String(f.ms).padStart(7)} ms  ${f.fn}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
