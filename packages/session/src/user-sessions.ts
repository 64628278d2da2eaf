import { createHmac } from 'node:crypto';
import type { Result } from 'ioredis';
import type { Logger, RedisClient } from '@ncc/service-kit';
import { type SessionSettings, sessionKey, userSessionsKey } from './contract.js';
import type { SessionSerializer, StoredSession } from './data.js';

/**
 * Per-user index of sessions: a sorted set `ncc:user-sessions:<userId>`, member = session id,
 * score = last seen (epoch ms). Every command names exactly one key, so it works on Redis Cluster
 * (no SCAN, no KEYS, no multi-key command across slots). See docs/decisions/012-session-index.md.
 */

/** User agents are stored for the session list only; cap what a client can make us store. */
export const MAX_USER_AGENT_LENGTH = 200;

export function truncateUserAgent(ua: string | undefined): string | undefined {
  if (!ua) return undefined;
  return ua.length > MAX_USER_AGENT_LENGTH ? ua.slice(0, MAX_USER_AGENT_LENGTH) : ua;
}

/**
 * One atomic step on the user's one key (Cluster-safe): index the new session, extend the set's life,
 * and if the user now has more than the cap, remove the least recently active others and return them.
 * KEYS[1] the set; ARGV: score, sid, set TTL (s), cap.
 */
const ADD_SCRIPT = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over <= 0 then return {} end
local evicted = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, over)) do
  if #evicted < over and sid ~= ARGV[2] then evicted[#evicted + 1] = sid end
