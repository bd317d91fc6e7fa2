import { collectPriceOverrides, priceOf, runCost, type RunTokens } from '../../../lambdas/shared/prices';
import { PRICE_TABLE, UNPRICED_MODELS } from '../../../lambdas/shared/price-table';
import { recordUsage } from '../../../lambdas/shared/token-estimate';

const none = { input: 0, output: 0 };
const tokens = (t: Partial<RunTokens>): RunTokens => ({ batch: none, onDemand: none, estimated: none, ...t });

/** Collects problems like lib/pipeline-config.ts's SettingProblems. */
function problems() {
  const messages: string[] = [];
  return { messages, add: (m: string) => void messages.push(m) };
}

describe('the shipped price table', () => {
  it('has, for every row, prices that are numbers, batch at half of on demand, sources and a date', () => {
    for (const [model, p] of Object.entries(PRICE_TABLE)) {
      expect(model).not.toMatch(/^(us|eu|apac|global)\.|^arn:/);
      expect(p.onDemandInput).toBeGreaterThan(0);
      expect(p.onDemandOutput).toBeGreaterThanOrEqual(0);
      expect(p.batchSource).toBe('half-of-on-demand');
      expect(p.batchInput).toBeCloseTo(p.onDemandInput / 2, 12);
      expect(p.batchOutput).toBeCloseTo(p.onDemandOutput / 2, 12);
      expect(p.sources.length).toBeGreaterThan(0);
      for (const s of p.sources) expect(s).toMatch(/^https:\/\//);
      expect(p.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      // Not read on the AWS page itself (its tables could not be read): said so on every row.
      expect(p.confirmed).toBe(false);
    }
  });

  it('never both prices a model and lists it as unpriced', () => {
    for (const model of Object.keys(UNPRICED_MODELS)) expect(PRICE_TABLE[model]).toBeUndefined();
  });

  it('prices each Claude model as itself: Sonnet 4 is not Claude 3 Haiku', () => {
    expect(priceOf('anthropic.claude-3-haiku-20240307-v1:0')).toMatchObject({ onDemandInput: 0.25, onDemandOutput: 1.25 });
    expect(priceOf('us.anthropic.claude-sonnet-4-20250514-v1:0')).toMatchObject({ onDemandInput: 3, onDemandOutput: 15 });
    expect(priceOf('arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0')).toMatchObject({ onDemandInput: 0.06, onDemandOutput: 0.24 });
    expect(priceOf('meta.llama3-1-70b-instruct-v1:0')).toBeUndefined();
  });
});

describe('runCost: hand calculations from the table (USD per million tokens)', () => {
  it('Claude 3 Haiku: 0.25 in / 1.25 out on demand, 0.125 / 0.625 in batch', () => {
    const { cost, warning } = runCost(
      'anthropic.claude-3-haiku-20240307-v1:0',
      tokens({ batch: { input: 2_000_000, output: 400_000 }, onDemand: { input: 10_000, output: 2_000 } }),
    );
    expect(warning).toBeUndefined();
    // batch: 2.0 M × 0.125 + 0.4 M × 0.625 = 0.25 + 0.25
    expect(cost?.batchUsd).toBeCloseTo(0.5, 9);
    // on demand: 0.01 M × 0.25 + 0.002 M × 1.25 = 0.0025 + 0.0025
    expect(cost?.onDemandUsd).toBeCloseTo(0.005, 9);
    // all on demand: 2.01 M × 0.25 + 0.402 M × 1.25 = 0.5025 + 0.5025
    expect(cost?.allOnDemandUsd).toBeCloseTo(1.005, 9);
    expect(cost).toMatchObject({
      currency: 'USD',
      estimated: false,
      model: 'anthropic.claude-3-haiku-20240307-v1:0',
      prices: { onDemandInput: 0.25, onDemandOutput: 1.25, batchInput: 0.125, batchOutput: 0.625, batchSource: 'half-of-on-demand' },
      priceConfirmed: false,
    });
    expect(cost?.priceSource?.length).toBeGreaterThan(0);
    expect(cost).not.toHaveProperty('estimatedTokens');
  });

  it('Claude Sonnet 4 behind a US inference profile: 3 in / 15 out on demand, 1.5 / 7.5 in batch', () => {
    const { cost } = runCost('us.anthropic.claude-sonnet-4-20250514-v1:0', tokens({ batch: { input: 1_000_000, output: 200_000 } }));
    // batch: 1.0 M × 1.5 + 0.2 M × 7.5 = 1.5 + 1.5
    expect(cost?.batchUsd).toBeCloseTo(3, 9);
    expect(cost?.onDemandUsd).toBe(0);
    // all on demand: 1.0 M × 3 + 0.2 M × 15 = 3 + 3
    expect(cost?.allOnDemandUsd).toBeCloseTo(6, 9);
    expect(cost?.model).toBe('anthropic.claude-sonnet-4-20250514-v1:0');
  });

  it('Amazon Nova Lite: 0.06 in / 0.24 out on demand, 0.03 / 0.12 in batch', () => {
    const { cost } = runCost('amazon.nova-lite-v1:0', tokens({ batch: { input: 500_000, output: 100_000 }, onDemand: { input: 20_000, output: 5_000 } }));
    // batch: 0.5 M × 0.03 + 0.1 M × 0.12 = 0.015 + 0.012
    expect(cost?.batchUsd).toBeCloseTo(0.027, 9);
    // on demand: 0.02 M × 0.06 + 0.005 M × 0.24 = 0.0012 + 0.0012
    expect(cost?.onDemandUsd).toBeCloseTo(0.0024, 9);
    // all on demand: 0.52 M × 0.06 + 0.105 M × 0.24 = 0.0312 + 0.0252
    expect(cost?.allOnDemandUsd).toBeCloseTo(0.0564, 9);
  });

  it('Titan Text Embeddings V2: input only, 0.02 on demand, 0.01 in batch', () => {
    const { cost } = runCost('amazon.titan-embed-text-v2:0', tokens({ batch: { input: 3_000_000, output: 0 } }));
    // 3 M × 0.01
    expect(cost?.batchUsd).toBeCloseTo(0.03, 9);
    // 3 M × 0.02
    expect(cost?.allOnDemandUsd).toBeCloseTo(0.06, 9);
  });

  it('Llama 3.1 8B: 0.22 in and out on demand', () => {
    const { cost } = runCost('meta.llama3-1-8b-instruct-v1:0', tokens({ onDemand: { input: 100_000, output: 50_000 } }));
    // 0.1 M × 0.22 + 0.05 M × 0.22 = 0.022 + 0.011
    expect(cost?.onDemandUsd).toBeCloseTo(0.033, 9);
    expect(cost?.batchUsd).toBe(0);
  });

  it('Mistral 7B with usage estimated from the text: 0.15 in / 0.20 out, batch at half, marked estimated', () => {
    // A 400-character prompt is 400 / 4 = 100 tokens; a 202-character answer ceil(202 / 4) = 51.
    const prompt = `<s>[INST] ${'a'.repeat(400 - 18)} [/INST]`;
    expect(prompt).toHaveLength(400);
    const usage = recordUsage('mistral', { prompt, max_tokens: 300 }, { outputs: [{ text: 'b'.repeat(202), stop_reason: 'stop' }] });
    expect(usage).toEqual({ inputTokens: 100, outputTokens: 51, estimated: true });
    // 1000 such records in batch jobs: 100,000 input and 51,000 output tokens, all estimated.
    const batch = { input: 1000 * usage.inputTokens, output: 1000 * usage.outputTokens };
    const { cost } = runCost('mistral.mistral-7b-instruct-v0:2', tokens({ batch, estimated: batch }));
    // batch: 0.1 M × 0.075 + 0.051 M × 0.1 = 0.0075 + 0.0051
    expect(cost?.batchUsd).toBeCloseTo(0.0126, 9);
    // all on demand: 0.1 M × 0.15 + 0.051 M × 0.20 = 0.015 + 0.0102
    expect(cost?.allOnDemandUsd).toBeCloseTo(0.0252, 9);
    expect(cost).toMatchObject({ estimated: true, estimatedTokens: { input: 100_000, output: 51_000 } });
  });

  it('rounds to a millionth of a dollar', () => {
    // 1 token × 0.25 / 1,000,000 = 0.00000025, below a millionth.
    expect(runCost('anthropic.claude-3-haiku-20240307-v1:0', tokens({ onDemand: { input: 1, output: 0 } })).cost?.onDemandUsd).toBe(0);
  });
});

describe('runCost: a model with no price', () => {
  it('is null with a warning naming the model, why, and where to add a price: never $0 nor another model', () => {
    const { cost, warning } = runCost('us.meta.llama3-1-70b-instruct-v1:0', tokens({ batch: { input: 1000, output: 1000 } }));
    expect(cost).toBeNull();
    expect(warning).toContain('no price for model meta.llama3-1-70b-instruct-v1:0');
    expect(warning).toContain('sources disagree');
    expect(warning).toContain('bedrockBatch.prices');
  });

  it('is null for a model the table has never heard of', () => {
    const { cost, warning } = runCost('anthropic.claude-opus-9-v1:0', tokens({ batch: { input: 1, output: 1 } }));
    expect(cost).toBeNull();
    expect(warning).toMatch(/^cost not estimated: no price for model anthropic\.claude-opus-9-v1:0; add it under bedrockBatch\.prices/);
  });

  it('is null when the run names no model but used tokens, and nothing when it used none', () => {
    expect(runCost(undefined, tokens({ onDemand: { input: 5, output: 0 } }))).toEqual({ cost: null, warning: expect.stringContaining('names no model') });
    expect(runCost(undefined, tokens({}))).toEqual({ cost: { currency: 'USD', batchUsd: 0, onDemandUsd: 0, allOnDemandUsd: 0, estimated: false } });
  });
});

describe('cdk.json price overrides', () => {
  it('price an unpriced model, batch at half when not given', () => {
    const p = problems();
    const overrides = collectPriceOverrides(p, 'bedrockBatch.prices', {
      'us.meta.llama3-1-70b-instruct-v1:0': {
        onDemandInput: 0.72,
        onDemandOutput: 0.72,
        source: 'https://aws.amazon.com/bedrock/pricing/',
        asOf: '2026-11-30',
      },
    });
    expect(p.messages).toEqual([]);
    expect(overrides).toEqual({
      'meta.llama3-1-70b-instruct-v1:0': { onDemandInput: 0.72, onDemandOutput: 0.72, source: 'https://aws.amazon.com/bedrock/pricing/', asOf: '2026-11-30' },
    });
    // Valid input again (construct props are checked after cdk.json).
    const again = problems();
    expect(collectPriceOverrides(again, 'props.prices', overrides)).toEqual(overrides);
    expect(again.messages).toEqual([]);
    expect(priceOf('meta.llama3-1-70b-instruct-v1:0', overrides)).toEqual({
      onDemandInput: 0.72,
      onDemandOutput: 0.72,
      batchInput: 0.36,
      batchOutput: 0.36,
      batchSource: 'half-of-on-demand',
      sources: ['https://aws.amazon.com/bedrock/pricing/'],
      asOf: '2026-11-30',
      confirmed: true,
    });
    const { cost, warning } = runCost('meta.llama3-1-70b-instruct-v1:0', tokens({ batch: { input: 1_000_000, output: 1_000_000 } }), overrides);
    expect(warning).toBeUndefined();
    // 1 M × 0.36 + 1 M × 0.36
    expect(cost?.batchUsd).toBeCloseTo(0.72, 9);
    expect(cost).toMatchObject({ priceSource: ['https://aws.amazon.com/bedrock/pricing/'], priceAsOf: '2026-11-30', priceConfirmed: true });
  });

  it('replace a shipped row, with listed batch prices', () => {
    const p = problems();
    const overrides = collectPriceOverrides(p, 'bedrockBatch.prices', {
      'anthropic.claude-3-haiku-20240307-v1:0': { onDemandInput: 0.3, onDemandOutput: 1.5, batchInput: 0.1, batchOutput: 0.5 },
    });
    expect(p.messages).toEqual([]);
    const { cost } = runCost('anthropic.claude-3-haiku-20240307-v1:0', tokens({ batch: { input: 1_000_000, output: 1_000_000 } }), overrides);
    // 1 M × 0.1 + 1 M × 0.5
    expect(cost?.batchUsd).toBeCloseTo(0.6, 9);
    // 1 M × 0.3 + 1 M × 1.5
    expect(cost?.allOnDemandUsd).toBeCloseTo(1.8, 9);
    expect(cost).toMatchObject({ prices: { batchSource: 'listed' }, priceSource: ['cdk.json'] });
    expect(cost).not.toHaveProperty('priceAsOf');
  });

  it('report every bad value by its path', () => {
    const p = problems();
    const overrides = collectPriceOverrides(p, 'bedrockBatch.prices', {
      'anthropic.claude-3-haiku-20240307-v1:0': { onDemandInput: '0.25', onDemandOutput: -1, batchInput: 0.1, colour: 'red' },
      'amazon.nova-lite-v1:0': { onDemandOutput: 0.24, asOf: 'yesterday', source: '' },
      'us.amazon.nova-lite-v1:0': { onDemandInput: 1, onDemandOutput: 1 },
      'meta.llama3-1-8b-instruct-v1:0': 0.22,
      'mistral.mistral-7b-instruct-v0:2': { onDemandInput: 150000, onDemandOutput: 0.2, note: 3 },
    });
    expect(overrides).toEqual({});
    expect(p.messages).toEqual([
      'bedrockBatch.prices.anthropic.claude-3-haiku-20240307-v1:0.colour is not a known price field (known: onDemandInput, onDemandOutput, batchInput, batchOutput, source, asOf, note)',
      'bedrockBatch.prices.anthropic.claude-3-haiku-20240307-v1:0.onDemandInput must be a number 0..1000, USD per million tokens (got "0.25")',
      'bedrockBatch.prices.anthropic.claude-3-haiku-20240307-v1:0.onDemandOutput must be a number 0..1000, USD per million tokens (got -1)',
      'bedrockBatch.prices.anthropic.claude-3-haiku-20240307-v1:0: give batchInput and batchOutput together, or neither (batch is then half of on demand)',
      "bedrockBatch.prices.amazon.nova-lite-v1:0.onDemandInput is required: USD per million input tokens (0 for an embeddings model's output)",
      'bedrockBatch.prices.amazon.nova-lite-v1:0.source must be a non-empty string, e.g. the URL the price was read from (got "")',
      'bedrockBatch.prices.amazon.nova-lite-v1:0.asOf must be a date YYYY-MM-DD (got "yesterday")',
      'bedrockBatch.prices.us.amazon.nova-lite-v1:0: the same model as bedrockBatch.prices.amazon.nova-lite-v1:0 (both are amazon.nova-lite-v1:0); give each model one price',
      'bedrockBatch.prices.meta.llama3-1-8b-instruct-v1:0 must be an object with onDemandInput and onDemandOutput (USD per million tokens) (got 0.22)',
      'bedrockBatch.prices.mistral.mistral-7b-instruct-v0:2.onDemandInput must be a number 0..1000, USD per million tokens (got 150000)',
      'bedrockBatch.prices.mistral.mistral-7b-instruct-v0:2.note must be a string (got 3)',
    ]);
  });

  it('must be an object', () => {
    const p = problems();
    expect(collectPriceOverrides(p, 'props.prices', [1])).toEqual({});
    expect(p.messages).toEqual([expect.stringMatching(/^props\.prices must be an object of prices by model id/)]);
    expect(collectPriceOverrides(problems(), 'props.prices', undefined)).toEqual({});
  });
});
