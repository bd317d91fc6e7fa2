/**
 * Which code the benchmark measured, and a frozen copy of it: the phases run from a snapshot of
 * lambdas/ (and the few folders the phase process imports) taken when the run starts, so that
 * edits made in the checkout during a long run do not mix versions. The report names the git
 * commit, the files of lambdas/ that differed from it, and a content hash of the snapshot.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The measured code's identity, as reported. */
export interface CodeVersion {
  /** `git rev-parse HEAD`, or null outside a git checkout. */
  readonly commit: string | null;
  /** Files under lambdas/ with uncommitted changes (`git status --porcelain`). */
  readonly uncommittedLambdas: readonly string[];
  /** SHA-256 over every file of lambdas/ (paths and contents), first 16 hex digits. */
  readonly lambdasHash: string;
}

function git(root: string, args: string[]): string | null {
  try {
    // Only trailing whitespace: porcelain status lines start with a significant space.
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
  } catch {
    return null;
  }
}

/** Hash of the files under `dir`, in path order. */
export function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []))
      .sort();
  for (const file of walk(dir)) hash.update(relative(dir, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** Folders the phase process (scripts/bench/phase.ts) loads code from. */
const SNAPSHOT_FOLDERS = ['lambdas', 'local', 'scripts/bench'];

/**
 * Copies the code the phases run into `dest`, keeping the layout (so relative imports hold);
 * packages still resolve from `root`'s node_modules through `NODE_PATH`.
 *
 * @returns the path of the snapshot's phase script and the code version of the snapshot
 */
export function snapshotCode(root: string, dest: string): { phaseScript: string; nodePath: string; version: CodeVersion } {
  // Read before copying, so the names describe the snapshot, give or take an edit in between.
  const status = git(root, ['status', '--porcelain', '--', 'lambdas']);
  const commit = git(root, ['rev-parse', 'HEAD']);
  for (const folder of SNAPSHOT_FOLDERS) cpSync(join(root, folder), join(dest, folder), { recursive: true });
  return {
    phaseScript: join(dest, 'scripts', 'bench', 'phase.ts'),
    nodePath: join(root, 'node_modules'),
    version: { commit, uncommittedLambdas: status ? status.split('\n').map((l) => l.slice(3)) : [], lambdasHash: treeHash(join(dest, 'lambdas')) },
  };
}
