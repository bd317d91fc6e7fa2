#!/usr/bin/env node
// The bedrock-batch command line. In this repository the TypeScript sources run through tsx's
// require hook, so the CLI needs no build step; the installed package (no sources) runs the
// compiled twin in dist/local.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { shouldRelaunch, relaunch, watchParent } = require('./relaunch.js');
const args = process.argv.slice(2);
if (shouldRelaunch(args, process.env, process.platform, process.execArgv)) {
  // The twin runs again as a child with MALLOC_ARENA_MAX set (see relaunch.js); this process
  // only passes signals on and exits as the child does.
  relaunch(__filename, args);
} else {
  watchParent();
  run();
}

function run() {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  // The SDK warns on every Node 20 process that releases after January 2027 need Node 22 (the
  // Lambda functions run on Node 22); the CLI runs on the machine's Node, so skip that notice.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sources = path.join(__dirname, '..', 'cli', 'main.ts');
  let cli;
  if (fs.existsSync(sources)) {
    require('tsx/cjs');
    cli = require(sources);
  } else {
    cli = require('../dist/cli/main.js');
  }
  cli.main(args).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`bedrock-batch: ${err && err.message ? err.message.split('\n')[0] : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
