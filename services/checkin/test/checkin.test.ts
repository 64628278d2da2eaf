/**
 * POST /api/checkin over real HTTP with both services in this process on one spawned redis-server:
 * sessions written by auth are read (never written) by checkin; every 401, body error, 403 and 422
 * case; the atomic dedupe+XADD; and the Redis state after each.
 */
import { createHmac } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { commandsDuring, cookiePair, sessionIdOf, sessionKeyOf, type SpawnedRedis } from '@ncc/testing';
import { checkin, DEMO, login, type Stack, type StartedService, startStack, TEST_SECRET } from '../../../test/support/services.js';

const OTHER = { id: 78, email: 'other.user@example.com', password: 'other-pw-78' };
const STREAM = 'ncc:checkins';
const REJECT_LOG = 'Rejecting checkin - no valid user session found.';

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;
let checkinSvc: StartedService;
let demoCookie: string;

// Every test checks in at its own locations so the duplicate window never links two tests.
let nextLocation = 1000;
const location = (): number => nextLocation++;

/** A cookie exactly as express-session signs it (cookie-signature: HMAC-SHA256, base64 without padding). */
function signedCookie(sid: string, secret = TEST_SECRET): string {
  const mac = createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '');
  return `checkinapp=${encodeURIComponent(`s:${sid}.${mac}`)}`;
}

/** The exact 401 body, with this response's request id. */
async function expectUnauthenticated(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.getSetCookie()).toEqual([]);
  expect(await res.json()).toEqual({
    error: { code: 'UNAUTHENTICATED', message: 'Authentication required.', requestId: res.headers.get('x-request-id') },
  });
}

/**
 * The Redis commands `action` made the server run, by name, counted once every command the checkin
 * service sent has run (a PING on its own connection comes after them; that PING is left out).
 */
async function commandsFrom(action: () => Promise<unknown>): Promise<Record<string, number>> {
  const { ping, ...commands } = await commandsDuring(redis.client, async () => {
    await action();
    await checkinSvc.redis.ping();
  });
  expect(ping).toBe(1);
  return commands;
}

const total = (commands: Record<string, number>): number => Object.values(commands).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  stack = await startStack({ users: [DEMO, OTHER] });
  ({ redis, auth, checkin: checkinSvc } = stack);
  demoCookie = await login(auth.url);
});

afterAll(async () => {
  await stack?.close();
});

describe('accepted checkin', () => {
  it('when a user logged in on auth checks in as themself, then 202 {"id"} and the stream gains exactly one entry with the four fields', async () => {
    const loc = location();
    const lenBefore = await redis.client.xlen(STREAM);
    const before = Date.now();
    const res = await checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 4 }, demoCookie);
    expect(res.status).toBe(202);
    expect(res.headers.getSetCookie()).toEqual([]);
    const body = (await res.json()) as { id: string };
    expect(Object.keys(body)).toEqual(['id']);
    expect(body.id).toMatch(/^\d+-\d+$/);
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore + 1);

    const entries = await redis.client.xrange(STREAM, body.id, body.id);
    expect(entries).toHaveLength(1);
    const [, fields] = entries[0]!;
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
    const record = Object.fromEntries(pairs);
    expect(Object.keys(record).sort()).toEqual(['locationId', 'receivedAt', 'starRating', 'userId']);
    expect(record).toMatchObject({ userId: '77', locationId: String(loc), starRating: '4' });
    expect(Number(record['receivedAt'])).toBeGreaterThanOrEqual(before);
    expect(Number(record['receivedAt'])).toBeLessThanOrEqual(Date.now());

    expect(checkinSvc.logs.find(`Received checkin, added to stream as ${body.id}.`)).toHaveLength(1);
  });

  it('when a star rating of 0 is sent, then it is accepted (0–5 inclusive)', async () => {
    const res = await checkin(checkinSvc.url, { userId: 77, locationId: location(), starRating: 0 }, demoCookie);
    expect(res.status).toBe(202);
  });

  it('when the checkin is read, then the session value in Redis is byte-for-byte unchanged (checkin never rewrites a session)', async () => {
    const cookie = await login(auth.url);
    const key = sessionKeyOf(cookie);
    const valueBefore = await redis.client.get(key);
    const dbBefore = await redis.client.dbsize();
    const recent = '{ncc:checkins}:recent:77';
    const [existed, rememberedBefore] = [await redis.client.exists(recent), await redis.client.zcard(recent)];
    for (let i = 0; i < 3; i++) {
      expect((await checkin(checkinSvc.url, { userId: 77, locationId: location(), starRating: 3 }, cookie)).status).toBe(202);
    }
    expect(await redis.client.get(key)).toBe(valueBefore);
    // Three checkins go into the user's one recent-checkins set, and no other key is written (no new session, no re-save).
    expect(await redis.client.zcard(recent)).toBe(rememberedBefore + 3);
    expect(await redis.client.dbsize()).toBe(dbBefore + (existed ? 0 : 1));
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(86_390);
    expect(ttl).toBeLessThanOrEqual(86_400);
  });

  it('when a checkin reads a session, then it refreshes the idle TTL without rewriting the value', async () => {
    const cookie = await login(auth.url);
    const key = sessionKeyOf(cookie);
    const value = await redis.client.get(key);
    await redis.client.expire(key, 500);
    expect((await checkin(checkinSvc.url, { userId: 77, locationId: location(), starRating: 1 }, cookie)).status).toBe(202);
    expect(await redis.client.ttl(key)).toBeGreaterThan(86_390);
    expect(await redis.client.get(key)).toBe(value);
  });
});

