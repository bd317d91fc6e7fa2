/**
 * The code a twin sandbox runs (lambda-worker.ts plus every handler under `lambdas/`), in a
 * form a bare worker thread can load:
 * - from the published package (compiled `.js`), the files themselves;
 * - from this repository's TypeScript sources, one esbuild bundle of the sandbox and every
 *   handler, as CDK's `NodejsFunction` bundles each handler for a deploy (so code that would not
 *   survive bundling fails here too). The bundle is cached in the OS temp folder under a hash of
 *   the sources and the installed packages, so the test suite's many twins build it once, and
 *   loaded with V8's code cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

/** The repository (or package) root: this file is `local/twin/` (or `dist/local/twin/`) below it. */
const CODE_ROOT = join(__dirname, '..', '..');

/** Variables a sandbox takes from the twin's own process (paths, the SDK's Node notice). */
const PASSED_THROUGH = ['PATH', 'HOME', 'TMPDIR', 'TEMP', 'TMP', 'SystemRoot', 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];

/**
 * What Lambda's environment has whatever the machine's: UTC (Lambda sets `TZ=:UTC`), its locale,
 * and no shared AWS config or credentials files, so the machine's `~/.aws` (retry mode, max
 * attempts, FIPS endpoints, a profile) cannot change how the handlers call AWS.
 */
const LAMBDA_FIXED = {
  TZ: 'UTC',
  LANG: 'en_US.UTF-8',
  AWS_CONFIG_FILE: join(tmpdir(), 'bedrock-batch-twin', 'no-aws-config', 'config'),
  AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), 'bedrock-batch-twin', 'no-aws-config', 'credentials'),
};

/**
 * A sandbox's environment, as a deployed function's: its own template variables (not the other
 * functions', not the twin's), then `common` (region, credentials, endpoints, log level) and
 * Lambda's reserved variables.
 */
export function sandboxEnvironment(
  fn: { readonly name: string; readonly memoryMb: number; readonly environment: Readonly<Record<string, string>> },
  common: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_THROUGH) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  return Object.assign(env, LAMBDA_FIXED, fn.environment, common, {
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
  });
}

/** The handler names: folders of `lambdas/` with a `handler` file. */
export function handlerNames(): string[] {
  const dir = join(CODE_ROOT, 'lambdas');
  return readdirSync(dir)
    .filter((name) => /^[a-z0-9-]+$/.test(name) && (existsSync(join(dir, name, 'handler.ts')) || existsSync(join(dir, name, 'handler.js'))))
    .sort();
}

/** Source of a worker thread (run with `eval: true`) that starts a sandbox. */
export function sandboxBootstrap(): string {
  if (__filename.endsWith('.js')) {
    const worker = JSON.stringify(join(__dirname, 'lambda-worker.js'));
    const lambdas = JSON.stringify(join(CODE_ROOT, 'lambdas'));
    return `const { join } = require('node:path');
require(${worker}).runSandbox((name) => require(join(${lambdas}, name, 'handler')).handler);`;
  }
  // Compiled through V8's code cache (kept beside the bundle): a cold start then loads the
  // bundle in about half the time (~100 ms instead of ~180 ms on a 2-CPU machine).
  return `const fs = require('node:fs'), vm = require('node:vm'), Module = require('node:module'), path = require('node:path');
const bundle = ${JSON.stringify(bundleFile())};
const cachePath = bundle + '.v8cache';
let cached;
try { cached = fs.readFileSync(cachePath); } catch {}
const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, ...(cached ? { cachedData: cached } : {}) });
const module_ = { exports: {} };
script.runInThisContext()(module_.exports, Module.createRequire(bundle), module_, bundle, path.dirname(bundle));
if (!cached || script.cachedDataRejected) {
  setImmediate(() => {
    const temp = cachePath + '.' + process.pid + '.' + require('node:worker_threads').threadId;
    try { fs.writeFileSync(temp, script.createCachedData()); fs.renameSync(temp, cachePath); } catch {}
  });
}`;
}

let built: string | undefined;

/** The bundle of the sandbox and every handler, built once per source version. */
function bundleFile(): string {
  if (built && existsSync(built)) return built;
  const dir = join(tmpdir(), 'bedrock-batch-twin');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `sandbox-${sourceHash()}.js`);
  if (!existsSync(file)) {
    const entry = [
      `const handlers = {`,
      ...handlerNames().map((name) => `  ${JSON.stringify(name)}: () => require(${JSON.stringify(join(CODE_ROOT, 'lambdas', name, 'handler.ts'))}).handler,`),
      `};`,
      `require(${JSON.stringify(join(__dirname, 'lambda-worker.ts'))}).runSandbox((name) => {`,
      `  const load = handlers[name];`,
      `  if (!load) throw new Error('no handler lambdas/' + name + '/handler');`,
      `  return load();`,
      `});`,
    ].join('\n');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof import('esbuild');
    const result = esbuild.buildSync({
      stdin: { contents: entry, resolveDir: CODE_ROOT, sourcefile: 'twin-sandbox-entry.js', loader: 'js' },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      keepNames: true,
      write: false,
      logLevel: 'silent',
    });
    // Written whole, then renamed: twins of parallel test workers may build it at once.
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, result.outputFiles[0]!.contents);
    renameSync(temp, file);
  }
  built = file;
  return file;
}

/** A hash of what the bundle is made of: the TypeScript sources and the installed packages. */
function sourceHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|js|json|patch)$/.test(name)) hash.update(relative(CODE_ROOT, path).split(sep).join('/')).update(readFileSync(path));
    }
  };
  walk(join(CODE_ROOT, 'lambdas'));
  walk(join(CODE_ROOT, 'local'));
  if (existsSync(join(CODE_ROOT, 'patches'))) walk(join(CODE_ROOT, 'patches'));
  const lock = join(CODE_ROOT, 'node_modules', '.package-lock.json');
  if (existsSync(lock)) hash.update(readFileSync(lock));
  return hash.digest('hex').slice(0, 16);
}
