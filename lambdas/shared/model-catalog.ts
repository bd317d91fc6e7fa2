/**
 * The models this project knows, as data: for each foundation model, whether it runs in batch,
 * whether a bare id needs an inference profile, its batch quotas (the defaults AWS documents),
 * its output token limit and the per-record request rules a real model enforces.
 *
 * Used by Prepare (the documented defaults, when Service Quotas cannot be read) and by the local
 * twin (the emulator refuses what Bedrock refuses; its Service Quotas endpoint serves these
 * values). Every value names where it comes from in docs/BEDROCK-FACTS.md ("Model catalog");
 * `confirmed: false` marks what could not be checked against a public AWS source. Quotas change
 * by region and over time: the pipeline reads them at run time and uses these only as defaults.
 *
 * Why this file is long: two thirds of it is the catalog itself (one entry per model, with its
 * sources); the code that reads it is the short tail, kept next to the data it interprets.
 */
import type { ModelFamily } from './model-family';

/** When the sources below were read. */
export const MODEL_CATALOG_DATE = '2026-12-05';

/** The public pages the catalog was built from (docs/BEDROCK-FACTS.md, "Model catalog"). */
export const MODEL_CATALOG_SOURCES = {
  batchSupport: 'https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-supported.html',
  inferenceProfiles: 'https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html',
  quotas: 'https://docs.aws.amazon.com/general/latest/gr/bedrock.html',
  quotaKinds: 'https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html',
  temperatureTopP: 'https://github.com/aws-samples/bedrock-access-gateway/issues/191',
  claudeMessages: 'https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html',
  claudeSchemaError: 'https://repost.aws/knowledge-center/bedrock-validation-exception-errors',
  novaRequest: 'https://docs.aws.amazon.com/nova/latest/userguide/complete-request-schema.html',
} as const;

/** The per-model batch quotas (docs/BEDROCK-FACTS.md §7), in records, bytes and jobs. */
export interface ModelQuotas {
  /** "Minimum number of records per batch inference job for {model}". Not adjustable. */
  readonly minRecordsPerJob: number;
  /** "Records per batch inference job for {model}". Adjustable. */
  readonly maxRecordsPerJob: number;
  /** "Records per input file per batch inference job for {model}". Adjustable. */
  readonly maxRecordsPerFile: number;
  /** "Batch inference input file size (in GB) for {model}", in bytes. Not adjustable. */
  readonly maxFileBytes: number;
  /** "Batch inference job size (in GB) for {model}", in bytes. Not adjustable. */
  readonly maxJobBytes: number;
  /** "Sum of in-progress and submitted batch inference jobs using a base model for {model}". Adjustable. */
  readonly maxConcurrentJobs: number;
}

/** One kind of per-model quota. */
export type QuotaKind = keyof ModelQuotas;

export const QUOTA_KINDS: readonly QuotaKind[] = [
  'minRecordsPerJob',
  'maxRecordsPerJob',
  'maxRecordsPerFile',
  'maxFileBytes',
  'maxJobBytes',
  'maxConcurrentJobs',
];

const GIB = 1024 ** 3;

/**
 * How each quota is named in Service Quotas (service code `bedrock`) and the unit of its value
 * there: the names of the quota table (docs/BEDROCK-FACTS.md §7) with the model's quota name in place of {model};
 * sizes are given in GB there and in bytes here.
 */
export const QUOTA_NAMES: Readonly<Record<QuotaKind, { readonly name: (model: string) => string; readonly unitBytes: number; readonly adjustable: boolean }>> =
  {
    minRecordsPerJob: { name: (m) => `Minimum number of records per batch inference job for ${m}`, unitBytes: 1, adjustable: false },
    maxRecordsPerJob: { name: (m) => `Records per batch inference job for ${m}`, unitBytes: 1, adjustable: true },
    maxRecordsPerFile: { name: (m) => `Records per input file per batch inference job for ${m}`, unitBytes: 1, adjustable: true },
    maxFileBytes: { name: (m) => `Batch inference input file size (in GB) for ${m}`, unitBytes: GIB, adjustable: false },
    maxJobBytes: { name: (m) => `Batch inference job size (in GB) for ${m}`, unitBytes: GIB, adjustable: false },
    maxConcurrentJobs: { name: (m) => `Sum of in-progress and submitted batch inference jobs using a base model for ${m}`, unitBytes: 1, adjustable: true },
  };

