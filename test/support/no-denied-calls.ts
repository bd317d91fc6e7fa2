/**
 * IAM in the twin (local/twin/access-checks.ts): every test that ran a twin ends with no call
 * of a handler refused by its role's policies. A test that expects a denial takes it with
 * `takeDeniedCalls()` itself.
 */
import { takeDeniedCalls } from '../../local/twin/access-checks';

function expectNoDeniedCalls(): void {
  const denied = takeDeniedCalls();
  if (denied.length > 0) {
    throw new Error(
      `the twin denied ${denied.length} call(s) the functions' roles do not allow (they would fail with AccessDenied on AWS):\n` +
        denied.map((c) => `  ${c.function}: ${c.action} on ${c.resource}`).join('\n'),
    );
  }
}

afterEach(expectNoDeniedCalls);
// A handler still running when a file's last test ends (a background step) is checked too.
afterAll(expectNoDeniedCalls);