describe('401: no valid session', () => {
  async function expectRejected(cookie: string | undefined): Promise<void> {
    const rejectsBefore = checkinSvc.logs.find(REJECT_LOG).length;
    const lenBefore = await redis.client.xlen(STREAM);
    const dbBefore = await redis.client.dbsize();
    await expectUnauthenticated(await checkin(checkinSvc.url, { userId: 77, locationId: location(), starRating: 5 }, cookie));
    const rejects = checkinSvc.logs.find(REJECT_LOG);
    expect(rejects).toHaveLength(rejectsBefore + 1);
    expect(rejects.at(-1)!['level']).toBe('debug');
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore);
    expect(await redis.client.dbsize()).toBe(dbBefore);
  }

  it('when there is no cookie, then 401 and the debug log', async () => {
    await expectRejected(undefined);
  });

  it('when the cookie signature is tampered with, then 401', async () => {
    const value = decodeURIComponent(demoCookie.slice('checkinapp='.length));
    const last = value.at(-1) === 'A' ? 'B' : 'A';
    await expectRejected(`checkinapp=${encodeURIComponent(value.slice(0, -1) + last)}`);
  });

  it('when the cookie is signed with another secret, then 401', async () => {
    await expectRejected(signedCookie(sessionIdOf(demoCookie), 'some-other-secret-some-other-secret-00'));
  });

  it('when the cookie is not a signed session cookie at all, then 401', async () => {
    await expectRejected(`checkinapp=${sessionIdOf(demoCookie)}`);
    await expectRejected('checkinapp=%E0%A4%A');
  });

  it('when the cookie is correctly signed but names an unknown session id, then 401 and no key is created', async () => {
    const sid = randomBytes(24).toString('base64url');
    await expectRejected(signedCookie(sid));
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(0);
  });

  it('when the session key has expired in Redis, then 401 and it is not resurrected', async () => {
    const cookie = await login(auth.url);
    const key = sessionKeyOf(cookie);
    expect(await redis.client.pexpire(key, 100)).toBe(1);
    await vi.waitFor(async () => expect(await redis.client.exists(key)).toBe(0), { interval: 20 });
    await expectRejected(cookie);
    expect(await redis.client.exists(key)).toBe(0);
  });

  it('when the session key was deleted, then 401', async () => {
    const cookie = await login(auth.url);
    await redis.client.del(sessionKeyOf(cookie));
    await expectRejected(cookie);
  });

  it('when the session is older than the absolute timeout, then 401 even though the key still exists', async () => {
    const cookie = await login(auth.url);
    const key = sessionKeyOf(cookie);
    const stored = JSON.parse((await redis.client.get(key))!) as { createdAt: number };
    stored.createdAt = Date.now() - 8 * 86_400_000;
    await redis.client.set(key, JSON.stringify(stored), 'KEEPTTL');
    await expectRejected(cookie);
  });

  it('when the user logged out on auth, then the old cookie gets 401 on checkin', async () => {
    const cookie = await login(auth.url);
    expect((await checkin(checkinSvc.url, { userId: 77, locationId: location(), starRating: 2 }, cookie)).status).toBe(202);
    const logout = await fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } });
    expect(logout.status).toBe(200);
    expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(0);
    await expectRejected(cookie);
    expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(0);
  });

  it('when the session is an anonymous visit-counter session (no user), then 401', async () => {
    const visit = await fetch(`${auth.url}/visits`);
    await expectRejected(cookiePair(visit, 'checkinapp'));
  });

  it('when there is no cookie, then the service makes no Redis call at all', async () => {
    expect(await commandsFrom(() => checkin(checkinSvc.url, { userId: 77, locationId: 1, starRating: 5 }))).toEqual({});
  });

  it('when the cookie signature is wrong, then the service makes no Redis call either', async () => {
    expect(await commandsFrom(() => checkin(checkinSvc.url, { userId: 77, locationId: 1, starRating: 5 }, signedCookie('abc', 'wrong-secret')))).toEqual({});
  });

  it('when a signed cookie names an unknown id, then the refusal costs at most one round trip (the measurement is not blind)', async () => {
    const used = total(
      await commandsFrom(async () => {
        const res = await checkin(checkinSvc.url, { userId: 77, locationId: 1, starRating: 5 }, signedCookie(randomBytes(24).toString('base64url')));
        expect(res.status).toBe(401);
      }),
    );
    // GET (+ EXPIRE, pipelined, on the first read of an id): at least one command, at most two.
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThanOrEqual(2);
  });

  it('when there is no session, then the body is not even looked at (401 before 400/413/415)', async () => {
    const url = `${checkinSvc.url}/api/checkin`;
    await expectUnauthenticated(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' }));
    await expectUnauthenticated(await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }));
    await expectUnauthenticated(
      await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(20_000) }) }),
    );
  });

  it('when 1,000 requests without a valid session arrive, then all get 401 and DBSIZE and XLEN are unchanged', async () => {
    const dbBefore = await redis.client.dbsize();
    const lenBefore = await redis.client.xlen(STREAM);
    const kinds = [
      (): string | undefined => undefined,
      (): string => signedCookie(randomBytes(24).toString('base64url')),
      (): string => signedCookie(randomBytes(24).toString('base64url'), 'attacker-secret'),
      (): string => 'checkinapp=garbage',
    ];
    const statuses: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const res = await checkin(checkinSvc.url, { userId: 77, locationId: 5, starRating: 5 }, kinds[i % kinds.length]!());
          await res.arrayBuffer();
          return res.status;
        }),
      );
      statuses.push(...results);
    }
    expect(statuses).toHaveLength(1000);
    expect(statuses.every((s) => s === 401)).toBe(true);
    expect(await redis.client.dbsize()).toBe(dbBefore);
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore);
  }, 60_000);
});

