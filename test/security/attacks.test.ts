/**
 * The guarantees an outside tester broke, each reproduced over real HTTP against a real
 * redis-server. Every test here failed on the main before the fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { Redis } from 'ioredis';
import { startServer, type RunningServer } from '@ncc/service-kit';
import { sessionIdOf, sessionKeyOf, type SpawnedRedis } from '@ncc/testing';
import { sessionHandle } from '@ncc/session';
import { checkin, createUsers, DEMO, login, type Stack, type StartedService, startStack, TEST_SECRET } from '../support/services.js';
import { checkinBody, from, get, tally, tryLogin } from './support.js';

const VICTIM = { id: 1301, email: 'victim.attack@example.com', password: 'victim-password-1' };
const MANY = { id: 1302, email: 'many.sessions@example.com', password: 'many-password-1' };
const HUNDREDS = { id: 1303, email: 'hundreds.sessions@example.com', password: 'hundreds-password-1' };

const PER_IP_LIMIT = 30;

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;

beforeAll(async () => {
  stack = await startStack({ users: [DEMO, VICTIM], auths: 0, checkins: 0 });
  redis = stack.redis;
  // The session-cap tests log these two in 172 times; their subject is the session index, not the
  // password, so their hashes are cheap (bcrypt cost 4): the logins' session writes then overlap more,
  // not less. The limiter tests above use cost-10 users, so their bursts race slow compares as in production.
  await createUsers(redis.url, [MANY, HUNDREDS], { rounds: 4 });
  // The default limit per (email, IP): 10 per 15 min. The per-IP limit is 30 here instead of the default
  // 100 per day: the spray test then runs 30 cost-10 compares, not 100, and proves the same. The client
  // IP comes from one proxy hop.
  auth = await stack.start('auth', { TRUST_PROXY: '1', LOGIN_MAX_FAILS_PER_IP_DAY: String(PER_IP_LIMIT) });
});

afterAll(async () => {
  await stack?.close();
});

async function burst(n: number, attempt: (i: number) => { email: string; password: string }, ip: string): Promise<number[]> {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => tryLogin(auth.url, attempt(i), from(ip))));
  return results.map((r) => r.res.status);
}

describe('login limiter under concurrency', () => {
  it('when 50 wrong logins for one (email, IP) arrive at once, then exactly 10 are compared (401) and 40 get 429', async () => {
    const statuses = await burst(50, (i) => ({ email: VICTIM.email, password: `wrong${i}` }), '198.51.100.1');
    expect(tally(statuses)).toEqual({ 401: 10, 429: 40 });
    // The counter reads exactly the compares that ran: refused attempts gave their points back.
    expect(await redis.client.get(`ncc:ratelimit:login:fails-email-ip:${VICTIM.email}|198.51.100.1`)).toBe('10');
  });

  it('when three times the per-IP limit of wrong logins with different emails arrive at once from one IP, then exactly the limit is compared and the rest get 429', async () => {
    const statuses = await burst(3 * PER_IP_LIMIT, (i) => ({ email: `spray${i}@example.com`, password: 'Winter2026!' }), '198.51.100.2');
    expect(tally(statuses)).toEqual({ 401: PER_IP_LIMIT, 429: 2 * PER_IP_LIMIT });
    expect(await redis.client.get('ncc:ratelimit:login:fails-ip:198.51.100.2')).toBe(String(PER_IP_LIMIT));
  });

  it('when the right password comes at position 55 of a burst of 60, then it gets 429 and no session is made', async () => {
    const before = (await redis.client.keys('ncc:session:*')).length;
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => tryLogin(auth.url, i === 54 ? VICTIM : { email: VICTIM.email, password: `guess${i}` }, from('198.51.100.3'))),
    );
    expect(results[54]!.res.status).toBe(429);
    expect(results[54]!.cookie).toBeUndefined();
    expect(tally(results.map((r) => r.res.status))).toEqual({ 401: 10, 429: 50 });
    expect((await redis.client.keys('ncc:session:*')).length).toBe(before);
  });

  it('when wrong logins come from many addresses of one IPv6 /64, then they share one counter; another /64 is not affected', async () => {
    const email = DEMO.email;
    for (let i = 0; i < 10; i++) {
      expect((await tryLogin(auth.url, { email, password: `nope${i}` }, from(`2001:db8:aa:bb:${i.toString(16)}::${i + 1}`))).res.status).toBe(401);
    }
    expect(await redis.client.get(`ncc:ratelimit:login:fails-email-ip:${email}|2001:db8:aa:bb::/64`)).toBe('10');
    expect(await redis.client.get('ncc:ratelimit:login:fails-ip:2001:db8:aa:bb::/64')).toBe('10');
    expect((await tryLogin(auth.url, DEMO, from('2001:db8:aa:bb:ffff:ffff:ffff:fffe'))).res.status).toBe(429);
    expect((await tryLogin(auth.url, DEMO, from('2001:db8:aa:bc::1'))).res.status).toBe(200);
  });

  it('when a login succeeds, then the per-IP point it reserved is given back', async () => {
    const ip = '198.51.100.4';
    expect((await tryLogin(auth.url, { email: DEMO.email, password: 'wrong' }, from(ip))).res.status).toBe(401);
    expect((await tryLogin(auth.url, DEMO, from(ip))).res.status).toBe(200);
    expect(await redis.client.get(`ncc:ratelimit:login:fails-ip:${ip}`)).toBe('1');
    expect(await redis.client.exists(`ncc:ratelimit:login:fails-email-ip:${DEMO.email}|${ip}`)).toBe(0);
  });
});

describe("the seed's own checkin receiver accepts our sessions", () => {
  let receiver: RunningServer;
  let store: Redis;

  beforeAll(async () => {
    // Configured like node-js-crash-course's receiver: express-session + connect-redis, same cookie,
    // prefix and secret, nothing written back, and it requires req.session.user.
    store = new Redis(redis.url);
    const app = express();
    app.use(
      session({
        store: new RedisStore({ client: store, prefix: 'ncc:session:' }),
        name: 'checkinapp',
        secret: TEST_SECRET,
        resave: false,
        saveUninitialized: false,
      }),
    );
    app.post('/api/checkin', (req, res) => {
      const user = (req.session as unknown as { user?: unknown }).user;
      if (typeof user !== 'string') {
        res.status(401).send('Unauthorized');
        return;
      }
      res.status(202).json({ user });
    });
    receiver = await startServer(app, 0);
  });

  afterAll(async () => {
    await receiver?.close(1000);
    store?.disconnect();
  });

  it("when a user logs in on our auth, then the course's receiver finds req.session.user (the email) and writes nothing back", async () => {
    const { cookie, sid } = await tryLogin(auth.url, DEMO, from('198.51.100.20'));
    expect(cookie).toBeDefined();
    const stored = await redis.client.get(`ncc:session:${sid}`);
    expect(JSON.parse(stored!)).toMatchObject({ user: DEMO.email, userId: DEMO.id, email: DEMO.email });
    const res = await fetch(`${receiver.url}/api/checkin`, { method: 'POST', headers: { cookie: cookie! } });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ user: DEMO.email });
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.get(`ncc:session:${sid}`)).toBe(stored);
    // Without our cookie the course's receiver refuses, as it always did.
    expect((await fetch(`${receiver.url}/api/checkin`, { method: 'POST' })).status).toBe(401);
  });
});

describe('every session of a user can be listed and ended, and there are at most MAX_SESSIONS_PER_USER', () => {
  let auth2: StartedService;
  let checkinService: StartedService;

  beforeAll(async () => {
    [auth2, checkinService] = await Promise.all([stack.start('auth'), stack.start('checkin')]);
  });

  afterAll(async () => {
    await Promise.all([auth2?.close(), checkinService?.close()]);
  });

  async function assertAllEnded(cookies: string[], userId: number): Promise<void> {
    for (const cookie of cookies) {
      expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(0);
      expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
      expect((await get(`${auth2.url}/me`, cookie)).status).toBe(401);
      expect((await checkin(checkinService.url, checkinBody(userId), cookie)).status).toBe(401);
    }
  }

  it('when a user logs in 50 times, then twice more keeping a and b, then b logs out everywhere, then a was listed and is ended on both services', async () => {
    for (let i = 0; i < 50; i++) await login(i % 2 ? auth.url : auth2.url, MANY.email, MANY.password);
    const a = await login(auth.url, MANY.email, MANY.password);
    const b = await login(auth2.url, MANY.email, MANY.password);
    const listed = (await (await get(`${auth.url}/sessions`, b)).json()) as { sessions: { handle: string }[] };
    expect(listed.sessions).toHaveLength(50);
    expect(listed.sessions.map((s) => s.handle)).toContain(sessionHandle(TEST_SECRET, sessionIdOf(a)));
    expect((await checkin(checkinService.url, checkinBody(MANY.id), a)).status).toBe(202);
    const res = await fetch(`${auth.url}/logout-all`, { method: 'POST', headers: { cookie: b } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'OK', ended: 50 });
    await assertAllEnded([a, b], MANY.id);
    expect(await redis.client.exists(`ncc:user-sessions:${MANY.id}`)).toBe(0);
  });

  it('when 120 logins (some concurrent, on two instances) exceed the cap of 50, then the 70 least recently active end (audited), and logout-all ends the other 50: every cookie gets 401 on both services', async () => {
    const cookies: string[] = [];
    for (let round = 0; round < 12; round++) {
      // Ten at a time, split across the two auth instances.
      cookies.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => login(i % 2 ? auth.url : auth2.url, HUNDREDS.email, HUNDREDS.password)))));
    }
    expect(new Set(cookies).size).toBe(120);
    const live = (await Promise.all(cookies.map((c) => redis.client.exists(sessionKeyOf(c))))).filter((n) => n === 1);
    expect(live).toHaveLength(50);
    expect(await redis.client.zcard(`ncc:user-sessions:${HUNDREDS.id}`)).toBe(50);
    // The newest login is certainly among the survivors.
    expect(await redis.client.exists(sessionKeyOf(cookies[119]!))).toBe(1);
    const evictions = [...auth.logs.entries(), ...auth2.logs.entries()].filter((e) => e['event'] === 'session.evicted' && e['userId'] === HUNDREDS.id);
    expect(evictions).toHaveLength(70);
    expect(evictions[0]).toMatchObject({ audit: true, reason: 'max_sessions_per_user' });
    expect(JSON.stringify(evictions)).not.toContain(sessionIdOf(cookies[0]!));

    const res = await fetch(`${auth2.url}/logout-all`, { method: 'POST', headers: { cookie: cookies[119]! } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'OK', ended: 50 });
    await assertAllEnded(cookies, HUNDREDS.id);
    expect(await redis.client.exists(`ncc:user-sessions:${HUNDREDS.id}`)).toBe(0);
  });
});
