/**
 * What counts as a write for the `handler-crash` fault: the SDK requests that change a
 * service's state (S3 puts, copies and deletes, DynamoDB writes, Step Functions task and
 * execution calls, PutEvents, Bedrock job creation and stop), told apart from reads by their
 * target header, or by method, path and the SigV4 credential scope's service.
 */

const TARGET_WRITES = new Set([
  'DynamoDB_20120810.PutItem',
  'DynamoDB_20120810.UpdateItem',
  'DynamoDB_20120810.DeleteItem',
  'DynamoDB_20120810.BatchWriteItem',
  'DynamoDB_20120810.TransactWriteItems',
  'AWSStepFunctions.SendTaskSuccess',
  'AWSStepFunctions.SendTaskFailure',
  'AWSStepFunctions.SendTaskHeartbeat',
  'AWSStepFunctions.StartExecution',
  'AWSStepFunctions.StopExecution',
  'AWSEvents.PutEvents',
]);

/** The parts of a request {@link classifyWrite} reads (a `ClientRequest` has them). */
export interface RequestLike {
  readonly method: string;
  readonly path: string;
  getHeader(name: string): number | string | string[] | undefined;
}

/**
 * The write an SDK request makes, e.g. `S3 PutObject`, `DynamoDB UpdateItem`,
 * `Bedrock CreateModelInvocationJob`; undefined for a read (or a part upload, which nothing
 * sees until the upload completes). The service comes from the SigV4 credential scope.
 */
export function classifyWrite(request: RequestLike): string | undefined {
  const header = (name: string) => {
    const value = request.getHeader(name);
    return Array.isArray(value) ? value.join(',') : value === undefined ? '' : String(value);
  };
  const target = header('x-amz-target');
  if (target !== '') {
    if (!TARGET_WRITES.has(target)) return undefined;
    const [prefix, operation] = target.split('.');
    const service = prefix!.startsWith('DynamoDB') ? 'DynamoDB' : prefix === 'AWSEvents' ? 'EventBridge' : 'SFN';
    return `${service} ${operation}`;
  }
  const service = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(header('authorization'))?.[1];
  const method = request.method.toUpperCase();
  const [path = '', query = ''] = request.path.split('?');
  const params = new Set(query.split('&').map((p) => decodeURIComponent(p.split('=')[0] ?? '')));
  if (service === 's3') {
    if (method === 'PUT' && !params.has('uploadId') && !params.has('partNumber')) return header('x-amz-copy-source') !== '' ? 'S3 CopyObject' : 'S3 PutObject';
    if (method === 'POST' && params.has('uploadId')) return 'S3 CompleteMultipartUpload';
    if (method === 'POST' && params.has('delete')) return 'S3 DeleteObjects';
    if (method === 'DELETE' && !params.has('uploadId')) return 'S3 DeleteObject';
    return undefined;
  }
  if (service === 'bedrock' && method === 'POST') {
    if (/^\/model-invocation-job\/?$/.test(path)) return 'Bedrock CreateModelInvocationJob';
    if (/^\/model-invocation-job\/[^/]+\/stop$/.test(path)) return 'Bedrock StopModelInvocationJob';
  }
  return undefined;
}
