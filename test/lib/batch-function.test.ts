import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { handlerEntry, PROJECT_ROOT } from '../../lib/batch-function';

describe('handlerEntry: where a function finds its code, relative to the package', () => {
  test("from the sources: this checkout's lambdas/<name>/handler.ts", () => {
    expect(PROJECT_ROOT).toBe(path.resolve(__dirname, '..', '..'));
    expect(handlerEntry('prepare')).toBe(path.join(PROJECT_ROOT, 'lambdas', 'prepare', 'handler.ts'));
  });

  test('from the compiled package (dist/, or node_modules/bedrock-batch/dist/): lambdas/<name>/handler.js', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bb-entry-'));
    try {
      fs.mkdirSync(path.join(root, 'lambdas', 'prepare'), { recursive: true });
      fs.writeFileSync(path.join(root, 'lambdas', 'prepare', 'handler.js'), 'exports.handler = async () => ({});\n');
      expect(handlerEntry('prepare', root)).toBe(path.join(root, 'lambdas', 'prepare', 'handler.js'));
      expect(() => handlerEntry('finalize', root)).toThrow(
        `bedrock-batch: no handler.ts or handler.js for function 'finalize' in ${path.join(root, 'lambdas', 'finalize')}`,
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