/** The defaults most models share (docs/BEDROCK-FACTS.md §7). */
export const DEFAULT_MODEL_QUOTAS: ModelQuotas = {
  minRecordsPerJob: 100,
  maxRecordsPerJob: 50_000,
  maxRecordsPerFile: 50_000,
  maxFileBytes: 1 * GIB,
  maxJobBytes: 5 * GIB,
  maxConcurrentJobs: 20,
};

/** A rule a model applies to each request body; a record that breaks it fails with a 400. */
export type RequestRule =
  /** `max_tokens` (or the family's equivalent) above the model's output token limit. */
  | { readonly kind: 'max-output-tokens'; readonly confirmed: boolean }
  /** `temperature` and `top_p` both set: "`temperature` and `top_p` cannot both be specified for this model. Please use only one." */
  | { readonly kind: 'temperature-xor-top-p'; readonly confirmed: boolean }
  /**
   * An image whose base64 data is over `maxBase64Bytes` (Claude: 5 MiB of base64, about 3.75 MiB
   * of image): "image exceeds 5 MB maximum: N bytes > 5242880 bytes", with where it is.
   */
  | { readonly kind: 'image-size'; readonly maxBase64Bytes: number; readonly confirmed: boolean }
  /**
   * A top-level key of an InvokeModel body that is not in `keys` (the model's request schema):
   * "Malformed input request: [alsoReported]#: extraneous key [k] is not permitted, please
   * reformat your input and try again." `alsoReported` is what Bedrock's schema check says
   * before it (Claude's Messages body: its schema's `not` of the text-completions one).
   */
  | { readonly kind: 'known-keys'; readonly keys: readonly string[]; readonly alsoReported?: string; readonly confirmed: boolean }
  /** A message whose `role` is not one of `roles` (Claude: a "system" turn inside `messages`). */
  | { readonly kind: 'message-roles'; readonly roles: readonly string[]; readonly confirmed: boolean }
  /**
   * An input longer than the model's context window, in the fake model's token count: "Input is
   * too long for requested model." `withBeta`: the larger window an `anthropic_beta` flag with
   * that prefix opens (Claude Sonnet 4 and 4.5: `context-1m-…`, 1,000,000 tokens).
   */
  | {
      readonly kind: 'context-window';
      readonly tokens: number;
      readonly withBeta?: { readonly prefix: string; readonly tokens: number };
      readonly confirmed: boolean;
    };

/** A foundation model as the catalog knows it. */
export interface CatalogModel {
  /** The bare foundation-model id. */
  readonly id: string;
  readonly family: ModelFamily;
  /** The model's name in its quota names ("... for Claude 3 Haiku"). */
  readonly quotaName: string;
  /** Whether Bedrock runs batch inference jobs on it. */
  readonly batch: boolean;
  /** True when the bare id (or a foundation-model ARN) is refused and an inference profile must be used. */
  readonly profileRequired: boolean;
  /** Most output tokens one request may ask for; undefined for embedding models. */
  readonly maxOutputTokens?: number;
  readonly quotas: ModelQuotas;
  readonly requestRules: readonly RequestRule[];
  /** False when a value above could not be checked against a public AWS source (see `note`). */
  readonly confirmed: boolean;
  /** What is unconfirmed, or where a value comes from when it is not the pages above. */
  readonly note?: string;
}

type Entry = Omit<CatalogModel, 'quotas' | 'requestRules' | 'confirmed'> &
  Partial<Pick<CatalogModel, 'requestRules' | 'confirmed'>> & { readonly quotas?: Partial<ModelQuotas> };

const TEMPERATURE_XOR_TOP_P: RequestRule = { kind: 'temperature-xor-top-p', confirmed: true };
const MAX_OUTPUT: RequestRule = { kind: 'max-output-tokens', confirmed: false };
/**
 * Claude's per-image limit as Bedrock answers it, counted on the base64 text (reported for
 * InvokeModel and Converse: aws/aws-sdk-js-v3#6785; aws-solutions-library-samples/
 * accelerated-intelligent-document-processing-on-aws#841). Not on an AWS page: unconfirmed.
 */
