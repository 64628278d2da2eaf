import type { RedisClient } from '@ncc/service-kit';

/** The stream's name, as the seed documents it (`xlen ncc:checkins`). */
export const CHECKIN_STREAM = 'ncc:checkins';

/**
 * Marker keys for duplicate detection. The `{ncc:checkins}` hash tag puts them in the same Redis
 * Cluster slot as the stream key `ncc:checkins` (a key without braces hashes its whole name), so the
 * check and the write can run in one script on Cluster too.
 */
export const dedupeKey = (c: Checkin): string => `{${CHECKIN_STREAM}}:dedupe:${c.userId}:${c.locationId}:${c.starRating}`;

export interface Checkin {
  userId: number;
  locationId: number;
  starRating: number;
}

/**
 * One atomic step: refuse a duplicate, else XADD, then remember it for the window. The marker is
 * written after the XADD, so a failed XADD leaves no marker behind to block a retry.
 */
const ACCEPT_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'userId', ARGV[3], 'locationId', ARGV[4], 'starRating', ARGV[5], 'receivedAt', ARGV[6])
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return id
`;

type WithAccept = RedisClient & {
  nccAcceptCheckin(dedupe: string, stream: string, windowS: number, maxLen: number, userId: number, locationId: number, starRating: number, receivedAt: number): Promise<string | null>;
};

export class CheckinStream {
  private readonly redis: WithAccept;

  constructor(
    redis: RedisClient,
    private readonly options: { duplicateWindowSeconds: number; maxLen: number },
  ) {
    if (!('nccAcceptCheckin' in redis)) {
      // EVALSHA with an automatic EVAL fallback: one round trip per checkin.
      redis.defineCommand('nccAcceptCheckin', { numberOfKeys: 2, lua: ACCEPT_SCRIPT });
    }
    this.redis = redis as WithAccept;
  }

  /** The new entry's id, or null when the same checkin was accepted within the window. */
  async append(checkin: Checkin, receivedAt: number): Promise<string | null> {
    return this.redis.nccAcceptCheckin(
      dedupeKey(checkin),
      CHECKIN_STREAM,
      this.options.duplicateWindowSeconds,
      this.options.maxLen,
      checkin.userId,
      checkin.locationId,
      checkin.starRating,
      receivedAt,
    );
  }
}
