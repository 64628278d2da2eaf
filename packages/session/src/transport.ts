import type { RequestHandler } from 'express';
import { AppError } from '@ncc/service-kit';
import type { SessionSettings } from './contract.js';

const insecureTransport = (): AppError => new AppError(403, 'INSECURE_TRANSPORT', 'This request must be made over HTTPS.');

/**
 * For routes that create a session. With Secure cookies, express-session still stores a new session
 * when the request came over plain HTTP but silently drops its Set-Cookie: an orphan key in Redis and
 * a "successful" login that is not one. Refuse such a request before anything is read or written.
 * HTTPS is judged by `req.secure`, i.e. the socket or — only through TRUST_PROXY hops — X-Forwarded-Proto.
 */
export function requireSendableCookie(settings: Pick<SessionSettings, 'secure'>): RequestHandler {
  return (req, _res, next) => {
    next(settings.secure && !req.secure ? insecureTransport() : undefined);
  };
}
