import type { IncomingMessage } from 'node:http';
import cookie from 'cookie';
import signature from 'cookie-signature';
import { LRUCache } from 'lru-cache';
import type { Logger, RedisClient } from '@ncc/service-kit';
import { type SessionSettings, sessionKey } from './contract.js';
import { createSerializer, type SessionSerializer, type StoredSession } from './data.js';
import { TouchThrottle } from './store.js';
import type { SessionUser } from './request-session.js';
import { UserSessionIndex } from './user-sessions.js';

/** The signed value of our cookie in a request's Cookie header ("s:<id>.<signature>"), or null. */
function signedCookie(req: IncomingMessage, cookieName: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  let value: string | undefined;
  try {
    value = cookie.parse(header)[cookieName];
  } catch {
    return null;
  }
  // express-session writes "s:" + signed id; anything else was not issued by us.
  return value && value.startsWith('s:') ? value : null;
}

/** The session id of a signed cookie value if its signature verifies with any configured secret. */
function unsign(value: string, secrets: readonly string[]): string | null {
  for (const secret of secrets) {
    const sid = signature.unsign(value.slice(2), secret);
    if (sid !== false) return sid;
  }
  return null;
}

/**
 * How many sessions a reader remembers (their verified cookie and their last decoded value): the
 * active sessions of one process at a time; past it the least recently used are forgotten. ~1 kB each.
 */
export const READER_CACHE_ENTRIES = 10_000;

export interface SessionReaderDeps {
  settings: SessionSettings;
  redis: RedisClient;
  logger: Logger;
  /**
   * false: a stored value that is not a session is treated as none without the warning — for a reader
   * in front of express-session (auth's GET /me), which reads it again and warns once itself.
   */
  warnOnInvalid?: boolean;
}

/**
 * Read-only session access for services that consume sessions but never create or change them.
 * Reads exactly what express-session wrote (same cookie, signature, key and serializer), in one
 * round trip, and never writes the value back — only refreshes a logged-in session's idle TTL, at
 * most once per interval, sent after the read but not waited for.
 */
export class SessionReader {
  private readonly serializer: SessionSerializer;
  private readonly throttle: TouchThrottle;
  private readonly index: UserSessionIndex;

  /**
   * Signed cookie value → its session id, for values whose signature verified: an HMAC per request
   * saved. Only a value we signed can get in, so junk cookies cannot crowd real ones out.
   */
  private readonly verified = new LRUCache<string, string>({ max: READER_CACHE_ENTRIES });
  /**
   * Session id → the value last read from Redis and its decoded form. Redis is still read on every
   * request; only when it returns exactly the same text is the JSON parse and schema check skipped.
   * The absolute timeout is checked every time. Decoded sessions are frozen: shared between requests.
   */
  private readonly decoded = new LRUCache<string, { text: string; session: Readonly<StoredSession> }>({ max: READER_CACHE_ENTRIES });

  constructor(private readonly deps: SessionReaderDeps) {
    this.serializer = createSerializer(deps.warnOnInvalid === false ? { warn: () => undefined } : deps.logger, deps.settings.absoluteTimeoutSeconds);
    this.throttle = new TouchThrottle(deps.settings.touchIntervalSeconds * 1000);
    this.index = new UserSessionIndex(deps.redis, deps.settings, this.serializer);
  }

  /** The session id in the request's cookie if its signature verifies (its session may still be gone); null without one. */
  sessionId(req: IncomingMessage): string | null {
    const value = signedCookie(req, this.deps.settings.cookieName);
    if (value === null) return null;
    const known = this.verified.get(value);
    if (known !== undefined) return known;
    const sid = unsign(value, this.deps.settings.secrets);
    if (sid !== null) this.verified.set(value, sid);
    return sid;
  }

  /** The stored text as a session (from the cache when it is the text decoded last time for this id). */
  private decode(sid: string, text: string): Readonly<StoredSession> | null {
    const last = this.decoded.get(sid);
    if (last?.text === text) return last.session;
    const session = this.serializer.decode(text);
    if (session === null) return null;
    const frozen = Object.freeze(session);
    this.decoded.set(sid, { text, session: frozen });
    return frozen;
  }

  /** The session `sid` (from sessionId): null = no valid session; rejects with Redis's error when it cannot answer (the error handler makes it a 503). */
  private async read(sid: string): Promise<Readonly<StoredSession> | null> {
    const key = sessionKey(this.deps.settings, sid);
    const text = await this.deps.redis.get(key);
    const decoded = text === null ? null : this.decode(sid, text);
    const session = decoded === null || this.serializer.expired(decoded) ? null : decoded;
    if (session === null) {
      this.throttle.forget(sid);
      this.decoded.delete(sid);
      return null;
    }
    // Only a logged-in session is kept alive here (this service accepts nothing else), with its own
    // idle TTL: an anonymous session must not get a logged-in one's day from a stray checkin.
    if (typeof session.userId === 'number' && this.throttle.due(sid)) this.refresh(key, sid, session.userId);
    return session;
  }

  /**
   * Extend the idle TTL and record "last seen": sent, not awaited, so a refresh that fails or is held
   * (writes paused during a failover) neither fails nor delays the read. EXPIRE on a missing key is a
   * no-op, so this cannot resurrect a session destroyed in between.
   */
  private refresh(key: string, sid: string, userId: number): void {
    this.deps.redis.expire(key, this.deps.settings.ttlSeconds).then(
      (extended) => {
        if (extended === 1) this.index.touched(userId, sid, this.deps.logger);
      },
      (err: unknown) => {
        this.throttle.forget(sid);
        this.deps.logger.debug('Could not refresh a session TTL.', { error: err instanceof Error ? err.message : String(err) });
      },
    );
  }

  /** The signed-in user of the request's session; null without a valid logged-in session. */
  async readUser(req: IncomingMessage): Promise<SessionUser | null> {
    const sid = this.sessionId(req);
    return sid === null ? null : this.userOf(sid);
  }

  /** The same for a session id the caller already took from the request (sessionId): the cookie is read once. */
  async userOf(sid: string): Promise<SessionUser | null> {
    const session = await this.read(sid);
    if (!session || typeof session.userId !== 'number' || typeof session.email !== 'string') return null;
    return { userId: session.userId, email: session.email, createdAt: session.createdAt };
  }
}
