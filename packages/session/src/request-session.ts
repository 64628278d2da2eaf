import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { httpErrors, sendError } from '@ncc/service-kit';
import { cookieOptions, type SessionSettings } from './contract.js';
import type { SessionReader } from './reader.js';

/** The signed-in user of a request, whichever guard found it (express-session's or the read-only reader). */
export interface SessionUser {
  userId: number;
  email: string;
  createdAt: number | undefined;
}

const signedIn = new WeakMap<IncomingMessage, SessionUser>();

/** The user the guard in front of this route found; only valid behind requireUser / requireSessionUser. */
export function currentUser(req: IncomingMessage): SessionUser {
  const user = signedIn.get(req);
  if (!user) throw httpErrors.unauthenticated();
  return user;
}

/** 401 unless the request carries a logged-in session (routes behind express-session). */
export const requireUser: RequestHandler = (req, _res, next) => {
  const session = req.session;
  if (typeof session?.userId !== 'number') {
    next(httpErrors.unauthenticated());
    return;
  }
  signedIn.set(req, { userId: session.userId, email: session.email ?? '', createdAt: session.createdAt });
  next();
};

/**
 * 401 (before any body is read) unless the request has a logged-in session (services that only read
 * sessions). The refusal is answered here, through the one error mapping (sendError), rather than
 * passed down the router to the error handler: it is the most frequent answer of a public endpoint.
 */
export function requireSessionUser(reader: SessionReader, onReject?: (req: IncomingMessage) => void): RequestHandler {
  const refuse = (req: IncomingMessage, res: Response): void => {
    onReject?.(req);
    sendError(res, httpErrors.unauthenticated());
  };
  return (req, res, next) => {
    // No signed cookie of ours: refused at once, without a Redis call.
    const sid = reader.sessionId(req);
    if (sid === null) {
      refuse(req, res);
      return;
    }
    reader.userOf(sid).then(
      (user) => {
        if (!user) {
          refuse(req, res);
          return;
        }
        signedIn.set(req, user);
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

/**
 * What a use case may do with the request's session, without knowing it is express-session: domain
 * code gets this, routes make it with `requestSession(req)`.
 */
export interface RequestSession {
  /** The current session id (a new one after regenerate()). Never logged or returned to anyone. */
  readonly id: string;
  /** True when the session came from the store (as opposed to one express-session just made up). */
  readonly stored: boolean;
  /** The user of the current session, if it is a logged-in one. */
  readonly userId: number | undefined;
  readonly email: string | undefined;
  /** Replace the session with a new, empty one under a new id; the old key is deleted. */
  regenerate(): Promise<void>;
  /** Make the current session a logged-in one; returns its creation time (epoch ms). */
  signIn(user: { userId: number; email: string; userAgent?: string | undefined }): number;
  /** Mark a new anonymous session as worth keeping (it is saved at the end of the request). */
  startAnonymous(): void;
  save(): Promise<void>;
  destroy(): Promise<void>;
}

function settle(start: (cb: (err?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) =>
    start((err) => (err ? reject(err instanceof Error ? err : new Error('Session store failed.', { cause: err })) : resolve())),
  );
}

/** express-session's callback methods as promises (errors become rejections, e.g. a 503). */
export const saveSession = (req: Request): Promise<void> => settle((cb) => req.session.save(cb));

export function requestSession(req: Request): RequestSession {
  return {
    get id() {
      return req.sessionID;
    },
    get stored() {
      return typeof req.session?.createdAt === 'number';
    },
    get userId() {
      return req.session?.userId;
    },
    get email() {
      return req.session?.email;
    },
    regenerate: () => settle((cb) => req.session.regenerate(cb)),
    signIn: ({ userId, email, userAgent }) => {
      const createdAt = Date.now();
      req.session.userId = userId;
      req.session.email = email;
      // The seed's receiver checks `req.session.user` (the email): a session from here works there too.
      req.session.user = email;
      req.session.createdAt = createdAt;
      if (userAgent) req.session.userAgent = userAgent;
      return createdAt;
    },
    startAnonymous: () => {
      req.session.createdAt = Date.now();
    },
    save: () => saveSession(req),
    destroy: () => settle((cb) => req.session.destroy(cb)),
  };
}

/** express-session's destroy sends no Set-Cookie: expire the cookie with the attributes it was set with. */
export function clearSessionCookie(res: Response, settings: SessionSettings): void {
  res.clearCookie(settings.cookieName, cookieOptions(settings));
}