end
redis.call('ZREM', KEYS[1], unpack(evicted))
return evicted
`;

declare module 'ioredis' {
  // The index script, registered with defineCommand below, typed on every client (Redis and Cluster).
  interface RedisCommander<Context> {
    nccIndexSession(key: string, score: number, sid: string, ttlSeconds: number, cap: number): Result<string[], Context>;
  }
}

const HANDLE = /^[A-Za-z0-9_-]{22}$/;

/**
 * The opaque public name of a session: HMAC-SHA256 of the id under the first session secret,
 * 128 bits in base64url. It names a session in `GET /sessions` without revealing the id (which is
 * a bearer credential); it changes when the secret rotates, which only matters between a list and a delete.
 */
export function sessionHandle(secret: string, sid: string): string {
  return createHmac('sha256', secret).update(`ncc-session-handle:${sid}`).digest('base64url').slice(0, 22);
}

export function isSessionHandle(value: string): boolean {
  return HANDLE.test(value);
}

export interface UserSessionEntry {
  /** Internal only — never sent to clients or logged. */
  sid: string;
  handle: string;
  createdAt: number;
  lastSeenAt: number;
  userAgent: string | undefined;
}

export class UserSessionIndex {
  private readonly redis: RedisClient;

  constructor(
    redis: RedisClient,
    private readonly settings: Pick<SessionSettings, 'prefix' | 'secrets' | 'ttlSeconds' | 'absoluteTimeoutSeconds' | 'maxSessionsPerUser'>,
    private readonly serializer: SessionSerializer,
  ) {
    // EVALSHA with an automatic EVAL fallback: one round trip.
    if (typeof redis.nccIndexSession !== 'function') redis.defineCommand('nccIndexSession', { numberOfKeys: 1, lua: ADD_SCRIPT });
    this.redis = redis;
  }

  handleOf(sid: string): string {
    return sessionHandle(this.settings.secrets[0]!, sid);
  }

  /**
   * At login, before the session is saved. Keeps the index no longer than the newest session can live,
   * and the user at no more than MAX_SESSIONS_PER_USER sessions: the least recently active ones past the
   * cap are ended here (their keys deleted). Returns the ids of the sessions that were really ended.
   * Members are never dropped by score alone: a lost "last seen" update must not make a live session
   * unrevocable.
   */
  async add(userId: number, sid: string, now = Date.now()): Promise<string[]> {
    const evicted = await this.redis.nccIndexSession(userSessionsKey(userId), now, sid, this.indexTtlSeconds(), this.settings.maxSessionsPerUser);
    const deleted = await Promise.all(evicted.map((s) => this.redis.del(sessionKey(this.settings, s))));
    return evicted.filter((_, i) => deleted[i] === 1);
  }

  /**
   * At login, right after the session was saved: index it again. Between add() and the save the member
   * has no session key, so a clean-up running then (a listing, a logout-all, on any instance) rightly
   * drops it; this puts it back once the session exists. Every saved session is thus indexed after it
   * was saved — never lost to a clean-up, however many sessions and instances are involved.
   */
  async confirm(userId: number, sid: string, score: number): Promise<void> {
    const key = userSessionsKey(userId);
    const results = await this.redis.multi().zadd(key, score, sid).expire(key, this.indexTtlSeconds()).exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('Connection is closed.');
  }

  private indexTtlSeconds(): number {
    return Math.max(this.settings.absoluteTimeoutSeconds, this.settings.ttlSeconds) + 60;
  }

  /**
   * When a session's idle TTL was refreshed: record "last seen". XX never re-adds a removed session.
   * Best effort and not awaited by callers: a lost update never fails or delays a request.
   */
  touched(userId: number, sid: string, logger: Pick<Logger, 'debug'>, now = Date.now()): void {
    this.redis.zadd(userSessionsKey(userId), 'XX', now, sid).catch((err: unknown) => logger.debug('Could not record last seen.', { error: String(err) }));
  }

  async remove(userId: number, sid: string): Promise<void> {
    await this.redis.zrem(userSessionsKey(userId), sid);
  }

  /**
   * The user's live sessions, newest first. Members whose session key is gone, unreadable, past the
   * absolute timeout or owned by someone else are removed from the index on the way (lazy cleanup).
   */
  async list(userId: number): Promise<UserSessionEntry[]> {
    const key = userSessionsKey(userId);
    const flat = await this.redis.zrange(key, 0, -1, 'WITHSCORES');
    const members: { sid: string; lastSeenAt: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) members.push({ sid: flat[i]!, lastSeenAt: Number(flat[i + 1]) });
    // One GET per session key (each in its own slot); ioredis pipelines them on the wire.
    const values = await Promise.all(members.map((m) => this.redis.get(sessionKey(this.settings, m.sid))));
    const live: UserSessionEntry[] = [];
    const stale: string[] = [];
    members.forEach((m, i) => {
      const text = values[i];
      const session: StoredSession | null = text == null ? null : this.serializer.parse(text);
      if (!session || session.userId !== userId) {
        stale.push(m.sid);
        return;
      }
      const createdAt = typeof session.createdAt === 'number' ? session.createdAt : m.lastSeenAt;
      live.push({
        sid: m.sid,
        handle: this.handleOf(m.sid),
        createdAt,
        lastSeenAt: Math.max(m.lastSeenAt, createdAt),
        userAgent: typeof session['userAgent'] === 'string' ? session['userAgent'] : undefined,
      });
    });
    if (stale.length > 0) await this.redis.zrem(key, ...stale);
    return live.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** End one of the user's sessions by handle; null when the handle names none of them. */
  async endByHandle(userId: number, handle: string): Promise<string | null> {
    if (!isSessionHandle(handle)) return null;
    const sids = await this.redis.zrange(userSessionsKey(userId), 0, -1);
    const sid = sids.find((s) => this.handleOf(s) === handle);
    if (sid === undefined) return null;
    await this.end(userId, sid);
    return sid;
  }

  /**
   * End every session of the user, however many. Removes exactly the members it ended (not the whole
   * key): a login racing with this one that has indexed but not yet saved its session puts its member
   * back once saved (confirm), so it stays listed and revocable.
   */
  async endAll(userId: number): Promise<string[]> {
    const key = userSessionsKey(userId);
    const sids = await this.redis.zrange(key, 0, -1);
    await Promise.all(sids.map((sid) => this.redis.del(sessionKey(this.settings, sid))));
    if (sids.length > 0) await this.redis.zrem(key, ...sids);
    return sids;
  }

  private async end(userId: number, sid: string): Promise<void> {
    await this.redis.del(sessionKey(this.settings, sid));
    await this.redis.zrem(userSessionsKey(userId), sid);
  }
}
