/**
 * Local S3 for the twin: an in-process s3rver serving a folder.
 *
 * s3rver 3.7.1 stores streamed uploads corrupted, without an error, when the SDK sends its
 * default CRC32 checksums in aws-chunked bodies (see docs/TOOLCHAIN.md). Every
 * client that talks to it must use {@link localS3ClientConfig} (or the environment variables of
 * {@link localS3Environment}), which turn checksums to `WHEN_REQUIRED`.
 *
 * s3rver 3.7.1 as published cannot page: its continuation tokens used DES, which OpenSSL 3
 * refuses, so every truncated ListObjectsV2 (over 1,000 keys, or a small MaxKeys) answered 500
 * (upstream https://github.com/jamhall/s3rver/issues/818); it also listed out of S3's order and
 * left common prefixes out of MaxKeys. patches/s3rver+3.7.1.patch, applied by patch-package on
 * `npm ci`, makes it page as S3 does (see patches/README.md).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { S3ClientConfig } from '@aws-sdk/client-s3';

/** The slice of s3rver's API used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: Array<{ name: string }>;
  vhostBuckets: boolean;
}) => S3rverInstance;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as S3rverConstructor;

/** Access key s3rver insists on (both id and secret). */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** Options of {@link startLocalS3}. */
export interface LocalS3Options {
  /** Folder where s3rver keeps buckets and objects; created if missing, kept after stop. */
  readonly directory: string;
  /** Buckets created before the server accepts requests. */
  readonly buckets: readonly string[];
}

/** A running local S3. */
export interface LocalS3 {
  /** Base URL, e.g. `http://127.0.0.1:40123`; use with path-style addressing. */
  readonly endpoint: string;
  /** Closes open connections and the server. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver on 127.0.0.1 on a free port, silent, with the given buckets.
 *
 * @returns the endpoint and a stop function
 */
export async function startLocalS3(opts: LocalS3Options): Promise<LocalS3> {
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: opts.directory,
    configureBuckets: opts.buckets.map((name) => ({ name })),
    // Path-style only: the twin never resolves <bucket>.localhost.
    vhostBuckets: false,
  });
  const address = await server.run();
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    stop() {
      stopped ??= (async () => {
        // Keep-alive sockets of SDK clients would otherwise hold close() open.
        server.httpServer?.closeAllConnections();
        await server.close();
      })();
      return stopped;
    },
  };
}

/**
 * The S3 client configuration that works against s3rver: path-style addressing, s3rver's
 * fixed credentials, region us-east-1, and checksums only when an operation requires them.
 *
 * @param endpoint - the endpoint returned by {@link startLocalS3}
 */
export function localS3ClientConfig(endpoint: string): S3ClientConfig {
  return {
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { ...LOCAL_S3_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/**
 * Environment variables that point an unmodified S3 client (e.g. in a handler) at the local
 * S3 with the same settings as {@link localS3ClientConfig}. Credentials are not included:
 * the process's credentials must be `S3RVER`/`S3RVER` for s3rver to accept its signatures.
 *
 * `AWS_S3_FORCE_PATH_STYLE` is not read by SDK v3; s3rver is started with `vhostBuckets`
 * off and SDK v3 uses path-style addressing for an IP-address endpoint anyway.
 */
export function localS3Environment(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
  };
}
