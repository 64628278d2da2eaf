import { isIPv4 } from 'node:net';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { type RedisClient, ServiceUnavailableError } from '@ncc/service-kit';

export const RATE_LIMIT_PREFIX = 'ncc:ratelimit:';

export interface LoginLimits {
  /** Failed logins per (email, client IP) before 429, counted in a fixed window; a success resets it. */
  maxFailsPerEmailIp: number;
  emailIpWindowSeconds: number;
  /** Failed logins per client IP (any email) before 429, per window (a day by default). */
  maxFailsPerIp: number;
  ipWindowSeconds: number;
}

/** An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the IPv4 client it wraps: one counter, not two. */
export function clientKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return isIPv4(mapped) ? mapped : ip.toLowerCase();
}

/**
 * Brute-force protection for POST /login with rate-limiter-flexible's Redis limiter on the service's
 * own ioredis client, so every auth instance shares the counters (`ncc:ratelimit:login:*`, one key
 * per counter: Cluster-safe). Only failures count. Both counters are checked before the password is
 * (so a locked-out attacker learns nothing, and spends no bcrypt time); unknown emails count exactly
 * like known ones. No in-memory insurance limiter: if Redis cannot answer, logins fail closed (503).
 * Numbers and reasoning: docs/decisions/010-login-rate-limits.md.
 */
export class LoginLimiter {
  private readonly byEmailIp: RateLimiterRedis;
  private readonly byIp: RateLimiterRedis;

  constructor(
    redis: RedisClient,
    private readonly limits: LoginLimits,
  ) {
    const common = { storeClient: redis, rejectIfRedisNotReady: true } as const;
    this.byEmailIp = new RateLimiterRedis({
      ...common,
      keyPrefix: `${RATE_LIMIT_PREFIX}login:fails-email-ip`,
      points: limits.maxFailsPerEmailIp,
      duration: limits.emailIpWindowSeconds,
    });
    this.byIp = new RateLimiterRedis({
      ...common,
      keyPrefix: `${RATE_LIMIT_PREFIX}login:fails-ip`,
      points: limits.maxFailsPerIp,
      duration: limits.ipWindowSeconds,
    });
  }

  private static emailIpKey(email: string, ip: string | undefined): string {
    return `${email.toLowerCase()}|${clientKey(ip)}`;
  }

  /** Seconds until the caller may try again, or null when neither limit is used up. */
  async retryAfter(email: string, ip: string | undefined): Promise<number | null> {
    const [pair, address] = await Promise.all([
      this.byEmailIp.get(LoginLimiter.emailIpKey(email, ip)),
      this.byIp.get(clientKey(ip)),
    ]).catch(failClosed);
    let waitMs = 0;
    if (pair && pair.consumedPoints >= this.limits.maxFailsPerEmailIp) waitMs = Math.max(waitMs, pair.msBeforeNext);
    if (address && address.consumedPoints >= this.limits.maxFailsPerIp) waitMs = Math.max(waitMs, address.msBeforeNext);
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : null;
  }

  async recordFailure(email: string, ip: string | undefined): Promise<void> {
    await Promise.all([
      this.byEmailIp.consume(LoginLimiter.emailIpKey(email, ip)).catch(overLimitIsFine),
      this.byIp.consume(clientKey(ip)).catch(overLimitIsFine),
    ]).catch(failClosed);
  }

  /** A successful login ends the run of consecutive failures for that (email, IP). */
  async recordSuccess(email: string, ip: string | undefined): Promise<void> {
    await this.byEmailIp.delete(LoginLimiter.emailIpKey(email, ip)).catch(failClosed);
  }
}

/** consume() rejects with a RateLimiterRes once over the limit: the failure was still counted. */
function overLimitIsFine(err: unknown): void {
  if (err instanceof RateLimiterRes) return;
  throw err;
}

/** Whatever went wrong talking to Redis, the answer is 503: never let a login through uncounted. */
function failClosed(err: unknown): never {
  throw new ServiceUnavailableError(undefined, err);
}
