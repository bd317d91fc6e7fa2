/**
 * Helpers of the end-to-end tests: input files, reading a run's outputs, and the checks every
 * run must pass (conservation, the concurrency cap).
 */
import type { AccessReport } from '../../local/twin/access-checks';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../../lambdas/finalize/finalize';
import type { LocalRunReport } from '../../local/run-local';
import type { CfnTemplate } from '../../local/services/template-intrinsics';

export const CLAUDE = 'anthropic.claude-3-haiku-20240307-v1:0';

export function tempDir(prefix = 'bb-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A valid Anthropic Messages record, asking for up to `maxTokens` output tokens. */
export function claudeRecord(recordId: string, text = `Summarize item ${recordId}.`, maxTokens = 64): string {
  return JSON.stringify({
    recordId,
    modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: maxTokens, messages: [{ role: 'user', content: [{ type: 'text', text }] }] },
  });
}

/** Writes lines to `<dir>/<name>` with a final newline; returns the path. */
export function writeLines(dir: string, name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/** `count` valid records with ids `<prefix>-<n>`, each asking for up to `maxTokens` output tokens. */
export function claudeLines(count: number, prefix = 'rec', maxTokens = 64): string[] {
  return Array.from({ length: count }, (_, i) => claudeRecord(`${prefix}-${i}`, undefined, maxTokens));
}

export function readJsonl<T = Record<string, unknown>>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

export interface RunOutputs {
  readonly summary: RunSummary;
  readonly results: Array<{ recordId: string; modelOutput: unknown; usage?: { inputTokens: number; outputTokens: number } }>;
  readonly failed: Array<{ recordId: string; error: { code: string; message: string }; attempts: number }>;
  readonly rejected: Array<{ file: string; line: number; recordId?: string; reason: string }>;
  readonly emulator: { jobsCreated: number; duplicateCreates: number; maxConcurrentJobs: number; eventsSent: number; [k: string]: unknown };
  /** The twin's IAM report: every call of the handlers, checked against their roles' policies. */
  readonly access?: AccessReport;
}

export function readOutputs(run: LocalRunReport): RunOutputs {
  return {
    summary: JSON.parse(readFileSync(join(run.outDir, 'summary.json'), 'utf8')) as RunSummary,
    results: readJsonl(join(run.outDir, 'results.jsonl')),
    failed: readJsonl(join(run.outDir, 'failed.jsonl')),
    rejected: readJsonl(join(run.outDir, 'rejected.jsonl')),
    emulator: JSON.parse(readFileSync(join(run.outDir, 'emulator.json'), 'utf8')),
    access: JSON.parse(readFileSync(join(run.outDir, 'access.json'), 'utf8')) as AccessReport,
  };
}

/**
 * The invariant of every run: input lines = succeeded + failed + rejected, each record in
 * exactly one of them, once; the summary agrees with the files.
 */
export function expectConservation(out: Omit<RunOutputs, 'emulator'>, inputLines: number, expectedIds?: readonly string[]): void {
  const { summary, results, failed, rejected } = out;
  // IAM in the twin: no call of a handler was refused by its role's policies.
  if ('access' in out && out.access) expect(out.access.calls.filter((c) => !c.allowed)).toEqual([]);
  if ('access' in out && out.access) expect(out.access.denied).toBe(0);
  expect(results.length + failed.length + rejected.length).toBe(inputLines);
  expect(summary.records).toEqual({ input: inputLines, succeeded: results.length, failed: failed.length, rejected: rejected.length });
  const ids = [...results.map((r) => r.recordId), ...failed.map((r) => r.recordId)];
  expect(new Set(ids).size).toBe(ids.length);
  if (expectedIds) {
    const rejectedIds = new Set(rejected.map((r) => r.recordId));
    const accounted = new Set(ids);
    for (const id of expectedIds) expect(accounted.has(id) || rejectedIds.has(id)).toBe(true);
  }
}

/**
 * Conservation for a run that failed before every record reached an output: the files agree
 * with the summary, no record is in them twice, and the summary names how many input records
 * are in none of them (nothing is dropped silently). Returns that number.
 */
export function expectFailedRunAccounted(out: Omit<RunOutputs, 'emulator'>, inputLines: number): number {
  const { input, succeeded, failed, rejected } = out.summary.records;
  expect(input).toBe(inputLines);
  expect([out.results.length, out.failed.length, out.rejected.length]).toEqual([succeeded, failed, rejected]);
  const ids = [...out.results, ...out.failed].map((r) => r.recordId);
  expect(new Set(ids).size).toBe(ids.length);
  const missing = input - succeeded - failed - rejected;
  expect(missing).toBeGreaterThan(0);
  expect(out.summary.warnings).toContain(
    `the run failed before ${missing} of its ${inputLines} input records reached an output: they are in none of results, failed or rejected`,
  );
  return missing;
}

/** No more jobs were ever in flight than the cap allows. */
export function expectUnderCap(out: RunOutputs, cap: number): void {
  expect(out.emulator.maxConcurrentJobs).toBeGreaterThan(0);
  expect(out.emulator.maxConcurrentJobs).toBeLessThanOrEqual(cap);
}

/** A run's outputs as the twin's S3 holds them under `results/<runId>/`. */
export async function readOutputsFromS3(
  s3: { send: (command: GetObjectCommand) => Promise<{ Body?: { transformToString(): Promise<string> } }> },
  bucket: string,
  runId: string,
  /** The pipeline's key prefix in a bucket of the user's (`teams/ml/`). */
  keyPrefix = '',
): Promise<Omit<RunOutputs, 'emulator'>> {
  const text = async (name: string) => {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${keyPrefix}results/${runId}/${name}` }));
    return res.Body!.transformToString();
  };
  const lines = <T>(t: string) =>
    t
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as T);
  return {
    summary: JSON.parse(await text('summary.json')) as RunSummary,
    results: lines(await text('results.jsonl')),
    failed: lines(await text('failed.jsonl')),
    rejected: lines(await text('rejected.jsonl')),
  };
}

/** The template with `props` set on the function whose handler is `handler`. */
export function withFunction(template: CfnTemplate, handler: string, props: Record<string, unknown>): CfnTemplate {
  const copy = structuredClone(template);
  let found = 0;
  for (const r of Object.values(copy.Resources ?? {})) {
    if (r.Metadata?.['bedrock-batch:handler'] !== handler) continue;
    Object.assign(r.Properties!, props);
    found += 1;
  }
  expect(found).toBe(1);
  return copy;
}
