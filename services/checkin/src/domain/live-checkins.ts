import { AsyncResource } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHECKIN_STREAM, parseEntry } from '@ncc/checkins';
import { AppError, httpErrors, isRedisUnavailable, type Logger, reconnectDelay } from '@ncc/service-kit';
import type { LiveStreamReader, StreamEntry } from '../data-access/live-reader.js';

/** An accepted checkin as the live view shows it: the stream entry id and the entry's four fields, as numbers. */
export interface LiveCheckin {
  id: string;
  userId: number;
  locationId: number;
  starRating: number;
  receivedAt: number;
}

/**
 * What a subscriber is told: a new checkin; the reader cannot read from Redis / reads again; a
 * heartbeat (keeps proxies from closing an idle stream); the viewer's session is gone (the last event
 * before its stream ends).
 */
export type LiveEvent =
  { type: 'checkin'; checkin: LiveCheckin } | { type: 'unavailable' } | { type: 'available' } | { type: 'heartbeat' } | { type: 'unauthenticated' };

/** One open live view, as the route makes it from its response (the hub knows nothing of HTTP). */
export interface LiveSubscriber {
  /** Writes one event; a stream that has ended or whose client has gone drops it. */
  send(event: LiveEvent): void;
  /** Ends the stream (after `unauthenticated`, or at shutdown). */
  end(): void;
  /** Whether the viewer's session still exists; rejects with Redis's error when that cannot be told now. */
  stillSignedIn(): Promise<boolean>;
}

export interface LiveSettings {
  heartbeatMs: number;
  blockMs: number;
  maxSubscribers: number;
}

/** Entries per XREAD: a burst reaches the browsers in batches of this many. */
const BATCH = 100;

/** LIVE_MAX_SUBSCRIBERS streams are open on this process: a client should retry (a load balancer may pick another replica). */
const tooManySubscribers = (): AppError =>
  new AppError(503, 'LIVE_FULL', 'Too many live views are open on this server. Please retry shortly.', { headers: { 'Retry-After': '5' } });

interface Subscription {
  subscriber: LiveSubscriber;
  heartbeat: NodeJS.Timeout;
  /** A session check is in flight: the next heartbeat does not start another. */
  checking: boolean;
}

/**
 * The live view of accepted checkins: ONE reader per process feeds every open stream, however many
 * browsers watch — never a blocking read per browser. While at least one subscriber is connected it
 * runs `XREAD BLOCK … COUNT 100 STREAMS ncc:checkins <lastId>`, where lastId starts at the stream's
 * newest entry when reading starts (`$`, kept as a concrete id so nothing appended between two reads is
 * missed); it stops reading when the last subscriber leaves.
 *
 * Best effort, not a record: the processor trims acknowledged entries (XTRIM MINID) right after
 * processing them, so an entry appended and trimmed between two of our reads is never seen here, and
 * a browser that reconnects sees only what arrives after it is back. The statistics API is the record.
 *
 * Redis failing: every subscriber gets `unavailable` (and a new one at once while it lasts), the
 * reader retries with the Redis client's backoff, and the first read that succeeds sends `available`.
 * Any other error in the loop is a programmer error: it rejects the loop's promise, which nobody
 * handles, so the process logs it and stops for a restart (as the processor's loop does).
 *
 * Every LIVE_HEARTBEAT_MS each stream gets a heartbeat and its viewer's session is read again: once it
 * is gone (logout, logout-all, revoked, expired) the stream gets `unauthenticated` and ends, so a
 * revoked session receives checkins for at most one heartbeat interval more.
 */
export class LiveCheckins {
  private readonly subscriptions = new Set<Subscription>();
  private available = true;
  private reading = false;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Cuts the backoff after a Redis error short at shutdown. */
  private readonly stopped = new AbortController();
  private lastFullWarning = 0;
  /**
   * Starts the loop in the async context the hub was made in, not in that of the request whose
   * subscriber happened to start it: its log lines would otherwise carry that request's id, and its
   * Redis spans would join that request's trace for as long as anyone watches.
   */
  private readonly startReading: () => void;

  constructor(
    private readonly reader: LiveStreamReader,
    private readonly settings: LiveSettings,
    private readonly logger: Logger,
  ) {
    this.startReading = AsyncResource.bind(() => {
      this.reading = true;
      this.loop = this.run();
    });
  }

  /** Open streams now (the ncc_live_subscribers gauge). */
  get size(): number {
    return this.subscriptions.size;
  }

  /**
   * Adds a subscriber and returns what releases it (idempotent: a closed tab, or the route ending it).
   * Throws before anything is written: 503 LIVE_FULL over LIVE_MAX_SUBSCRIBERS, 503 while shutting down.
   */
  subscribe(subscriber: LiveSubscriber): () => void {
    if (this.stopping) throw httpErrors.unavailable();
    if (this.subscriptions.size >= this.settings.maxSubscribers) {
      if (Date.now() - this.lastFullWarning > 10_000) {
        this.lastFullWarning = Date.now();
        this.logger.warn(`Live views refused with 503: ${this.settings.maxSubscribers} are open on this process (LIVE_MAX_SUBSCRIBERS).`);
      }
      throw tooManySubscribers();
    }
    const subscription: Subscription = {
      subscriber,
      checking: false,
      // Unref'd: an open stream keeps the server busy anyway; the timer alone must not keep a process alive.
      heartbeat: setInterval(() => this.heartbeat(subscription), this.settings.heartbeatMs).unref(),
    };
    this.subscriptions.add(subscription);
    if (!this.available) subscriber.send({ type: 'unavailable' });
    if (!this.reading) this.startReading();
    return () => this.remove(subscription);
  }

