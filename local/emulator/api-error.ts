/**
 * Errors the emulator returns on the wire. Bedrock is a restJson1 service: the SDK reads the
 * error name from the `X-Amzn-Errortype` header and the text from the body's `message`
 * (docs/BEDROCK-FACTS.md §2).
 */

/** The Bedrock exception names the emulator can return. */
export type BedrockErrorName =
  | 'ValidationException'
  | 'ConflictException'
  | 'ServiceQuotaExceededException'
  | 'AccessDeniedException'
  | 'ResourceNotFoundException'
  | 'ThrottlingException'
  | 'InternalServerException'
  | 'UnknownOperationException';

/** HTTP status of each exception (docs/BEDROCK-FACTS.md §2: ServiceQuotaExceededException is 400, not 402/429). */
export const ERROR_HTTP_STATUS: Record<BedrockErrorName, number> = {
  ValidationException: 400,
  ConflictException: 400,
  ServiceQuotaExceededException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ThrottlingException: 429,
  InternalServerException: 500,
  UnknownOperationException: 404,
};

/** An API error, turned into an HTTP error response by the emulator's router. */
export class BedrockApiError extends Error {
  /** The HTTP status sent with this error. */
  readonly statusCode: number;

  constructor(
    readonly errorName: BedrockErrorName,
    message: string,
  ) {
    super(message);
    this.name = errorName;
    this.statusCode = ERROR_HTTP_STATUS[errorName];
  }
}
