import { hostname } from 'node:os';
import type { Request, Response } from 'express';
import { Router } from 'express';
import { AppError, jsonBody, type Logger, optionalJsonBody, parseBody, TooManyRequestsError, UnauthenticatedError } from '@ncc/service-kit';
import {
  clearSessionCookie,
  destroySession,
  idleTtlSeconds,
  regenerateSession,
  requireSendableCookie,
  requireUser,
  saveSession,
  type SessionSettings,
  truncateUserAgent,
  type UserSessionIndex,
} from '@ncc/session';
import type { UsersRepository } from '../data-access/users-repository.js';
import type { VisitsRepository } from '../data-access/visits-repository.js';
import type { AuditLog } from '../domain/audit.js';
import { type LoginService, publicUser } from '../domain/login.js';
import type { LoginLimiter } from '../domain/login-limiter.js';
import type { VisitLimiter } from '../domain/visit-limiter.js';
import { loginBodySchema } from '../domain/schemas.js';

export class InvalidCredentialsError extends AppError {
  constructor() {
    super(401, 'INVALID_CREDENTIALS', 'Invalid login.');
  }
}

export interface AuthRouteDeps {
  login: LoginService;
  users: UsersRepository;
  visits: VisitsRepository;
  settings: SessionSettings;
  logger: Logger;
  limiter: LoginLimiter;
  visitLimiter: VisitLimiter;
  audit: AuditLog;
  sessions: UserSessionIndex;
}

/** A session that came from the store (as opposed to one express-session just made up). */
const hasStoredSession = (req: Request): boolean => typeof req.session?.createdAt === 'number';

export function authRoutes({ login, users, visits, settings, logger, limiter, visitLimiter, audit, sessions }: AuthRouteDeps): Router {
  const router = Router();

  // Secure cookies over plain HTTP: refused before anything is read or written (decision 013).
  const sendableCookie = requireSendableCookie(settings);

  router.post('/login', sendableCookie, ...jsonBody(), async (req, res) => {
    const { email, password } = parseBody(loginBodySchema, req.body);
    const ip = req.ip;
    // The session the client arrived with, if any (anonymous visits or an earlier login): for the audit
    // trail, and to clean up after it once the login has replaced it.
    const previous = hasStoredSession(req) ? { sid: req.sessionID, userId: req.session.userId } : undefined;
    // Brute force (decision 010): one compare is reserved before the password is checked, atomically
    // in Redis, so concurrent attempts cannot overrun the limit; identical for unknown emails.
    const retryAfter = await limiter.reserve(email, ip);
    if (retryAfter !== null) {
      audit.record('login.rate_limited', { email, ip, sid: previous?.sid });
      throw new TooManyRequestsError(retryAfter);
    }
    let user: Awaited<ReturnType<LoginService['authenticate']>>;
    try {
      user = await login.authenticate(email, password);
    } catch (err) {
      // No answer about the password (hashing overloaded, Redis away): not a failed login.
      await limiter.release(email, ip).catch(() => undefined);
      throw err;
    }
    if (!user) {
      audit.record('login.failed', { email, ip, sid: previous?.sid });
      throw new InvalidCredentialsError();
    }
    await limiter.recordSuccess(email, ip);
    // A new id on every login: whatever id the client had before (fixation) is destroyed.
    await regenerateSession(req);
    if (previous) {
      await visits.remove(previous.sid);
      if (previous.userId !== undefined) await sessions.remove(previous.userId, previous.sid);
    }
    req.session.userId = user.id;
    req.session.email = user.email;
    // The seed's receiver checks `req.session.user` (the email): a session from here works there too.
    req.session.user = user.email;
    req.session.createdAt = Date.now();
    const userAgent = truncateUserAgent(req.get('user-agent'));
    if (userAgent) req.session.userAgent = userAgent;
    let evicted: string[];
    try {
      // Indexed before it is saved: a session that exists can always be listed and revoked (decision 012).
      evicted = await sessions.add(user.id, req.sessionID, req.session.createdAt);
      await saveSession(req);
      // …and again once saved: a clean-up that ran in between dropped the then keyless member.
      await sessions.confirm(user.id, req.sessionID, req.session.createdAt);
    } catch (err) {
      // Leave nothing half-made: without req.session express-session neither auto-saves nor sets a cookie.
      await destroySession(req).catch(() => undefined);
      throw err;
    }
    // Past MAX_SESSIONS_PER_USER the least recently active sessions were ended: a stolen password
    // cannot mint unbounded sessions, and the owner can see in the audit trail that it happened.
    for (const sid of evicted) {
      await visits.remove(sid);
      audit.record('session.evicted', { userId: user.id, ip, sid, reason: 'max_sessions_per_user' });
    }
    audit.record('login.succeeded', { userId: user.id, email: user.email, ip, sid: req.sessionID }, `User ${user.email} logged in.`);
    res.status(200).json({ user });
  });

  const logout = async (req: Request, res: Response): Promise<void> => {
    if (hasStoredSession(req)) {
      const userId = req.session.userId;
      const email = req.session.email;
      const sid = req.sessionID;
      await destroySession(req);
      await visits.remove(sid);
      if (userId !== undefined) {
        await sessions.remove(userId, sid);
        audit.record('logout', { userId, email, ip: req.ip, sid }, `Logged out user ${email ?? userId}.`);
      } else logger.debug('Ended an anonymous session.');
    } else {
      logger.debug('Logout called by a user without a session.');
    }
    clearSessionCookie(res, settings);
    res.status(200).json({ status: 'OK' });
  };
  // GET is kept for compatibility with the original demo (see docs/decisions/011-csrf.md).
  router.get('/logout', logout);
  router.post('/logout', ...optionalJsonBody(), logout);

  router.get('/me', requireUser, async (req, res) => {
    const user = await users.findById(req.session.userId!);
    if (!user) {
      // The account is gone: so is the right to this session.
      await destroySession(req);
      clearSessionCookie(res, settings);
      throw new UnauthenticatedError();
    }
    res.status(200).json({ user: publicUser(user), session: { createdAt: new Date(req.session.createdAt!).toISOString() } });
  });

  router.get('/visits', sendableCookie, async (req, res) => {
    if (!hasStoredSession(req)) {
      // The one route on which an anonymous visitor gets a session: counting visits is its purpose.
      // Each one costs two keys for SESSION_ANONYMOUS_TTL_S, so a client may only make so many.
      const retryAfter = await visitLimiter.reserve(req.ip);
      if (retryAfter !== null) throw new TooManyRequestsError(retryAfter);
      req.session.createdAt = Date.now();
      await saveSession(req);
    }
    const count = await visits.increment(req.sessionID, idleTtlSeconds(settings, req.session));
    res.status(200).json({ visits: count, servedBy: `${hostname()}:${req.socket.localPort ?? 0}` });
  });

  return router;
}
