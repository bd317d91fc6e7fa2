/**
 * The twin's Service Quotas, spoken to by the unmodified client: the catalog's quotas with the
 * emulated account's override, read back by the pipeline's own quota reader.
 */
import { GetServiceQuotaCommand, ListAWSDefaultServiceQuotasCommand, ListServiceQuotasCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { readModelQuotas } from '../../../lambdas/shared/model-quotas';
import { MODEL_CATALOG, QUOTA_KINDS, QUOTA_NAMES } from '../../../lambdas/shared/model-catalog';
import { LocalServiceQuotas } from '../../../local/services/service-quotas';

const started: LocalServiceQuotas[] = [];
async function serve(opts: { accountQuotas?: Record<string, number>; denyAccess?: boolean } = {}): Promise<ServiceQuotasClient> {
  const server = new LocalServiceQuotas({ region: 'us-east-1', accountId: '123456789012', ...opts });
  started.push(server);
  const { endpoint } = await server.start();
  return new ServiceQuotasClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
}
afterAll(async () => {
  for (const s of started) await s.stop();
});

/** Every quota a list operation returns, over all its pages. */
async function listAll(
  client: ServiceQuotasClient,
  defaults: boolean,
): Promise<{ quotas: Array<{ QuotaName?: string; Value?: number; Adjustable?: boolean }>; pages: number }> {
  const quotas: Array<{ QuotaName?: string; Value?: number; Adjustable?: boolean }> = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const input = { ServiceCode: 'bedrock', NextToken: token, MaxResults: 50 };
    const page = await client.send(defaults ? new ListAWSDefaultServiceQuotasCommand(input) : new ListServiceQuotasCommand(input));
    quotas.push(...(page.Quotas ?? []));
    token = page.NextToken;
    pages++;
  } while (token);
  return { quotas, pages };
}

test("lists applied values only for the quotas that can be adjusted, and every quota among AWS's defaults", async () => {
  // ListServiceQuotas: "If the applied quota value is not available for a quota, the quota is not
  // retrieved." The twin serves the strict reading: a quota that cannot be adjusted has no applied value.
  const client = await serve({ accountQuotas: { minRecordsPerJob: 7, maxConcurrentJobs: 2 } });
  const applied = await listAll(client, false);
  const adjustable = QUOTA_KINDS.filter((k) => QUOTA_NAMES[k].adjustable);
  expect(applied.quotas).toHaveLength(MODEL_CATALOG.size * adjustable.length);
  expect(applied.quotas.every((q) => q.Adjustable === true)).toBe(true);
  expect(applied.pages).toBeGreaterThan(1);
  const defaults = await listAll(client, true);
  expect(defaults.quotas).toHaveLength(MODEL_CATALOG.size * QUOTA_KINDS.length);
  const value = (list: typeof defaults.quotas, name: string) => list.find((q) => q.QuotaName === name)?.Value;
  const haiku = (kind: 'minRecordsPerJob' | 'maxConcurrentJobs') => QUOTA_NAMES[kind].name('Claude 3 Haiku');
  // The account's minimum (not adjustable) is its default; its raised concurrency is applied, and
  // not among the defaults, which "do not reflect any quota increases".
  expect(value(defaults.quotas, haiku('minRecordsPerJob'))).toBe(7);
  expect(value(applied.quotas, haiku('maxConcurrentJobs'))).toBe(2);
  expect(value(defaults.quotas, haiku('maxConcurrentJobs'))).toBe(20);
});

test('lists every adjustable catalog quota of bedrock over pages, and gets one by code', async () => {
  const client = await serve();
  const first = await client.send(new ListServiceQuotasCommand({ ServiceCode: 'bedrock', MaxResults: 1 }));
  const code = first.Quotas![0]!.QuotaCode!;
  const got = await client.send(new GetServiceQuotaCommand({ ServiceCode: 'bedrock', QuotaCode: code }));
  expect(got.Quota).toMatchObject({ QuotaCode: code, QuotaName: first.Quotas![0]!.QuotaName, Value: first.Quotas![0]!.Value });
});

test("serves the documented defaults, or the account override, to the pipeline's quota reader", async () => {
  const plain = await readModelQuotas(await serve(), 'us.meta.llama4-scout-17b-instruct-v1:0');
  expect(plain.warnings).toEqual([]);
  expect(plain.quotas).toMatchObject({ minRecordsPerJob: { value: 50, source: 'service-quotas' }, maxConcurrentJobs: { value: 20, source: 'service-quotas' } });
  const account = await readModelQuotas(
    await serve({ accountQuotas: { minRecordsPerJob: 7, maxConcurrentJobs: 2 } }),
    'anthropic.claude-3-haiku-20240307-v1:0',
  );
  expect(account.quotas).toMatchObject({ minRecordsPerJob: { value: 7, source: 'service-quotas' }, maxConcurrentJobs: { value: 2, source: 'service-quotas' } });
});

test('refuses other services, unknown codes and, when told to, everything (AccessDeniedException)', async () => {
  const client = await serve();
  await expect(client.send(new ListServiceQuotasCommand({ ServiceCode: 'ec2' }))).rejects.toMatchObject({ name: 'NoSuchResourceException' });
  await expect(client.send(new GetServiceQuotaCommand({ ServiceCode: 'bedrock', QuotaCode: 'L-NOPE' }))).rejects.toMatchObject({
    name: 'NoSuchResourceException',
  });
  const denied = await serve({ denyAccess: true });
  await expect(denied.send(new ListServiceQuotasCommand({ ServiceCode: 'bedrock' }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
  const reading = await readModelQuotas(denied, 'anthropic.claude-3-haiku-20240307-v1:0');
  expect(reading.quotas.minRecordsPerJob).toEqual({ value: 100, source: 'default' });
  expect(reading.warnings[0]).toMatch(/AccessDeniedException/);
});
