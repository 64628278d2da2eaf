import type { Express } from 'express';
import helmet from 'helmet';
import { createBaseApp, crossSiteGuard, errorHandler, healthRoutes, notFoundHandler, requestId, type ServiceParts } from '@ncc/service-kit';
import { SessionReader, sessionSettings } from '@ncc/session';
import type { CheckinConfig } from './config.js';
import { CheckinStream } from './data-access/checkin-stream.js';
import { CheckinService } from './domain/checkins.js';
import { checkinRoutes } from './entry-points/routes.js';

export function createCheckinApp({ config, logger, redis }: ServiceParts<CheckinConfig>): Express {
  const settings = sessionSettings(config);
  const stream = new CheckinStream(redis, {
    duplicateWindowSeconds: config.CHECKIN_DUPLICATE_WINDOW_S,
    maxRecentPerUser: config.CHECKIN_DUPLICATE_MAX_PER_USER,
    ratePerUser: config.CHECKIN_RATE_LIMIT_PER_USER,
    rateWindowSeconds: config.CHECKIN_RATE_LIMIT_WINDOW_S,
    maxLen: config.CHECKIN_STREAM_MAXLEN,
  });

  const app = createBaseApp({ trustProxy: config.TRUST_PROXY });
  app.use(requestId);
  app.use(helmet());
  // CSRF/CORS: foreign Origin or Sec-Fetch-Site: cross-site on a state-changing request → 403 (decision 011).
  app.use(crossSiteGuard({ allowedOrigins: config.ALLOWED_ORIGINS }));
  app.use(healthRoutes(redis));
  app.use(
    checkinRoutes({
      checkins: new CheckinService(stream, logger),
      // Reads the sessions auth wrote; never creates, changes or re-saves one.
      reader: config.CHECKIN_AUTH === 'on' ? new SessionReader({ settings, redis, logger }) : undefined,
      logger,
    }),
  );
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
