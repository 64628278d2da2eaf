/**
 * Start-up and shutdown with real service processes (as `pnpm auth` / `pnpm checkin` run them):
 * start-up while Redis is down (retry with backoff, then listen; or exit 1 after the deadline:
 * docs/decisions/002-redis-startup.md) and
 * graceful shutdown on SIGTERM / SIGINT with a request in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, sessionKeyOf, sleep, type SpawnedRedis, spawnRedis, until } from '@ncc/testing';
import { createUsers, DEMO, login, type ServiceProcess, spawnService, type StartedService, startAuth } from '../support/services.js';
import { call, connectionRefused } from './helpers.js';

let redis: SpawnedRedis;

beforeAll(async () => {
  // Append-only so the users survive the shutdown/start cycles below.
  redis = await spawnRedis({ appendOnly: true });
  await createUsers(redis.url, [DEMO]);
});

afterAll(async () => {
  redis.resume();
  await redis?.stop();
});

/** Wait until the child's output matches; returns the match. */
async function waitForOutput(service: ServiceProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return until(`output matching ${String(pattern)}`, timeoutMs, () => service.output().match(pattern) ?? undefined);
}

describe('when a service starts while Redis is down', () => {
  let service: ServiceProcess | undefined;

  afterAll(async () => {
    await service?.stop('SIGKILL');
  });

  it('then it keeps retrying with backoff and says so, does not listen yet, and starts serving (ready) once Redis appears', async () => {
    await redis.shutdown();
    service = await spawnService('auth', { REDIS_URL: redis.url, REDIS_STARTUP_TIMEOUT_MS: '0' }, { waitFor: /Redis unreachable, reconnecting \(attempt 1,/ });
    expect(await connectionRefused(service.port)).toBe(true);

    // The retry log is throttled to one line per 5 s; the second line shows how far the attempts got.
    const second = await waitForOutput(
      service,
      /Redis unreachable, reconnecting \(attempt (\d+), next in (\d+) ms\)[^\n]*\n(?:.|\n)*Redis unreachable, reconnecting \(attempt (\d+), next in (\d+) ms\)/,
      12_000,
    );
    const attempt = Number(second[3]);
    const delay = Number(second[4]);
    console.log(`after ~5 s of Redis being down: attempt ${attempt}, next in ${delay} ms`);
    // Backoff: without it (a fixed 50 ms) there would be ~100 attempts by now; capped at 2 s.
    expect(attempt).toBeGreaterThan(1);
    expect(attempt).toBeLessThan(15);
    expect(delay).toBeLessThanOrEqual(2000);
    expect(service.output()).not.toMatch(/listening on port/);
    expect(await connectionRefused(service.port)).toBe(true);

    const started = performance.now();
    await redis.start();
    await waitForOutput(service, /listening on port/, 10_000);
    console.log(`listening ${(performance.now() - started).toFixed(0)} ms after Redis came back`);
    expect(service.output()).toMatch(/Redis is reachable now\./);
    expect((await call(`${service.url}/readyz`)).status).toBe(200);
    expect((await call(`${service.url}/healthz`)).status).toBe(200);
    const cookie = await login(service.url);
    expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(1);
    expect(await service.stop('SIGTERM')).toBe(0);
  });

  it('when REDIS_STARTUP_TIMEOUT_MS is small, then it exits non-zero after the deadline with a clear message', async () => {
    await redis.shutdown();
    try {
      const started = performance.now();
      const doomed = await spawnService('checkin', { REDIS_URL: redis.url, REDIS_STARTUP_TIMEOUT_MS: '1500' }, { waitFor: null });
      const code = await doomed.exited;
      const ms = performance.now() - started;
      console.log(`exited with ${code} after ${ms.toFixed(0)} ms (includes the process start)`);
      expect(code).toBe(1);
      expect(doomed.output()).toMatch(/Redis unreachable, reconnecting \(attempt 1,/);
      expect(doomed.output()).toMatch(/Redis was not reachable within 1500 ms \(REDIS_STARTUP_TIMEOUT_MS\); exiting\./);
      expect(doomed.output()).not.toMatch(/listening on port/);
      expect(ms).toBeGreaterThanOrEqual(1500);
    } finally {
      await redis.start();
    }
  });
});

describe('when a service is told to stop while a request is in flight', () => {
  let inProcessAuth: StartedService;
  let cookie: string;

  beforeAll(async () => {
    inProcessAuth = await startAuth(redis.url);
    cookie = await login(inProcessAuth.url);
  });

  afterAll(async () => {
    await inProcessAuth?.close();
  });

  const cases: { name: 'auth' | 'checkin'; signal: NodeJS.Signals }[] = [
    { name: 'auth', signal: 'SIGTERM' },
    { name: 'checkin', signal: 'SIGINT' },
    { name: 'auth', signal: 'SIGINT' },
    { name: 'checkin', signal: 'SIGTERM' },
  ];

  for (const { name, signal } of cases) {
    it(`when ${name} gets ${signal}, then the in-flight request completes, new connections are refused, Redis is closed and it exits 0`, async () => {
      // A long command timeout keeps the request waiting on the paused Redis instead of failing after 1 s,
      // so the signal is certain to arrive while it is in flight.
      const service = await spawnService(name, { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '10000', LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_MS: '10000' });
      try {
        const xlen = await redis.client.xlen('ncc:checkins');
        const locationId = 1000 + Math.floor(Math.random() * 1_000_000);
        redis.pause();
        let inFlight: Promise<Response>;
        try {
          inFlight =
            name === 'auth'
              ? fetch(`${service.url}/login`, {
                  method: 'POST',
                  headers: { 'content-type': 'application/json' },
                  body: JSON.stringify({ email: DEMO.email, password: DEMO.password }),
                })
              : fetch(`${service.url}/api/checkin`, {
                  method: 'POST',
                  headers: { 'content-type': 'application/json', cookie },
                  body: JSON.stringify({ userId: DEMO.id, locationId, starRating: 5 }),
                });
          await sleep(300);
          service.child.kill(signal);
          await waitForOutput(service, new RegExp(`${signal} received, shutting down gracefully`), 5000);
          // The listening socket is closed at once: a new connection is refused while the old request still waits.
          expect(await connectionRefused(service.port)).toBe(true);
          expect(service.child.exitCode).toBeNull();
        } finally {
          redis.resume();
        }
        const resumed = performance.now();
        const res = await inFlight;
        const text = await res.text();
        expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
        const body = JSON.parse(text) as Record<string, unknown>;
        if (name === 'auth') {
          expect(res.status, text).toBe(200);
          expect(body).toEqual({ user: { id: DEMO.id, email: DEMO.email, firstName: DEMO.firstName, lastName: DEMO.lastName } });
          const pair = cookiePair(res, 'checkinapp');
          expect(pair).toBeDefined();
          expect(await redis.client.exists(sessionKeyOf(pair!))).toBe(1);
        } else {
          expect(res.status, text).toBe(202);
          expect(body).toEqual({ id: expect.stringMatching(/^\d+-\d+$/) as string });
          expect(await redis.client.xlen('ncc:checkins')).toBe(xlen + 1);
          const [entry] = await redis.client.xrange('ncc:checkins', body['id'] as string, body['id'] as string);
          expect(entry?.[1]).toEqual(['userId', String(DEMO.id), 'locationId', String(locationId), 'starRating', '5', 'receivedAt', expect.any(String)]);
        }

        const code = await service.exited;
        const exitMs = performance.now() - resumed;
        console.log(`${name} ${signal}: exited ${code} ${exitMs.toFixed(0)} ms after the in-flight request was released`);
        expect(code).toBe(0);
        // Well before SHUTDOWN_TIMEOUT_MS (10 s): it did not wait for the keep-alive socket to time out.
        expect(exitMs).toBeLessThan(5000);
        const output = service.output();
        // 'Redis connection ended.' is ioredis' 'end' event after QUIT: Redis was closed by the service, not by the exit.
        const signalled = output.indexOf(`${signal} received`);
        expect(signalled, output).toBeGreaterThanOrEqual(0);
        expect(output.indexOf('Redis connection ended.', signalled), output).toBeGreaterThan(signalled);
        expect(output.indexOf('Shutdown complete.', signalled), output).toBeGreaterThan(signalled);
        expect(output).not.toMatch(/Unhandled|Uncaught|error/i);
      } finally {
        redis.resume();
        await service.stop('SIGKILL');
      }
    });
  }
});

describe('when an in-flight request outlives SHUTDOWN_TIMEOUT_MS', () => {
  it('then the service cuts it after the timeout and still exits 0 (a hung Redis cannot block a deploy)', async () => {
    const service = await spawnService('auth', { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '20000', SHUTDOWN_TIMEOUT_MS: '700' });
    try {
      redis.pause();
      const inFlight = fetch(`${service.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: DEMO.email, password: DEMO.password }),
      }).then(
        (res) => `answered ${res.status}`,
        (err: unknown) => `cut: ${err instanceof Error ? err.message : String(err)}`,
      );
      await sleep(300);
      const signalled = performance.now();
      service.child.kill('SIGTERM');
      const code = await service.exited;
      const ms = performance.now() - signalled;
      console.log(`exit ${code} ${ms.toFixed(0)} ms after SIGTERM with a request stuck on a stopped Redis; client: ${await inFlight}`);
      expect(code).toBe(0);
      // 700 ms for the request, then at most ~1 s for QUIT to a Redis that cannot answer, then a hard disconnect.
      expect(ms).toBeGreaterThanOrEqual(650);
      expect(ms).toBeLessThan(4000);
      expect(await inFlight).toMatch(/^cut: /);
      expect(service.output()).toMatch(/Shutdown complete\./);
    } finally {
      redis.resume();
      await service.stop('SIGKILL');
    }
  });
});
