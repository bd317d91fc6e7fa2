/**
 * Writes samples/support-tickets.jsonl: 1,000 support-ticket classification requests for
 * Anthropic Claude (Messages API), plus 3 lines a user might get wrong, so the demo shows
 * both results and rejections. Deterministic: run it again and the file is the same.
 *
 *   npx tsx scripts/make-sample.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const products = ['invoice', 'login', 'export', 'dashboard', 'API key', 'billing plan', 'mobile app', 'webhook'];
const problems = ['fails with an error', 'is very slow', 'shows the wrong numbers', 'disappeared', 'cannot be changed', 'times out'];
const moods = ['Please help.', 'This is urgent for our team.', 'Not critical, just curious.', 'We are losing customers.'];

const lines: string[] = [];
for (let i = 1; i <= 1000; i++) {
  const text = `Ticket ${i}: our ${products[i % products.length]} ${problems[(i * 7) % problems.length]} since yesterday. ${moods[(i * 3) % moods.length]}`;
  lines.push(
    JSON.stringify({
      recordId: `ticket-${String(i).padStart(5, '0')}`,
      modelInput: {
        anthropic_version: 'bedrock-2023-05-31',
        max_tokens: 200,
        system: 'Classify the support ticket as one of: bug, performance, data, account, question. Answer with the label and one sentence.',
        messages: [{ role: 'user', content: [{ type: 'text', text }] }],
      },
    }),
  );
  if (i === 250) lines.push('{"recordId": "ticket-broken", "modelInput": {"anthropic_version": "bedrock-2023-05-31"');
  if (i === 500) lines.push(JSON.stringify({ recordId: 'ticket-no-input', prompt: 'modelInput is missing here' }));
  if (i === 750) lines.push(lines[0]!);
}
writeFileSync(join(__dirname, '..', 'samples', 'support-tickets.jsonl'), lines.join('\n') + '\n');
console.log(`wrote ${lines.length} lines`);