const CLAUDE_IMAGE_SIZE: RequestRule = { kind: 'image-size', maxBase64Bytes: 5 * 1024 * 1024, confirmed: false };
/** The Claude Messages body's keys (MODEL_CATALOG_SOURCES.claudeMessages); the error text is AWS's (`claudeSchemaError`). */
const CLAUDE_MESSAGES_KEYS = [
  'anthropic_version',
  'anthropic_beta',
  'max_tokens',
  'system',
  'messages',
  'temperature',
  'top_p',
  'top_k',
  'tools',
  'tool_choice',
  'stop_sequences',
];
const CLAUDE_SCHEMA_PREFIX = '#: subject must not be valid against schema {"required":["messages"]}';
const CLAUDE_KEYS: RequestRule = { kind: 'known-keys', keys: CLAUDE_MESSAGES_KEYS, alsoReported: CLAUDE_SCHEMA_PREFIX, confirmed: true };
/**
 * A message's role is user or assistant (MODEL_CATALOG_SOURCES.claudeMessages); the error text is
 * Anthropic's, unconfirmed on Bedrock. A missing or non-string role fails the schema check.
 */
const CLAUDE_ROLES: RequestRule = { kind: 'message-roles', roles: ['user', 'assistant'], confirmed: false };
/** Claude's 200,000-token context window; Bedrock's text for a longer input is reported (anthropics/claude-code#760), not documented. */
const CLAUDE_CONTEXT: RequestRule = { kind: 'context-window', tokens: 200_000, confirmed: false };
const CLAUDE_CONTEXT_1M_BETA: RequestRule = { ...CLAUDE_CONTEXT, withBeta: { prefix: 'context-1m-', tokens: 1_000_000 } };
/** The Nova InvokeModel body's keys (MODEL_CATALOG_SOURCES.novaRequest); the error text is reported (logancyang/obsidian-copilot#2145). */
const NOVA_KEYS: RequestRule = { kind: 'known-keys', keys: ['schemaVersion', 'system', 'messages', 'inferenceConfig', 'toolConfig'], confirmed: false };
/**
 * Claude 4 models: no key rule, since they take keys beyond the documented list behind beta
 * flags (`thinking`, `context_management` …) and which ones is not documented: a wrong list
 * would refuse records AWS runs.
 */
const CLAUDE_SONNET_4_RULES: readonly RequestRule[] = [MAX_OUTPUT, CLAUDE_ROLES, CLAUDE_IMAGE_SIZE, CLAUDE_CONTEXT_1M_BETA];
const CLAUDE_4_5_RULES: readonly RequestRule[] = [MAX_OUTPUT, TEMPERATURE_XOR_TOP_P, CLAUDE_ROLES, CLAUDE_IMAGE_SIZE];

/** The rules of an entry that names none: its family's. */
function familyRules(family: ModelFamily): readonly RequestRule[] {
  if (family === 'anthropic') return [CLAUDE_KEYS, MAX_OUTPUT, CLAUDE_ROLES, CLAUDE_IMAGE_SIZE, CLAUDE_CONTEXT];
  if (family === 'nova') return [NOVA_KEYS, MAX_OUTPUT];
  return [MAX_OUTPUT];
}

