/**
 * Files a newcomer can hold in their head: no module of the product (outside the emulator,
 * whose size is its own concern) is over 300 lines unless its opening comment says why.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const DIRS = ['bin', 'cli', 'lib', 'lambdas', 'local', 'scripts'];
const EXEMPT = ['local/emulator/'];
const LIMIT = 300;
const REASON = 'Why this file is long:';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return name === 'node_modules' ? [] : sources(full);
    return /\.(ts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The file's opening comment: everything before its first line of code. */
function openingComment(text: string): string {
  const start = text.indexOf('/**');
  if (start < 0) return '';
  const end = text.indexOf('*/', start);
  return end < 0 ? '' : text.slice(start, end);
}

test('no module is over 300 lines without the reason written at its top', () => {
  const files = DIRS.flatMap((d) => sources(join(ROOT, d))).map((f) => relative(ROOT, f).split('\\').join('/'));
  expect(files.length).toBeGreaterThan(50);
  const offenders = files
    .filter((f) => !EXEMPT.some((e) => f.startsWith(e)))
    .filter((f) => {
      const text = readFileSync(join(ROOT, f), 'utf8');
      const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
      return lines > LIMIT && !openingComment(text).includes(REASON);
    });
  expect(offenders).toEqual([]);
});
