/**
 * Data in Redis that is not what the code wrote (hand edits, another program, a bad
 * migration) is treated as "no session" / "invalid login" with a warning — never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionIdOf, sessionKeyOf, type SpawnedRedis } from '@ncc/testing';
import { DEMO, login, type Stack, type StartedService, startStack } from '../support/services.js';
import { call, postJsonTimed } from './helpers.js';

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;
let checkin: StartedService;

const BROKEN = { id: 501, email: 'broken.hash@example.com', password: 'secret123' };
const GARBAGE = { id: 502, email: 'garbage.hash@example.com', password: 'secret123' };

beforeAll(async () => {
  stack = await startStack({ users: [DEMO, BROKEN, GARBAGE] });
  ({ redis, auth, checkin } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const corruptValues: [string, string, RegExp][] = [
  ['invalid JSON', '{"cookie":{"originalMaxAge":86400000},"userId":77,', /not valid JSON/],
  ['a JSON string', '"ncc"', /unexpected shape/],
  ['a JSON array', '[77,"al.appelhof@example.com"]', /unexpected shape/],
  ['a session without its cookie object', '{"userId":77,"email":"al.appelhof@example.com","createdAt":1}', /unexpected shape/],
  ['a session whose userId is a string', '{"cookie":{"originalMaxAge":86400000},"userId":"77","email":"al.appelhof@example.com"}', /unexpected shape/],
];

describe('when a session key holds data the services did not write', () => {
  for (const [label, value, warning] of corruptValues) {
    it(`when it holds ${label}, then /me and checkin answer 401 (not 500) and log a warning`, async () => {
      const cookie = await login(auth.url);
      const key = sessionKeyOf(cookie);
      await redis.client.set(key, value, 'KEEPTTL');
      const keysBefore = await redis.client.dbsize();
      const authWarnings = auth.logs.find(warning).length;
      const checkinWarnings = checkin.logs.find(warning).length;

      const me = await call(`${auth.url}/me`, { headers: { cookie } });
      expect(me.status, me.text).toBe(401);
      expect(me.body).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
      expect(me.headers.getSetCookie()).toEqual([]);

      const accepted = await postJsonTimed(`${checkin.url}/api/checkin`, { userId: DEMO.id, locationId: 9, starRating: 3 }, { cookie });
      expect(accepted.status, accepted.text).toBe(401);
      expect(accepted.body).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });

      // Warned once per service, at level warn, without the session id or the value.
      const authWarning = auth.logs.find(warning).slice(authWarnings);
      const checkinWarning = checkin.logs.find(warning).slice(checkinWarnings);
      expect(authWarning).toHaveLength(1);
      expect(checkinWarning).toHaveLength(1);
      expect(authWarning[0]?.['level']).toBe('warn');
      expect(checkinWarning[0]?.['level']).toBe('warn');
      expect(auth.logs.text() + checkin.logs.text()).not.toContain(sessionIdOf(cookie));
      expect(auth.logs.find('Unhandled error.')).toEqual([]);
      expect(checkin.logs.find('Unhandled error.')).toEqual([]);

      // Nothing was written: no new session, no checkin, the foreign value left as it was.
      expect(await redis.client.dbsize()).toBe(keysBefore);
      expect(await redis.client.exists('ncc:checkins')).toBe(0);
      expect(await redis.client.get(key)).toBe(value);
    });
  }

  it('when the user logs in again with that cookie, then login succeeds with a fresh session', async () => {
    const cookie = await login(auth.url);
    await redis.client.set(sessionKeyOf(cookie), '{oops', 'KEEPTTL');
    const again = await postJsonTimed(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password }, { cookie });
    expect(again.status, again.text).toBe(200);
    const fresh = again.headers
      .getSetCookie()
      .find((c) => c.startsWith('checkinapp='))
      ?.split(';')[0];
    expect(fresh).toBeDefined();
    expect(sessionIdOf(fresh!)).not.toBe(sessionIdOf(cookie));
    expect(await redis.client.exists(sessionKeyOf(fresh!))).toBe(1);
  });
});

describe('when a user record is damaged', () => {
  it('when the user hash has no password field, then login answers the generic 401 INVALID_CREDENTIALS and logs a warning', async () => {
    await redis.client.hdel(`ncc:user:${BROKEN.id}`, 'password');
    const before = auth.logs.find(/no password hash/).length;
    const sessionsBefore = (await redis.client.keys('ncc:session:*')).length;
    const answer = await postJsonTimed(`${auth.url}/login`, { email: BROKEN.email, password: BROKEN.password });
    expect(answer.status, answer.text).toBe(401);
    expect(answer.body).toEqual({ error: { code: 'INVALID_CREDENTIALS', message: 'Invalid login.', requestId: expect.any(String) as string } });
    expect(answer.headers.getSetCookie()).toEqual([]);
    const warnings = auth.logs.find(/no password hash/).slice(before);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', userId: BROKEN.id });
    expect(auth.logs.text()).not.toContain(BROKEN.password);
    expect((await redis.client.keys('ncc:session:*')).length).toBe(sessionsBefore);
  });

  it('when the stored password is not a bcrypt hash, then login answers the same 401 (not 500)', async () => {
    await redis.client.hset(`ncc:user:${GARBAGE.id}`, 'password', 'plain-text-not-a-hash');
    const answer = await postJsonTimed(`${auth.url}/login`, { email: GARBAGE.email, password: 'plain-text-not-a-hash' });
    expect(answer.status, answer.text).toBe(401);
    expect(answer.body).toMatchObject({ error: { code: 'INVALID_CREDENTIALS', message: 'Invalid login.' } });
  });

  it('when the email index points at a missing or non-numeric id, then login answers the same 401 (not 500)', async () => {
    await redis.client.set('ncc:user:email:ghost@example.com', '999999');
    await redis.client.set('ncc:user:email:weird@example.com', 'seventy-seven');
    for (const email of ['ghost@example.com', 'weird@example.com']) {
      const answer = await postJsonTimed(`${auth.url}/login`, { email, password: 'secret123' });
      expect(answer.status, answer.text).toBe(401);
      expect(answer.body).toMatchObject({ error: { code: 'INVALID_CREDENTIALS' } });
    }
    expect(auth.logs.find('Unhandled error.')).toEqual([]);
  });
});
