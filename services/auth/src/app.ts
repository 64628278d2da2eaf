import { httpErrors, type ServiceApp, type ServiceParts, createServiceFrame } from '@ncc/service-kit';
import { createSerializer, createSessionMiddleware, SessionReader, sessionSettings, UserSessionIndex } from '@ncc/session';
import type { AuthConfig } from './config.js';
import { UsersRepository } from './data-access/users-repository.js';
import { VisitsRepository } from './data-access/visits-repository.js';
import { AuditLog } from './domain/audit.js';
import { LoginService } from './domain/login.js';
import { LoginLimiter } from './domain/login-limiter.js';
import { BcryptHasher, type PasswordHasher } from './domain/passwords.js';
import { UserSessions } from './domain/user-sessions.js';
import { VisitLimiter } from './domain/visit-limiter.js';
import { VisitCounter } from './domain/visits.js';
import { authRoutes, signedInProfileRoute } from './entry-points/routes.js';
import { sessionRoutes } from './entry-points/session-routes.js';

/** bcrypt on its worker pool, as production runs it: a full queue is overload, a 503 with Retry-After. */
export function createPasswordHasher(config: Pick<AuthConfig, 'BCRYPT_ROUNDS'>): BcryptHasher {
  return new BcryptHasher(config.BCRYPT_ROUNDS, {
    overloaded: () => httpErrors.unavailable(undefined, 'Too many logins in progress. Please retry shortly.'),
  });
}

export interface AuthAppParts extends ServiceParts<AuthConfig> {
  /** createPasswordHasher(config) in production; the app closes it. */
  hasher: PasswordHasher;
}

/** The auth service's composition root: every object is made here, once. */
/** Sessions ended before they expired, per audit event (logout-all ends `ended` of them at once). */
const endsSessions = { logout: 1, 'session.revoked': 1, 'session.evicted': 1 } as const;

export function createAuthApp({ config, logger, redis, metrics, hasher }: AuthAppParts): ServiceApp {
  const settings = sessionSettings(config);
  // Make the dummy hash now, so the first unknown-email login costs one compare like any other.
  void hasher.warmUp?.().catch(() => undefined);
  const serializer = createSerializer(logger, settings.absoluteTimeoutSeconds);
  const index = new UserSessionIndex(redis, settings, serializer);
  const visits = new VisitsRepository(redis);
  const logins = metrics.outcomeCounter('ncc_logins_total', 'POST /login attempts by outcome.', ['succeeded', 'failed', 'rate_limited', 'unavailable']);
  const revoked = metrics.counter(
    'ncc_sessions_revoked_total',
    'Sessions ended before their expiry: logouts, revocations, log-out-everywhere (each session it ends) and evictions past MAX_SESSIONS_PER_USER.',
  );
  const audit = new AuditLog(logger, config.AUDIT_HASH_SALT, (event, fields) => {
    if (event === 'logout_all') revoked.inc(typeof fields['ended'] === 'number' ? fields['ended'] : 1);
    else if (event in endsSessions) revoked.inc();
  });
  const login = new LoginService({
    users: new UsersRepository(redis),
    passwords: hasher,
    limiter: new LoginLimiter(redis, {
      maxFailsPerEmailIp: config.LOGIN_MAX_FAILS_PER_EMAIL_IP,
      emailIpWindowSeconds: config.LOGIN_FAILS_EMAIL_IP_WINDOW_S,
      maxFailsPerIp: config.LOGIN_MAX_FAILS_PER_IP_DAY,
      ipWindowSeconds: config.LOGIN_FAILS_IP_WINDOW_S,
    }),
    sessions: index,
    visits,
    audit,
    logger,
  });
  const visitCounter = new VisitCounter(
    visits,
    new VisitLimiter(redis, { maxPerIp: config.VISITS_MAX_NEW_SESSIONS_PER_IP, windowSeconds: config.VISITS_NEW_SESSIONS_WINDOW_S }),
    settings,
  );

  const app = createServiceFrame({
    redis,
    logger,
    metrics,
    trustProxy: config.TRUST_PROXY,
    // CSRF/CORS (decision 011): GET /logout changes state, so it is guarded like the POSTs.
    crossSite: { allowedOrigins: config.ALLOWED_ORIGINS, alsoGuard: ['GET /logout'] },
    head: [
      (_req, res, next) => {
        // Responses carry personal data and session state: never cache them anywhere.
        res.setHeader('Cache-Control', 'no-store');
        next();
      },
    ],
    routes: [
      signedInProfileRoute({ login, reader: new SessionReader({ settings, redis, logger, warnOnInvalid: false }) }),
      createSessionMiddleware({ settings, redis, logger, serializer, index }),
      authRoutes({
        login,
        visits: visitCounter,
        settings,
        // Counted by the answer: 200 signed in, 401 wrong credentials, 429 over a limit, 503 Redis or bcrypt overloaded.
        countLogins: metrics.countOutcomes(logins, { 200: 'succeeded', 401: 'failed', 429: 'rate_limited', 503: 'unavailable' }),
      }),
      sessionRoutes({ userSessions: new UserSessions(index, visits, audit), settings }),
    ],
  });
  return { app, close: () => hasher.close() };
}
