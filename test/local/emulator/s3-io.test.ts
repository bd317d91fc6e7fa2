import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { S3LineWriter } from '../../../local/emulator/s3-io';

describe('S3LineWriter', () => {
  it('keeps one upload part in flight at a time, so a job writing its output holds about two parts of memory', async () => {
    const s3 = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(s3);
    let inFlight = 0;
    let most = 0;
    const sizes: number[] = [];
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).callsFake(async (input: { Body: Uint8Array; PartNumber: number }) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      sizes.push(input.Body.length);
      // Several turns of the event loop: room for the writer to start another part if it would.
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      inFlight -= 1;
      return { ETag: `"e${input.PartNumber}"` };
    });
    mock.on(CompleteMultipartUploadCommand).resolves({});

    const writer = new S3LineWriter(s3, 'bucket', 'out/file.jsonl.out');
    const line = 'x'.repeat(1023);
    for (let i = 0; i < 16 * 1024; i++) await writer.write(line); // 16 MiB: four parts
    await writer.close();
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(16 * 1024 * 1024);
    expect(sizes.length).toBe(4);
    expect(most).toBe(1);
  });
});
