/**
 * The package as a consumer gets it: `npm pack` (which builds dist/), the tarball unpacked into
 * a fresh CDK app's node_modules, and an app in plain JavaScript that declares two pipelines and
 * synthesizes with cdk-nag's AwsSolutions checks (bundling skipped); the same app in TypeScript
 * type-checks against the shipped declarations. aws-cdk-lib and constructs are peer dependencies:
 * the app brings its own (offline here: this checkout's, linked into the app, as cdk-nag is).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');

const APP_BODY = `
const app = new App({ outdir: process.argv[2], context: { 'aws:cdk:bundling-stacks': [] } });
const stack = new Stack(app, 'Consumer');
const tickets = new BedrockBatchPipeline(stack, 'Tickets', { routes: { default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } } });
new BedrockBatchPipeline(stack, 'Evals', { maxConcurrentJobs: 3, routes: { nova: { modelId: 'us.amazon.nova-lite-v1:0', trigger: 'nightly' } } });
new events.Rule(stack, 'OnTicketsRun', { eventPattern: tickets.completionEventPattern });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
const template = app.synth().getStackByName('Consumer').template;
const resources = Object.values(template.Resources);
console.log(JSON.stringify({
  stateMachines: resources.filter((r) => r.Type === 'AWS::StepFunctions::StateMachine').length,
  handlers: resources.filter((r) => r.Type === 'AWS::Lambda::Function').map((r) => r.Metadata['bedrock-batch:handler']).sort(),
}));
`;

describe('the packed package in a fresh CDK app', () => {
  let work: string;
  let appDir: string;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'bb-pack-'));
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO, encoding: 'utf8' })) as Array<{
      filename: string;
    }>;
    appDir = path.join(work, 'app');
    const modules = path.join(appDir, 'node_modules');
    fs.mkdirSync(path.join(modules, 'bedrock-batch'), { recursive: true });
    execFileSync('tar', ['xzf', path.join(work, packed!.filename), '-C', path.join(modules, 'bedrock-batch'), '--strip-components=1']);
    // The twin's local services are optional peer dependencies: an app that runs the twin installs them.
    const linked = ['aws-cdk-lib', 'constructs', 'cdk-nag', '@types', 's3rver', 'dynalite', 'aws-local-stepfunctions'];
    // What npm would install for the package itself (its dependencies), as this checkout has them.
    const manifest = JSON.parse(fs.readFileSync(path.join(modules, 'bedrock-batch', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const installed = new Set(Object.keys(manifest.dependencies).map((dep) => dep.split('/')[0]!));
    for (const dep of new Set([...linked, ...installed])) fs.symlinkSync(path.join(REPO, 'node_modules', dep), path.join(modules, dep));
    // NodejsFunction pins bundled dependencies with the app's lock file (a real app has one).
    fs.writeFileSync(path.join(appDir, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages: {} }));
  }, 120000);

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  test("aws-cdk-lib and constructs are peer dependencies: the package uses the app's own copies", () => {
    const root = path.join(appDir, 'node_modules', 'bedrock-batch');
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual(['aws-cdk-lib', 'aws-local-stepfunctions', 'constructs', 'dynalite', 's3rver']);
    // Only the twin's local services are optional: the construct needs the CDK.
    const meta = (manifest.peerDependenciesMeta ?? {}) as unknown as Record<string, { optional?: boolean }>;
    expect(
      Object.keys(meta)
        .filter((dep) => meta[dep]!.optional)
        .sort(),
    ).toEqual(['aws-local-stepfunctions', 'dynalite', 's3rver']);
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('aws-cdk-lib');
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('constructs');
    for (const dep of ['aws-cdk-lib', 'constructs']) {
      const fromPackage = fs.realpathSync(require.resolve(`${dep}/package.json`, { paths: [path.join(root, 'dist', 'lib')] }));
      const fromApp = fs.realpathSync(require.resolve(`${dep}/package.json`, { paths: [appDir] }));
      expect({ dep, path: fromPackage }).toEqual({ dep, path: fromApp });
    }
  });

  test('ships the compiled constructs, handlers and twin, not the sources, the tests or the app', () => {
    const root = path.join(appDir, 'node_modules', 'bedrock-batch');
    expect(fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'dist', 'lib', 'index.d.ts'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'dist', 'lambdas', 'prepare', 'handler.js'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'dist', 'local', 'cli.js'))).toBe(true);
    for (const absent of ['test', 'local', 'lib', 'lambdas', path.join('dist', 'test'), path.join('dist', 'scripts')])
      expect({ absent, present: fs.existsSync(path.join(root, absent)) }).toEqual({ absent, present: false });
  });

  test('a JavaScript app declares two pipelines and synthesizes, cdk-nag clean', () => {
    fs.writeFileSync(
      path.join(appDir, 'app.js'),
      `const { App, Stack, Validations } = require('aws-cdk-lib');\nconst events = require('aws-cdk-lib/aws-events');\nconst { AwsSolutionsChecks } = require('cdk-nag');\nconst { BedrockBatchPipeline } = require('bedrock-batch');\n${APP_BODY}`,
    );
    const out = execFileSync(process.execPath, ['app.js', path.join(work, 'cdk.out')], { cwd: appDir, encoding: 'utf8' });
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { stateMachines: number; handlers: string[] };
    expect(summary.stateMachines).toBe(2);
    expect(summary.handlers).toHaveLength(22);
    expect(new Set(summary.handlers).size).toBe(11);
  });

  test("NodejsFunction bundles the shipped handlers from the app's node_modules (esbuild, offline)", () => {
    // What a consumer installs for bundling: esbuild (its platform binary is an optional dependency of it).
    for (const dep of ['esbuild', '@esbuild']) {
      const link = path.join(appDir, 'node_modules', dep);
      if (!fs.existsSync(link)) fs.symlinkSync(path.join(REPO, 'node_modules', dep), link);
    }
    const outdir = path.join(work, 'bundled.out');
    fs.writeFileSync(
      path.join(appDir, 'bundled.js'),
      `const { App, Stack } = require('aws-cdk-lib');\nconst { BedrockBatchPipeline } = require('bedrock-batch');\n` +
        `const app = new App({ outdir: process.argv[2] });\nconst stack = new Stack(app, 'Bundled');\n` +
        `new BedrockBatchPipeline(stack, 'Tickets', { routes: { default: { modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } } });\napp.synth();\n`,
    );
    execFileSync(process.execPath, ['bundled.js', outdir], { cwd: appDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const template = JSON.parse(fs.readFileSync(path.join(outdir, 'Bundled.template.json'), 'utf8')) as { Resources: Record<string, any> };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Metadata?.['bedrock-batch:handler']);
    expect(functions).toHaveLength(11);
    // Each function's asset is one bundled file (its handler and the SDK clients it uses) that
    // Node loads on its own, outside any node_modules, and that exports the handler.
    const bundles = functions.map((fn) => path.join(outdir, `asset.${String(fn.Properties.Code.S3Key).replace(/\.zip$/, '')}`, 'index.js'));
    for (const bundle of bundles) expect(fs.statSync(bundle).size).toBeGreaterThan(100_000);
    const loaded = execFileSync(process.execPath, ['-e', `for (const b of ${JSON.stringify(bundles)}) console.log(typeof require(b).handler)`], {
      cwd: os.tmpdir(),
      encoding: 'utf8',
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1' },
    });
    expect(loaded.trim().split('\n')).toEqual(Array(11).fill('function'));
  }, 300000);

  test('a TypeScript app type-checks against the shipped declarations', () => {
    fs.writeFileSync(
      path.join(appDir, 'app.ts'),
      `import { App, Stack, Validations } from 'aws-cdk-lib';\nimport * as events from 'aws-cdk-lib/aws-events';\nimport { AwsSolutionsChecks } from 'cdk-nag';\nimport { BedrockBatchPipeline, type BedrockBatchPipelineProps } from 'bedrock-batch';\nconst _props: BedrockBatchPipelineProps = { routes: { x: { modelId: 'm' } } };\nvoid _props;\n${APP_BODY.replace(/\(r\) =>/g, '(r: any) =>')}`,
    );
    fs.writeFileSync(
      path.join(appDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'commonjs', target: 'ES2022', moduleResolution: 'node', skipLibCheck: true, types: ['node'] },
        files: ['app.ts'],
      }),
    );
    expect(() =>
      execFileSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', appDir], { cwd: appDir, encoding: 'utf8' }),
    ).not.toThrow();
  });

  test('the installed bedrock-batch command runs a local run on the twin, every record accounted for once', () => {
    const lines = Array.from({ length: 9 }, (_, i) =>
      JSON.stringify({
        recordId: `r-${i + 1}`,
        modelInput: {
          anthropic_version: 'bedrock-2023-05-31',
          max_tokens: 50,
          messages: [{ role: 'user', content: [{ type: 'text', text: `ticket ${i + 1}` }] }],
        },
      }),
    );
    lines.splice(4, 0, '{"recordId": "broken"'); // rejected: not JSON
    fs.writeFileSync(path.join(appDir, 'tickets.jsonl'), lines.join('\n') + '\n');
    const out = path.join(work, 'local-out');
    const bin = path.join(appDir, 'node_modules', 'bedrock-batch', 'bin', 'bedrock-batch.js');
    const args = [
      'local',
      'run',
      'tickets.jsonl',
      '--model',
      'anthropic.claude-3-haiku-20240307-v1:0',
      '--max-records-per-job',
      '4',
      '--min-records-per-job',
      '2',
      '--run-id',
      'pack-run',
    ];
    // A documented override of the emulated account's quota (the model's own minimum is 100), for jobs this small.
    args.push('--account-quota', 'min-records=2');
    const stdout = execFileSync(process.execPath, [bin, ...args, '--out', out, '--quiet'], { cwd: appDir, encoding: 'utf8' });
    expect(stdout).toContain('pack-run: CompletedWithFailures: 10 input, 9 succeeded, 0 failed, 1 rejected');
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { records: Record<string, number> };
    const ids = (file: string) =>
      fs.existsSync(path.join(out, file))
        ? fs
            .readFileSync(path.join(out, file), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map(
              (l) => (JSON.parse(l) as { recordId?: string; lineNumber?: number }).recordId ?? `line-${(JSON.parse(l) as { lineNumber?: number }).lineNumber}`,
            )
        : [];
    const seen = [...ids('results.jsonl'), ...ids('failed.jsonl'), ...ids('rejected.jsonl')];
    expect(summary.records.input).toBe(10);
    expect(summary.records.input).toBe(summary.records.succeeded! + summary.records.failed! + summary.records.rejected!);
    expect(summary.records.rejected).toBe(1);
    expect(seen).toHaveLength(10);
    expect(new Set(seen).size).toBe(10);
    for (let i = 1; i <= 9; i++) expect(seen).toContain(`r-${i}`);
  });
});