const ENTRIES: readonly Entry[] = [
  // Anthropic (docs/BEDROCK-FACTS.md §7: minimum 100 for Claude 3/3.5).
  {
    id: 'anthropic.claude-3-haiku-20240307-v1:0',
    family: 'anthropic',
    quotaName: 'Claude 3 Haiku',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 4096,
    confirmed: true,
  },
  {
    id: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    family: 'anthropic',
    quotaName: 'Claude 3.5 Haiku',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 8192,
    confirmed: false,
    note: 'whether the bare id runs in batch outside us-west-2 is not confirmed',
  },
  {
    id: 'anthropic.claude-3-5-sonnet-20240620-v1:0',
    family: 'anthropic',
    quotaName: 'Claude 3.5 Sonnet',
    batch: true,
    profileRequired: false,
    // 8192 on Anthropic's API only with a beta header; Bedrock answers "exceeds the model limit of 4096".
    maxOutputTokens: 4096,
    confirmed: false,
    note: 'the 4096 output limit is reported by users (sigoden/aichat#813, anthropics/anthropic-sdk-python#665), not on an AWS page',
  },
  {
    id: 'anthropic.claude-3-5-sonnet-20241022-v2:0',
    family: 'anthropic',
    quotaName: 'Claude 3.5 Sonnet v2',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 8192,
    confirmed: false,
    note: 'quota name spelling not confirmed',
  },
  {
    id: 'anthropic.claude-sonnet-4-20250514-v1:0',
    family: 'anthropic',
    quotaName: 'Claude Sonnet 4',
    batch: true,
    profileRequired: true,
    maxOutputTokens: 64000,
    requestRules: CLAUDE_SONNET_4_RULES,
    confirmed: false,
    note: 'served through inference profiles only; quota name and output limit not confirmed',
  },
  {
    id: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
    family: 'anthropic',
    quotaName: 'Claude Sonnet 4.5',
    batch: true,
    profileRequired: true,
    maxOutputTokens: 64000,
    requestRules: [...CLAUDE_4_5_RULES, CLAUDE_CONTEXT_1M_BETA],
    confirmed: false,
    note: 'batch through the global profile per the Sonnet 4.5 global cross-Region inference announcement; quota name not confirmed',
  },
  {
    id: 'anthropic.claude-haiku-4-5-20251001-v1:0',
    family: 'anthropic',
    quotaName: 'Claude Haiku 4.5',
    batch: true,
    profileRequired: true,
    maxOutputTokens: 64000,
    requestRules: [...CLAUDE_4_5_RULES, CLAUDE_CONTEXT],
    confirmed: false,
    note: 'batch support and quota name not confirmed; the temperature/top_p rule is (aws-samples/bedrock-access-gateway#191)',
  },
  {
    id: 'anthropic.claude-instant-v1',
    family: 'anthropic',
    quotaName: 'Claude Instant',
    batch: false,
    profileRequired: false,
    maxOutputTokens: 4096,
    requestRules: [CLAUDE_KEYS, MAX_OUTPUT, CLAUDE_ROLES, { kind: 'context-window', tokens: 100_000, confirmed: false }],
    confirmed: false,
    note: 'a legacy text-completions model; not among the models the batch pages name (unconfirmed: the version of the table read was cut short)',
  },
  // Amazon (docs/BEDROCK-FACTS.md §7: minimum 100 for Nova and Titan embeddings; job size 100 GB for Nova Lite V1 and Pro V1).
  {
    id: 'amazon.nova-micro-v1:0',
    family: 'nova',
    quotaName: 'Nova Micro V1',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 10000,
    confirmed: false,
    note: 'output limit and quota name not confirmed',
  },
  {
    id: 'amazon.nova-lite-v1:0',
    family: 'nova',
    quotaName: 'Nova Lite V1',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 10000,
    quotas: { maxJobBytes: 100 * GIB },
    confirmed: false,
    note: 'output limit not confirmed',
  },
  {
    id: 'amazon.nova-pro-v1:0',
    family: 'nova',
    quotaName: 'Nova Pro V1',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 10000,
    quotas: { maxJobBytes: 100 * GIB },
    confirmed: false,
    note: 'output limit not confirmed',
  },
  {
    id: 'amazon.nova-premier-v1:0',
    family: 'nova',
    quotaName: 'Nova Premier V1',
    batch: true,
    profileRequired: true,
    maxOutputTokens: 32000,
    confirmed: false,
    note: 'the batch table lists no foundation-model region, only profile regions (confirmed); output limit and quota name not confirmed',
  },
  {
    id: 'amazon.titan-embed-text-v2:0',
    family: 'titan-embed',
    quotaName: 'Titan Text Embeddings V2',
    batch: true,
    profileRequired: false,
    confirmed: false,
    note: 'quota name spelling not confirmed',
  },
  // Meta (docs/BEDROCK-FACTS.md §7: minimum 100 for Llama 3.x and Llama 4 Maverick, 50 for Llama 4 Scout).
  {
    id: 'meta.llama3-1-8b-instruct-v1:0',
    family: 'llama',
    quotaName: 'Llama 3.1 8B Instruct',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 2048,
    confirmed: false,
    note: 'quota name spelling not confirmed',
  },
  {
    id: 'meta.llama3-1-70b-instruct-v1:0',
    family: 'llama',
    quotaName: 'Llama 3.1 70B Instruct',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 2048,
    confirmed: false,
    note: 'quota name spelling not confirmed',
  },
  {
    id: 'meta.llama4-scout-17b-instruct-v1:0',
    family: 'llama',
    quotaName: 'Llama 4 Scout 17B Instruct',
    batch: true,
    profileRequired: true,
    maxOutputTokens: 8192,
    quotas: { minRecordsPerJob: 50 },
    confirmed: false,
    note: 'the minimum of 50 is confirmed (docs/BEDROCK-FACTS.md §7); profile requirement, output limit and quota name are not',
  },
  {
    id: 'meta.llama4-maverick-17b-instruct-v1:0',
    family: 'llama',
    quotaName: 'Llama 4 Maverick 17B Instruct',
    batch: true,
    profileRequired: true,
    maxOutputTokens: 8192,
    confirmed: false,
    note: 'profile requirement, output limit and quota name not confirmed',
  },
  // Mistral (docs/BEDROCK-FACTS.md §7: minimum 100).
  {
    id: 'mistral.mistral-large-2402-v1:0',
    family: 'mistral',
    quotaName: 'Mistral Large',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 8192,
    confirmed: false,
    note: 'quota name spelling not confirmed',
  },
  {
    id: 'mistral.mistral-small-2402-v1:0',
    family: 'mistral',
    quotaName: 'Mistral Small',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 8192,
    confirmed: false,
    note: 'quota name spelling not confirmed',
  },
  {
    id: 'mistral.mistral-7b-instruct-v0:2',
    family: 'mistral',
    quotaName: 'Mistral 7B Instruct',
    batch: true,
    profileRequired: false,
    maxOutputTokens: 8192,
    confirmed: false,
    note: 'batch support and quota name not confirmed',
  },
];

