/**
 * `pnpm start` end to end, as a newcomer runs it: the real script as a child process, real services,
 * a real redis-server (one spawned here, or the one the script starts itself), real signals.
 * Never the shared Redis on 6379: REDIS_URL always points at a spawned Redis or at a port where nothing listens.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, freePort, metricValue, postJson, scrape, sleep, spawnRedis, type SpawnedRedis, until } from '@ncc/testing';
import { checkin, createUsers, DEMO, login } from './support/services.js';
import { runStart, stopStartRuns } from './support/start.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The pids the script reports, e.g. "auth started (pid 123)". */
function reportedPid(output: string, name: string): number {
  const match = new RegExp(`${name} started \\(pid (\\d+)\\)`).exec(output);
  if (!match) throw new Error(`no pid for ${name} in:\n${output}`);
  return Number(match[1]);
}

async function pingAnswers(port: number): Promise<boolean> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 500,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** GET with the session cookie: the status and the JSON body (the stats, or the JSON error). */
async function getJson(url: string, cookie: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: { cookie }, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Entries ever added to ncc:checkins: unlike XLEN, not lowered when the processor trims what it has acknowledged. */
async function entriesAdded(client: Redis): Promise<number> {
  if ((await client.exists('ncc:checkins')) === 0) return 0;
  const info = (await client.xinfo('STREAM', 'ncc:checkins')) as unknown[];
  return Number(info[info.indexOf('entries-added') + 1]);
}

/** The stream entry id's time part: what the processor stores as the user's lastCheckin. */
const entryTime = (id: string): number => Number(id.split('-')[0]);

/** A port on which nothing listens: REDIS_URL for "no Redis answers here". */
async function deadRedisUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

describe('pnpm start', () => {
  let redis: SpawnedRedis;
  const dirs: string[] = [];

  beforeAll(async () => {
    redis = await spawnRedis();
    // User 77 exists: the start script must take the quick path and not re-seed.
    await createUsers(redis.url, [DEMO]);
  });

  afterEach(() => {
    // A failed test must not leave a start script (and its children) running.
    stopStartRuns();
  });

  afterAll(async () => {
    await redis?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('when REDIS_URL answers, then it uses that Redis, serves login → checkin → logout, the processor counts the checkin (read API and Redis), and on SIGINT it stops the services and the gateway but not that Redis', async () => {
    const run = await runStart({
      REDIS_URL: redis.url,
      NCC_REDIS_PORT: String(await freePort()),
      AUTH_METRICS_PORT: String(await freePort()),
      CHECKIN_METRICS_PORT: String(await freePort()),
      PROCESSOR_METRICS_PORT: String(await freePort()),
    });
    await run.ready();

    const output = run.output();
    expect(output).toContain(`Using the Redis that answers at ${redis.url}`);
    expect(output).toContain('Demo users already there (user 77 exists): not seeding.');
    expect(output).not.toContain('redis-server started');
    expect(output).toMatch(/^\[auth\] +.*Authentication service listening on port/m);
    expect(output).toMatch(/^\[checkin\] +.*Checkin receiver listening on port/m);
    expect(output).toMatch(/^\[processor\] .*Checkin processor listening on port \d+ \(health and readiness only\)\./m);
    expect(output).toContain(`, processor ${run.processorUrl.replace('127.0.0.1', 'localhost')} (health only), gateway `);
    expect(output).toContain('postman/ncc.postman_collection.json');
    const checkinShown = run.checkinUrl.replace('127.0.0.1', 'localhost');
    expect(output).toContain(`${run.authUrl.replace('127.0.0.1', 'localhost')}/login`);
    // The next steps show where to watch the stats change: the read API with the cookie jar, and Redis.
    expect(output).toContain(`curl -b cookies.txt ${checkinShown}/api/users/${DEMO.id}/stats`);
    expect(output).toContain(`curl -b cookies.txt ${checkinShown}/api/locations/1/stats`);
    expect(output).toContain(`hgetall ncc:user:${DEMO.id}`);
    expect(output).toContain('hgetall ncc:location:1');
    // Each service's metrics on its own port, all three named; they answer with the services' counters.
    const metrics = /Metrics: auth (\S+)\s+checkin (\S+)\s+processor (\S+)/.exec(output);
    expect(metrics, 'the Metrics line').not.toBeNull();
    const [authMetrics, checkinMetrics, processorMetrics] = metrics!.slice(1).map((u) => u.replace('localhost', '127.0.0.1'));
    expect(metricValue(await scrape(authMetrics!), 'ncc_logins_total', { outcome: 'succeeded' })).toBe(0);
    expect(metricValue(await scrape(checkinMetrics!), 'ncc_redis_up')).toBe(1);
    expect(metricValue(await scrape(processorMetrics!), 'ncc_processor_lag_entries')).toBeGreaterThanOrEqual(0);
    const processes = run.descendants();
    expect(processes).toEqual(['auth', 'checkin', 'processor', 'gateway'].map((n) => reportedPid(output, n)).sort((a, b) => a - b));
    expect((await fetch(`${run.processorUrl}/readyz`)).status).toBe(200);

    const cookie = await login(run.authUrl);
    const userStatsUrl = `${run.checkinUrl}/api/users/${DEMO.id}/stats`;
    const locationStatsUrl = `${run.checkinUrl}/api/locations/501/stats`;
    const before = await getJson(userStatsUrl, cookie);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ userId: DEMO.id, numCheckins: expect.any(Number) });
    expect((await getJson(locationStatsUrl, cookie)).status).toBe(404); // nobody has checked in there yet
    const count = before.body['numCheckins'] as number;

    const accepted = await checkin(run.checkinUrl, { userId: DEMO.id, locationId: 501, starRating: 4 }, cookie);
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    expect(id).toMatch(/^\d+-\d+$/);
    expect(await entriesAdded(redis.client)).toBe(1);

    // Processing is asynchronous: poll until the processor has counted it, then both views agree.
    const userStats = await until('the user stats counting the checkin', 15_000, async () => {
      const res = await getJson(userStatsUrl, cookie);
      return res.status === 200 && res.body['numCheckins'] === count + 1 && res.body;
    });
    expect(userStats).toEqual({ userId: DEMO.id, numCheckins: count + 1, lastCheckin: entryTime(id), lastSeenAt: 501 });
    const locationStats = await until('the location stats', 15_000, async () => {
      const res = await getJson(locationStatsUrl, cookie);
      return res.status === 200 && res.body;
    });
    expect(locationStats).toEqual({ locationId: 501, numCheckins: 1, numStars: 4, averageStars: 4 });
    expect(await redis.client.hgetall(`ncc:user:${DEMO.id}`)).toMatchObject({
      email: DEMO.email,
      numCheckins: String(count + 1),
      lastCheckin: String(entryTime(id)),
      lastSeenAt: '501',
    });
    expect(await redis.client.hgetall('ncc:location:501')).toMatchObject({ numCheckins: '1', numStars: '4', averageStars: '4' });
    const logout = await postJson(`${run.authUrl}/logout`, {}, { cookie });
    expect(logout.status).toBe(200);
    expect(await logout.json()).toEqual({ status: 'OK' });
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);

    expect(await run.signal('SIGINT')).toBe(0);
    for (const pid of processes) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(run.output()).toContain('SIGINT received: stopping auth, checkin, gateway, processor…');
    for (const name of ['auth', 'checkin', 'processor', 'gateway']) expect(run.output()).toMatch(new RegExp(`^\\[${name}\\] .*Shutdown complete\\.`, 'm'));
    // Not started here, so not stopped here.
    expect(await redis.client.ping()).toBe('PONG');
    expect(await redis.client.exists(`ncc:user:${DEMO.id}`)).toBe(1);
  });

  it('when it is ready, then the gateway on GATEWAY_PORT serves the page and both APIs on one origin: it names the URL to open, a same-origin login → checkin → stats works through it, and a killed gateway is restarted', async () => {
    const run = await runStart({ REDIS_URL: redis.url, NCC_REDIS_PORT: String(await freePort()) });
    await run.ready();
    const output = run.output();
    const shownUrl = run.gatewayUrl.replace('127.0.0.1', 'localhost');
    expect(output).toContain(`, gateway ${shownUrl} (the page, auth and checkin on one origin).`);
    expect(output).toContain(`Open ${shownUrl} in a browser`);
    expect(output).toMatch(/^\[gateway\] +.*Gateway listening on port \d+\./m);
    // Started once the services were ready, so the page finds them behind it.
    expect(output.indexOf('gateway started')).toBeGreaterThan(output.search(/^\[checkin\] .*Checkin receiver listening/m));

    const page = await fetch(`${run.gatewayUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");

    // What the page's fetch sends: its own origin, which is the services' own behind the gateway (no ALLOWED_ORIGINS).
    const sameOrigin = { origin: run.gatewayUrl, 'sec-fetch-site': 'same-origin' };
    const login = await postJson(`${run.gatewayUrl}/login`, { email: DEMO.email, password: DEMO.password }, sameOrigin);
    expect(login.status).toBe(200);
    const cookie = cookiePair(login, 'checkinapp')!;
    const accepted = await postJson(`${run.gatewayUrl}/api/checkin`, { userId: DEMO.id, locationId: 551, starRating: 3 }, { cookie, ...sameOrigin });
    expect(accepted.status).toBe(202);
    const stats = await until('the checkin counted, read through the gateway', 15_000, async () => {
      const res = await getJson(`${run.gatewayUrl}/api/locations/551/stats`, cookie);
      return res.status === 200 && res.body;
    });
    expect(stats).toEqual({ locationId: 551, numCheckins: 1, numStars: 3, averageStars: 3 });
    // One session: the same cookie works on auth's own port (Postman, curl).
    expect((await fetch(`${run.authUrl}/me`, { headers: { cookie } })).status).toBe(200);

    // Supervised like the services: killed, it is started again on the same port.
    process.kill(reportedPid(output, 'gateway'), 'SIGKILL');
    await until('"gateway is ready again."', 15_000, () => run.output().includes('gateway is ready again.'));
    expect(run.output()).toContain('gateway was killed by SIGKILL; restarting in 0.5 s (attempt 1 of 5).');
    expect((await fetch(`${run.gatewayUrl}/me`, { headers: { cookie } })).status).toBe(200);

    expect(await run.signal('SIGTERM')).toBe(0);
    expect(run.output()).toContain('SIGTERM received: stopping auth, checkin, gateway, processor…');
    expect(run.output()).toMatch(/^\[gateway\] .*Shutdown complete\./m);
  });

  it('when no Redis answers but redis-server is on PATH, then it starts one with append-only data, seeds, and after SIGINT and a restart on the same data the old session still works', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ncc-start-'));
    dirs.push(dataDir);
    const redisPort = await freePort();
    // Three users instead of the 120 demo users: the same seed code, without 30 s of bcrypt on a busy machine.
    const seedFile = join(dataDir, 'users.json');
    const users = [DEMO, { ...DEMO, id: 78, email: 'second@example.com' }, { ...DEMO, id: 79, email: 'third@example.com' }];
    writeFileSync(seedFile, JSON.stringify({ users }));
    const env = { REDIS_URL: await deadRedisUrl(), NCC_REDIS_PORT: String(redisPort), NCC_DATA_DIR: join(dataDir, 'redis'), NCC_SEED_FILE: seedFile };

    const first = await runStart(env);
    await first.ready();
    let output = first.output();
    expect(output).toContain(`Starting redis-server on port ${redisPort}`);
    expect(output).toMatch(/Seeded demo users in [\d.]+ s: 3 created, 0 already there\./);
    const processes = first.descendants();
    expect(processes).toEqual(['redis-server', 'auth', 'checkin', 'processor', 'gateway'].map((n) => reportedPid(output, n)).sort((a, b) => a - b));

    const kept = await login(first.authUrl);
    expect((await checkin(first.checkinUrl, { userId: DEMO.id, locationId: 601, starRating: 5 }, kept)).status).toBe(202);
    const ended = await login(first.authUrl);
    expect((await postJson(`${first.authUrl}/logout`, {}, { cookie: ended })).status).toBe(200);

    expect(await first.signal('SIGINT')).toBe(0);
    for (const pid of processes) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(first.output()).toContain('SIGINT received: stopping auth, checkin, gateway, processor, the redis-server started here…');
    // Gracefully, in order: each service drained and closed, then Redis flushed its append-only file and said goodbye.
    for (const name of ['auth', 'checkin', 'processor', 'gateway']) {
      expect(first.output()).toMatch(new RegExp(`^\\[${name}\\] .*Shutdown complete\\.[\\s\\S]*^\\[redis\\] .*ready to exit`, 'm'));
    }
    expect(await pingAnswers(redisPort)).toBe(false);
    expect(existsSync(join(dataDir, 'redis', 'appendonlydir'))).toBe(true);

    // Same data dir: users and sessions come back from the append-only file.
    const second = await runStart(env);
    await second.ready();
    output = second.output();
    expect(output).toContain('Demo users already there (user 77 exists): not seeding.');
    const me = await fetch(`${second.authUrl}/me`, { headers: { cookie: kept } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { id: number } }).user.id).toBe(DEMO.id);
    expect((await checkin(second.checkinUrl, { userId: DEMO.id, locationId: 601, starRating: 5 }, kept)).status).toBe(422);
    expect((await checkin(second.checkinUrl, { userId: DEMO.id, locationId: 602, starRating: 5 }, kept)).status).toBe(202);
    expect((await fetch(`${second.authUrl}/me`, { headers: { cookie: ended } })).status).toBe(401);

    const again = second.descendants();
    expect(again).toEqual(['redis-server', 'auth', 'checkin', 'processor', 'gateway'].map((n) => reportedPid(second.output(), n)).sort((a, b) => a - b));
    expect(await second.signal('SIGTERM')).toBe(0);
    for (const pid of again) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(second.output()).toContain('SIGTERM received: stopping auth, checkin, gateway, processor, the redis-server started here…');
    expect(second.output()).toMatch(/^\[processor\] .*Shutdown complete\./m);
    expect(await pingAnswers(redisPort)).toBe(false);
  }, 180_000);

  it('when no Redis answers and redis-server is not on PATH, then it exits 1 naming both fixes and leaves nothing running', async () => {
    const emptyPath = mkdtempSync(join(tmpdir(), 'ncc-nopath-'));
    dirs.push(emptyPath);
    const run = await runStart({
      PATH: emptyPath,
      REDIS_URL: await deadRedisUrl(),
      NCC_REDIS_PORT: String(await freePort()),
      NCC_DATA_DIR: join(emptyPath, 'data'),
    });

    expect(await run.exited).toBe(1);
    const output = run.output();
    expect(output).toContain('there is no redis-server on PATH');
    expect(output).toContain('install redis-server');
    expect(output).toContain('docker compose up -d redis');
    expect(output).not.toContain('auth started');
    expect(output).not.toMatch(/at\s+\S+\s+\(.*:\d+:\d+\)/); // no stack trace
  });

  it('when a service cannot start (its port is taken), then it stops what it started and exits 1, leaving the Redis at REDIS_URL alone', async () => {
    const blocker: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = String((blocker.address() as { port: number }).port);
    try {
      const run = await runStart({ REDIS_URL: redis.url, NCC_REDIS_PORT: String(await freePort()), AUTH_PORT: taken });
      const processes = new Set<number>();
      // Sample the children while they live, to check afterwards that none of them outlived the script.
      const sampler = setInterval(() => run.descendants().forEach((pid) => processes.add(pid)), 100);
      const code = await run.exited;
      clearInterval(sampler);
      expect(code).toBe(1);
      expect(run.output()).toMatch(/^\[auth\] .*Could not listen on port/m);
      expect(run.output()).toMatch(/auth exit/);
      // The gateway starts only once the services are ready: it never did.
      expect(run.output()).not.toContain('gateway started');
      for (const pid of [...['auth', 'checkin', 'processor'].map((n) => reportedPid(run.output(), n)), ...processes]) {
        expect(alive(pid), `pid ${pid} still running`).toBe(false);
      }
      expect(await redis.client.ping()).toBe('PONG');
    } finally {
      blocker.close();
    }
  });

  it('when a service crashes after it was ready, then pnpm start restarts it on the same port after the backoff, says so, and the session survives', async () => {
    const run = await runStart({ REDIS_URL: redis.url, NCC_REDIS_PORT: String(await freePort()) });
    await run.ready();
    const cookie = await login(run.authUrl);
    const authPid = reportedPid(run.output(), 'auth');
    const checkinPid = reportedPid(run.output(), 'checkin');
    const processorPid = reportedPid(run.output(), 'processor');
    const gatewayPid = reportedPid(run.output(), 'gateway');

    process.kill(authPid, 'SIGKILL');
    const killed = performance.now();
    // Poll: down first (or about to be), then answering again on the same port.
    let answeredMs: number;
    for (;;) {
      const ok = await fetch(`${run.authUrl}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok && !alive(authPid)) {
        answeredMs = performance.now() - killed;
        break;
      }
      if (performance.now() - killed > 30_000) throw new Error(`auth did not answer again within 30 s:\n${run.output()}`);
      await sleep(50);
    }
    const output = run.output();
    expect(output).toContain('auth was killed by SIGKILL; restarting in 0.5 s (attempt 1 of 5).');
    const restarted = /auth restarted \(pid (\d+); attempt 1 of 5\)\./.exec(output);
    expect(restarted, output).not.toBeNull();
    const newPid = Number(restarted![1]);
    expect(newPid).not.toBe(authPid);
    console.log(`auth answered /healthz again ${answeredMs.toFixed(0)} ms after SIGKILL (0.5 s of it the backoff)`);
    expect(answeredMs).toBeGreaterThanOrEqual(500);
    // Only auth was restarted; checkin, the processor and the gateway kept running; the session lives in Redis, so it survived.
    expect(run.descendants()).toEqual([newPid, checkinPid, processorPid, gatewayPid].sort((a, b) => a - b));
    expect(output).not.toContain('stopping');
    const me = await fetch(`${run.authUrl}/me`, { headers: { cookie } });
    expect(me.status).toBe(200);
    expect((await checkin(run.checkinUrl, { userId: DEMO.id, locationId: 701, starRating: 3 }, cookie)).status).toBe(202);
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no "auth is ready again." in:\n${run.output()}`)), 10_000);
      const check = setInterval(() => {
        if (run.output().includes('auth is ready again.')) {
          clearInterval(check);
          clearTimeout(deadline);
          resolve();
        }
      }, 50);
    });

    // Ctrl-C still stops everything gracefully, the restarted process included.
    expect(await run.signal('SIGINT')).toBe(0);
    expect(run.output()).toContain('SIGINT received: stopping auth, checkin, gateway, processor…');
    for (const pid of [newPid, checkinPid, processorPid, gatewayPid]) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(await redis.client.ping()).toBe('PONG');
  });

  it('when the processor crashes after it was ready, then pnpm start restarts it and a checkin accepted while it was down is still counted', async () => {
    const run = await runStart({ REDIS_URL: redis.url, NCC_REDIS_PORT: String(await freePort()) });
    await run.ready();
    const cookie = await login(run.authUrl);
    const processorPid = reportedPid(run.output(), 'processor');
    const locationStatsUrl = `${run.checkinUrl}/api/locations/801/stats`;

    process.kill(processorPid, 'SIGKILL');
    await until('the processor gone', 10_000, () => !alive(processorPid));
    // No processor runs now: the checkin is still accepted and waits in the stream for the group.
    expect((await checkin(run.checkinUrl, { userId: DEMO.id, locationId: 801, starRating: 2 }, cookie)).status).toBe(202);

    const stats = await until('the checkin counted by the restarted processor', 30_000, async () => {
      const res = await getJson(locationStatsUrl, cookie);
      return res.status === 200 && res.body;
    });
    expect(stats).toEqual({ locationId: 801, numCheckins: 1, numStars: 2, averageStars: 2 });
    expect(await redis.client.hgetall('ncc:location:801')).toMatchObject({ numCheckins: '1', numStars: '2', averageStars: '2' });
    await until('"processor is ready again."', 10_000, () => run.output().includes('processor is ready again.'));
    const output = run.output();
    expect(output).toContain('processor was killed by SIGKILL; restarting in 0.5 s (attempt 1 of 5).');
    const restarted = /processor restarted \(pid (\d+); attempt 1 of 5\)\./.exec(output);
    expect(restarted, output).not.toBeNull();
    const newPid = Number(restarted![1]);
    expect(run.descendants()).toEqual(
      [reportedPid(output, 'auth'), reportedPid(output, 'checkin'), reportedPid(output, 'gateway'), newPid].sort((a, b) => a - b),
    );
    expect((await fetch(`${run.processorUrl}/readyz`)).status).toBe(200);

    expect(await run.signal('SIGTERM')).toBe(0);
    expect(run.output()).toContain('SIGTERM received: stopping auth, checkin, gateway, processor…');
    expect(alive(newPid), `pid ${newPid} still running`).toBe(false);
  });

  it('when a restarted service keeps crashing, then pnpm start gives up after NCC_RESTART_LIMIT restarts, stops everything and exits 1', async () => {
    const run = await runStart({ REDIS_URL: redis.url, NCC_REDIS_PORT: String(await freePort()), NCC_RESTART_DELAY_MS: '50', NCC_RESTART_LIMIT: '1' });
    await run.ready();
    const authPid = reportedPid(run.output(), 'auth');
    const checkinPid = reportedPid(run.output(), 'checkin');
    const processorPid = reportedPid(run.output(), 'processor');
    const gatewayPid = reportedPid(run.output(), 'gateway');
    const authPort = Number(new URL(run.authUrl).port);

    // Kill auth and take its port: every restart then fails to listen and exits 1 — a crash loop.
    process.kill(authPid, 'SIGKILL');
    const blocker: Server = createServer((socket) => socket.destroy());
    const started = performance.now();
    for (;;) {
      const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        blocker.once('error', resolve);
        blocker.listen(authPort, '127.0.0.1', () => resolve(undefined));
      });
      if (!error) break;
      if (error.code !== 'EADDRINUSE' || performance.now() - started > 5000) throw error;
      await sleep(10);
    }
    try {
      const code = await run.exited;
      const ms = performance.now() - started;
      console.log(`gave up and exited ${code} ${ms.toFixed(0)} ms after the SIGKILL`);
      expect(code).toBe(1);
      const output = run.output();
      expect(output).toContain('auth was killed by SIGKILL; restarting in 0.05 s (attempt 1 of 1).');
      expect(output).toMatch(/^\[auth\] .*Could not listen on port/m);
      expect(output).toContain('auth exited with code 1: 2 crashes within 60 s, more than the 1 restarts allowed; giving up.');
      expect(output).toContain('auth keeps crashing: stopping checkin, gateway, processor…');
      expect(output).toMatch(/^\[checkin\] .*Shutdown complete\./m);
      expect(output).toMatch(/^\[processor\] .*Shutdown complete\./m);
      expect(output).toMatch(/^\[gateway\] .*Shutdown complete\./m);
      const restartedPid = Number(/auth restarted \(pid (\d+);/.exec(output)?.[1]);
      for (const pid of [authPid, checkinPid, processorPid, gatewayPid, restartedPid]) expect(alive(pid), `pid ${pid} still running`).toBe(false);
      expect(await redis.client.ping()).toBe('PONG');
    } finally {
      blocker.close();
    }
  });

  it('when no Redis answers and the local Redis port is taken by something else, then it exits 1 naming the fixes', async () => {
    const blocker: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = await runStart({ REDIS_URL: await deadRedisUrl(), NCC_REDIS_PORT: String(port), NCC_DATA_DIR: join(tmpdir(), 'ncc-unused') });
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain(`port ${port} is already in use`);
      expect(run.output()).toContain('NCC_REDIS_PORT=6380 pnpm start');
      expect(existsSync(join(tmpdir(), 'ncc-unused'))).toBe(false);
    } finally {
      blocker.close();
    }
  });
});
