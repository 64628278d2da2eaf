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
export async function createProcessorApp({ config, logger, redis }: ServiceParts<ProcessorConfig>, reader?: RedisClient): Promise<ProcessorApp> {
  const blocking = reader ?? createRedisClient(config, logger);
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
  const app = createServiceFrame({ redis, logger, trustProxy: config.TRUST_PROXY, crossSite: { allowedOrigins: [] }, routes: [] });
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
