/** The usage text of `bedrock-batch local run` (printed by `--help` and kept in the README). */
export const USAGE = `usage: bedrock-batch local run <file.jsonl>... --model <modelId> [--out <dir>]
    [--max-records-per-job N] [--min-records-per-job N] [--max-concurrent-jobs N]
    [--max-attempts N] [--small-remainder on-demand|hold|fail]
    | --app "<command>" [--pipeline PATH] [--route R]
    [--one-run-per-file | --run-id ID | --input-json FILE...]
    [--account-quota name=N,...] [--faults name=rate,...] [--seed N] [--step-delay-ms N]
    [--lambda-time-scale X] [--quiet]

--app "<command>"    run your own CDK app's pipeline instead of this package's stack: the
                     command that synthesizes it, as in cdk.json's "app" (e.g. "npx ts-node
                     bin/app.ts"); its App must synthesize into CDK_OUTDIR, as under cdk synth.
                     Its routes set the models and limits, so --model and the route options
                     above are not taken
--pipeline PATH      which BedrockBatchPipeline of the app (construct path, e.g. MyStack/Tickets,
                     or its id), when it has several
--route R            the route the files are dropped on (default: default, or the only route)
--run-id ID          the run's id (one input file only)
--input-json FILE    an execution input as pasted in the Step Functions console (repeatable:
                     one run each, all at once); the input files are uploaded first to
                     s3://bedrock-batch-local/uploads/<file name>, for the inputs to name
--account-quota      the emulated AWS account's Bedrock quotas, for every model, over the
                     documented defaults of the model catalog (e.g. min-records=20 for small
                     test jobs); names: min-records, max-records, max-records-per-file,
                     max-file-bytes, max-job-bytes, concurrent-jobs. The pipeline reads them
                     from the twin's Service Quotas, as on AWS; its own options never set them
--lambda-time-scale  each function's time limit in the twin as a fraction of its Timeout,
                     0.001..1 (default 0.1: 15 minutes are 90 s; 1 is Lambda's own). The
                     twin's waits run faster than AWS's but a handler's own work does not
faults: record-error, record-throttle, job-fail, job-partial, job-expire,
        create-throttle, drop-events, duplicate-events, reorder-events,
        arn-model-id, long-outputs, handler-crash, duplicate-invocation (rates 0..1)`;
