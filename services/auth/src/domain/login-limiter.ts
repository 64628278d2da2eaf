import { isIPv4, isIPv6 } from 'node:net';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { httpErrors, type RedisClient } from '@ncc/service-kit';

export const RATE_LIMIT_PREFIX = 'ncc:ratelimit:';

export interface LoginLimits {
  /** Failed logins per (email, client IP) before 429, counted in a fixed window; a success resets it. */
  maxFailsPerEmailIp: number;
  emailIpWindowSeconds: number;
  /** Failed logins per client IP (any email) before 429, per window (a day by default). */
  maxFailsPerIp: number;
  ipWindowSeconds: number;
}

/**
 * The client a counter is kept for. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the IPv4 client
 * it wraps (one counter, not two). An IPv6 client is its /64: one subscriber is routinely handed a
 * whole /64, so counting per address would give an attacker 2^64 fresh counters.
 */
export function clientKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = ip.toLowerCase().startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIPv4(mapped)) return mapped;
  return ipv6Prefix64(ip) ?? ip.toLowerCase();
}

/** `2001:db8:a:b::/64` for any address in that /64; null when `ip` is not IPv6. */
export function ipv6Prefix64(ip: string): string | null {
  const address = ip.split('%')[0]!.toLowerCase();
  if (!isIPv6(address)) return null;
  // A dotted IPv4 tail (`64:ff9b::1.2.3.4`) stands for two groups.
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])));
  const [head = '', tail] = address.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${full
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Brute-force protection for POST /login with rate-limiter-flexible's Redis limiter on the service's
 * own ioredis client, so every auth instance shares the counters (`ncc:ratelimit:login:*`, one key
 * per counter: Cluster-safe). A password compare is *reserved* before it runs: one point is taken
 * from both counters atomically (INCR in Redis), so however many requests arrive at once, at most the
 * limit's worth of compares happen per window; a success gives its points back. Unknown emails count
 * exactly like known ones. No in-memory insurance limiter: if Redis cannot answer, logins fail closed
 * (503). Numbers and reasoning: docs/decisions/010-login-rate-limits.md.
 */
export class LoginLimiter {
  private readonly byEmailIp: RateLimiterRedis;
  private readonly byIp: RateLimiterRedis;

  constructor(redis: RedisClient, limits: LoginLimits) {
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

  private static keys(email: string, ip: string | undefined): { pair: string; address: string } {
    const address = clientKey(ip);
    return { pair: `${email.toLowerCase()}|${address}`, address };
  }

  /**
   * Take one compare from both budgets. null = reserved (the caller may compare the password now);
   * otherwise the seconds until the caller may try again, and nothing stays taken. A reservation that
   * ends in a failed login is simply kept: that is the failure being counted.
   */
  async reserve(email: string, ip: string | undefined): Promise<number | null> {
    const { pair, address } = LoginLimiter.keys(email, ip);
    const results = await Promise.allSettled([this.byEmailIp.consume(pair), this.byIp.consume(address)]);
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (refused.length === 0) return null;
    const notALimit = refused.find((reason) => !(reason instanceof RateLimiterRes));
    if (notALimit !== undefined) failClosed(notALimit);
    // Over a limit: consume() counted the attempt on both counters, the refused one included. Give
    // both points back, so the counters read exactly the compares that ran and a refusal costs nothing.
    await this.release(email, ip);
    const waitMs = Math.max(...refused.map((r) => (r as RateLimiterRes).msBeforeNext));
    return Math.max(1, Math.ceil(waitMs / 1000));
  }

  /** The compare could not run (overload, Redis): it was no failed login, so give the points back. */
  async release(email: string, ip: string | undefined): Promise<void> {
    const { pair, address } = LoginLimiter.keys(email, ip);
    await Promise.all([this.byEmailIp.reward(pair), this.byIp.reward(address)]).catch(failClosed);
  }

  /** A successful login ends the run of consecutive failures for that (email, IP) and returns its per-IP point. */
  async recordSuccess(email: string, ip: string | undefined): Promise<void> {
    const { pair, address } = LoginLimiter.keys(email, ip);
    await Promise.all([this.byEmailIp.delete(pair), this.byIp.reward(address)]).catch(failClosed);
  }
}

/** Whatever went wrong talking to Redis, the answer is 503: never let a login through uncounted. */
export function failClosed(err: unknown): never {
  throw httpErrors.unavailable(err);
}
