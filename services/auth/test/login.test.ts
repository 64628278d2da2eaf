/**
 * POST /login over real HTTP against the real auth app and a spawned redis-server: success, session
 * fixation, failed logins that write nothing and cannot be told apart, the 72-byte bcrypt boundary,
 * and every body error.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, keysExcept, postJson, sessionIdOf, sessionKeyOf, type SpawnedRedis } from '@ncc/testing';
import { type CountingHasher, countingHasher, DEMO, login, type Stack, type StartedService, startStack } from '../../../test/support/services.js';
import { createPasswordHasher } from '../src/app.js';

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;

// Multi-byte passwords right at bcrypt's 72-byte limit: 'é' is 2 bytes, '😀' is 4.
const PW_72_TWO_BYTE = 'é'.repeat(36);
const PW_72_FOUR_BYTE = '😀'.repeat(18);
const LONG_USER = { id: 501, email: 'long.password@example.com', password: PW_72_TWO_BYTE };
const EMOJI_USER = { id: 502, email: 'emoji.password@example.com', password: PW_72_FOUR_BYTE };

beforeAll(async () => {
  stack = await startStack({ users: [DEMO, LONG_USER, EMOJI_USER], checkins: 0 });
  ({ redis, auth } = stack);
});

afterAll(async () => {
  await stack?.close();
});

/** Headers that must match between two responses (everything but per-request values). */
function stableHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== 'date' && name !== 'x-request-id') out[name] = value;
  });
  return out;
}

describe('POST /login success', () => {
  it('when the demo user logs in, then 200 with the public profile, a session cookie, and a session key with the user and a one-day TTL', async () => {
    const before = Date.now();
    const res = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({ user: { id: 77, email: DEMO.email, firstName: 'Al', lastName: 'Appelhof' } });
    expect(JSON.stringify(body)).not.toContain('$2');

    const setCookie = res.headers.getSetCookie();
    expect(setCookie).toHaveLength(1);
    expect(setCookie[0]).toMatch(/^checkinapp=s%3A[^;]+;/);
    expect(setCookie[0]).toContain('Path=/');
    expect(setCookie[0]).toContain('HttpOnly');
    expect(setCookie[0]).toContain('SameSite=Lax');
    const cookie = cookiePair(res, 'checkinapp')!;

    const key = sessionKeyOf(cookie);
    expect(await redis.client.exists(key)).toBe(1);
    const stored = JSON.parse((await redis.client.get(key))!) as Record<string, unknown>;
    expect(stored['userId']).toBe(77);
    expect(stored['email']).toBe(DEMO.email);
    expect(stored['createdAt']).toBeGreaterThanOrEqual(before);
    expect(stored['createdAt']).toBeLessThanOrEqual(Date.now());
    expect(JSON.stringify(stored)).not.toContain(DEMO.password);
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThanOrEqual(86_390);
    expect(ttl).toBeLessThanOrEqual(86_400);
  });

  it('when the email differs only in case, then the login still succeeds (emails are case-insensitive)', async () => {
    const res = await postJson(`${auth.url}/login`, { email: DEMO.email.toUpperCase(), password: DEMO.password });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: { id: number } }).user.id).toBe(77);
  });

  it('when a user logs in, then "User <email> logged in." is logged at info and the password appears in no log line', async () => {
    const cookie = await login(auth.url);
    expect(cookie).toBeTruthy();
    const entries = auth.logs.find(`User ${DEMO.email} logged in.`);
    expect(entries.length).toBeGreaterThanOrEqual(1);
    expect(entries[0]!['level']).toBe('info');
    expect(auth.logs.text()).not.toContain(DEMO.password);
    expect(auth.logs.text()).not.toContain(sessionIdOf(cookie));
  });
});

describe('POST /login session fixation', () => {
  it('when the client sends an older valid session cookie, then the login issues a different id and the old key no longer exists', async () => {
    const oldCookie = await login(auth.url);
    const oldKey = sessionKeyOf(oldCookie);
    expect(await redis.client.exists(oldKey)).toBe(1);

    const res = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password }, { cookie: oldCookie });
    expect(res.status).toBe(200);
    const newCookie = cookiePair(res, 'checkinapp')!;
    expect(newCookie).toBeTruthy();
    expect(sessionIdOf(newCookie)).not.toBe(sessionIdOf(oldCookie));
    expect(await redis.client.exists(oldKey)).toBe(0);
    expect(await redis.client.exists(sessionKeyOf(newCookie))).toBe(1);

    // The old cookie is now worthless.
    const me = await fetch(`${auth.url}/me`, { headers: { cookie: oldCookie } });
    expect(me.status).toBe(401);
  });

  it('when an anonymous visit-counter session logs in, then its id and its visit counter are replaced', async () => {
    const visit = await fetch(`${auth.url}/visits`);
    const anonCookie = cookiePair(visit, 'checkinapp')!;
    const anonSid = sessionIdOf(anonCookie);
    expect(await redis.client.exists(`ncc:session:${anonSid}`, `ncc:visits:${anonSid}`)).toBe(2);

    const res = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password }, { cookie: anonCookie });
    expect(res.status).toBe(200);
    expect(sessionIdOf(cookiePair(res, 'checkinapp')!)).not.toBe(anonSid);
    expect(await redis.client.exists(`ncc:session:${anonSid}`, `ncc:visits:${anonSid}`)).toBe(0);
  });
});

