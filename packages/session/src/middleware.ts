import type { RequestHandler } from 'express';
import session from 'express-session';
import type { Logger, RedisClient } from '@ncc/service-kit';
import { cookieOptions, idleTtlSeconds, type SessionSettings } from './contract.js';
import type { SessionSerializer } from './data.js';
import { NccRedisStore } from './store.js';
import type { UserSessionIndex } from './user-sessions.js';

export interface SessionDeps {
  settings: SessionSettings;
  redis: RedisClient;
  logger: Logger;
  /** The service's one serializer and session index (its composition root makes them). */
  serializer: SessionSerializer;
  index: UserSessionIndex;
}

function createSessionStore({ settings, redis, logger, serializer, index }: SessionDeps): NccRedisStore {
  return new NccRedisStore({
    client: redis,
    prefix: settings.prefix,
    ttlSeconds: (sess) => idleTtlSeconds(settings, sess),
    serializer,
    touchIntervalSeconds: settings.touchIntervalSeconds,
    logger,
    // "Last seen" for GET /sessions, at most once per touch interval; best effort, never fails a response.
    onTouch: (sid, sess) => {
      if (typeof sess.userId !== 'number') return;
      index.touched(sess.userId, sid, logger);
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
 *
 * The cookie is a session cookie (no Expires/Max-Age; stored as `"originalMaxAge":null,"expires":null`,
 * as in the seed): the browser keeps it while it runs, and the server alone decides how long the
 * session lives — the key's idle TTL, refreshed by activity on either service, and the absolute
 * timeout from login. A persistent cookie would fix its expiry at login (rolling: false) and end an
 * active browser's session a day after login whatever the Redis TTL says (decision 021).
 */
export function createSessionMiddleware(deps: SessionDeps): RequestHandler {
  const { settings } = deps;
  return session({
    store: createSessionStore(deps),
    name: settings.cookieName,
    secret: settings.secrets,
    resave: false,
    saveUninitialized: false,
    rolling: false,
    unset: 'keep',
    cookie: cookieOptions(settings),
  });
}
