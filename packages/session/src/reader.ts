import type { IncomingMessage } from 'node:http';
import cookie from 'cookie';
import signature from 'cookie-signature';
import type { Logger, RedisClient } from '@ncc/service-kit';
import { type SessionSettings, sessionKey } from './contract.js';
import { createSerializer, type SessionSerializer, type StoredSession } from './data.js';
import { TouchThrottle } from './store.js';
import type { SessionUser } from './request-session.js';
import { UserSessionIndex } from './user-sessions.js';

/** The session id in a request's cookie if its signature verifies with any configured secret. */
export function sessionIdFromRequest(req: IncomingMessage, settings: Pick<SessionSettings, 'cookieName' | 'secrets'>): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  let value: string | undefined;
  try {
    value = cookie.parse(header)[settings.cookieName];
  } catch {
    return null;
  }
  // express-session writes "s:" + signed id; anything else was not issued by us.
  if (!value || !value.startsWith('s:')) return null;
  for (const secret of settings.secrets) {
    const sid = signature.unsign(value.slice(2), secret);
    if (sid !== false) return sid;
  }
  return null;
}

export interface SessionReaderDeps {
  settings: SessionSettings;
  redis: RedisClient;
  logger: Logger;
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

  constructor(private readonly deps: SessionReaderDeps) {
    this.serializer = createSerializer(deps.logger, deps.settings.absoluteTimeoutSeconds);
    this.throttle = new TouchThrottle(deps.settings.touchIntervalSeconds * 1000);
    this.index = new UserSessionIndex(deps.redis, deps.settings, this.serializer);
  }

  /** null = no valid session; rejects with Redis's error when it cannot answer (the error handler makes it a 503). */
  async read(req: IncomingMessage): Promise<StoredSession | null> {
    const sid = sessionIdFromRequest(req, this.deps.settings);
    if (sid === null) return null;
    const key = sessionKey(this.deps.settings, sid);
    const text = await this.deps.redis.get(key);
    const session = text === null ? null : this.serializer.parse(text);
    if (session === null) {
      this.throttle.forget(sid);
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

  async readUser(req: IncomingMessage): Promise<SessionUser | null> {
    const session = await this.read(req);
    if (!session || typeof session.userId !== 'number' || typeof session.email !== 'string') return null;
    return { userId: session.userId, email: session.email, createdAt: session.createdAt };
  }
}
