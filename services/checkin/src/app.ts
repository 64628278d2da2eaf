import { StatsRepository } from '@ncc/checkins';
import { createServiceFrame, type ServiceApp, type ServiceParts } from '@ncc/service-kit';
import { SessionReader, sessionSettings } from '@ncc/session';
import type { CheckinConfig } from './config.js';
import { CheckinStream } from './data-access/checkin-stream.js';
import { CheckinService } from './domain/checkins.js';
import { StatsService } from './domain/stats.js';
import { checkinRoutes } from './entry-points/routes.js';

/** The checkin receiver's composition root: every object is made here, once. */
export function createCheckinApp({ config, logger, redis, metrics }: ServiceParts<CheckinConfig>): ServiceApp {
  const stream = new CheckinStream(redis, {
    duplicateWindowSeconds: config.CHECKIN_DUPLICATE_WINDOW_S,
    maxRecentPerUser: config.CHECKIN_DUPLICATE_MAX_PER_USER,
    ratePerUser: config.CHECKIN_RATE_LIMIT_PER_USER,
    rateWindowSeconds: config.CHECKIN_RATE_LIMIT_WINDOW_S,
    maxLen: config.CHECKIN_STREAM_MAXLEN,
  });
  const checkinsTotal = metrics.outcomeCounter('ncc_checkins_total', 'POST /api/checkin by outcome.', [
    'accepted',
    'duplicate',
    'forbidden',
    'unauthenticated',
    'invalid',
    'rate_limited',
    'unavailable',
  ]);
  const app = createServiceFrame({
    redis,
    logger,
    metrics,
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
        // By the answer: 503 is Redis away or the stream at CHECKIN_STREAM_MAXLEN; 400/413/415 a body the API refuses.
        countCheckins: metrics.countOutcomes(checkinsTotal, {
          202: 'accepted',
          422: 'duplicate',
          403: 'forbidden',
          401: 'unauthenticated',
          400: 'invalid',
          413: 'invalid',
          415: 'invalid',
          429: 'rate_limited',
          503: 'unavailable',
        }),
      }),
    ],
  });
  return { app, close: () => Promise.resolve() };
}