/** Every model of the catalog, by bare foundation-model id. */
export const MODEL_CATALOG: ReadonlyMap<string, CatalogModel> = new Map(
  ENTRIES.map((e) => [
    e.id,
    {
      ...e,
      quotas: { ...DEFAULT_MODEL_QUOTAS, ...e.quotas },
      requestRules: e.requestRules ?? familyRules(e.family),
      confirmed: e.confirmed ?? false,
    },
  ]),
);

/** Region prefixes of system inference profiles (`us.anthropic...`, `global.anthropic...`). */
export const PROFILE_PREFIXES = ['us', 'eu', 'apac', 'global', 'us-gov', 'ca', 'jp', 'au'];

/** How a model id names its model (docs/BEDROCK-FACTS.md §1, the forms the `modelId` pattern accepts). */
export type ModelIdForm = 'bare' | 'profile' | 'foundation-model-arn' | 'inference-profile-arn' | 'application-inference-profile-arn' | 'other-arn';

/** The form of a model id, and the bare foundation-model id behind it (undefined when the id does not say). */
export function parseModelId(modelId: string): { form: ModelIdForm; baseId: string | undefined } {
  const arn = /^arn:aws(?:-[^:]+)?:bedrock:[^:]*:[^:]*:([a-z-]+)\/(.+)$/.exec(modelId);
  if (arn) {
    const [, type, rest] = arn as unknown as [string, string, string];
    if (type === 'foundation-model') return { form: 'foundation-model-arn', baseId: rest };
    if (type === 'inference-profile') return { form: 'inference-profile-arn', baseId: stripProfile(rest) };
    // An application profile's id is opaque: its model is known only to Bedrock.
    if (type === 'application-inference-profile') return { form: 'application-inference-profile-arn', baseId: undefined };
    return { form: 'other-arn', baseId: undefined };
  }
  const stripped = stripProfile(modelId);
  return { form: stripped === modelId ? 'bare' : 'profile', baseId: stripped };
}

function stripProfile(id: string): string {
  const dot = id.indexOf('.');
  return dot > 0 && PROFILE_PREFIXES.includes(id.slice(0, dot)) ? id.slice(dot + 1) : id;
}

/** The catalog's entry for a model id, profile id or ARN; undefined when the catalog does not know it. */
export function catalogModel(modelId: string): CatalogModel | undefined {
  const { baseId } = parseModelId(modelId);
  return baseId === undefined ? undefined : MODEL_CATALOG.get(baseId);
}

/**
 * Why Bedrock would refuse a batch job on `modelId` at CreateModelInvocationJob, or undefined
 * when it would accept it: an unknown model, one that does not run in batch, or the bare id
 * (or foundation-model ARN) of a model served only through an inference profile.
 */
export function batchModelProblem(modelId: string): string | undefined {
  const model = catalogModel(modelId);
  if (model && !model.batch) return `Batch inference is not supported for the model ${modelId}.`;
  return onDemandModelProblem(modelId);
}

/**
 * Why Bedrock would refuse an InvokeModel call on `modelId`, or undefined when it would accept
 * it: an unknown model, or the bare id (or foundation-model ARN) of a model served only through
 * an inference profile. (A model without batch still answers on demand.)
 */
export function onDemandModelProblem(modelId: string): string | undefined {
  const { form } = parseModelId(modelId);
  const model = catalogModel(modelId);
  if (!model) return `The provided model identifier is invalid: ${modelId}.`;
  if (model.profileRequired && (form === 'bare' || form === 'foundation-model-arn')) {
    return `Invocation of model ID ${model.id} with on-demand throughput isn't supported. Retry your request with the ID or ARN of an inference profile that contains this model.`;
  }
  return undefined;
}