  /**
   * Shutdown has begun: end every stream now and accept no new one. Open streams never finish by
   * themselves, so the HTTP drain would otherwise wait SHUTDOWN_TIMEOUT_MS for them on every stop.
   */
  shutdown(): void {
    this.stopping = true;
    this.stopped.abort();
    for (const subscription of this.subscriptions) this.end(subscription);
  }

  /** shutdown(), then waits for the loop: at most one blocking read (LIVE_BLOCK_MS) away. */
  async close(): Promise<void> {
    this.shutdown();
    // A programmer error in the loop has been reported already (an unhandled rejection).
    await this.loop?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    let lastId: string | undefined;
    let failures = 0;
    let lastWarning = 0;
    this.logger.debug(`Live checkins: reading ${CHECKIN_STREAM} for ${this.subscriptions.size} subscriber(s).`);
    try {
      while (this.subscriptions.size > 0 && !this.stopping) {
        try {
          lastId ??= await this.reader.lastId();
          // After an error the read does not block: it answers at once, so `available` goes out as
          // soon as Redis does, not a blocking read later.
          const entries = await this.reader.readAfter(lastId, BATCH, failures > 0 ? undefined : this.settings.blockMs);
          if (failures > 0) this.logger.info('Redis answers again; live checkins resume.');
          failures = 0;
          this.setAvailable(true);
          for (const entry of entries) {
            lastId = entry.id;
            this.deliver(entry);
          }
        } catch (err) {
          if (!isRedisUnavailable(err)) throw err;
          failures++;
          this.setAvailable(false);
          if (failures === 1 || Date.now() - lastWarning > 10_000) {
            lastWarning = Date.now();
            this.logger.warn('Redis did not answer; live checkins pause and retry.', { error: err instanceof Error ? err.message : String(err) });
          }
          // The Redis client's own reconnect backoff: jittered, at most 2 s; cut short by shutdown.
          await sleep(reconnectDelay(failures), undefined, { signal: this.stopped.signal }).catch(() => undefined);
        }
      }
    } finally {
      // Set before the promise settles, so a subscriber arriving from now on starts a new loop.
      this.reading = false;
      // Nobody reads now, so nobody knows whether Redis answers: the next loop finds out.
      this.available = true;
      this.logger.debug(`Live checkins: stopped reading ${CHECKIN_STREAM}.`);
    }
  }

  /** An entry that is not a valid checkin is skipped here (the processor dead-letters it). */
  private deliver({ id, fields }: StreamEntry): void {
    const parsed = parseEntry(id, fields);
    if (!parsed.ok) {
      this.logger.debug(`Live checkins: skipping entry ${id}: ${parsed.reason}.`);
      return;
    }
    const { userId, locationId, starRating, receivedAt } = parsed.entry;
    this.broadcast({ type: 'checkin', checkin: { id, userId, locationId, starRating, receivedAt } });
  }

  private setAvailable(available: boolean): void {
    if (this.available === available) return;
    this.available = available;
    this.broadcast({ type: available ? 'available' : 'unavailable' });
  }

  private broadcast(event: LiveEvent): void {
    for (const { subscriber } of this.subscriptions) subscriber.send(event);
  }

  /**
   * The heartbeat, then the session check. A check Redis cannot answer keeps the stream and is made
   * again at the next heartbeat: revoking a session is itself a write to that Redis, so it cannot have
   * happened unseen meanwhile, and a viewer is not signed out for an outage. Any other failure is a
   * bug in the check: like a request error it ends only this stream (unverified, it must not go on
   * receiving), logged with its stack.
   */
  private heartbeat(subscription: Subscription): void {
    subscription.subscriber.send({ type: 'heartbeat' });
    if (subscription.checking) return;
    subscription.checking = true;
    subscription.subscriber.stillSignedIn().then(
      (signedIn) => {
        subscription.checking = false;
        if (signedIn || !this.subscriptions.has(subscription)) return;
        this.logger.debug('Live checkins: the session is gone; ending its stream.');
        subscription.subscriber.send({ type: 'unauthenticated' });
        this.end(subscription);
      },
      (err: unknown) => {
        subscription.checking = false;
        if (isRedisUnavailable(err)) {
          this.logger.debug('Live checkins: the session could not be checked; checking again at the next heartbeat.', {
            error: err instanceof Error ? err.message : String(err),
          });
          return;
        }
        this.logger.error('Live checkins: the session check failed; ending the stream.', {
          error: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
        });
        this.end(subscription);
      },
    );
  }

  private end(subscription: Subscription): void {
    this.remove(subscription);
    subscription.subscriber.end();
  }

  private remove(subscription: Subscription): void {
    if (!this.subscriptions.delete(subscription)) return;
    clearInterval(subscription.heartbeat);
  }
}
