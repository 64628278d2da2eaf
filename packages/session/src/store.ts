import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import type { Logger, RedisClient } from '@ncc/service-kit';
import type { SessionSerializer } from './data.js';

/** connect-redis' own callback type. */
type Callback = NonNullable<Parameters<RedisStore['all']>[0]>;

/** Sessions whose last refresh one process remembers; the least recently refreshed are forgotten first. */
const MAX_THROTTLE_ENTRIES = 50_000;

/** Remembers when each session's TTL was last refreshed here, so the refresh happens once per interval. */
export class TouchThrottle {
  private readonly last = new Map<string, number>();
  constructor(private readonly intervalMs: number) {}

  /** True when the caller should refresh now (and records that it did). */
  due(sid: string, now = Date.now()): boolean {
    if (this.intervalMs <= 0) return true;
    const previous = this.last.get(sid);
    if (previous !== undefined && now - previous < this.intervalMs) return false;
    this.last.delete(sid);
    this.last.set(sid, now);
    if (this.last.size > MAX_THROTTLE_ENTRIES) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    return true;
  }

  forget(sid: string): void {
    this.last.delete(sid);
  }
}

export interface NccStoreOptions {
  client: RedisClient;
  prefix: string;
  /** The key's idle TTL for a session (connect-redis calls it on every write and touch). */
  ttlSeconds: (sess: SessionData) => number;
  serializer: SessionSerializer;
  touchIntervalSeconds: number;
  logger: Logger;
  /** Called after a successful (throttled) TTL refresh, e.g. to record "last seen" in the user's session index. */
  onTouch?: (sid: string, sess: SessionData) => void;
}

/**
 * connect-redis 8.1 (the last line that accepts ioredis) with three changes (a Redis error reaches
 * express-session as an error, which the error handler answers with 503 — never "no session"):
 *  - express-session touches (EXPIRE) after every request; here at most once per interval per session;
 *    a failed touch is logged, never fails a response that is already on its way;
 *  - a regenerate whose delete failed leaves no half-made session behind (see regenerate);
 *  - all/ids/length/clear are refused: they SCAN and MGET, which break on Redis Cluster.
 */
export class NccRedisStore extends RedisStore {
  private readonly throttle: TouchThrottle;
  private readonly log: Logger;
  private readonly onTouch: ((sid: string, sess: SessionData) => void) | undefined;

  constructor(options: NccStoreOptions) {
    super({
      client: options.client,
      prefix: options.prefix,
      ttl: options.ttlSeconds,
      serializer: options.serializer as unknown as { parse(s: string): SessionData; stringify(s: SessionData): string },
    });
    this.throttle = new TouchThrottle(options.touchIntervalSeconds * 1000);
    this.log = options.logger;
    this.onTouch = options.onTouch;
  }

  override async set(sid: string, sess: SessionData, cb?: Callback): Promise<unknown> {
    this.throttle.due(sid);
    return super.set(sid, sess, cb);
  }

  override async destroy(sid: string, cb?: Callback): Promise<unknown> {
    this.throttle.forget(sid);
    return super.destroy(sid, cb);
  }

  /**
   * express-session's Store.regenerate makes the new session even when deleting the old one failed;
   * the new id then counts as "modified", so the error response carried a Set-Cookie and waited for
   * (or failed) a second write of an empty session. On a failed delete keep the old session object:
   * nothing is saved, no cookie is sent, and the 503 goes out at once.
   */
  override regenerate(req: Parameters<RedisStore['regenerate']>[0], fn: (err?: unknown) => void): void {
    void this.destroy(req.sessionID, (err?: unknown) => {
      if (err) {
        fn(err);
        return;
      }
      // express-session attaches generate() to its store at start-up (not in the Store typings).
      (this as unknown as { generate(r: typeof req): void }).generate(req);
      fn();
    });
  }

  override async touch(sid: string, sess: SessionData, cb?: Callback): Promise<unknown> {
    if (!this.throttle.due(sid)) {
      cb?.();
      return undefined;
    }
    return super.touch(sid, sess, (err) => {
      if (err) {
        this.throttle.forget(sid);
        this.log.warn('Could not refresh a session TTL.', { error: err instanceof Error ? err.message : 'unknown error' });
      } else {
        this.onTouch?.(sid, sess);
      }
      cb?.();
    });
  }

  override all(cb?: Callback): Promise<unknown> {
    return refuse('all', cb);
  }
  override ids(cb?: Callback): Promise<unknown> {
    return refuse('ids', cb);
  }
  override length(cb?: Callback): Promise<unknown> {
    return refuse('length', cb);
  }
  override clear(cb?: Callback): Promise<unknown> {
    return refuse('clear', cb);
  }
}

function refuse(name: string, cb?: Callback): Promise<undefined> {
  const err = new Error(`Session store ${name}() is disabled: it scans every key, which breaks on Redis Cluster.`);
  if (!cb) return Promise.reject(err);
  cb(err);
  return Promise.resolve(undefined);
}
