import type { Result } from 'ioredis';
import { appliedKey, type CheckinEntry, DEAD_LETTER_STREAM, locationKey, userKey } from '@ncc/checkins';
import type { RedisClient } from '@ncc/service-kit';

/**
 * Exactly-once effects (decision 024). Each effect is one script on one key and its marker set
 * `{<key>}:applied` (same Cluster slot): skip the entry if it is already marked, else apply it and
 * mark it — atomically, so a processor that dies after applying and before XACK, or two processors
 * racing for one entry, apply it once. The markers are forgotten below the `floor`: the time (ms part
 * of the id) below which every entry of the group is acknowledged, read by the processor's
 * maintenance (`CheckinGroup.maintain`). An entry below the floor was acknowledged long ago, so it is
 * skipped as `stale` — the case of a processor that was stopped (SIGSTOP) holding an entry that
 * another one has since claimed, applied and acknowledged.
 *
 * ARGV[1] entry id, ARGV[2] its time (ms), ARGV[3] the floor (ms) as this processor last read it.
 */
const MARKERS = `
local applied, id, t = KEYS[2], ARGV[1], tonumber(ARGV[2])
local stored = tonumber(redis.call('ZSCORE', applied, '~floor') or '0')
local floor = math.max(stored, tonumber(ARGV[3]))
if t < floor then return 'stale' end
if redis.call('ZSCORE', applied, id) then return 'duplicate' end
local function remember()
  redis.call('ZADD', applied, t, id)
  if floor > stored then
    redis.call('ZREMRANGEBYSCORE', applied, '-inf', '(' .. floor)
    redis.call('ZADD', applied, floor, '~floor')
  end
end
`;

/** numCheckins +1; lastCheckin/lastSeenAt only move forward in time (entries may be applied out of order). */
const APPLY_USER = `${MARKERS}
if redis.call('HEXISTS', KEYS[1], 'email') == 0 then return 'unknown_user' end
redis.call('HINCRBY', KEYS[1], 'numCheckins', 1)
if t >= tonumber(redis.call('HGET', KEYS[1], 'lastCheckin') or '-1') then
  redis.call('HSET', KEYS[1], 'lastCheckin', ARGV[2], 'lastSeenAt', ARGV[4])
end
remember()
return 'applied'
`;

/** numCheckins +1, numStars +starRating, averageStars = their ratio rounded to a whole star (the course's Math.round). */
const APPLY_LOCATION = `${MARKERS}
local n = redis.call('HINCRBY', KEYS[1], 'numCheckins', 1)
local s = redis.call('HINCRBY', KEYS[1], 'numStars', ARGV[4])
redis.call('HSET', KEYS[1], 'averageStars', math.floor(s / n + 0.5))
remember()
return 'applied'
`;

/** XADD to the dead-letter stream: entryId, reason, then the entry's own fields as they were. */
const DEAD_LETTER = `${MARKERS}
local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'entryId', id, 'reason', ARGV[5]}
for i = 6, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
remember()
return 'applied'
`;

export type EffectResult = 'applied' | 'duplicate' | 'stale' | 'unknown_user';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    nccApplyUser(user: string, applied: string, id: string, time: number, floor: number, locationId: number): Result<EffectResult, Context>;
    nccApplyLocation(location: string, applied: string, id: string, time: number, floor: number, stars: number): Result<EffectResult, Context>;
    nccDeadLetter(
      stream: string,
      applied: string,
      id: string,
      time: number,
      floor: number,
      maxLen: number,
      reason: string,
      ...fields: string[]
    ): Result<EffectResult, Context>;
  }
}

/** The processor's writes: one EVALSHA per effect, each idempotent by entry id. */
export class Effects {
  constructor(
    private readonly redis: RedisClient,
    private readonly deadLetterMaxLen: number,
  ) {
    if (typeof redis.nccApplyUser !== 'function') {
      redis.defineCommand('nccApplyUser', { numberOfKeys: 2, lua: APPLY_USER });
      redis.defineCommand('nccApplyLocation', { numberOfKeys: 2, lua: APPLY_LOCATION });
      redis.defineCommand('nccDeadLetter', { numberOfKeys: 2, lua: DEAD_LETTER });
    }
  }

  applyToUser(entry: CheckinEntry, floor: number): Promise<EffectResult> {
    const key = userKey(entry.userId);
    return this.redis.nccApplyUser(key, appliedKey(key), entry.id, entry.time, floor, entry.locationId);
  }

  applyToLocation(entry: CheckinEntry, floor: number): Promise<EffectResult> {
    const key = locationKey(entry.locationId);
    return this.redis.nccApplyLocation(key, appliedKey(key), entry.id, entry.time, floor, entry.starRating);
  }

  /** `fields`: the entry as read (a flat field/value list), kept as it was for whoever inspects it. */
  deadLetter(id: string, time: number, fields: readonly string[], reason: string, floor: number): Promise<EffectResult> {
    return this.redis.nccDeadLetter(DEAD_LETTER_STREAM, appliedKey(DEAD_LETTER_STREAM), id, time, floor, this.deadLetterMaxLen, reason, ...fields);
  }
}
