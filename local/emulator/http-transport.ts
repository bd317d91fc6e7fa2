/**
 * The emulator's transport: one loopback port that speaks HTTP/1.1 (what `BedrockClient` uses)
 * and cleartext HTTP/2 (what `BedrockRuntimeClient` uses by default), telling them apart by the
 * HTTP/2 connection preface, and the JSON bodies and errors of Bedrock's REST API.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttp1Server, type Server as Http1Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { BedrockApiError } from './api-error';

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What the router needs of an HTTP/1 or HTTP/2 (compatibility API) request and response. */
export type HttpRequest = Readable & { method?: string; url?: string };
export interface HttpResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** A loopback server for both HTTP versions on one port. */
export class DualProtocolServer {
  private server?: NetServer;
  private http1?: Http1Server;
  private http2?: Http2Server;
  private readonly sockets = new Set<Socket>();

  /** Starts listening on 127.0.0.1 with a free port; returns the endpoint. */
  async start(handler: (req: HttpRequest, res: HttpResponse) => void): Promise<{ endpoint: string }> {
    if (this.server) throw new Error('BedrockEmulator already started');
    const http1 = createHttp1Server(handler);
    const http2 = createHttp2Server(handler);
    this.http1 = http1;
    this.http2 = http2;
    // Each connection goes to the HTTP/2 server when it opens with the HTTP/2 preface, else to HTTP/1.
    const server = createNetServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.once('readable', () => {
        const head = socket.read() as Buffer | null;
        if (head) socket.unshift(head);
        const n = Math.min(head?.length ?? 0, HTTP2_PREFACE.length);
        const isHttp2 = n > 0 && head!.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
        (isHttp2 ? http2 : http1).emit('connection', socket);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { endpoint: `http://127.0.0.1:${port}` };
  }

  /** Closes the server and every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.http1?.closeAllConnections();
    this.http2?.close();
    await closed;
  }
}

/** Answers an error as Bedrock does: its status, `x-amzn-errortype` and a JSON `message`. */
export function sendApiError(res: HttpResponse, err: unknown): void {
  const apiError =
    err instanceof BedrockApiError ? err : new BedrockApiError('InternalServerException', `Internal error: ${(err as Error)?.message ?? String(err)}`);
  if (res.headersSent) {
    res.end('');
    return;
  }
  res.writeHead(apiError.statusCode, {
    'content-type': 'application/json',
    'x-amzn-errortype': apiError.errorName,
    'x-amzn-requestid': randomUUID(),
  });
  res.end(JSON.stringify({ message: apiError.message }));
}

export function readBody(req: HttpRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function parseJsonBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new BedrockApiError('ValidationException', 'The request body is not valid JSON.');
  }
}

export function sendJson(res: HttpResponse, status: number, value: unknown): void {
  const payload = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(payload)),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(payload);
}
