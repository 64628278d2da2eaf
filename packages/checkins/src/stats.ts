import type { RedisClient } from '@ncc/service-kit';

/**
 * Where the processor's effects live, named as the course names them: the user hash auth keeps the
 * user in (`ncc:user:<id>`: numCheckins, lastCheckin, lastSeenAt) and one hash per location
 * (`ncc:location:<id>`: numCheckins, numStars, averageStars).
 */
export const userKey = (userId: number): string => `ncc:user:${userId}`;
export const locationKey = (locationId: number): string => `ncc:location:${locationId}`;

/**
 * The entries already applied to `key`, for exactly-once effects (decision 024). The braces make the
 * hash tag the target key's own name, and a key without braces hashes its whole name, so
 * `{ncc:user:77}:applied` is in the same Redis Cluster slot as `ncc:user:77`: the check, the effect
 * and the marker are one script on one node.
 */
export const appliedKey = (key: string): string => `{${key}}:applied`;

export interface UserStats {
  userId: number;
  numCheckins: number;
  /** Time of the user's latest checkin (epoch ms, from its entry id); null before the first. */
  lastCheckin: number | null;
  /** Location id of that checkin; null before the first. */
  lastSeenAt: number | null;
}

export interface LocationStats {
  locationId: number;
  numCheckins: number;
  numStars: number;
  /** numStars / numCheckins rounded to a whole star, as the course stores it. */
  averageStars: number;
}

const numberOrNull = (value: string | null | undefined): number | null => (value === null || value === undefined || value === '' ? null : Number(value));

/** Reads the statistics (one HMGET each): what the read API serves and what the tests check. */
export class StatsRepository {
  constructor(private readonly redis: RedisClient) {}

  /** null when there is no such user (no user record with an email). */
  async user(userId: number): Promise<UserStats | null> {
    const [email, numCheckins, lastCheckin, lastSeenAt] = await this.redis.hmget(userKey(userId), 'email', 'numCheckins', 'lastCheckin', 'lastSeenAt');
    if (!email) return null;
    return { userId, numCheckins: numberOrNull(numCheckins) ?? 0, lastCheckin: numberOrNull(lastCheckin), lastSeenAt: numberOrNull(lastSeenAt) };
  }

  /** null for a location nobody has checked in at yet. */
  async location(locationId: number): Promise<LocationStats | null> {
    const [numCheckins, numStars, averageStars] = await this.redis.hmget(locationKey(locationId), 'numCheckins', 'numStars', 'averageStars');
    if (numCheckins === null) return null;
    return { locationId, numCheckins: Number(numCheckins), numStars: Number(numStars ?? 0), averageStars: Number(averageStars ?? 0) };
  }
}
