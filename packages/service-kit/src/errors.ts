import type { ErrorRequestHandler, RequestHandler } from 'express';
import { currentRequestId } from './context.js';
import type { Logger } from './logger.js';
import { isRedisUnavailable } from './redis.js';

export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; fields?: string[] };
}

export interface AppErrorOptions {
  /** For validation errors: the offending fields, sent to the client. */
  fields?: string[];
  /** Response headers that belong to the error (Retry-After). */
  headers?: Record<string, string>;
  /** What went wrong underneath (ES2022 `Error.cause`): logged for 5xx, never sent. */
  cause?: unknown;
}

/**
 * The one error model: an error the client is meant to see, with an HTTP status, a stable code and a
 * safe message. Services make their own with `new AppError(…)` (or a small factory next to the domain
 * that raises it); the ones every service shares are in `httpErrors`. The error handler maps anything
 * else: Redis unavailable → 503, body-parser errors → 4xx, the rest → a generic 500.
 */
export class AppError extends Error {
  readonly fields: string[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.fields = options.fields;
    this.headers = options.headers;
  }
}

/**
 * A client error (4xx): an expected answer, not a fault, so no stack trace is captured — V8 walks the
 * stack for every `new Error` otherwise, on the hottest refusal paths (401 without a session).
 */
function clientError(status: number, code: string, message: string, options?: AppErrorOptions): AppError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new AppError(status, code, message, options);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The errors every ncc service answers with; their codes and messages are part of the API. */
export const httpErrors = {
  validation: (fields: string[], message = `Invalid request body: ${fields.join(', ')}.`) => clientError(400, 'VALIDATION_FAILED', message, { fields }),
  malformedJson: () => clientError(400, 'MALFORMED_JSON', 'Request body is not valid JSON.'),
  badRequest: () => clientError(400, 'BAD_REQUEST', 'The request could not be read.'),
  unauthenticated: () => clientError(401, 'UNAUTHENTICATED', 'Authentication required.'),
  forbidden: (message = 'You are not allowed to do this.') => clientError(403, 'FORBIDDEN', message),
  notFound: (message = 'Not found.') => clientError(404, 'NOT_FOUND', message),
  payloadTooLarge: () => clientError(413, 'PAYLOAD_TOO_LARGE', 'Request body is too large.'),
  unsupportedMediaType: () => clientError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json.'),
  tooManyRequests: (retryAfterSeconds: number) =>
    clientError(429, 'TOO_MANY_REQUESTS', 'Too many attempts. Try again later.', {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    }),
  /** Redis (or another dependency) cannot answer right now; the request changed nothing. */
  unavailable: (cause?: unknown, message = 'The service is temporarily unavailable. Please retry shortly.') =>
    new AppError(503, 'SERVICE_UNAVAILABLE', message, { headers: { 'Retry-After': '1' }, cause }),
  internal: (cause?: unknown) => new AppError(500, 'INTERNAL', 'Something went wrong.', { cause }),
};

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Translate body-parser's errors (they carry a `type`) into ours, so nothing leaks its text. */
function fromBodyParser(err: BodyParserError): AppError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return httpErrors.malformedJson();
    case 'entity.too.large':
      return httpErrors.payloadTooLarge();
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return httpErrors.unsupportedMediaType();
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
    case 'parameters.too.many':
      return httpErrors.badRequest();
    default:
      // body-parser wraps other read failures (a corrupt gzip/deflate body: a zlib error) as a bare
      // 4xx without a type. Still the client's fault, so a 400 — never a 500 — and never their text.
      // Only real Errors (http-errors instances): a plain object with a status is a programming error → 500.
      return err instanceof Error && typeof err.status === 'number' && err.status >= 400 && err.status < 500 ? httpErrors.badRequest() : undefined;
  }
}

/** An AppError as the JSON response (status, its headers, `{ error: { code, message, fields?, requestId } }`): the one mapping, used by the error handler and by guards that answer at once. */
export function sendError(res: Parameters<RequestHandler>[1], err: AppError): void {
  for (const [name, value] of Object.entries(err.headers ?? {})) res.setHeader(name, value);
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.fields) body.error.fields = err.fields;
  const requestId = currentRequestId();
  if (requestId) body.error.requestId = requestId;
  res.status(err.status).json(body);
}

export const notFoundHandler: RequestHandler = (_req, _res, next) => {
  next(httpErrors.notFound());
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
          ? httpErrors.unavailable(err)
          : typeof err === 'object' && err !== null
            ? fromBodyParser(err)
            : undefined;
    const appError = known ?? httpErrors.internal(err);
    if (appError.status >= 500) {
      const cause = appError.cause ?? err;
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
