/**
 * Which per-record errors are worth another round. Bedrock writes `errorCode` as a number
 * (docs/BEDROCK-FACTS.md §5); throttling and server-side errors are transient, client errors are not.
 */

/** HTTP-like error codes that a later attempt can succeed on. */
const RETRYABLE_CODES = new Set([408, 424, 429, 500, 502, 503, 504]);

/** True when a record that failed with `code` should be resubmitted in the next round. */
export function isRetryableRecordError(code: number | string | undefined): boolean {
  const n = typeof code === 'string' ? Number(code) : code;
  return n !== undefined && RETRYABLE_CODES.has(n);
}

/** The error recorded for a record that a job did not return at all. */
export function missingRecordError(jobStatus: string | undefined, detail?: string): { code: string; message: string } {
  return {
    code: 'MissingFromOutput',
    message: `the job ended ${jobStatus ?? 'without a status'} and did not return this record${detail ? `: ${detail}` : ''}`,
  };
}
