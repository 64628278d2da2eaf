import type { RedisClient } from '@ncc/service-kit';

/** Per-session visit counters: `ncc:visits:<session id>`, expiring with the session. */
export const visitsKey = (sid: string): string => `ncc:visits:${sid}`;

export class VisitsRepository {
  constructor(private readonly redis: RedisClient) {}

  /** Atomic INCR + EXPIRE on one key (one slot): exact under any concurrency, one round trip. */
  async increment(sid: string, ttlSeconds: number): Promise<number> {
    const results = await this.redis.multi().incr(visitsKey(sid)).expire(visitsKey(sid), ttlSeconds).exec();
    const [err, count] = results?.[0] ?? [new Error('Connection is closed.'), null];
    if (err) throw err;
    return Number(count);
  }

  async remove(sid: string): Promise<void> {
    await this.redis.del(visitsKey(sid));
  }
}
