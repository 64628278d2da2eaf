import { StatsRepository } from '@ncc/checkins';
import { createServiceFrame, type ServiceApp, type ServiceParts } from '@ncc/service-kit';
import { SessionReader, sessionSettings } from '@ncc/session';
import type { CheckinConfig } from './config.js';
import { CheckinStream } from './data-access/checkin-stream.js';
import { CheckinService } from './domain/checkins.js';
import { StatsService } from './domain/stats.js';
import { checkinRoutes } from './entry-points/routes.js';

/** The checkin receiver's composition root: every object is made here, once. */
export function createCheckinApp({ config, logger, redis }: ServiceParts<CheckinConfig>): ServiceApp {
  const stream = new CheckinStream(redis, {
    duplicateWindowSeconds: config.CHECKIN_DUPLICATE_WINDOW_S,
    maxRecentPerUser: config.CHECKIN_DUPLICATE_MAX_PER_USER,
    ratePerUser: config.CHECKIN_RATE_LIMIT_PER_USER,
    rateWindowSeconds: config.CHECKIN_RATE_LIMIT_WINDOW_S,
    maxLen: config.CHECKIN_STREAM_MAXLEN,
  });
  const app = createServiceFrame({
    redis,
    logger,
    trustProxy: config.TRUST_PROXY,
    // CSRF/CORS: foreign Origin or Sec-Fetch-Site: cross-site on a state-changing request → 403 (decision 011).
    crossSite: { allowedOrigins: config.ALLOWED_ORIGINS },
    routes: [
      checkinRoutes({
        checkins: new CheckinService(stream, logger),
        stats: new StatsService(new StatsRepository(redis)),
        // Reads the sessions auth wrote; never creates, changes or re-saves one.
        reader: config.CHECKIN_AUTH === 'on' ? new SessionReader({ settings: sessionSettings(config), redis, logger }) : undefined,
        logger,
      }),
    ],
  });
  return { app, close: () => Promise.resolve() };
}
