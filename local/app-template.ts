/**
 * The twin on a consumer's own CDK app (`local run --app "<command>"`): the command is run the
 * way the CDK CLI runs an app (`CDK_OUTDIR` set, so `App` synthesizes on exit into that folder;
 * path metadata on, asset bundling skipped: the twin runs the package's handler code, not the
 * bundles), the cloud assembly's stack templates are read, and one `BedrockBatchPipeline` is
 * picked out of them. A stack may hold several pipelines: the twin runs one, the template
 * without the others' resources, so the twin's one bucket, table and state machine are that
 * pipeline's.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HANDLER_METADATA_KEY } from '../lambdas/shared/contracts';
import type { PipelineEnvConfig } from '../lambdas/shared/config';
import type { CfnResource, CfnTemplate } from './services/template-intrinsics';

/** CDK's construct path metadata key (on when `aws:cdk:enable-path-metadata` is set). */
const PATH_METADATA = 'aws:cdk:path';
/** The construct id of BedrockBatchPipeline's functions (lib/bedrock-batch-pipeline.ts). */
const FUNCTIONS_ID = 'Functions';

/** A problem with `--app` or `--pipeline` the user can fix: exit 2, one line. */
export class AppError extends Error {
  override readonly name = 'AppError';
}

/** One pipeline found in the app. */
export interface AppPipeline {
  /** Its construct path (`Consumer/Tickets`). */
  readonly path: string;
  readonly stackName: string;
  /** The stack's template without the resources of the stack's other pipelines. */
  readonly template: CfnTemplate;
  /** Its routes, as its functions' `PIPELINE_CONFIG` has them. */
  readonly routes: PipelineEnvConfig['routes'];
}

/** Runs `command` as the CDK CLI runs an app; returns each stack's name and template. */
export async function synthesizeApp(command: string, cwd = process.cwd()): Promise<Array<{ stackName: string; template: CfnTemplate }>> {
  const outdir = await mkdtemp(join(tmpdir(), 'bb-app-'));
  try {
    // The CDK CLI hands an app its context through CDK_CONTEXT_JSON (App reads nothing else):
    // cdk.json's, then cdk.context.json's (cached lookups), then the twin's own two settings.
    const context = { ...(await appContext(cwd)), 'aws:cdk:enable-path-metadata': true, 'aws:cdk:bundling-stacks': [] };
    const stderr = await new Promise<string>((resolve, reject) => {
      const child = spawn(command, {
        cwd,
        shell: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) },
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
      child.on('error', (e) => reject(new AppError(`--app: cannot run '${command}': ${e.message}`)));
      child.on('exit', (code) => {
        const last = err.trim().split('\n').at(-1) ?? '';
        if (code === 0) resolve(err);
        else reject(new AppError(`--app: '${command}' exited with code ${code}${last ? `: ${last}` : ''}`));
      });
    });
    let manifest: { artifacts?: Record<string, { type?: string; properties?: { templateFile?: string }; displayName?: string }> };
    try {
      manifest = JSON.parse(await readFile(join(outdir, 'manifest.json'), 'utf8')) as typeof manifest;
    } catch {
      const hint = stderr.trim() ? ` (it said: ${stderr.trim().split('\n').at(-1)})` : '';
      throw new AppError(
        `--app: '${command}' wrote no cloud assembly: its App must synthesize into CDK_OUTDIR, as under 'cdk synth' (no outdir of its own)${hint}`,
      );
    }
    const stacks: Array<{ stackName: string; template: CfnTemplate }> = [];
    for (const [id, artifact] of Object.entries(manifest.artifacts ?? {})) {
      if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) continue;
      const template = JSON.parse(await readFile(join(outdir, artifact.properties.templateFile), 'utf8')) as CfnTemplate;
      stacks.push({ stackName: artifact.displayName ?? id, template });
    }
    return stacks;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

/** The context the CDK CLI would give an app run in `cwd`: `cdk.json`'s `context`, then `cdk.context.json`. */
async function appContext(cwd: string): Promise<Record<string, unknown>> {
  const read = async (file: string): Promise<Record<string, unknown>> => {
    let text: string;
    try {
      text = await readFile(join(cwd, file), 'utf8');
    } catch {
      return {};
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new AppError(`--app: ${file} is not JSON (${(err as Error).message})`);
    }
  };
  const cdkJson = await read('cdk.json');
  const context = typeof cdkJson.context === 'object' && cdkJson.context !== null ? (cdkJson.context as Record<string, unknown>) : {};
  return { ...context, ...(await read('cdk.context.json')) };
}

const pathOf = (r: CfnResource) => (r as { Metadata?: Record<string, unknown> }).Metadata?.[PATH_METADATA];

/** Every BedrockBatchPipeline of the stacks, by the construct path of its functions. */
export function findPipelines(stacks: ReadonlyArray<{ stackName: string; template: CfnTemplate }>): AppPipeline[] {
  const found: AppPipeline[] = [];
  for (const { stackName, template } of stacks) {
    const resources = template.Resources ?? {};
    const roots = new Map<string, CfnResource>();
    for (const r of Object.values(resources)) {
      const handler = (r as { Metadata?: Record<string, unknown> }).Metadata?.[HANDLER_METADATA_KEY];
      const path = pathOf(r);
      if (r.Type !== 'AWS::Lambda::Function' || typeof handler !== 'string' || typeof path !== 'string') continue;
      const at = path.lastIndexOf(`/${FUNCTIONS_ID}/`);
      if (at > 0 && !roots.has(path.slice(0, at))) roots.set(path.slice(0, at), r);
    }
    for (const [root, fn] of roots) {
      const others = [...roots.keys()].filter((p) => p !== root);
      const kept = Object.entries(resources).filter(([, r]) => {
        const p = pathOf(r);
        return typeof p !== 'string' || !others.some((o) => p.startsWith(`${o}/`));
      });
      const variables = ((fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}) as Record<string, unknown>;
      const raw = variables.PIPELINE_CONFIG;
      const routes = typeof raw === 'string' ? (JSON.parse(raw) as PipelineEnvConfig).routes : {};
      found.push({ path: root, stackName, template: { ...template, Resources: Object.fromEntries(kept) }, routes });
    }
  }
  return found;
}

/** The pipeline `wanted` names (its path, or its id when that is unique), or the only one. */
export function selectPipeline(pipelines: readonly AppPipeline[], wanted?: string): AppPipeline {
  const list = pipelines.map((p) => p.path).join(', ');
  if (pipelines.length === 0) throw new AppError('--app: the app has no BedrockBatchPipeline (no function with bedrock-batch handler metadata)');
  if (wanted === undefined) {
    if (pipelines.length === 1) return pipelines[0]!;
    throw new AppError(`--app: the app has ${pipelines.length} pipelines (${list}): name one with --pipeline`);
  }
  const matches = pipelines.filter((p) => p.path === wanted || p.path.endsWith(`/${wanted}`));
  if (matches.length === 1) return matches[0]!;
  throw new AppError(
    matches.length === 0 ? `--pipeline ${wanted}: no such pipeline (the app has ${list})` : `--pipeline ${wanted} is ambiguous (${list}): give its full path`,
  );
}
