/**
 * IAM in the twin: every AWS call a handler makes is checked against the policies the
 * synthesized template gives that function's role (iam-policies.ts), and refused with
 * AccessDenied as AWS would, failing the handler the same way. Calls are tied to their function
 * by an AsyncLocalStorage context the twin opens around each invocation; a middleware on each of
 * the handlers' SDK clients (lambdas/shared/clients.ts) maps the call to what IAM authorizes
 * (iam-calls.ts) before anything is sent. Calls outside an invocation (the twin's own uploads,
 * a test's reads) are not checked.
 *
 * The report (`access.json`): each distinct call once with whether it was allowed, the number of
 * denied ones, and the grants no call used. Grants the twin cannot see used are left out of
 * that list: CloudWatch Logs and X-Ray (Lambda's runtime writes them) and SQS SendMessage (the
 * Lambda service's on-failure destination).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { awsClients, type AwsClients } from '../../lambdas/shared/clients';
import { accessRequestsOf, foundObjectRequests, type CallEnvironment, type ClientService } from './iam-calls';
import { decide, wildcardMatch, type AccessRequest, type PolicyStatement } from './iam-policies';

/** One distinct call of a function. */
export interface AccessCall {
  readonly function: string;
  readonly action: string;
  readonly resource: string;
  readonly allowed: boolean;
}

/** What `access.json` holds. */
export interface AccessReport {
  readonly calls: AccessCall[];
  readonly denied: number;
  /** Granted but never used; `condition` tells apart statements of one action and resource. */
  readonly unusedGrants: Array<{ function: string; action: string; resource: string; condition?: string }>;
}

/** The error a denied call fails with, shaped as the SDK's service errors are. */
export class AccessDenied extends Error {
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 403 };
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Every denied call of every twin in this process not yet taken by {@link takeDeniedCalls}. */
const deniedCalls: AccessCall[] = [];

/**
 * The denied calls of the twins of this process since the last take, and forgets them: the test
 * suite fails a test that leaves any (test/support/no-denied-calls.ts).
 */
export function takeDeniedCalls(): AccessCall[] {
  return deniedCalls.splice(0, deniedCalls.length);
}

/** Grants of actions the twin does not see used (see the header). */
const UNOBSERVED = /^(logs|xray):|^sqs:SendMessage$/i;

/**
 * One thing a checker learned: a call and its outcome, or a grant a call used (its key). A
 * sandbox's checker posts them to the twin's, which keeps the report ({@link AccessChecker.absorb}).
 */
export type AccessRecord = { readonly call: AccessCall } | { readonly usedGrant: string };

/** Checks and records the calls of one twin's functions. */
export class AccessChecker {
  private readonly calls = new Map<string, AccessCall>();
  private readonly used = new Set<string>();

  /**
   * @param onRecord told of every call and used grant the first time it is seen (a sandbox's
   *   checker passes them to the twin's)
   */
  constructor(
    private readonly policies: ReadonlyMap<string, readonly PolicyStatement[]>,
    private readonly env: CallEnvironment,
    private readonly onRecord?: (record: AccessRecord) => void,
  ) {}

  /** The role statements of `fn` (what its sandbox checks with). */
  statementsOf(fn: string): readonly PolicyStatement[] | undefined {
    return this.policies.get(fn);
  }

  /** The call environment (what a sandbox's checker needs). */
  get environment(): CallEnvironment {
    return this.env;
  }

  /** Keeps what a sandbox's checker learned. */
  absorb(record: AccessRecord): void {
    if ('usedGrant' in record) this.used.add(record.usedGrant);
    else this.keep(record.call);
  }

  /**
   * Checks one SDK call of `fn` (`found`: what it asks once S3 found the object it reads);
   * throws {@link AccessDenied} for the first request its role does not allow.
   */
  check(fn: string, service: ClientService, command: string, input: Record<string, unknown>, found = false): void {
    const statements = this.policies.get(fn) ?? [];
    let refusal: AccessDenied | undefined;
    const requests = found ? foundObjectRequests(service, command, input, this.env) : accessRequestsOf(service, command, input, this.env);
    for (const request of requests) {
      const decision = decide(statements, request);
      this.record(fn, request, decision.allowed);
      if (decision.allowedBy) {
        const s = decision.allowedBy;
        for (const action of s.actions) {
          for (const resource of s.resources) {
            if (wildcardMatch(action, request.action, true) && wildcardMatch(resource, request.resource))
              this.useGrant(`${fn}\u0000${s.source}\u0000${action}\u0000${resource}`);
          }
        }
      }
      if (!decision.allowed && !refusal) {
        const why = decision.deniedBy ? `with an explicit deny in ${decision.deniedBy.source}` : 'because no identity-based policy allows the action';
        refusal = new AccessDenied(
          service === 's3' ? 'AccessDenied' : 'AccessDeniedException',
          `User: arn:aws:sts::${this.env.account}:assumed-role/${fn}/${fn} is not authorized to perform: ${request.action} on resource: ${request.resource} ${why}`,
        );
      }
    }
    if (refusal) throw refusal;
  }