describe('POST /login failures', () => {
  it('when the email is unknown or the password is wrong, then both get the identical 401, no cookie, and nothing is written but the failure counters', async () => {
    const keysBefore = await keysExcept(redis.client, 'ncc:ratelimit:');
    const unknown = await postJson(`${auth.url}/login`, { email: 'nobody@example.com', password: DEMO.password });
    const wrong = await postJson(`${auth.url}/login`, { email: DEMO.email, password: 'not-the-password' });

    for (const res of [unknown, wrong]) {
      expect(res.status).toBe(401);
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    const unknownBody = (await unknown.json()) as { error: Record<string, unknown> };
    const wrongBody = (await wrong.json()) as { error: Record<string, unknown> };
    expect(unknownBody).toEqual({
      error: { code: 'INVALID_CREDENTIALS', message: 'Invalid login.', requestId: unknown.headers.get('x-request-id') },
    });
    const { requestId: a, ...unknownRest } = unknownBody.error;
    const { requestId: b, ...wrongRest } = wrongBody.error;
    expect(a).not.toBe(b);
    expect(unknownRest).toEqual(wrongRest);
    expect(stableHeaders(unknown)).toEqual(stableHeaders(wrong));
    expect(await keysExcept(redis.client, 'ncc:ratelimit:')).toEqual(keysBefore);
    expect(auth.logs.text()).not.toContain('not-the-password');
  });

  it('when a failed login carries a valid session cookie, then that session is left as it was and no new cookie is sent', async () => {
    const cookie = await login(auth.url);
    const key = sessionKeyOf(cookie);
    const value = await redis.client.get(key);
    const keysBefore = await keysExcept(redis.client, 'ncc:ratelimit:');
    const res = await postJson(`${auth.url}/login`, { email: DEMO.email, password: 'wrong' }, { cookie });
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.get(key)).toBe(value);
    expect(await keysExcept(redis.client, 'ncc:ratelimit:')).toEqual(keysBefore);
  });

  it('when an unknown email is tried, then exactly one bcrypt compare still runs (against the dummy hash), like a wrong password', async () => {
    // The real auth app with the real bcrypt hasher, counting its calls: the timing defence is a
    // property of the code path, so it is asserted deterministically rather than with a stopwatch.
    let hasher!: CountingHasher;
    const server = await stack.start('auth', {}, { hasher: (config) => (hasher = countingHasher(createPasswordHasher(config))) });
    const t0 = performance.now();
    const unknown = await postJson(`${server.url}/login`, { email: 'nobody-here@example.com', password: 'x-wrong-password' });
    const unknownMs = performance.now() - t0;
    expect(unknown.status).toBe(401);
    expect({ verifies: hasher.calls.verify, dummies: hasher.calls.verifyDummy }).toEqual({ verifies: 0, dummies: 1 });

    const wrong = await postJson(`${server.url}/login`, { email: DEMO.email, password: 'x-wrong-password' });
    expect(wrong.status).toBe(401);
    expect({ verifies: hasher.calls.verify, dummies: hasher.calls.verifyDummy }).toEqual({ verifies: 1, dummies: 1 });
    // A cost-10 compare takes tens of ms; a skipped one would answer in a couple.
    expect(unknownMs).toBeGreaterThan(15);
  });
});

describe('POST /login password length (bcrypt reads only 72 bytes)', () => {
  it('when the password is exactly 72 UTF-8 bytes of 2-byte characters, then it is accepted as input and logs in', async () => {
    expect(Buffer.byteLength(PW_72_TWO_BYTE)).toBe(72);
    const res = await postJson(`${auth.url}/login`, { email: LONG_USER.email, password: PW_72_TWO_BYTE });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: { id: number } }).user.id).toBe(LONG_USER.id);
  });

  it('when the password is exactly 72 UTF-8 bytes of 4-byte characters, then it is accepted as input and logs in', async () => {
    expect(Buffer.byteLength(PW_72_FOUR_BYTE)).toBe(72);
    const res = await postJson(`${auth.url}/login`, { email: EMOJI_USER.email, password: PW_72_FOUR_BYTE });
    expect(res.status).toBe(200);
  });

  it('when a wrong password is exactly 72 bytes, then it is a plain 401 (validated, then compared)', async () => {
    const wrong = 'ü'.repeat(36);
    expect(Buffer.byteLength(wrong)).toBe(72);
    const res = await postJson(`${auth.url}/login`, { email: LONG_USER.email, password: wrong });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_CREDENTIALS');
  });

  it.each([
    ['73 one-byte characters', 'a'.repeat(73)],
    ['the right 72-byte password plus one byte (bcrypt would have truncated it to a match)', `${PW_72_TWO_BYTE}x`],
    ['71 one-byte characters plus one 2-byte character', `${'a'.repeat(71)}é`],
    ['18 four-byte characters plus one more', '😀'.repeat(19)],
  ])('when the password is over 72 bytes (%s), then 400 naming password and no login', async (_label, password) => {
    expect(Buffer.byteLength(password)).toBeGreaterThan(72);
    const dbBefore = await redis.client.dbsize();
    const res = await postJson(`${auth.url}/login`, { email: LONG_USER.email, password });
    expect(res.status).toBe(400);
    expect(res.headers.getSetCookie()).toEqual([]);
    const body = (await res.json()) as { error: { code: string; fields: string[]; message: string } };
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.fields).toEqual(['password']);
    expect(body.error.message).toContain('password');
    expect(await redis.client.dbsize()).toBe(dbBefore);
  });
});

