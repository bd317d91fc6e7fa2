/**
 * The twin's Service Quotas: `ListServiceQuotas`, `GetServiceQuota` and
 * `ListAWSDefaultServiceQuotas` (awsJson1_1,
 * `ServiceQuotasV20190624.<Operation>`) for the unmodified `@aws-sdk/client-service-quotas`,
 * reached through `AWS_ENDPOINT_URL_SERVICE_QUOTAS`. It serves, for service code `bedrock`, the
 * per-model batch quotas of the model catalog with the emulated account's override applied: the
 * very values the Bedrock emulator holds jobs to.
 *
 * Quota codes here are made up (`L-` and 8 hex digits of a hash of the name): the real codes are
 * not in the project's sources, and the pipeline matches quotas by name (docs/BEDROCK-FACTS.md §7).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MODEL_CATALOG, QUOTA_KINDS, QUOTA_NAMES } from '../../lambdas/shared/model-catalog';
import { accountQuotasFor, type AccountQuotas } from '../emulator/account-quotas';

const TARGET_PREFIX = 'ServiceQuotasV20190624.';
const DEFAULT_PAGE_SIZE = 100;

/** One quota as Service Quotas describes it (the fields the SDK's `ServiceQuota` shape has that matter here). */
export interface ServedQuota {
  readonly ServiceCode: 'bedrock';
  readonly ServiceName: 'Amazon Bedrock';
  readonly QuotaArn: string;
  readonly QuotaCode: string;
  readonly QuotaName: string;
  readonly Value: number;
  readonly Unit: 'None';
  readonly Adjustable: boolean;
  readonly GlobalQuota: false;
}

/** Options of {@link LocalServiceQuotas}. */
export interface LocalServiceQuotasOptions {
  readonly region: string;
  readonly accountId: string;
  /** The emulated account's override (the same one the Bedrock emulator gets). */
  readonly accountQuotas?: AccountQuotas;
  /** When set, every call is refused with AccessDeniedException (a role without the grant). */
  readonly denyAccess?: boolean;
}

/**
 * The Bedrock batch quotas of every catalog model, in the account of `opts`: `applied`, the
 * values ListServiceQuotas and GetServiceQuota return, or `defaults`, ListAWSDefaultServiceQuotas'.
 *
 * ListServiceQuotas: "For some quotas, only the default values are available. If the applied
 * quota value is not available for a quota, the quota is not retrieved"
 * (<https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html>).
 * The twin takes the strict reading: a quota that cannot be adjusted (a job's minimum records,
 * file and job sizes) has no applied value, so a reader that asks ListServiceQuotas alone never
 * sees it. AWS's defaults "do not reflect any quota increases"
 * (<https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListAWSDefaultServiceQuotas.html>):
 * the emulated account's override shows among the defaults only for the quotas that cannot be
 * adjusted (it stands for an account whose fixed quota differs), among applied values for the others.
 */
export function bedrockQuotas(
  opts: Pick<LocalServiceQuotasOptions, 'region' | 'accountId' | 'accountQuotas'>,
  list: 'applied' | 'defaults' = 'applied',
): ServedQuota[] {
  const out: ServedQuota[] = [];
  for (const model of MODEL_CATALOG.values()) {
    const values = accountQuotasFor(model, opts.accountQuotas);
    for (const kind of QUOTA_KINDS) {
      const spec = QUOTA_NAMES[kind];
      if (list === 'applied' && !spec.adjustable) continue;
      const value = list === 'defaults' && spec.adjustable ? model.quotas[kind] : values[kind];
      const name = spec.name(model.quotaName);
      const code = `L-${createHash('sha256').update(name).digest('hex').slice(0, 8).toUpperCase()}`;
      out.push({
        ServiceCode: 'bedrock',
        ServiceName: 'Amazon Bedrock',
        QuotaArn: `arn:aws:servicequotas:${opts.region}:${opts.accountId}:bedrock/${code}`,
        QuotaCode: code,
        QuotaName: name,
        Value: value / spec.unitBytes,
        Unit: 'None',
        Adjustable: spec.adjustable,
        GlobalQuota: false,
      });
    }
  }
  return out;
}

class QuotaApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The local Service Quotas endpoint. */
export class LocalServiceQuotas {
  private server?: Server;
  private readonly quotas: ServedQuota[];
  private readonly defaults: ServedQuota[];

  constructor(private readonly opts: LocalServiceQuotasOptions) {
    this.quotas = bedrockQuotas(opts);
    this.defaults = bedrockQuotas(opts, 'defaults');
  }

  /** Listens on 127.0.0.1 with a free port. */
  async start(): Promise<{ endpoint: string }> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const reply = (status: number, body: unknown, errorType?: string) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
      res.end(JSON.stringify(body));
    };
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (!target.startsWith(TARGET_PREFIX)) throw new QuotaApiError('UnknownOperationException', `unsupported operation ${target}`);
      let body: Record<string, unknown>;
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        body = (text.trim() === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
      } catch {
        throw new QuotaApiError('IllegalArgumentException', 'The request body is not JSON.');
      }
      if (this.opts.denyAccess) throw new QuotaApiError('AccessDeniedException', 'You do not have sufficient access to perform this action.');
      reply(200, this.operation(target.slice(TARGET_PREFIX.length), body));
    } catch (err) {
      const e = err instanceof QuotaApiError ? err : new QuotaApiError('ServiceException', String((err as Error)?.message ?? err), 500);
      reply(e.status, { __type: e.type, message: e.message }, e.type);
    }
  }

  private operation(name: string, body: Record<string, unknown>): unknown {
    if (name === 'ListServiceQuotas') return this.list(body, this.serviceQuotas(body));
    if (name === 'ListAWSDefaultServiceQuotas') return this.list(body, this.serviceQuotas(body, this.defaults));
    if (name === 'GetServiceQuota') return this.get(body);
    throw new QuotaApiError('UnknownOperationException', `unsupported operation ${TARGET_PREFIX}${name}`);
  }

  /** `served` (applied values unless told otherwise), once the request's ServiceCode is checked. */
  private serviceQuotas(body: Record<string, unknown>, served: ServedQuota[] = this.quotas): ServedQuota[] {
    const code = body.ServiceCode;
    if (typeof code !== 'string' || code === '') throw new QuotaApiError('IllegalArgumentException', 'ServiceCode is required.');
    if (code !== 'bedrock') throw new QuotaApiError('NoSuchResourceException', `The service code ${code} is not served by the local twin (only bedrock).`);
    return served;
  }

  private list(body: Record<string, unknown>, served: ServedQuota[]): { Quotas: ServedQuota[]; NextToken?: string } {
    const all = served.filter((q) => body.QuotaCode === undefined || q.QuotaCode === body.QuotaCode);
    const size = body.MaxResults ?? DEFAULT_PAGE_SIZE;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 100) {
      throw new QuotaApiError('IllegalArgumentException', 'MaxResults must be an integer in 1..100.');
    }
    let offset = 0;
    if (body.NextToken !== undefined) {
      offset = Number(Buffer.from(String(body.NextToken), 'base64url').toString('utf8'));
      if (!Number.isInteger(offset) || offset < 0) throw new QuotaApiError('InvalidPaginationTokenException', 'Invalid pagination token.');
    }
    const page = all.slice(offset, offset + size);
    const next = offset + size < all.length ? Buffer.from(String(offset + size)).toString('base64url') : undefined;
    return { Quotas: page, ...(next ? { NextToken: next } : {}) };
  }

  private get(body: Record<string, unknown>): { Quota: ServedQuota } {
    const quota = this.serviceQuotas(body).find((q) => q.QuotaCode === body.QuotaCode);
    if (!quota) throw new QuotaApiError('NoSuchResourceException', `The quota ${String(body.QuotaCode)} does not exist for service bedrock.`);
    return { Quota: quota };
  }
}
