/**
 * The benchmark (scripts/bench.ts) as CI runs it: a 2 MiB smoke run that checks the report's
 * shape and that every record is accounted for in every phase. Never timings: those belong in
 * docs/PERFORMANCE.md, measured on a quiet machine.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseBenchArgs } from '../../scripts/bench';
import type { BenchReport, SizeResult } from '../../scripts/bench/report';
import { TARGETS, verdicts } from '../../scripts/bench/report';

const ROOT = join(__dirname, '..', '..');

function runBenchProcess(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [require.resolve('tsx/cli'), join(ROOT, 'scripts', 'bench.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const phaseShape = {
  seconds: expect.any(Number),
  MBps: expect.any(Number),
  peakRssMB: expect.any(Number),
  startRssMB: expect.any(Number),
  sampledPeaksMB: { heapTotal: expect.any(Number), heapUsed: expect.any(Number), external: expect.any(Number), arrayBuffers: expect.any(Number) },
  cpuSeconds: expect.any(Number),
  runsSeconds: [expect.any(Number)],
  foreignCpuSeconds: [expect.any(Number)],
};

describe('npm run bench', () => {
  test('--json --sizes 2 prints one JSON object in which every phase accounts for every record', async () => {
    const res = await runBenchProcess(['--json', '--sizes', '2']);
    expect({ code: res.code, stderrTail: res.code === 0 ? '' : res.stderr.slice(-2000) }).toEqual({ code: 0, stderrTail: '' });

    const report = JSON.parse(res.stdout) as BenchReport;
    expect(report.problems).toEqual([]);
    // Warnings only say the machine was busy; a test run shares it with other suites.
    expect(report.warnings).toEqual(expect.any(Array));
    expect(report.machine).toEqual({
      node: process.version,
      cpus: expect.any(Number),
      cpuModel: expect.any(String),
      totalMemGB: expect.any(Number),
      platform: expect.any(String),
      loadAverage: { start: [expect.any(Number), expect.any(Number), expect.any(Number)], end: [expect.any(Number), expect.any(Number), expect.any(Number)] },
    });
    expect(report.targets).toEqual(TARGETS);
    expect(report.code).toEqual({
      commit: expect.stringMatching(/^[0-9a-f]{40}$/),
      uncommittedLambdas: expect.any(Array),
      lambdasHash: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(report.sizes).toHaveLength(1);

    const size = report.sizes[0]!;
    expect(size.inputMB).toBe(2);
    expect(size.inputBytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    // ~1 KB records.
    expect(size.inputBytes / size.records).toBeGreaterThan(800);
    expect(size.inputBytes / size.records).toBeLessThan(1300);
    expect(size.rawCopy).toEqual(phaseShape);
    expect(size.prepare).toEqual({ ...phaseShape, ratioToRawCopy: expect.any(Number), validRecords: size.records, rejected: 0, chunks: 1, tailFiles: 0 });
    expect(size.reconcile).toEqual({
      ...phaseShape,
      ratioToRawCopy: expect.any(Number),
      outputMB: expect.any(Number),
      records: size.records,
      succeeded: size.records,
      failed: 0,
      retry: 0,
    });
    expect(report.met).toEqual({
      sizes: [{ inputMB: 2, prepareRatio: expect.any(Boolean), reconcileRatio: expect.any(Boolean), peakRss: expect.any(Boolean) }],
      peakRssFlat: null,
    });
    // Progress went to stderr, not into the JSON.
    expect(res.stderr).toMatch(/2mb: reconcile/);
  }, 60_000);

  test('rejects unknown options and bad sizes', () => {
    expect(parseBenchArgs([])).toEqual({ json: false, keep: false, sizes: [100, 1024], repeat: 1 });
    expect(parseBenchArgs(['--json', '--sizes', '1,2.5', '--keep', '--repeat', '3', '--node-options', '--max-old-space-size=256  --no-opt'])).toEqual({
      json: true,
      keep: true,
      sizes: [1, 2.5],
      repeat: 3,
      nodeOptions: ['--max-old-space-size=256', '--no-opt'],
    });
    expect(() => parseBenchArgs(['--repeat', '0'])).toThrow(/--repeat must be a positive integer/);
    expect(() => parseBenchArgs(['--sizes', '0'])).toThrow(/--sizes must be positive/);
    expect(() => parseBenchArgs(['--sizes'])).toThrow(/--sizes needs a value/);
    expect(() => parseBenchArgs(['--fast'])).toThrow(/unknown option --fast/);
  });
});

describe('bench verdicts', () => {
  const size = (inputMB: number, prepareRss: number, reconcileRss: number, prepareRatio = 0.7, reconcileRatio = 0.6) =>
    ({
      inputMB,
      inputBytes: inputMB * 1024 * 1024,
      prepare: { peakRssMB: prepareRss, ratioToRawCopy: prepareRatio },
      reconcile: { peakRssMB: reconcileRss, ratioToRawCopy: reconcileRatio },
    }) as unknown as SizeResult;

  test('a size meets the targets on ratios and peak RSS of both phases', () => {
    expect(verdicts([size(100, 150, 301, 0.6, 0.49)]).sizes).toEqual([{ inputMB: 100, prepareRatio: true, reconcileRatio: false, peakRss: false }]);
  });

  test('peak RSS is flat when the largest size grows it by at most 25 % in each phase', () => {
    expect(verdicts([size(100, 100, 200), size(1024, 125, 250)]).peakRssFlat).toBe(true);
    expect(verdicts([size(1024, 126, 200), size(100, 100, 200)]).peakRssFlat).toBe(false);
  });
});
