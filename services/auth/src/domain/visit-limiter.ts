import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RedisClient } from '@ncc/service-kit';
import { clientKey, failClosed, RATE_LIMIT_PREFIX } from './login-limiter.js';

export interface NewSessionLimits {
  /** Anonymous sessions one client (IPv4 address or IPv6 /64) may create per window. */
  maxPerIp: number;
  windowSeconds: number;
}

/**
 * Bounds the one thing an anonymous client can make us store: a new session (GET /visits without a
 * cookie writes a session key and a counter key). Shared by every auth instance through Redis
 * (`ncc:ratelimit:visits:new-session-ip:*`, one key per client: Cluster-safe), counted before
 * anything is written, failing closed (503) when Redis cannot count. A visitor who keeps its cookie
 * never comes here again. Numbers and reasoning: docs/decisions/010-login-rate-limits.md.
 */
export class VisitLimiter {
  private readonly byIp: RateLimiterRedis;

  constructor(redis: RedisClient, limits: NewSessionLimits) {
    this.byIp = new RateLimiterRedis({
      storeClient: redis,
      rejectIfRedisNotReady: true,
      keyPrefix: `${RATE_LIMIT_PREFIX}visits:new-session-ip`,
      points: limits.maxPerIp,
      duration: limits.windowSeconds,
    });
  }

  /** null = the client may create one more session now; otherwise the seconds until it may. */
  async reserve(ip: string | undefined): Promise<number | null> {
    try {
      await this.byIp.consume(clientKey(ip));
      return null;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) failClosed(err);
      return Math.max(1, Math.ceil(err.msBeforeNext / 1000));
    }
  }
}
