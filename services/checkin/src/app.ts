import { StatsRepository } from '@ncc/checkins';
import { closeRedis, createRedisClient, createServiceFrame, type ServiceApp, type ServiceParts, waitForRedis } from '@ncc/service-kit';
import { SessionReader, sessionSettings } from '@ncc/session';
import type { CheckinConfig } from './config.js';
import { CheckinStream } from './data-access/checkin-stream.js';
import { LiveStreamReader } from './data-access/live-reader.js';
import { CheckinService } from './domain/checkins.js';
import { LiveCheckins } from './domain/live-checkins.js';
import { StatsService } from './domain/stats.js';
import { checkinRoutes } from './entry-points/routes.js';

export interface CheckinApp extends ServiceApp {
  /** The live view's hub: one reader for every open GET /api/checkins/live stream of this process. */
  live: LiveCheckins;
  /**
   * Shutdown has begun: ends every live stream at once and refuses new ones. Call it as soon as the
   * server stops accepting, before waiting for the HTTP drain — a live stream never finishes by itself,
   * so the drain would otherwise wait SHUTDOWN_TIMEOUT_MS for it on every stop. close() does it too.
   */
  beginShutdown(): void;
}

/**
 * The checkin receiver's composition root: every object is made here, once. Two Redis connections:
 * the shared one for checkins, sessions and statistics, and one of its own for the live view's
 * blocking XREAD (a blocked connection answers nothing else).
 */
export async function createCheckinApp({ config, logger, redis, metrics }: ServiceParts<CheckinConfig>): Promise<CheckinApp> {
  const stream = new CheckinStream(redis, {
    duplicateWindowSeconds: config.CHECKIN_DUPLICATE_WINDOW_S,
    maxRecentPerUser: config.CHECKIN_DUPLICATE_MAX_PER_USER,
    ratePerUser: config.CHECKIN_RATE_LIMIT_PER_USER,
    rateWindowSeconds: config.CHECKIN_RATE_LIMIT_WINDOW_S,
    maxLen: config.CHECKIN_STREAM_MAXLEN,
  });
  // Made at start, like the processor's, although it reads only while someone watches: so it is ready
  // before the first browser subscribes (no `unavailable` while it connects), a Redis it cannot reach
  // fails the start-up, and an idle connection costs Redis next to nothing.
  // Not auto-pipelined: a blocking XREAD holds its connection anyway, there is nothing to batch it with.
  const blocking = createRedisClient({ ...config, REDIS_AUTO_PIPELINING: false }, logger);
  metrics.watchRedis(blocking);
  await waitForRedis(blocking, config.REDIS_STARTUP_TIMEOUT_MS);
  const live = new LiveCheckins(
    new LiveStreamReader(blocking),
    { heartbeatMs: config.LIVE_HEARTBEAT_MS, blockMs: config.LIVE_BLOCK_MS, maxSubscribers: config.LIVE_MAX_SUBSCRIBERS },
    logger,
  );
  metrics.gauge('ncc_live_subscribers', 'Open GET /api/checkins/live streams on this process.', () => live.size);
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
        live,
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
  return {
    app,
    live,
    beginShutdown: () => live.shutdown(),
    close: async () => {
      await live.close();
      await closeRedis(blocking);
    },
  };
}
