import type { Result } from 'ioredis';
import { CHECKIN_STREAM, TRACEPARENT_FIELD } from '@ncc/checkins';
import { currentTraceparent, type RedisClient } from '@ncc/service-kit';

export { CHECKIN_STREAM };

/**
 * One small structure per user for duplicate detection and the per-user rate limit: a sorted set of the
 * user's recently accepted checkins, member `<locationId>:<starRating>`, score = when it was accepted
 * (epoch ms, Redis's clock). The `{ncc:checkins}` hash tag puts it in the same Redis Cluster slot as the
 * stream key `ncc:checkins` (a key without braces hashes its whole name), so the check and the write run
 * in one script on Cluster too.
 */
export const recentCheckinsKey = (userId: number): string => `{${CHECKIN_STREAM}}:recent:${userId}`;
export const recentMember = (c: Pick<Checkin, 'locationId' | 'starRating'>): string => `${c.locationId}:${c.starRating}`;

export interface Checkin {
  userId: number;
  locationId: number;
  starRating: number;
}

export interface CheckinLimits {
  /** An identical (user, location, rating) is refused for this long after it was accepted… */
  duplicateWindowSeconds: number;
  /** …as long as it is among the user's this many most recent checkins (the bound on memory per user). */
  maxRecentPerUser: number;
  /** Accepted checkins per user per sliding window, shared by every replica. */
  ratePerUser: number;
  rateWindowSeconds: number;
  /**
   * The stream's hard cap: at this length a checkin is refused (503) instead of stored. The stream is
   * never trimmed here — the processor trims what every consumer group has acknowledged — so the cap
   * is reached only when processing has stopped or falls far behind, and then nothing is dropped.
   */
  maxLen: number;
}

export type AppendResult =
  { outcome: 'accepted'; id: string } | { outcome: 'duplicate' } | { outcome: 'rate_limited'; retryAfterMs: number } | { outcome: 'full' };

/**
 * One atomic step, one round trip: forget the user's checkins older than both windows; refuse a
 * duplicate; refuse while the stream is at its cap (back-pressure: XLEN, O(1)); refuse past the rate
 * limit (a sliding-window log over the same set: the accepted checkins of the last rateWindow); else
 * XADD (fields in the stream contract's order, ENTRY_FIELDS, then the request's traceparent when it
 * is traced), remember it, trim the set to its most recent maxRecent members
 * and let it expire when both windows have passed. The set is written after the XADD, so a failed XADD
 * leaves nothing behind to block a retry. Time is Redis's (TIME), so replicas with skewed clocks agree.
 * Duplicates are checked first: a client retrying a 503 learns its first attempt was stored (422)
 * even when it is also over the rate.
 */
const ACCEPT_SCRIPT = `
local key, member = KEYS[1], ARGV[1]
local window, maxRecent = tonumber(ARGV[2]), tonumber(ARGV[3])
local rate, rateWindow = tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = math.max(window, rateWindow)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - keep)
local seen = redis.call('ZSCORE', key, member)
if seen and tonumber(seen) > now - window then return {'duplicate'} end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[6]) then return {'full'} end
if redis.call('ZCOUNT', key, now - rateWindow, '+inf') >= rate then
  local oldest = redis.call('ZRANGEBYSCORE', key, now - rateWindow, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return {'rate_limited', tostring(tonumber(oldest[2]) + rateWindow - now)}
end
local id
if ARGV[11] then
  id = redis.call('XADD', KEYS[2], '*',
    'userId', ARGV[7], 'locationId', ARGV[8], 'starRating', ARGV[9], 'receivedAt', ARGV[10], '${TRACEPARENT_FIELD}', ARGV[11])
else
  id = redis.call('XADD', KEYS[2], '*',
    'userId', ARGV[7], 'locationId', ARGV[8], 'starRating', ARGV[9], 'receivedAt', ARGV[10])
end
redis.call('ZADD', key, now, member)
redis.call('ZREMRANGEBYRANK', key, 0, -maxRecent - 1)
redis.call('PEXPIRE', key, keep)
return {'accepted', id}
`;

declare module 'ioredis' {
  // The accept script, registered with defineCommand below, typed on every client (Redis and Cluster).
  interface RedisCommander<Context> {
    nccAcceptCheckin(
      recent: string,
      stream: string,
      member: string,
      windowMs: number,
      maxRecent: number,
      rate: number,
      rateWindowMs: number,
      maxLen: number,
      userId: number,
      locationId: number,
      starRating: number,
      receivedAt: number,
      ...traceparent: string[]
    ): Result<[string, string?], Context>;
  }
}

export class CheckinStream {
  private readonly redis: RedisClient;
  private readonly maxRecent: number;

  constructor(
    redis: RedisClient,
    private readonly limits: CheckinLimits,
  ) {
    if (typeof redis.nccAcceptCheckin !== 'function') {
      // EVALSHA with an automatic EVAL fallback: one round trip per checkin.
      redis.defineCommand('nccAcceptCheckin', { numberOfKeys: 2, lua: ACCEPT_SCRIPT });
    }
    this.redis = redis;
    // The rate window's entries must all stay in the set, or the limit could not count them.
    this.maxRecent = Math.max(limits.maxRecentPerUser, limits.ratePerUser);
  }

  async append(checkin: Checkin, receivedAt: number): Promise<AppendResult> {
    const traceparent = currentTraceparent();
    const [outcome, value] = await this.redis.nccAcceptCheckin(
      recentCheckinsKey(checkin.userId),
      CHECKIN_STREAM,
      recentMember(checkin),
      this.limits.duplicateWindowSeconds * 1000,
      this.maxRecent,
      this.limits.ratePerUser,
      this.limits.rateWindowSeconds * 1000,
      this.limits.maxLen,
      checkin.userId,
      checkin.locationId,
      checkin.starRating,
      receivedAt,
      ...(traceparent === undefined ? [] : [traceparent]),
    );
    if (outcome === 'accepted') return { outcome, id: value! };
    if (outcome === 'rate_limited') return { outcome, retryAfterMs: Number(value) };
    if (outcome === 'full') return { outcome };
    return { outcome: 'duplicate' };
  }
}