  /**
   * What S3 answers a function's read of a missing key: NoSuchKey (404) only when the function
   * may list the bucket, else AccessDenied (403), so that a missing key tells nothing to a
   * caller who could not list it
   * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
   * Returns the error to throw instead, or undefined to keep the 404.
   */
  missingKeyRefusal(fn: string, bucket: string, key: string): AccessDenied | undefined {
    const request = { action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}` };
    if (decide(this.policies.get(fn) ?? [], request).allowed) return undefined;
    this.record(fn, request, false);
    return new AccessDenied(
      'AccessDenied',
      `Access Denied (s3://${bucket}/${key} does not exist, and without s3:ListBucket on the bucket S3 answers 403, not 404)`,
    );
  }

  /**
   * Keeps a call once per outcome: one resource may be allowed under one condition value (a key,
   * a prefix) and denied under another, and a denial must never hide behind an allowed call.
   */
  private record(fn: string, request: AccessRequest, allowed: boolean): void {
    this.keep({ function: fn, action: request.action, resource: request.resource, allowed });
  }

  private keep(call: AccessCall): void {
    const key = `${call.function}\u0000${call.action}\u0000${call.resource}\u0000${call.allowed}`;
    if (this.calls.has(key)) return;
    this.calls.set(key, call);
    if (!call.allowed) deniedCalls.push(call);
    this.onRecord?.({ call });
  }

  private useGrant(key: string): void {
    if (this.used.has(key)) return;
    this.used.add(key);
    this.onRecord?.({ usedGrant: key });
  }

  /** The report so far. */
  report(): AccessReport {
    const calls = [...this.calls.values()].sort(
      (a, b) => a.function.localeCompare(b.function) || a.action.localeCompare(b.action) || a.resource.localeCompare(b.resource),
    );
    const unusedGrants: AccessReport['unusedGrants'] = [];
    const seen = new Set<string>();
    for (const [fn, statements] of [...this.policies.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      for (const s of statements) {
        if (s.effect !== 'Allow') continue;
        for (const action of s.actions) {
          if (UNOBSERVED.test(action)) continue;
          for (const resource of s.resources) {
            const key = `${fn}\u0000${s.source}\u0000${action}\u0000${resource}`;
            if (this.used.has(key) || seen.has(key)) continue;
            seen.add(key);
            const condition = s.conditions.map((c) => `${c.operator} ${c.key} ${c.values.join('|')}`).join('; ');
            unusedGrants.push({ function: fn, action, resource, ...(condition ? { condition } : {}) });
          }
        }
      }
    }
    return { calls, denied: calls.filter((c) => !c.allowed).length, unusedGrants };
  }
}

interface Invocation {
  readonly functionName: string;
  readonly checker: AccessChecker;
}

const invocation = new AsyncLocalStorage<Invocation>();

/** Runs `work` as an invocation of `functionName`: its AWS calls are checked by `checker`. */
export function runAsFunction<T>(checker: AccessChecker | undefined, functionName: string, work: () => Promise<T>): Promise<T> {
  if (!checker) return work();
  // The clients the handler will get: new ones if the environment changed since the twin started
  // (awsClients() rebuilds them), which must not escape the check.
  installAccessChecks(awsClients());
  return invocation.run({ functionName, checker }, work);
}

const SERVICES: ReadonlyArray<[keyof AwsClients, ClientService]> = [
  ['s3', 's3'],
  ['ddb', 'dynamodb'],
  ['bedrock', 'bedrock'],
  ['bedrockRuntime', 'bedrock-runtime'],
  ['sfn', 'sfn'],
  ['events', 'eventbridge'],
  ['serviceQuotas', 'service-quotas'],
];
const installed = new WeakSet<object>();

/** Adds the access check to each of the handlers' clients (once per client). */
export function installAccessChecks(clients: AwsClients): void {
  for (const [field, service] of SERVICES) {
    const client = clients[field] as unknown as { middlewareStack: { add: (mw: unknown, opts: unknown) => void } };
    if (installed.has(client)) continue;
    installed.add(client);
    client.middlewareStack.add(
      (next: (args: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: { input: Record<string, unknown> }) => {
          const current = invocation.getStore();
          if (!current) return next(args);
          const command = context.commandName ?? 'UnknownCommand';
          current.checker.check(current.functionName, service, command, args.input);
          let result: { output?: { Body?: { destroy?: () => void } } };
          try {
            result = (await next(args)) as typeof result;
          } catch (err) {
            // A missing key is a 404 only for a caller that may list the bucket (see missingKeyRefusal).
            const missing = (err as Error).name === 'NoSuchKey' || (err as Error).name === 'NotFound';
            if (service === 's3' && missing && (command === 'GetObjectCommand' || command === 'HeadObjectCommand')) {
              throw current.checker.missingKeyRefusal(current.functionName, String(args.input.Bucket), String(args.input.Key)) ?? err;
            }
            throw err;
          }
          try {
            current.checker.check(current.functionName, service, command, args.input, true);
          } catch (err) {
            result.output?.Body?.destroy?.();
            throw err;
          }
          return result;
        },
      { step: 'initialize', name: 'bedrockBatchTwinAccessCheck', priority: 'high' },
    );
  }
}
