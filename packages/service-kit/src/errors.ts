import type { ErrorRequestHandler, RequestHandler } from 'express';
import { currentRequestId } from './context.js';
import type { Logger } from './logger.js';
import { isRedisUnavailable } from './redis.js';

export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; fields?: string[] };
}

/** An error the client is meant to see: a stable code, a safe message and an HTTP status. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { fields?: string[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(fields: string[], message = `Invalid request body: ${fields.join(', ')}.`) {
    super(400, 'VALIDATION_FAILED', message, { fields });
  }
}
export class MalformedJsonError extends AppError {
  constructor() {
    super(400, 'MALFORMED_JSON', 'Request body is not valid JSON.');
  }
}
export class UnauthenticatedError extends AppError {
  constructor() {
    super(401, 'UNAUTHENTICATED', 'Authentication required.');
  }
}
export class ForbiddenError extends AppError {
  constructor(message = 'You are not allowed to do this.') {
    super(403, 'FORBIDDEN', message);
  }
}
export class NotFoundError extends AppError {
  constructor(message = 'Not found.') {
    super(404, 'NOT_FOUND', message);
  }
}
export class PayloadTooLargeError extends AppError {
  constructor() {
    super(413, 'PAYLOAD_TOO_LARGE', 'Request body is too large.');
  }
}
export class UnsupportedMediaTypeError extends AppError {
  constructor() {
    super(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json.');
  }
}
export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(429, 'TOO_MANY_REQUESTS', 'Too many attempts. Try again later.', {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}
/** Redis (or another dependency) cannot answer right now; the request changed nothing. */
export class ServiceUnavailableError extends AppError {
  constructor(message = 'The service is temporarily unavailable. Please retry shortly.', readonly causeError?: unknown) {
    super(503, 'SERVICE_UNAVAILABLE', message, { headers: { 'Retry-After': '1' } });
  }
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Translate body-parser's errors (they carry a `type`) into ours, so nothing leaks its text. */
function fromBodyParser(err: BodyParserError): AppError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return new MalformedJsonError();
    case 'entity.too.large':
      return new PayloadTooLargeError();
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeError();
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
    case 'parameters.too.many':
      return new AppError(400, 'BAD_REQUEST', 'The request could not be read.');
    default:
      // body-parser wraps other read failures (a corrupt gzip/deflate body: a zlib error) as a bare
      // 4xx without a type. Still the client's fault, so a 400 — never a 500 — and never their text.
      // Only real Errors (http-errors instances): a plain object with a status is a programming error → 500.
      return err instanceof Error && typeof err.status === 'number' && err.status >= 400 && err.status < 500
        ? new AppError(400, 'BAD_REQUEST', 'The request could not be read.')
        : undefined;
  }
}

export function sendError(res: Parameters<RequestHandler>[1], err: AppError): void {
  for (const [name, value] of Object.entries(err.details.headers ?? {})) res.setHeader(name, value);
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.details.fields) body.error.fields = err.details.fields;
  const requestId = currentRequestId();
  if (requestId) body.error.requestId = requestId;
  res.status(err.status).json(body);
}

export const notFoundHandler: RequestHandler = (_req, _res, next) => {
  next(new NotFoundError());
};

/**
 * The one place errors become HTTP. Known errors keep their code and message; anything else is a
 * generic 500 — the client never sees a stack trace or a library's message.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const known =
      err instanceof AppError
        ? err
        : isRedisUnavailable(err)
          ? new ServiceUnavailableError(undefined, err)
          : typeof err === 'object' && err !== null
            ? fromBodyParser(err as BodyParserError)
            : undefined;
    const appError = known ?? new AppError(500, 'INTERNAL', 'Something went wrong.');
    if (appError.status >= 500) {
      const cause = appError instanceof ServiceUnavailableError ? (appError.causeError ?? err) : err;
      logger.error(appError.status === 503 ? 'Dependency unavailable.' : 'Unhandled error.', {
        method: req.method,
        path: req.path,
        status: appError.status,
        error: cause instanceof Error ? { name: cause.name, message: cause.message, stack: appError.status === 500 ? cause.stack : undefined } : String(cause),
      });
    }
    if (res.headersSent) {
      // Too late for a clean answer: end the response instead of leaving the client hanging.
      res.end();
      return;
    }
    sendError(res, appError);
  };
}
