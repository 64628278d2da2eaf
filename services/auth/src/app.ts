import type { Express } from 'express';
import helmet from 'helmet';
import { createBaseApp, errorHandler, healthRoutes, notFoundHandler, requestId, type ServiceParts } from '@ncc/service-kit';
import { createSessionMiddleware, sessionSettings } from '@ncc/session';
import type { AuthConfig } from './config.js';
import { UsersRepository } from './data-access/users-repository.js';
import { VisitsRepository } from './data-access/visits-repository.js';
import { LoginService } from './domain/login.js';
import { BcryptHasher, type PasswordHasher } from './domain/passwords.js';
import { authRoutes } from './entry-points/routes.js';

export interface AuthAppOptions extends ServiceParts<AuthConfig> {
  hasher?: PasswordHasher;
}

export function createAuthApp({ config, logger, redis, hasher }: AuthAppOptions): Express {
  const settings = sessionSettings(config);
  const passwords = hasher ?? new BcryptHasher(config.BCRYPT_ROUNDS);
  // Make the dummy hash now, so the first unknown-email login costs one compare like any other.
  if (passwords instanceof BcryptHasher) void passwords.warmUp().catch(() => undefined);
  const users = new UsersRepository(redis);

  const app = createBaseApp({ trustProxy: config.TRUST_PROXY });
  app.use(requestId);
  app.use(helmet());
  app.use((_req, res, next) => {
    // Responses carry personal data and session state: never cache them anywhere.
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // Health checks never touch the session store.
  app.use(healthRoutes(redis));
  app.use(createSessionMiddleware({ settings, redis, logger }));
  app.use(
    authRoutes({
      login: new LoginService(users, passwords, logger),
      users,
      visits: new VisitsRepository(redis),
      settings,
      logger,
    }),
  );
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
