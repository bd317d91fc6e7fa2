/**
 * A tiny HTTP stand-in for the Bedrock control plane, reached by the phase processes through
 * `AWS_ENDPOINT_URL_BEDROCK` (and `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`). It answers only
 * GetModelInvocationJob (`GET /model-invocation-job/{jobIdentifier}`), always with `Completed`;
 * any other request gets a 400 and is counted, so a benchmark that calls anything else fails
 * loudly instead of measuring a detour.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running stub. */
export interface BedrockStub {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** GetModelInvocationJob calls answered. */
  readonly getJobCalls: () => number;
  /** Requests that were not GetModelInvocationJob, as `METHOD path`. */
  readonly unexpected: () => readonly string[];
  stop(): Promise<void>;
}

/** Starts the stub on a free port of 127.0.0.1. */
export async function startBedrockStub(): Promise<BedrockStub> {
  let getJobCalls = 0;
  const unexpected: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stub');
      const m = /^\/model-invocation-job\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && m) {
        getJobCalls += 1;
        const jobArn = decodeURIComponent(m[1]!);
        const now = new Date().toISOString();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            jobArn,
            jobName: 'bench',
            modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
            status: 'Completed',
            submitTime: now,
            lastModifiedTime: now,
            endTime: now,
          }),
        );
        return;
      }
      unexpected.push(`${req.method} ${url.pathname}`);
      res.writeHead(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'ValidationException' });
      res.end(JSON.stringify({ message: `the benchmark's Bedrock stub answers only GetModelInvocationJob, not ${req.method} ${url.pathname}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    getJobCalls: () => getJobCalls,
    unexpected: () => unexpected,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
