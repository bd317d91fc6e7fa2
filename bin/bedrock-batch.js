#!/usr/bin/env node
// The bedrock-batch command line. The TypeScript sources run through tsx's require hook,
// so the CLI needs no build step.
'use strict';
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE ??= '1';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
// The SDK warns on every Node 20 process that releases after January 2027 need Node 22; the
// CLI runs on the machine's Node, so keep that one notice from cluttering the output.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'NodeVersionSupportWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});
require('tsx/cjs');
const { main } = require('../local/cli.ts');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`bedrock-batch: ${err && err.message ? err.message.split('\n')[0] : String(err)}\n`);
    process.exitCode = 1;
  },
);
