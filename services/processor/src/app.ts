import { closeRedis, createRedisClient, createServiceFrame, type RedisClient, type ServiceApp, type ServiceParts, waitForRedis } from '@ncc/service-kit';
import type { ProcessorConfig } from './config.js';
import { CheckinGroup } from './data-access/checkin-group.js';
import { Effects } from './data-access/effects.js';
import { CheckinProcessor } from './domain/processor.js';

export interface ProcessorApp extends ServiceApp {
  processor: CheckinProcessor;
  /** Resolves when the loop ends after close(); rejects on a programmer error inside it. */
  done: Promise<void>;
}

/**
 * The checkin processor's composition root. Two Redis connections: the shared one for effects, acks
 * and maintenance, and one of its own for the blocking XREADGROUP (a blocked connection answers
 * nothing else). HTTP serves /healthz and /readyz only.
 */
export async function createProcessorApp({ config, logger, redis, metrics }: ServiceParts<ProcessorConfig>, reader?: RedisClient): Promise<ProcessorApp> {
  // Not auto-pipelined: a blocking XREADGROUP holds its connection anyway, there is nothing to batch it with.
  const blocking = reader ?? createRedisClient({ ...config, REDIS_AUTO_PIPELINING: false }, logger);
  metrics.watchRedis(blocking);
  await waitForRedis(blocking, config.REDIS_STARTUP_TIMEOUT_MS);
  const processor = new CheckinProcessor(
    new CheckinGroup(redis, blocking, config.PROCESSOR_CONSUMER),
    new Effects(redis, config.PROCESSOR_DEAD_LETTER_MAXLEN),
    {
      batchSize: config.PROCESSOR_BATCH_SIZE,
      blockMs: config.PROCESSOR_BLOCK_MS,
      claimIdleMs: config.PROCESSOR_CLAIM_IDLE_MS,
      maxDeliveries: config.PROCESSOR_MAX_DELIVERIES,
      trimIntervalMs: config.PROCESSOR_TRIM_INTERVAL_MS,
      consumerIdleMs: config.PROCESSOR_CONSUMER_IDLE_MS,
    },
    logger,
  );
  metrics.outcomeCounterOf(
    'ncc_processor_entries_total',
    'Stream entries by outcome: applied, duplicate (applied before: a redelivery), stale (acknowledged long ago), dead_lettered; claimed counts entries taken over from a dead consumer.',
    () => processor.counts,
  );
  metrics.gauge(
    'ncc_processor_lag_entries',
    "Entries in ncc:checkins not yet delivered to the group (Redis's XINFO lag; read every PROCESSOR_TRIM_INTERVAL_MS).",
    () => processor.last?.lag ?? undefined,
  );
  metrics.gauge(
    'ncc_processor_pending_entries',
    'Entries delivered to the group and not yet acknowledged, all consumers (read every PROCESSOR_TRIM_INTERVAL_MS).',
    () => processor.last?.pending,
  );
  const app = createServiceFrame({ redis, logger, metrics, trustProxy: config.TRUST_PROXY, crossSite: { allowedOrigins: [] }, routes: [] });
  const done = processor.start();
  return {
    app,
    processor,
    done,
    close: async () => {
      await processor.stop();
      await closeRedis(blocking);
    },
  };
}