describe('400/413/415: the body, once the session is valid', () => {
  const url = (): string => `${checkinSvc.url}/api/checkin`;
  const post = (body: string, contentType = 'application/json'): Promise<Response> =>
    fetch(url(), { method: 'POST', headers: { 'content-type': contentType, cookie: demoCookie }, body });

  async function expectError(res: Response, status: number, code: string, fields?: string[]): Promise<void> {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; fields?: string[]; requestId: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    if (fields) expect([...(body.error.fields ?? [])].sort()).toEqual([...fields].sort());
    expect(JSON.stringify(body)).not.toMatch(/SyntaxError|Unexpected token|\.ts:\d+/);
  }

  it('when the body is malformed JSON, then 400 MALFORMED_JSON and nothing is written', async () => {
    const lenBefore = await redis.client.xlen(STREAM);
    await expectError(await post('{"userId": 77, '), 400, 'MALFORMED_JSON');
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore);
  });

  it('when the content type is not JSON, then 415', async () => {
    await expectError(await post('userId=77&locationId=1&starRating=5', 'application/x-www-form-urlencoded'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectError(await post(JSON.stringify({ userId: 77, locationId: 1, starRating: 5 }), 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('when the body is over 10 kB, then 413', async () => {
    await expectError(await post(JSON.stringify({ userId: 77, locationId: 1, starRating: 5, pad: 'x'.repeat(11 * 1024) })), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('when a gzip body is corrupt, then 400 BAD_REQUEST (not a 500) and nothing is written', async () => {
    const lenBefore = await redis.client.xlen(STREAM);
    const res = await fetch(url(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', cookie: demoCookie },
      body: '{"userId":77}',
    });
    await expectError(res, 400, 'BAD_REQUEST');
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore);
  });

  it.each([
    ['starRating 6', { userId: 77, locationId: 1, starRating: 6 }, ['starRating']],
    ['starRating -1', { userId: 77, locationId: 1, starRating: -1 }, ['starRating']],
    ['starRating 4.5', { userId: 77, locationId: 1, starRating: 4.5 }, ['starRating']],
    ['userId as a string', { userId: '77', locationId: 1, starRating: 5 }, ['userId']],
    ['locationId 0', { userId: 77, locationId: 0, starRating: 5 }, ['locationId']],
    ['a nested object (the original wrote "[object Object]")', { userId: 77, locationId: { id: 1 }, starRating: 5 }, ['locationId']],
    ['every field missing', {}, ['userId', 'locationId', 'starRating']],
    ['an unknown field', { userId: 77, locationId: 1, starRating: 5, comment: 'hi' }, ['comment']],
    ['an array', [1, 2, 3], ['body']],
  ])('when the body has %s, then 400 naming the fields and nothing is written', async (_label, body, fields) => {
    const lenBefore = await redis.client.xlen(STREAM);
    const dbBefore = await redis.client.dbsize();
    await expectError(await post(JSON.stringify(body)), 400, 'VALIDATION_FAILED', fields);
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore);
    expect(await redis.client.dbsize()).toBe(dbBefore);
  });
});

describe('403: checking in as someone else', () => {
  it('when user 77 sends userId 78, then 403 FORBIDDEN and nothing is written', async () => {
    const loc = location();
    const lenBefore = await redis.client.xlen(STREAM);
    const dbBefore = await redis.client.dbsize();
    const res = await checkin(checkinSvc.url, { userId: 78, locationId: loc, starRating: 5 }, demoCookie);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('FORBIDDEN');
    expect(body.error.message).toBeTruthy();
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore);
    expect(await redis.client.dbsize()).toBe(dbBefore);

    // User 78's own checkin at the same place is then still accepted (no marker was left behind).
    const otherCookie = await login(auth.url, OTHER.email, OTHER.password);
    expect((await checkin(checkinSvc.url, { userId: 78, locationId: loc, starRating: 5 }, otherCookie)).status).toBe(202);
  });
});

describe('422: duplicates', () => {
  const DUPLICATE_BODY = { code: 'DUPLICATE_CHECKIN', message: 'Multiple identical checkins are not permitted.' };

  it('when the same (userId, locationId, starRating) is sent again, then 422 with the exact body and the stream grows once', async () => {
    const loc = location();
    const lenBefore = await redis.client.xlen(STREAM);
    expect((await checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 5 }, demoCookie)).status).toBe(202);
    const again = await checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 5 }, demoCookie);
    expect(again.status).toBe(422);
    expect(await again.json()).toEqual({ error: { ...DUPLICATE_BODY, requestId: again.headers.get('x-request-id') } });
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore + 1);
  });

  it('when only the rating or the user differs, then it is not a duplicate', async () => {
    const loc = location();
    const otherCookie = await login(auth.url, OTHER.email, OTHER.password);
    const statuses = [
      (await checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 1 }, demoCookie)).status,
      (await checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 2 }, demoCookie)).status,
      (await checkin(checkinSvc.url, { userId: 78, locationId: loc, starRating: 1 }, otherCookie)).status,
    ];
    expect(statuses).toEqual([202, 202, 202]);
  });

  it('when 10 identical checkins arrive at once, then exactly one 202 and nine 422, and the stream grows by one', async () => {
    const loc = location();
    const lenBefore = await redis.client.xlen(STREAM);
    const responses = await Promise.all(Array.from({ length: 10 }, () => checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 3 }, demoCookie)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 422, 422, 422, 422, 422, 422, 422, 422, 422]);
    expect(await redis.client.xlen(STREAM)).toBe(lenBefore + 1);
    const accepted = responses.find((r) => r.status === 202)!;
    const { id } = (await accepted.json()) as { id: string };
    const [entry] = await redis.client.xrevrange(STREAM, '+', '-', 'COUNT', 1);
    expect(entry![0]).toBe(id);
  });

  it("when a checkin is accepted, then it is remembered in the user's one recent-checkins set, which expires with the duplicate window (default one day)", async () => {
    const loc = location();
    expect((await checkin(checkinSvc.url, { userId: 77, locationId: loc, starRating: 4 }, demoCookie)).status).toBe(202);
    const key = '{ncc:checkins}:recent:77';
    const score = await redis.client.zscore(key, `${loc}:4`);
    expect(Math.abs(Number(score) - Date.now())).toBeLessThan(5_000);
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(86_390);
    expect(ttl).toBeLessThanOrEqual(86_400);
    expect(await redis.client.keys('{ncc:checkins}:dedupe:*')).toEqual([]);
  });
});

describe('logs', () => {
  it('when all of the above has run, then no log line of either service contains a session id, a cookie or the secret', () => {
    const sid = sessionIdOf(demoCookie);
    for (const text of [checkinSvc.logs.text(), auth.logs.text()]) {
      expect(text).not.toContain(sid);
      expect(text).not.toContain('s%3A');
      expect(text).not.toContain(TEST_SECRET);
      expect(text).not.toContain(DEMO.password);
    }
    expect(checkinSvc.logs.find(REJECT_LOG).length).toBeGreaterThan(1000);
  });
});
