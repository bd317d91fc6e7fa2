/**
 * How the operator commands print: one line per run view (plain output, logs, pipes), a live
 * view with progress bars on a terminal (cli-progress), and the `list` table.
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { describeCost } from '../lambdas/shared/prices';
import type { RunListing } from './operate';
import type { RunView } from './run-view';

/** `1h02m`, `3m05s`, `42s`. */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Text read from the bucket or the execution (an error's cause), made safe for a terminal: control
 * characters (escape sequences that could redraw an operator's screen) become spaces.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/** One line: status, round, records, jobs by status, slots, cost, elapsed and time left. */
export function describeView(v: RunView): string {
  return printable(describeViewText(v));
}

function describeViewText(v: RunView): string {
  const r = v.records;
  const parts = [
    `${v.runId}: ${v.status}`,
    ...(v.round !== undefined ? [`round ${v.round}`] : []),
    `${r.prepared ?? '?'} prepared, ${r.succeeded} succeeded, ${r.failed} failed, ${r.rejected} rejected`,
  ];
  const jobs = Object.entries(v.jobsByStatus);
  if (jobs.length > 0) parts.push(`jobs ${jobs.map(([s, n]) => `${n} ${s}`).join(', ')}`);
  if (v.slots) parts.push(`${v.slots.held}/${v.slots.cap} slots`);
  if (v.cost !== undefined) parts.push(describeCost(v.cost));
  if (v.elapsedSeconds !== undefined) parts.push(`${duration(v.elapsedSeconds)} elapsed`);
  if (v.etaSeconds !== undefined) parts.push(`about ${duration(v.etaSeconds)} left`);
  if (v.error) parts.push(`${v.error.error}: ${v.error.cause.split('\n')[0]}`);
  return parts.join('; ');
}

/** Lines of the running jobs' progress (`bb-run-r01-c00002 InProgress 40/100`). */
export function jobLines(v: RunView): string[] {
  return v.jobs.filter((j) => j.total !== undefined).map((j) => printable(`  ${j.name} ${j.status} ${j.processed ?? 0}/${j.total}`));
}

/** What `status --watch` and `submit --wait` print for each change. */
export interface ViewPrinter {
  update(view: RunView): void;
  /** Leaves the last view on screen. */
  done(): void;
}

/** Plain output: one line per change (`--json`: one JSON object per change). */
export function linePrinter(write: (text: string) => void, json: boolean): ViewPrinter {
  return {
    update: (view) => write((json ? JSON.stringify(view) : describeView(view)) + '\n'),
    done: () => undefined,
  };
}

/**
 * A live view on a terminal: a bar for the run's records (finished of prepared) and one per job
 * Bedrock is running (processed of total), redrawn in place, with the one-line status above.
 */
export function barPrinter(stream: NodeJS.WritableStream): ViewPrinter {
  const bars = new MultiBar(
    {
      stream: stream as NodeJS.WriteStream,
      format: ' {bar} {value}/{total} {label}',
      hideCursor: true,
      clearOnComplete: false,
      noTTYOutput: true,
      notTTYSchedule: 500,
      fps: 10,
    },
    Presets.shades_classic,
  );
  let records: SingleBar | undefined;
  let last: RunView | undefined;
  const jobs = new Map<string, SingleBar>();
  return {
    update: (view) => {
      last = view;
      const r = view.records;
      const finished = r.succeeded + r.failed;
      const total = Math.max(r.prepared ?? 0, finished, 1);
      bars.log(describeView(view) + '\n');
      if (!records) records = bars.create(total, finished, { label: 'records finished' });
      records.setTotal(total);
      records.update(finished, { label: 'records finished' });
      for (const job of view.jobs) {
        let bar = jobs.get(job.name);
        if (job.total === undefined) {
          // A job that has ended leaves the view (its records count in the run's bar): the bars
          // stay as many as the jobs running, which the cap bounds.
          if (bar) bars.remove(bar);
          jobs.delete(job.name);
          continue;
        }
        if (!bar) {
          bar = bars.create(Math.max(job.total, 1), job.processed ?? 0, { label: job.name });
          jobs.set(job.name, bar);
        }
        bar.setTotal(Math.max(job.total, 1));
        bar.update(job.processed ?? 0, { label: `${job.name} ${job.status}` });
      }
    },
    done: () => {
      bars.stop();
      // The last status line was logged above the bars; say it again below them, where the eye is.
      if (last) stream.write(describeView(last) + '\n');
    },
  };
}

/** The `list` table: one line per run. */
export function listLines(runs: readonly RunListing[]): string[] {
  if (runs.length === 0) return ['no runs yet'];
  const rows = runs.map((r) => [
    r.runId,
    r.status,
    r.claimedAt ?? '',
    r.records ? `${r.records.input} in, ${r.records.succeeded} ok, ${r.records.failed} failed, ${r.records.rejected} rejected` : '',
    r.costUsd === undefined ? '' : r.costUsd === null ? 'cost unknown' : `$${r.costUsd.toFixed(4)}`,
  ]);
  const header = ['RUN', 'STATUS', 'STARTED', 'RECORDS', 'COST'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}
