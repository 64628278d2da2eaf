import { httpErrors, type ServiceApp, type ServiceParts, createServiceFrame } from '@ncc/service-kit';
import { createSerializer, createSessionMiddleware, sessionSettings, UserSessionIndex } from '@ncc/session';
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
import { authRoutes } from './entry-points/routes.js';
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
export function createAuthApp({ config, logger, redis, hasher }: AuthAppParts): ServiceApp {
  const settings = sessionSettings(config);
  // Make the dummy hash now, so the first unknown-email login costs one compare like any other.
  void hasher.warmUp?.().catch(() => undefined);
  const serializer = createSerializer(logger, settings.absoluteTimeoutSeconds);
  const index = new UserSessionIndex(redis, settings, serializer);
  const visits = new VisitsRepository(redis);
  const audit = new AuditLog(logger, config.AUDIT_HASH_SALT);
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
      createSessionMiddleware({ settings, redis, logger, serializer, index }),
      authRoutes({ login, visits: visitCounter, settings }),
      sessionRoutes({ userSessions: new UserSessions(index, visits, audit), settings }),
    ],
  });
  return { app, close: () => hasher.close() };
}
