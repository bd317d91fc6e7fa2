// Keep handler logs out of test output and make the SDK quiet on Node 20.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
// aws-cdk-lib runs its built-in CloudFormation validation (a WebAssembly engine) on every synth:
// about 7 s to start in each test file and 1-2 s per template, and it only warns. Tests synthesize
// without it; test/lib/cdk-nag.test.ts turns it back on, with its findings as errors, once.
process.env.CDK_VALIDATION ??= 'false';