describe('POST /login body errors', () => {
  const post = (body: string, contentType = 'application/json'): Promise<Response> =>
    fetch(`${auth.url}/login`, { method: 'POST', headers: { 'content-type': contentType }, body });

  async function expectError(res: Response, status: number, code: string): Promise<{ error: Record<string, unknown> }> {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.getSetCookie()).toEqual([]);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error['code']).toBe(code);
    expect(body.error['requestId']).toBe(res.headers.get('x-request-id'));
    expect(JSON.stringify(body)).not.toMatch(/at .*\.(js|ts):\d+|SyntaxError|Unexpected token/);
    return body;
  }

  it('when the JSON is malformed, then 400 MALFORMED_JSON without the parser text', async () => {
    const body = await expectError(await post('{"email": "a@example.com", "password": '), 400, 'MALFORMED_JSON');
    expect(body.error['message']).toBe('Request body is not valid JSON.');
  });

  it('when the content type is not JSON, then 415', async () => {
    await expectError(
      await post(`email=${encodeURIComponent(DEMO.email)}&password=secret123`, 'application/x-www-form-urlencoded'),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    await expectError(await post(JSON.stringify({ email: DEMO.email, password: DEMO.password }), 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('when the body is over 10 kB, then 413', async () => {
    const big = JSON.stringify({ email: DEMO.email, password: 'x'.repeat(11 * 1024) });
    await expectError(await post(big), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('when fields fail the schema, then 400 naming each failing field', async () => {
    const both = await expectError(await post(JSON.stringify({ email: 'not-an-email', password: '' })), 400, 'VALIDATION_FAILED');
    expect((both.error['fields'] as string[]).sort()).toEqual(['email', 'password']);
    const missing = await expectError(await post(JSON.stringify({ email: DEMO.email })), 400, 'VALIDATION_FAILED');
    expect(missing.error['fields']).toEqual(['password']);
    const wrongType = await expectError(await post(JSON.stringify({ email: DEMO.email, password: 123456 })), 400, 'VALIDATION_FAILED');
    expect(wrongType.error['fields']).toEqual(['password']);
    const longEmail = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com`;
    expect(longEmail.length).toBeGreaterThan(254);
    const tooLong = await expectError(await post(JSON.stringify({ email: longEmail, password: 'x' })), 400, 'VALIDATION_FAILED');
    expect(tooLong.error['fields']).toEqual(['email']);
  });

  it('when the body has an unknown field, then 400 naming it', async () => {
    const body = await expectError(await post(JSON.stringify({ email: DEMO.email, password: DEMO.password, admin: true })), 400, 'VALIDATION_FAILED');
    expect(body.error['fields']).toEqual(['admin']);
  });

  const postEncoded = (body: Buffer | string, encoding: string): Promise<Response> =>
    fetch(`${auth.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': encoding }, body });

  it('when a gzip body is corrupt, then 400 BAD_REQUEST, not a 500', async () => {
    const body = await expectError(await postEncoded('{"email":"x"}', 'gzip'), 400, 'BAD_REQUEST');
    expect(body.error['message']).toBe('The request could not be read.');
  });

  it('when a gzip body inflates past 10 kB, then 413 (the limit counts inflated bytes)', async () => {
    const bomb = gzipSync(JSON.stringify({ email: DEMO.email, password: ' '.repeat(200_000) }));
    expect(bomb.length).toBeLessThan(10 * 1024);
    await expectError(await postEncoded(bomb, 'gzip'), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('when a valid gzip body is sent, then it is read like a plain one', async () => {
    const res = await postEncoded(gzipSync(JSON.stringify({ email: DEMO.email, password: DEMO.password })), 'gzip');
    expect(res.status).toBe(200);
  });

  it('when the content encoding is unknown, then 415', async () => {
    await expectError(await postEncoded('{}', 'compress'), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('when the body is JSON but not an object, then 400', async () => {
    await expectError(await post('[1,2]'), 400, 'VALIDATION_FAILED');
    await expectError(await post('"just a string"'), 400, 'MALFORMED_JSON');
  });
});
