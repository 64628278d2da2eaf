import { hostname } from 'node:os';
import type { Request, RequestHandler, Response } from 'express';
import { Router } from 'express';
import { httpErrors, jsonBody, optionalJsonBody, parseBody } from '@ncc/service-kit';
import {
  clearSessionCookie,
  currentUser,
  requestSession,
  requireSendableCookie,
  requireUser,
  type SessionReader,
  type SessionSettings,
  truncateUserAgent,
} from '@ncc/session';
import type { LoginService, Profile } from '../domain/login.js';
import { loginBodySchema } from '../domain/schemas.js';
import type { VisitCounter } from '../domain/visits.js';

export interface AuthRouteDeps {
  login: LoginService;
  visits: VisitCounter;
  settings: SessionSettings;
  /** ncc_logins_total by the status POST /login answers with. */
  countLogins: RequestHandler;
}

const profileBody = (me: Profile) => ({ user: me.user, session: { createdAt: new Date(me.createdAt ?? 0).toISOString() } });

/**
 * GET /me of a signed-in session whose account exists, answered before express-session: the session
 * is read as the checkin service reads it (SessionReader: one GET, its idle TTL refreshed at most once
 * per interval, never written back), without building express-session's Session and hashing it twice
 * to see whether it changed. Anything else — no cookie, a session or account that is gone — falls
 * through to the full route, which answers it (401, ending an orphaned session, clearing the cookie).
 */
export function signedInProfileRoute({ login, reader }: { login: LoginService; reader: SessionReader }): Router {
  const router = Router();
  router.get('/me', async (req, res, next) => {
    const user = await reader.readUser(req);
    const me = user ? await login.profile(user) : null;
    if (!me) return next();
    res.status(200).json(profileBody(me));
  });
  return router;
}

/** POST /login, GET|POST /logout, GET /me, GET /visits: parse, call the use case, answer. */
export function authRoutes({ login, visits, settings, countLogins }: AuthRouteDeps): Router {
  const router = Router();

  // Secure cookies over plain HTTP: refused before anything is read or written (decision 013).
  const sendableCookie = requireSendableCookie(settings);

  router.post('/login', countLogins, sendableCookie, ...jsonBody(), async (req, res) => {
    const { email, password } = parseBody(loginBodySchema, req.body);
    const user = await login.login({ email, password, ip: req.ip, userAgent: truncateUserAgent(req.get('user-agent')) }, requestSession(req));
    res.status(200).json({ user });
  });

  const logout = async (req: Request, res: Response): Promise<void> => {
    await login.logout(requestSession(req), req.ip);
    clearSessionCookie(res, settings);
    res.status(200).json({ status: 'OK' });
  };
  // GET is kept for compatibility with the original demo (see docs/decisions/011-csrf.md).
  router.get('/logout', logout);
  router.post('/logout', ...optionalJsonBody(), logout);

  router.get('/me', requireUser, async (req, res) => {
    const me = await login.me(currentUser(req), requestSession(req));
    if (!me) {
      clearSessionCookie(res, settings);
      throw httpErrors.unauthenticated();
    }
    res.status(200).json(profileBody(me));
  });

  router.get('/visits', sendableCookie, async (req, res) => {
    const count = await visits.count(requestSession(req), req.ip);
    res.status(200).json({ visits: count, servedBy: `${hostname()}:${req.socket.localPort ?? 0}` });
  });

  return router;
}
