import { ListAWSDefaultServiceQuotasCommand, ListServiceQuotasCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { mockClient } from 'aws-sdk-client-mock';
import { planningQuotas, readModelQuotas, type QuotaReading } from '../../../lambdas/shared/model-quotas';

const sq = mockClient(ServiceQuotasClient);
const client = new ServiceQuotasClient({ region: 'us-east-1' });
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const quota = (QuotaName: string, Value: number) => ({ ServiceCode: 'bedrock', QuotaName, QuotaCode: 'L-00000000', Value });

beforeEach(() => {
  sq.reset();
  sq.on(ListAWSDefaultServiceQuotasCommand).resolves({ Quotas: [] });
});
afterAll(() => sq.restore());

describe('readModelQuotas', () => {
  it("finds the model's quotas by name over every page, for a profile id too", async () => {
    sq.on(ListServiceQuotasCommand, { ServiceCode: 'bedrock', NextToken: undefined })
      .resolves({
        Quotas: [
          quota('Minimum number of records per batch inference job for Claude 3 Haiku', 1000),
          quota('Records per batch inference job for Claude 3 Haiku', 20000),
        ],
        NextToken: 'p2',
      })
      .on(ListServiceQuotasCommand, { ServiceCode: 'bedrock', NextToken: 'p2' })
      .resolves({
        Quotas: [
          quota('Minimum number of records per batch inference job for Claude 3.5 Haiku', 7),
          quota('records per input file per batch inference job for  Claude 3 Haiku', 30000),
          quota('Sum of in-progress and submitted batch inference jobs using a base model for Claude 3 Haiku', 4),
        ],
      });
    const reading = await readModelQuotas(client, `us.${HAIKU}`);
    expect(reading.warnings).toEqual([]);
    expect(reading.quotas).toMatchObject({
      minRecordsPerJob: { value: 1000, source: 'service-quotas' },
      maxRecordsPerJob: { value: 20000, source: 'service-quotas' },
      maxRecordsPerFile: { value: 30000, source: 'service-quotas' },
      maxConcurrentJobs: { value: 4, source: 'service-quotas' },
    });
    expect(sq.commandCalls(ListServiceQuotasCommand)).toHaveLength(2);
    // Every quota had an applied value: AWS's defaults are not needed.
    expect(sq.commandCalls(ListAWSDefaultServiceQuotasCommand)).toHaveLength(0);
  });

  it("reads a quota ListServiceQuotas leaves out (no applied value, e.g. a minimum that cannot be adjusted) from AWS's defaults", async () => {
    // ListServiceQuotas: "If the applied quota value is not available for a quota, the quota is not retrieved."
    sq.on(ListServiceQuotasCommand).resolves({
      Quotas: [
        quota('Records per batch inference job for Claude 3 Haiku', 20000),
        quota('Records per input file per batch inference job for Claude 3 Haiku', 20000),
        quota('Sum of in-progress and submitted batch inference jobs using a base model for Claude 3 Haiku', 30),
      ],
    });
    sq.on(ListAWSDefaultServiceQuotasCommand, { ServiceCode: 'bedrock', NextToken: undefined })
      .resolves({ Quotas: [quota('Records per batch inference job for Claude 3 Haiku', 50000)], NextToken: 'd2' })
      .on(ListAWSDefaultServiceQuotasCommand, { ServiceCode: 'bedrock', NextToken: 'd2' })
      .resolves({ Quotas: [quota('Minimum number of records per batch inference job for Claude 3 Haiku', 120)] });
    const reading = await readModelQuotas(client, HAIKU);
    expect(reading.warnings).toEqual([]);
    expect(reading.quotas).toMatchObject({
      minRecordsPerJob: { value: 120, source: 'service-quotas' },
      // The applied value wins over the default.
      maxRecordsPerJob: { value: 20000, source: 'service-quotas' },
      maxConcurrentJobs: { value: 30, source: 'service-quotas' },
    });
    expect(sq.commandCalls(ListAWSDefaultServiceQuotasCommand)).toHaveLength(2);
  });

  it("uses the catalog's default, naming the error, when AWS's defaults cannot be read", async () => {
    sq.on(ListServiceQuotasCommand).resolves({ Quotas: [quota('Records per batch inference job for Claude 3 Haiku', 20000)] });
    sq.on(ListAWSDefaultServiceQuotasCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
    const reading = await readModelQuotas(client, HAIKU);
    expect(reading.quotas).toMatchObject({ minRecordsPerJob: { value: 100, source: 'default' }, maxRecordsPerJob: { value: 20000, source: 'service-quotas' } });
    // One warning, naming the error and each quota that fell back to the catalog's value.
    expect(reading.warnings).toEqual([
      expect.stringMatching(
        /^AWS's default quotas could not be read \(AccessDeniedException: not authorized\): the documented default was used for "Minimum number of records per batch inference job for Claude 3 Haiku"/,
      ),
    ]);
  });

  it('takes the documented default for a quota Service Quotas does not list, and says which', async () => {
    sq.on(ListServiceQuotasCommand).resolves({ Quotas: [quota('Minimum number of records per batch inference job for Claude 3 Haiku', 250)] });
    const reading = await readModelQuotas(client, HAIKU);
    expect(reading.quotas.minRecordsPerJob).toEqual({ value: 250, source: 'service-quotas' });
    expect(reading.quotas.maxConcurrentJobs).toEqual({ value: 20, source: 'default' });
    expect(reading.quotas.maxRecordsPerJob).toEqual({ value: 50000, source: 'default' });
    expect(reading.warnings).toEqual([expect.stringMatching(/no "Records per batch inference job for Claude 3 Haiku".*documented default/)]);
  });

  it('uses every documented default, with a warning naming the error, when Service Quotas refuses access', async () => {
    sq.on(ListServiceQuotasCommand).rejects(
      Object.assign(new Error('User is not authorized to perform servicequotas:ListServiceQuotas'), { name: 'AccessDeniedException' }),
    );
    const reading = await readModelQuotas(client, 'us.meta.llama4-scout-17b-instruct-v1:0');
    expect(reading.quotas).toMatchObject({ minRecordsPerJob: { value: 50, source: 'default' }, maxConcurrentJobs: { value: 20, source: 'default' } });
    expect(reading.warnings).toEqual([expect.stringMatching(/^Service Quotas could not be read \(AccessDeniedException: User is not authorized/)]);
  });

  it('plans a model the catalog does not know with the minimum most models share, and says so', async () => {
    // Its quota names are unknown, so nothing is read; a route minimum of 20 must still not
    // plan jobs that Bedrock fails below its minimum (100 for most models). Its other quotas
    // may have been raised: the route's settings stand for them.
    const reading = await readModelQuotas(client, 'anthropic.claude-3-7-sonnet-20250219-v1:0');
    expect(sq.commandCalls(ListServiceQuotasCommand)).toHaveLength(0);
    expect(reading.quotas).toMatchObject({ minRecordsPerJob: { value: 100, source: 'default' }, maxConcurrentJobs: undefined, maxRecordsPerJob: undefined });
    expect(reading.warnings).toEqual([expect.stringMatching(/not in the model catalog: .*the minimum most models share \(100 records per job\)/)]);
    const plan = planningQuotas({ minRecordsPerJob: 20, maxRecordsPerJob: 100_000, maxConcurrentJobs: 50 }, reading);
    expect(plan.values).toEqual({
      minRecordsPerJob: { value: 100, source: 'default' },
      maxRecordsPerJob: { value: 100_000, source: 'route' },
      maxConcurrentJobs: { value: 50, source: 'route' },
    });
  });

  it("leaves an application inference profile's route settings as they are: its model is Bedrock's to know", async () => {
    // Its model may be one with a minimum of 50 (Llama 4 Scout): a default of 100 could refuse a
    // route that runs on AWS.
    const reading = await readModelQuotas(client, 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdef123456');
    expect(sq.commandCalls(ListServiceQuotasCommand)).toHaveLength(0);
    expect(reading.quotas.minRecordsPerJob).toBeUndefined();
    expect(reading.warnings).toEqual([expect.stringMatching(/application inference profile.*the route's settings were used/)]);
    // A custom (or imported, or provisioned) model's ARN: the same.
    const custom = await readModelQuotas(client, 'arn:aws:bedrock:us-east-1:123456789012:custom-model/abcdef123456');
    expect(custom.quotas.minRecordsPerJob).toBeUndefined();
    expect(custom.warnings).toEqual([expect.stringMatching(/a model ARN the catalog cannot resolve.*the route's settings were used/)]);
  });
});

describe('planningQuotas', () => {
  const reading = (q: Partial<Record<'minRecordsPerJob' | 'maxRecordsPerJob' | 'maxRecordsPerFile' | 'maxConcurrentJobs', number>>): QuotaReading => ({
    quotas: {
      minRecordsPerJob: q.minRecordsPerJob === undefined ? undefined : { value: q.minRecordsPerJob, source: 'service-quotas' },
      maxRecordsPerJob: q.maxRecordsPerJob === undefined ? undefined : { value: q.maxRecordsPerJob, source: 'service-quotas' },
      maxRecordsPerFile: q.maxRecordsPerFile === undefined ? undefined : { value: q.maxRecordsPerFile, source: 'default' },
      maxFileBytes: undefined,
      maxJobBytes: undefined,
      maxConcurrentJobs: q.maxConcurrentJobs === undefined ? undefined : { value: q.maxConcurrentJobs, source: 'service-quotas' },
    },
    warnings: ['w'],
  });
  const route = { minRecordsPerJob: 20, maxRecordsPerJob: 1000, maxConcurrentJobs: 10 };

  it('never plans a job below the minimum nor more records or jobs than the quotas allow', () => {
    expect(planningQuotas(route, reading({ minRecordsPerJob: 100, maxRecordsPerJob: 500, maxRecordsPerFile: 400, maxConcurrentJobs: 3 }))).toEqual({
      values: {
        minRecordsPerJob: { value: 100, source: 'service-quotas' },
        maxRecordsPerJob: { value: 400, source: 'default' },
        maxConcurrentJobs: { value: 3, source: 'service-quotas' },
      },
      warnings: ['w'],
    });
  });

  it("keeps the route's settings where they are the stricter (and on a tie), or where no quota is known", () => {
    expect(planningQuotas(route, reading({ minRecordsPerJob: 20, maxRecordsPerJob: 50000, maxConcurrentJobs: 20 })).values).toEqual({
      minRecordsPerJob: { value: 20, source: 'route' },
      maxRecordsPerJob: { value: 1000, source: 'route' },
      maxConcurrentJobs: { value: 10, source: 'route' },
    });
    expect(planningQuotas(route, reading({})).values.minRecordsPerJob).toEqual({ value: 20, source: 'route' });
  });
});
