/**
 * One logged-in user could submit ~2,000 checkins/s, each leaving a duplicate marker
 * for a day. Now a per-user rate limit (shared by every checkin replica, inside the accept script) and
 * one bounded recent-checkins set per user (docs/decisions/022-checkin-limits.md). Real HTTP, a real redis-server; each test failed before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, type SpawnedRedis } from '@ncc/testing';
import { checkin, login, type Stack, type StartedService, startStack } from '../support/services.js';
import { checkinBody, errorCode, tally } from './support.js';

const FLOODER = { id: 1501, email: 'flooder@example.com', password: 'flooder-password-1' };
const NEIGHBOUR = { id: 1502, email: 'neighbour@example.com', password: 'neighbour-password-1' };
const RETRIER = { id: 1503, email: 'retrier@example.com', password: 'retrier-password-1' };
const PROLIFIC = { id: 1504, email: 'prolific@example.com', password: 'prolific-password-1' };
const PATIENT = { id: 1505, email: 'patient@example.com', password: 'patient-password-1' };

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;

beforeAll(async () => {
  stack = await startStack({ users: [FLOODER, NEIGHBOUR, RETRIER, PROLIFIC, PATIENT], checkins: 0 });
  ({ redis, auth } = stack);
});

afterAll(async () => {
  await stack?.close();
});

function replicas(n: number, env: Record<string, string> = {}): Promise<StartedService[]> {
  return Promise.all(Array.from({ length: n }, () => stack.start('checkin', env)));
}

describe('per-user checkin rate limit', () => {
  it('when one user sends 200 distinct checkins at once over two replicas, then exactly 30 are accepted (the default per minute), 170 get 429 with Retry-After, and the stream grew by 30', async () => {
    const [a, b] = await replicas(2);
    const cookie = await login(auth.url, FLOODER.email, FLOODER.password);
    const before = await redis.client.xlen('ncc:checkins');
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => checkin(i % 2 ? a!.url : b!.url, checkinBody(FLOODER.id), cookie)));
    expect(tally(responses.map((r) => r.status))).toEqual({ 202: 30, 429: 170 });
    const refused = responses.filter((r) => r.status === 429);
    for (const res of refused.slice(0, 5)) {
      expect(errorCode(await res.json())).toBe('TOO_MANY_REQUESTS');
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    expect(await redis.client.xlen('ncc:checkins')).toBe(before + 30);
    expect(await redis.client.zcard(`{ncc:checkins}:recent:${FLOODER.id}`)).toBe(30);

    // Another user is not slowed down by the flood.
    const neighbour = await login(auth.url, NEIGHBOUR.email, NEIGHBOUR.password);
    expect((await checkin(a!.url, checkinBody(NEIGHBOUR.id), neighbour)).status).toBe(202);
  });

  it('when a user past the limit retries a checkin that was already accepted, then it gets 422 DUPLICATE_CHECKIN (it learns the first one was stored), not 429', async () => {
    const [svc] = await replicas(1, { CHECKIN_RATE_LIMIT_PER_USER: '2' });
    const cookie = await login(auth.url, RETRIER.email, RETRIER.password);
    const first = checkinBody(RETRIER.id);
    expect((await checkin(svc!.url, first, cookie)).status).toBe(202);
    expect((await checkin(svc!.url, checkinBody(RETRIER.id), cookie)).status).toBe(202);
    expect((await checkin(svc!.url, checkinBody(RETRIER.id), cookie)).status).toBe(429);
    const retry = await checkin(svc!.url, first, cookie);
    expect(retry.status).toBe(422);
    expect(errorCode(await retry.json())).toBe('DUPLICATE_CHECKIN');
  });

  it('when the sliding window has moved on, then the same user may check in again, and Retry-After said when', async () => {
    const [svc] = await replicas(1, { CHECKIN_RATE_LIMIT_PER_USER: '3', CHECKIN_RATE_LIMIT_WINDOW_S: '1' });
    const cookie = await login(auth.url, PATIENT.email, PATIENT.password);
    for (let i = 0; i < 3; i++) expect((await checkin(svc!.url, checkinBody(PATIENT.id), cookie)).status).toBe(202);
    const refused = await checkin(svc!.url, checkinBody(PATIENT.id), cookie);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    // A 1 s window: Retry-After (whole seconds, rounded up) is 1.
    expect(retryAfter).toBe(1);
    const refusedAt = Date.now();
    let status = 429;
    while (status === 429 && Date.now() - refusedAt < 5000) {
      await sleep(100);
      status = (await checkin(svc!.url, checkinBody(PATIENT.id), cookie)).status;
    }
    expect(status).toBe(202);
    expect(Date.now() - refusedAt).toBeLessThanOrEqual(retryAfter * 1000 + 500);
  });
});

describe('bounded duplicate-check memory', () => {
  it('when a user makes 200 distinct checkins (twice the cap) with CHECKIN_DUPLICATE_MAX_PER_USER=100, then Redis holds one small set of the 100 most recent for that user and no key per checkin', async () => {
    // 100 per second: the set must hold at least the rate window's worth, so the rate is the cap here.
    const [svc] = await replicas(1, { CHECKIN_RATE_LIMIT_PER_USER: '100', CHECKIN_RATE_LIMIT_WINDOW_S: '1', CHECKIN_DUPLICATE_MAX_PER_USER: '100' });
    const cookie = await login(auth.url, PROLIFIC.email, PROLIFIC.password);
    const dbBefore = await redis.client.dbsize();
    const bodies = Array.from({ length: 200 }, () => checkinBody(PROLIFIC.id));
    for (const body of bodies) {
      let res = await checkin(svc!.url, body, cookie);
      while (res.status === 429) {
        await sleep(Number(res.headers.get('retry-after')) * 200);
        res = await checkin(svc!.url, body, cookie);
      }
      expect(res.status).toBe(202);
    }
    const key = `{ncc:checkins}:recent:${PROLIFIC.id}`;
    expect(await redis.client.dbsize()).toBe(dbBefore + 1);
    expect(await redis.client.zcard(key)).toBe(100);
    expect(Number(await redis.client.call('MEMORY', 'USAGE', key))).toBeLessThan(16_000);
    // The newest is remembered (a repeat is refused), the oldest has made room.
    expect((await checkin(svc!.url, bodies[199], cookie)).status).toBe(422);
    expect(await redis.client.zscore(key, `${bodies[0]!.locationId}:${bodies[0]!.starRating}`)).toBeNull();
  });
});
