/**
 * The model's batch quotas, read at run time from Service Quotas (service code `bedrock`,
 * `ListServiceQuotas`, then `ListAWSDefaultServiceQuotas` for a quota without an applied value,
 * matched by quota name as in docs/BEDROCK-FACTS.md §7), and the limits a run plans with:
 * the stricter of each quota and the route's own setting. Quotas vary by model and region, change
 * over time, and some are adjustable: they are read, not hard-coded. When they cannot be read,
 * the model catalog's documented defaults are used and the run's summary says so.
 */
import { ListAWSDefaultServiceQuotasCommand, ListServiceQuotasCommand, type ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { catalogModel, DEFAULT_MODEL_QUOTAS, parseModelId, QUOTA_NAMES, type ModelQuotas, type QuotaKind } from './model-catalog';

/** Where a value a run planned with came from. */
export type QuotaSource = 'service-quotas' | 'route' | 'default';

/** One value a run planned with, and where it came from. */
export interface PlannedValue {
  readonly value: number;
  readonly source: QuotaSource;
}

/** The quota kinds that bound a run's plan (the others are checked by Bedrock alone). */
export type PlanningQuotaKind = 'minRecordsPerJob' | 'maxRecordsPerJob' | 'maxConcurrentJobs';

/** What a run planned with: written into its run configuration, reported in its summary. */
export interface RunQuotas {
  readonly values: Readonly<Record<PlanningQuotaKind, PlannedValue>>;
  /** Why a quota was not read from Service Quotas (the documented default was used instead). */
  readonly warnings: readonly string[];
}

/** The model's quotas as read: each either from Service Quotas or, failing that, the documented default. */
export interface QuotaReading {
  readonly quotas: Readonly<Record<QuotaKind, PlannedValue | undefined>>;
  readonly warnings: readonly string[];
}

/** Reads the quotas of a model: what Prepare is given (the handler binds a client to it). */
export type ModelQuotaReader = (modelId: string) => Promise<QuotaReading>;

const READ_KINDS: readonly QuotaKind[] = ['minRecordsPerJob', 'maxRecordsPerJob', 'maxRecordsPerFile', 'maxConcurrentJobs'];

/** Quota names compare without case and runs of spaces (the console's spelling may vary). */
function normalName(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}

/**
 * Reads the model's quotas from Service Quotas. Never throws for a quota it cannot read: that
 * quota takes the model catalog's documented default (`source: 'default'`) and a warning says
 * why. A model the catalog does not know takes the minimum most models share (its quota names
 * are unknown, so nothing is read) and the route's other settings; an application inference
 * profile or another model ARN (its model unknown here) the route's settings alone. A warning
 * says which.
 */
export async function readModelQuotas(client: ServiceQuotasClient, modelId: string): Promise<QuotaReading> {
  const model = catalogModel(modelId);
  const warnings: string[] = [];
  const quotas: Partial<Record<QuotaKind, PlannedValue>> = {};
  const defaults: ModelQuotas | undefined = model?.quotas;
  if (!model) {
    // An application inference profile's model, or a custom, imported or provisioned model's
    // base, is known only to Bedrock: the route stands.
    const form = parseModelId(modelId).form;
    if (form === 'application-inference-profile-arn' || form === 'other-arn') {
      const what = form === 'other-arn' ? 'a model ARN the catalog cannot resolve' : 'an application inference profile';
      warnings.push(`model ${modelId} is ${what}: its model's quotas could not be looked up, the route's settings were used as they are`);
      return { quotas: { ...emptyReading() }, warnings };
    }
    // A model id the catalog does not know: its quota names are unknown, so nothing is read. Its
    // minimum still binds (a job below it fails in Bedrock's validation), and most models share
    // one; its other quotas may have been raised, so the route's settings stand for them.
    const minimum = DEFAULT_MODEL_QUOTAS.minRecordsPerJob;
    warnings.push(
      `model ${modelId} is not in the model catalog: its quotas could not be looked up, the minimum most models share (${minimum} records per job) was used and the route's other settings as they are`,
    );
    quotas.minRecordsPerJob = { value: minimum, source: 'default' };
    return { quotas: { ...emptyReading(), ...quotas }, warnings };
  }

  let applied: Map<string, number>;
  try {
    applied = await listQuotas(client, false);
  } catch (err) {
    const e = err as Error;
    warnings.push(`Service Quotas could not be read (${e.name}: ${e.message}): the documented default quotas of ${model.id} were used`);
    for (const kind of READ_KINDS) quotas[kind] = { value: defaults![kind], source: 'default' };
    return { quotas: { ...emptyReading(), ...quotas }, warnings };
  }
  // ListServiceQuotas leaves out a quota without an applied value ("If the applied quota value is
  // not available for a quota, the quota is not retrieved"; a minimum that cannot be adjusted):
  // AWS's own default of such a quota is read from ListAWSDefaultServiceQuotas.
  const nameOf = (kind: QuotaKind) => QUOTA_NAMES[kind].name(model.quotaName);
  let awsDefaults = new Map<string, number>();
  let defaultsError: Error | undefined;
  if (READ_KINDS.some((kind) => usable(applied.get(normalName(nameOf(kind)))) === undefined)) {
    try {
      awsDefaults = await listQuotas(client, true);
    } catch (err) {
      defaultsError = err as Error;
    }
  }

  const missing: string[] = [];
  for (const kind of READ_KINDS) {
    const name = nameOf(kind);
    const value = usable(applied.get(normalName(name))) ?? usable(awsDefaults.get(normalName(name)));
    if (value !== undefined) {
      quotas[kind] = { value: Math.floor(value * QUOTA_NAMES[kind].unitBytes), source: 'service-quotas' };
    } else {
      quotas[kind] = { value: defaults![kind], source: 'default' };
      missing.push(`"${name}"`);
    }
  }
  if (missing.length > 0) {
    warnings.push(
      defaultsError
        ? `AWS's default quotas could not be read (${defaultsError.name}: ${defaultsError.message}): the documented default was used for ${missing.join(', ')}`
        : `Service Quotas has no ${missing.join(', ')}: the documented default was used`,
    );
  }
  return { quotas: { ...emptyReading(), ...quotas }, warnings };
}

const usable = (value: number | undefined): number | undefined => (value !== undefined && Number.isFinite(value) && value >= 0 ? value : undefined);

/** Every bedrock quota's value by normalized name: applied values, or AWS's defaults. */
async function listQuotas(client: ServiceQuotasClient, awsDefaults: boolean): Promise<Map<string, number>> {
  const byName = new Map<string, number>();
  let token: string | undefined;
  do {
    const input = { ServiceCode: 'bedrock', NextToken: token, MaxResults: 100 };
    const page = await client.send(awsDefaults ? new ListAWSDefaultServiceQuotasCommand(input) : new ListServiceQuotasCommand(input));
    for (const q of page.Quotas ?? []) if (q.QuotaName && typeof q.Value === 'number') byName.set(normalName(q.QuotaName), q.Value);
    token = page.NextToken;
  } while (token);
  return byName;
}

function emptyReading(): Record<QuotaKind, PlannedValue | undefined> {
  return {
    minRecordsPerJob: undefined,
    maxRecordsPerJob: undefined,
    maxRecordsPerFile: undefined,
    maxFileBytes: undefined,
    maxJobBytes: undefined,
    maxConcurrentJobs: undefined,
  };
}

/** The route's own settings that quotas bound. */
export interface RouteLimits {
  readonly minRecordsPerJob: number;
  readonly maxRecordsPerJob: number;
  readonly maxConcurrentJobs: number;
}

/**
 * The limits a run plans with: never a job below the model's minimum, never more records per
 * job (or per file: a job is one file) or concurrent jobs than the quota. Each value is the
 * stricter of the route's setting and the quota, and names where it came from (the route's on a
 * tie). Throws nothing: a minimum above the maximum is for the caller to refuse.
 */
export function planningQuotas(route: RouteLimits, reading: QuotaReading): RunQuotas {
  const q = reading.quotas;
  const stricter = (routeValue: number, quota: PlannedValue | undefined, pick: (a: number, b: number) => boolean): PlannedValue =>
    quota !== undefined && pick(quota.value, routeValue) ? quota : { value: routeValue, source: 'route' };
  const recordsCap = [q.maxRecordsPerJob, q.maxRecordsPerFile].filter((v): v is PlannedValue => v !== undefined).sort((a, b) => a.value - b.value)[0];
  return {
    values: {
      minRecordsPerJob: stricter(route.minRecordsPerJob, q.minRecordsPerJob, (quota, own) => quota > own),
      maxRecordsPerJob: stricter(route.maxRecordsPerJob, recordsCap, (quota, own) => quota < own),
      maxConcurrentJobs: stricter(route.maxConcurrentJobs, q.maxConcurrentJobs, (quota, own) => quota < own),
    },
    warnings: reading.warnings,
  };
}
