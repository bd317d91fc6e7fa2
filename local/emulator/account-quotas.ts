/**
 * The emulated account's quotas: the model catalog's documented defaults, with the fields an
 * account override sets (`local run --account-quota min-records=20,...`) replacing them for every
 * model. The same values are what the emulator enforces and what the twin's Service Quotas
 * endpoint serves, as on AWS, where the quotas the pipeline reads are the ones jobs are held to.
 */
import { QUOTA_KINDS, type CatalogModel, type ModelQuotas, type QuotaKind } from '../../lambdas/shared/model-catalog';

/** An account override: any subset of the per-model quotas. */
export type AccountQuotas = Partial<ModelQuotas>;

/** The quotas a job on `model` is held to in an account with `override`. */
export function accountQuotasFor(model: CatalogModel, override: AccountQuotas = {}): ModelQuotas {
  const out: Record<QuotaKind, number> = { ...model.quotas };
  for (const kind of QUOTA_KINDS) {
    const value = override[kind];
    if (value !== undefined) out[kind] = value;
  }
  return out;
}

/** The names `--account-quota` takes, and the quota each sets. Sizes are in bytes. */
export const ACCOUNT_QUOTA_OPTIONS: Readonly<Record<string, QuotaKind>> = {
  'min-records': 'minRecordsPerJob',
  'max-records': 'maxRecordsPerJob',
  'max-records-per-file': 'maxRecordsPerFile',
  'max-file-bytes': 'maxFileBytes',
  'max-job-bytes': 'maxJobBytes',
  'concurrent-jobs': 'maxConcurrentJobs',
};

/**
 * Parses `min-records=20,concurrent-jobs=5`: each name of {@link ACCOUNT_QUOTA_OPTIONS} at most
 * once, each value a positive integer.
 * @throws Error naming the part that is wrong
 */
export function parseAccountQuotas(text: string): AccountQuotas {
  const out: Partial<Record<QuotaKind, number>> = {};
  for (const part of text.split(',')) {
    const m = /^([a-z-]+)=(\d+)$/.exec(part.trim());
    if (!m) throw new Error(`'${part}' is not name=integer (names: ${Object.keys(ACCOUNT_QUOTA_OPTIONS).join(', ')})`);
    const kind = ACCOUNT_QUOTA_OPTIONS[m[1]!];
    if (!kind) throw new Error(`unknown quota '${m[1]}' (names: ${Object.keys(ACCOUNT_QUOTA_OPTIONS).join(', ')})`);
    if (out[kind] !== undefined) throw new Error(`quota '${m[1]}' given twice`);
    const value = Number(m[2]);
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`quota '${m[1]}' must be a positive integer, got ${m[2]}`);
    out[kind] = value;
  }
  return out;
}
