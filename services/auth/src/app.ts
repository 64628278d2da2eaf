import type { Express } from 'express';
import helmet from 'helmet';
import { createBaseApp, crossSiteGuard, errorHandler, healthRoutes, notFoundHandler, requestId, type ServiceParts } from '@ncc/service-kit';
import { createSerializer, createSessionMiddleware, sessionSettings, UserSessionIndex } from '@ncc/session';
import type { AuthConfig } from './config.js';
import { UsersRepository } from './data-access/users-repository.js';
import { VisitsRepository } from './data-access/visits-repository.js';
import { AuditLog } from './domain/audit.js';
import { LoginService } from './domain/login.js';
import { LoginLimiter } from './domain/login-limiter.js';
import { VisitLimiter } from './domain/visit-limiter.js';
import { BcryptHasher, type PasswordHasher } from './domain/passwords.js';
import { authRoutes } from './entry-points/routes.js';
import { sessionRoutes } from './entry-points/session-routes.js';

export interface AuthAppOptions extends ServiceParts<AuthConfig> {
  hasher?: PasswordHasher;
}

export function createAuthApp({ config, logger, redis, hasher }: AuthAppOptions): Express {
  const settings = sessionSettings(config);
  const passwords = hasher ?? new BcryptHasher(config.BCRYPT_ROUNDS);
  // Make the dummy hash now, so the first unknown-email login costs one compare like any other.
  if (passwords instanceof BcryptHasher) void passwords.warmUp().catch(() => undefined);
  const users = new UsersRepository(redis);
  const visits = new VisitsRepository(redis);
  const sessions = new UserSessionIndex(redis, settings, createSerializer(logger, settings.absoluteTimeoutSeconds));
  const audit = new AuditLog(logger, config.AUDIT_HASH_SALT);
  const limiter = new LoginLimiter(redis, {
    maxFailsPerEmailIp: config.LOGIN_MAX_FAILS_PER_EMAIL_IP,
    emailIpWindowSeconds: config.LOGIN_FAILS_EMAIL_IP_WINDOW_S,
    maxFailsPerIp: config.LOGIN_MAX_FAILS_PER_IP_DAY,
    ipWindowSeconds: config.LOGIN_FAILS_IP_WINDOW_S,
  });
  const visitLimiter = new VisitLimiter(redis, {
    maxPerIp: config.VISITS_MAX_NEW_SESSIONS_PER_IP,
    windowSeconds: config.VISITS_NEW_SESSIONS_WINDOW_S,
  });

  const app = createBaseApp({ trustProxy: config.TRUST_PROXY });
  app.use(requestId);
  app.use(helmet());
  app.use((_req, res, next) => {
    // Responses carry personal data and session state: never cache them anywhere.
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // CSRF/CORS (decision 011): GET /logout changes state, so it is guarded like the POSTs.
  app.use(crossSiteGuard({ allowedOrigins: config.ALLOWED_ORIGINS, alsoGuard: ['GET /logout'] }));
  // Health checks never touch the session store.
  app.use(healthRoutes(redis));
  app.use(createSessionMiddleware({ settings, redis, logger }));
  app.use(
    authRoutes({
      login: new LoginService(users, passwords, logger),
      users,
      visits,
      settings,
      logger,
      limiter,
      visitLimiter,
      audit,
      sessions,
    }),
  );
  app.use(sessionRoutes({ sessions, visits, settings, audit }));
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
