/**
 * GET /api/checkins/live (server-sent events) over real HTTP, with auth and the receiver in this
 * process on a spawned redis-server, each stream read with fetch as a browser's EventSource reads it:
 * every subscriber gets each new checkin; one blocked reader in Redis however many watch, none once
 * they have gone; the session checked at every heartbeat; the subscriber cap; Redis killed and back;
 * and shutdown ending the open streams instead of waiting for them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CHECKIN_STREAM } from '@ncc/checkins';
import { closeRedis, ConfigError, createRedisClient, loadConfig, type RunningServer, ServiceMetrics, startServer, waitForRedis } from '@ncc/service-kit';
import { captureLogs, metricValue, parseMetrics, type SpawnedRedis, until } from '@ncc/testing';
import { checkin, DEMO, login, type Stack, type StartedService, startStack, TEST_SECRET } from '../../../test/support/services.js';
import { type CheckinApp, createCheckinApp } from '../src/app.js';
import { checkinEnvSchema } from '../src/config.js';

const OTHER = { id: 78, email: 'other.user@example.com', password: 'other-secret-1' };

/** One server-sent event (or comment) as a client parses it, and when it arrived. */
interface Frame {
  event?: string;
  id?: string;
  data?: string;
  retry?: string;
  comment?: string;
  at: number;
}

interface LiveStream {
  res: Response;
  frames: Frame[];
  /** True once the server has ended the stream (or it was closed here). */
  ended(): boolean;
  /** The next `event: <name>` after the one `next` returned last. */
  next(name: string, timeoutMs?: number): Promise<Frame>;
  /** What a closed tab does: drop the connection. */
  close(): void;
}

function parseFrame(text: string): Frame {
  const frame: Frame = { at: performance.now() };
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      frame.comment = line.slice(1).trim();
      continue;
    }
    const colon = line.indexOf(':');
    const name = line.slice(0, colon) as 'event' | 'id' | 'data' | 'retry';
    frame[name] = line.slice(colon + 1).replace(/^ /, '');
  }
  return frame;
}

let stack: Stack | undefined;
const opened: LiveStream[] = [];
afterEach(async () => {
  // Closed first: an open stream would hold the services' HTTP drain for its whole timeout.
  for (const stream of opened.splice(0)) stream.close();
  await stack?.close();
  stack = undefined;
});

async function openLive(url: string, cookie?: string): Promise<LiveStream> {
  const controller = new AbortController();
  const res = await fetch(`${url}/api/checkins/live`, { headers: cookie ? { cookie } : {}, signal: controller.signal });
  const frames: Frame[] = [];
  let ended = res.status !== 200;
  if (!ended && res.body) {
    const body = res.body;
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of body) {
          buffer += decoder.decode(chunk, { stream: true });
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            frames.push(parseFrame(buffer.slice(0, end)));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // Aborted here.
      } finally {
        ended = true;
      }
    })();
  }
  let cursor = 0;
  const stream: LiveStream = {
    res,
    frames,
    ended: () => ended,
    next: (name, timeoutMs = 5000) =>
      until(
        `event: ${name}`,
        timeoutMs,
        () => {
          const index = frames.findIndex((frame, i) => i >= cursor && frame.event === name);
          if (index < 0) return undefined;
          cursor = index + 1;
          return frames[index];
        },
        10,
      ),
    close: () => controller.abort(),
  };
  opened.push(stream);
  return stream;
}

/** The connections whose last command was XREAD, and how many of them are blocked in it now (CLIENT LIST flag b). */
async function xreaders(redis: SpawnedRedis): Promise<{ connections: number; blocked: number }> {
  const lines = String(await redis.client.call('CLIENT', 'LIST'))
    .split('\n')
    .filter((line) => / cmd=xread( |$)/.test(line));
  return { connections: lines.length, blocked: lines.filter((line) => /(^| )flags=\S*b/.test(line)).length };
}

async function subscribers(service: StartedService): Promise<number> {
  return metricValue(parseMetrics((await service.metrics.scrape()).body), 'ncc_live_subscribers');
}

