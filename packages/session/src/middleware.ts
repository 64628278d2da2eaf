import type { RequestHandler } from 'express';
import session from 'express-session';
import { type Logger, type RedisClient, UnauthenticatedError } from '@ncc/service-kit';
import { cookieOptions, type SessionSettings } from './contract.js';
import { createSerializer } from './data.js';
import { NccRedisStore } from './store.js';
import { UserSessionIndex } from './user-sessions.js';

export interface SessionDeps {
  settings: SessionSettings;
  redis: RedisClient;
  logger: Logger;
}

export function createSessionStore({ settings, redis, logger }: SessionDeps): NccRedisStore {
  const serializer = createSerializer(logger, settings.absoluteTimeoutSeconds);
  const index = new UserSessionIndex(redis, settings, serializer);
  return new NccRedisStore({
    client: redis,
    prefix: settings.prefix,
    ttlSeconds: settings.ttlSeconds,
    serializer,
    touchIntervalSeconds: settings.touchIntervalSeconds,
    logger,
    // "Last seen" for GET /sessions, at most once per touch interval; best effort, never fails a response.
    onTouch: (sid, sess) => {
      if (typeof sess.userId !== 'number') return;
      index.touched(sess.userId, sid).catch((err: unknown) => logger.debug('Could not record last seen.', { error: String(err) }));
    },
  });
}

/**
 * express-session over connect-redis with the ncc contract. `saveUninitialized: false` means an
 * anonymous request writes no key and gets no cookie; `resave: false` means an unchanged session is
 * never written back (a re-save could resurrect a session that a concurrent logout destroyed).
 * `unset: 'keep'`: with 'destroy', express-session DELetes the cookie's session whenever a request
 * ends without req.session — which is also what a failed store read leaves behind. A Redis timeout
 * then queued a DEL that logged the user out once Redis answered again (and held the 503 back for a
 * second timeout). Logout calls req.session.destroy() explicitly, so nothing relies on 'destroy'.
 */
export function createSessionMiddleware(deps: SessionDeps, store = createSessionStore(deps)): RequestHandler {
  const { settings } = deps;
  return session({
    store,
    name: settings.cookieName,
    secret: settings.secrets,
    resave: false,
    saveUninitialized: false,
    rolling: false,
    unset: 'keep',
    cookie: { ...cookieOptions(settings), maxAge: settings.ttlSeconds * 1000 },
  });
}

/** 401 unless the request carries a logged-in session (express-session routes). */
export const requireUser: RequestHandler = (req, _res, next) => {
  next(typeof req.session?.userId === 'number' ? undefined : new UnauthenticatedError());
};
