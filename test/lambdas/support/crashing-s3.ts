/**
 * An S3 client for "run it again after a crash" tests: it counts the writes that went through
 * (`PutObject`, `CompleteMultipartUpload`, `CopyObject`: the calls after which an object is there)
 * and, given `crashAfter = k`, throws {@link SimulatedCrash} right after the k-th one landed and
 * refuses every call after it, as a handler process that died there would do nothing more.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { localS3ClientConfig } from '../../../local/services/s3';

const WRITES = new Set(['PutObjectCommand', 'CompleteMultipartUploadCommand', 'CopyObjectCommand']);

/** What the crashing client throws. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

export interface CrashingS3 {
  readonly client: S3Client;
  /** Writes that went through so far (the k-th included). */
  writes(): number;
}

/** A client of the local S3 at `endpoint` that crashes after write `crashAfter` (never when undefined). */
export function crashingS3(endpoint: string, crashAfter?: number): CrashingS3 {
  const client = new S3Client(localS3ClientConfig(endpoint));
  let writes = 0;
  let crashed = false;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (crashed) throw new SimulatedCrash(`the process crashed already (${context.commandName} refused)`);
      const out = await next(args);
      if (context.commandName !== undefined && WRITES.has(context.commandName)) {
        writes += 1;
        if (writes === crashAfter) {
          crashed = true;
          throw new SimulatedCrash(`crash after write ${writes} (${context.commandName})`);
        }
      }
      return out;
    },
    { step: 'initialize', name: 'simulatedCrash' },
  );
  return { client, writes: () => writes };
}