/** A checkin that must be accepted; its stream entry id. */
async function accepted(url: string, body: { userId: number; locationId: number; starRating: number }, cookie?: string): Promise<string> {
  const res = await checkin(url, body, cookie);
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe('live checkins (GET /api/checkins/live)', () => {
  it('when two signed-in users watch and one checks in, then both streams get that checkin within 2 s with the exact data, and an invalid entry is skipped', async () => {
    stack = await startStack({ users: [DEMO, OTHER], rounds: 4 });
    const [demo, other] = await Promise.all([login(stack.auth.url), login(stack.auth.url, OTHER.email, OTHER.password)]);
    const streams = await Promise.all([openLive(stack.checkin.url, demo), openLive(stack.checkin.url, other)]);
    for (const { res, frames } of streams) {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-accel-buffering')).toBe('no');
      await until('the retry field', 2000, () => frames.length > 0);
      expect(frames[0]).toMatchObject({ retry: '2000' });
    }
    // Written by something else than the receiver: not a checkin, so no event.
    const invalid = await stack.redis.client.xadd(CHECKIN_STREAM, '*', 'userId', 'x', 'locationId', '5');
    const sent = performance.now();
    const id = await accepted(stack.checkin.url, { userId: DEMO.id, locationId: 31, starRating: 4 }, demo);
    const [entry] = (await stack.redis.client.xrange(CHECKIN_STREAM, id, id)) as [[string, string[]]];
    const receivedAt = Number(entry[1][7]);
    for (const stream of streams) {
      const event = await stream.next('checkin');
      expect(event.at - sent).toBeLessThan(2000);
      expect(event.id).toBe(id);
      // Exactly these fields in this order, numbers as JSON numbers.
      expect(event.data).toBe(JSON.stringify({ id, userId: DEMO.id, locationId: 31, starRating: 4, receivedAt }));
      expect(stream.frames.filter((f) => f.event === 'checkin').map((f) => f.id)).toEqual([id]);
      expect(stream.frames.some((f) => f.id === invalid)).toBe(false);
    }
    // Everyone's checkins: the other user's too, on both streams.
    const second = await accepted(stack.checkin.url, { userId: OTHER.id, locationId: 32, starRating: 1 }, other);
    for (const stream of streams) expect((await stream.next('checkin')).id).toBe(second);
  });

  it('when many watch, then Redis has exactly one XREAD connection, blocked, and none blocked once every stream has closed; a new viewer starts it again', async () => {
    stack = await startStack({ users: [DEMO, OTHER], rounds: 4 });
    const [demo, other] = await Promise.all([login(stack.auth.url), login(stack.auth.url, OTHER.email, OTHER.password)]);
    const checkinSvc = stack.checkin;
    const streams = await Promise.all(Array.from({ length: 6 }, (_, i) => openLive(checkinSvc.url, i % 2 === 0 ? demo : other)));
    expect(streams.map((s) => s.res.status)).toEqual([200, 200, 200, 200, 200, 200]);
    await until('one blocked reader', 5000, async () => (await xreaders(stack!.redis)).blocked === 1);
    expect(await subscribers(checkinSvc)).toBe(6);
    // Sampled across several blocking reads (LIVE_BLOCK_MS, 500 ms): never a second connection.
    for (let sample = 0; sample < 10; sample++) {
      const { connections, blocked } = await xreaders(stack.redis);
      expect(connections).toBe(1);
      expect(blocked).toBeLessThanOrEqual(1);
      await accepted(checkinSvc.url, { userId: DEMO.id, locationId: 100 + sample, starRating: 3 }, demo);
    }
    for (const stream of streams) {
      await until('all ten checkins on every stream', 5000, () => stream.frames.filter((f) => f.event === 'checkin').length === 10);
    }

    for (const stream of streams) stream.close();
    await until('no subscriber left', 5000, async () => (await subscribers(checkinSvc)) === 0);
    await until('no blocked reader', 5000, async () => (await xreaders(stack!.redis)).blocked === 0);
    // Still one connection (kept for the next viewer), idle.
    expect(await xreaders(stack.redis)).toEqual({ connections: 1, blocked: 0 });

    const again = await openLive(checkinSvc.url, demo);
    await until('reading again', 5000, async () => (await xreaders(stack!.redis)).blocked === 1);
    const id = await accepted(checkinSvc.url, { userId: DEMO.id, locationId: 120, starRating: 5 }, demo);
    expect((await again.next('checkin')).id).toBe(id);
  });

  it('when the request has no valid session, then 401 JSON and no reader is started', async () => {
    stack = await startStack({ rounds: 4 });
    for (const cookie of [undefined, 'checkinapp=s%3Aforged.signature']) {
      const { res } = await openLive(stack.checkin.url, cookie);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({
        error: { code: 'UNAUTHENTICATED', message: 'Authentication required.', requestId: res.headers.get('x-request-id') },
      });
    }
    // A valid-looking but unknown session: 401 as well.
    const cookie = await login(stack.auth.url);
    await stack.redis.client.flushdb();
    expect((await openLive(stack.checkin.url, cookie)).res.status).toBe(401);
    expect(await xreaders(stack.redis)).toEqual({ connections: 0, blocked: 0 });
    expect(await subscribers(stack.checkin)).toBe(0);
  });

  it('when CHECKIN_AUTH=off, then anyone may watch, and a `: ping` comes every LIVE_HEARTBEAT_MS', async () => {
    stack = await startStack({ rounds: 4, checkinEnv: { CHECKIN_AUTH: 'off', LIVE_HEARTBEAT_MS: '100' } });
    const stream = await openLive(stack.checkin.url);
    expect(stream.res.status).toBe(200);
    const pings = await until('three pings', 5000, () => {
      const found = stream.frames.filter((f) => f.comment === 'ping');
      return found.length >= 3 && found;
    });
    // Roughly LIVE_HEARTBEAT_MS apart (timers on a busy machine run late, never early).
    expect(pings[2]!.at - pings[0]!.at).toBeGreaterThanOrEqual(150);
    const id = await accepted(stack.checkin.url, { userId: 5, locationId: 7, starRating: 2 });
    expect(JSON.parse((await stream.next('checkin')).data!)).toMatchObject({ id, userId: 5, locationId: 7, starRating: 2 });
    expect(stream.ended()).toBe(false);
    // HEAD gets the headers and an end, not a subscription.
    const head = await fetch(`${stack.checkin.url}/api/checkins/live`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(await subscribers(stack.checkin)).toBe(1);
  });

  it('when LIVE_MAX_SUBSCRIBERS streams are open, then one more gets 503 JSON with Retry-After, and a closed tab frees its place at once', async () => {
    stack = await startStack({ rounds: 4, checkinEnv: { LIVE_MAX_SUBSCRIBERS: '2' } });
    const cookie = await login(stack.auth.url);
    const [first] = await Promise.all([openLive(stack.checkin.url, cookie), openLive(stack.checkin.url, cookie)]);
    const refused = await openLive(stack.checkin.url, cookie);
    expect(refused.res.status).toBe(503);
    expect(refused.res.headers.get('retry-after')).toBe('5');
    expect(await refused.res.json()).toEqual({
      error: {
        code: 'LIVE_FULL',
        message: 'Too many live views are open on this server. Please retry shortly.',
        requestId: refused.res.headers.get('x-request-id'),
      },
    });
    expect(stack.checkin.logs.find(/LIVE_MAX_SUBSCRIBERS/)).toHaveLength(1);

    first.close();
    await until('the closed stream released', 2000, async () => (await subscribers(stack!.checkin)) === 1);
    expect((await openLive(stack.checkin.url, cookie)).res.status).toBe(200);
  });

  it('when Redis is killed, then open streams get `unavailable` (a new one at once), stay open through failing session checks, and get `available` and new checkins once Redis is back', async () => {
    stack = await startStack({ rounds: 4, redis: { appendOnly: true }, checkinEnv: { LIVE_HEARTBEAT_MS: '200' } });
    const cookie = await login(stack.auth.url);
    // A second receiver without authentication: a new stream can be opened while Redis is down there.
    const open = await stack.start('checkin', { CHECKIN_AUTH: 'off' });
    const watched = await openLive(stack.checkin.url, cookie);
    const before = await openLive(open.url);
    await until('both readers blocked', 5000, async () => (await xreaders(stack!.redis)).blocked === 2);

    await stack.redis.kill();
    await watched.next('unavailable');
    await before.next('unavailable');
    const during = await openLive(open.url);
    expect(during.res.status).toBe(200);
    await until('the retry field and `unavailable`', 1000, () => during.frames.length >= 2);
    expect(during.frames.slice(0, 2).map((f) => f.retry ?? f.event)).toEqual(['2000', 'unavailable']);
    // Several heartbeats whose session check Redis could not answer: the stream stays.
    const unavailableAt = watched.frames.find((f) => f.event === 'unavailable')!.at;
    await until('three heartbeats during the outage', 5000, () => watched.frames.filter((f) => f.comment === 'ping' && f.at > unavailableAt).length >= 3);

    await stack.redis.restart();
    for (const stream of [watched, before, during]) await stream.next('available', 10_000);
    const id = await until('a checkin accepted again', 10_000, async () => {
      const res = await checkin(stack!.checkin.url, { userId: DEMO.id, locationId: 77, starRating: 5 }, cookie);
      return res.status === 202 && ((await res.json()) as { id: string }).id;
    });
    for (const stream of [watched, before, during]) expect((await stream.next('checkin')).id).toBe(id);
    expect(watched.frames.some((f) => f.event === 'unauthenticated')).toBe(false);
    expect(watched.ended()).toBe(false);
    const paused = stack.checkin.logs.find('Redis did not answer; live checkins pause and retry.');
    expect(paused.length).toBeGreaterThanOrEqual(1);
    expect(stack.checkin.logs.find('Redis answers again; live checkins resume.')).toHaveLength(1);
    // The one reader belongs to no request: not to the one whose subscriber happened to start it.
    expect(paused[0]!['requestId']).toBeUndefined();
  });

  it("when the user logs out everywhere, then each of their open streams gets `unauthenticated` and ends, and another user's stream goes on", async () => {
    stack = await startStack({ users: [DEMO, OTHER], rounds: 4, checkinEnv: { LIVE_HEARTBEAT_MS: '150' } });
    const [phone, laptop, other] = await Promise.all([login(stack.auth.url), login(stack.auth.url), login(stack.auth.url, OTHER.email, OTHER.password)]);
    const streams = await Promise.all([openLive(stack.checkin.url, phone), openLive(stack.checkin.url, laptop), openLive(stack.checkin.url, other)]);
    const [onPhone, onLaptop, onOther] = streams;
    // Heartbeats pass while the sessions exist.
    await until('a heartbeat on each', 5000, () => streams.every((s) => s.frames.some((f) => f.comment === 'ping')));

    const res = await fetch(`${stack.auth.url}/logout-all`, { method: 'POST', headers: { cookie: phone } });
    expect(res.status).toBe(200);
    const loggedOut = performance.now();
    for (const stream of [onPhone, onLaptop]) {
      const event = await stream.next('unauthenticated');
      expect(event.data).toBe('{}');
      // Within a heartbeat and its session read (generous on a busy machine).
      expect(event.at - loggedOut).toBeLessThan(1500);
      await until('the stream ended', 2000, () => stream.ended());
    }
    await until('only one subscriber left', 2000, async () => (await subscribers(stack!.checkin)) === 1);
    const id = await accepted(stack.checkin.url, { userId: OTHER.id, locationId: 9, starRating: 3 }, other);
    expect((await onOther.next('checkin')).id).toBe(id);
    expect(onPhone.frames.some((f) => f.event === 'checkin')).toBe(false);
    expect(onOther.ended()).toBe(false);
  });
});

describe('live checkins and shutdown', () => {
  /** The receiver as runService makes it (no stack: the test drives close() and the drain itself). */
  async function startReceiver(redisUrl: string): Promise<{ app: CheckinApp; server: RunningServer; close(): Promise<void> }> {
    const config = loadConfig(checkinEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', REDIS_URL: redisUrl });
    const { logger } = captureLogs('checkin');
    const redis = createRedisClient(config, logger);
    await waitForRedis(redis, 5000);
    const app = await createCheckinApp({ config, logger, redis, metrics: new ServiceMetrics(true) });
    const server = await startServer(app.app, 0, '127.0.0.1', config);
    return {
      app,
      server,
      close: async () => {
        await server.close(1000);
        await app.close();
        await closeRedis(redis);
      },
    };
  }

  it("when the app's close() is called, then its open streams end at once, the reader stops, and a new stream is refused with 503", async () => {
    stack = await startStack({ rounds: 4 });
    const cookie = await login(stack.auth.url);
    const receiver = await startReceiver(stack.redis.url);
    try {
      const streams = await Promise.all([openLive(receiver.server.url, cookie), openLive(receiver.server.url, cookie)]);
      await until('the reader blocked', 5000, async () => (await xreaders(stack!.redis)).blocked === 1);

      const started = performance.now();
      const closing = receiver.app.close();
      await until('both streams ended', 2000, () => streams.every((s) => s.ended()), 5);
      expect(performance.now() - started).toBeLessThan(500);
      await closing;
      // At most one blocking read (LIVE_BLOCK_MS, 500 ms) to finish.
      expect(performance.now() - started).toBeLessThan(1500);
      expect((await xreaders(stack.redis)).blocked).toBe(0);
      const late = await openLive(receiver.server.url, cookie);
      expect(late.res.status).toBe(503);
      expect(await late.res.json()).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE' } });
    } finally {
      await receiver.close();
    }
  });

  it('when shutdown begins (beginShutdown, right after the server stops accepting), then the HTTP drain does not wait for open streams', async () => {
    stack = await startStack({ rounds: 4 });
    const cookie = await login(stack.auth.url);
    const receiver = await startReceiver(stack.redis.url);
    try {
      const streams = await Promise.all([openLive(receiver.server.url, cookie), openLive(receiver.server.url, cookie)]);
      await until('both subscribed', 5000, () => receiver.app.live.size === 2);

      // runService's order with the hook: stop accepting, end the streams, drain, close().
      const started = performance.now();
      const drained = receiver.server.close(10_000);
      receiver.app.beginShutdown();
      await drained;
      expect(performance.now() - started).toBeLessThan(1000);
      await until('both streams ended', 1000, () => streams.every((s) => s.ended()), 5);
    } finally {
      await receiver.close();
    }
  });
});

describe('live checkins configuration', () => {
  it('when nothing is set, then a heartbeat every 15 s, a 500 ms blocking read and at most 1,000 streams', () => {
    expect(loadConfig(checkinEnvSchema, {})).toMatchObject({ LIVE_HEARTBEAT_MS: 15_000, LIVE_BLOCK_MS: 500, LIVE_MAX_SUBSCRIBERS: 1_000 });
  });

  it('when LIVE_BLOCK_MS is not below REDIS_COMMAND_TIMEOUT_MS, then the configuration is refused naming LIVE_BLOCK_MS', () => {
    expect(() => loadConfig(checkinEnvSchema, { LIVE_BLOCK_MS: '1000' })).toThrow(ConfigError);
    expect(() => loadConfig(checkinEnvSchema, { LIVE_BLOCK_MS: '1000' })).toThrow(
      'LIVE_BLOCK_MS: must be shorter than REDIS_COMMAND_TIMEOUT_MS (1000 >= 1000): a blocking read would time out',
    );
    expect(loadConfig(checkinEnvSchema, { LIVE_BLOCK_MS: '1000', REDIS_COMMAND_TIMEOUT_MS: '2000' }).LIVE_BLOCK_MS).toBe(1000);
  });
});
