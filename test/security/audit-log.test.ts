/**
 * One audit entry (docs/decisions/014-audit-log.md) per security event, with request id, user id or email, client IP and
 * a salted hash of the session id — and never a password, a raw session id or a cookie in any log line.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis } from '@ncc/testing';
import { type Stack, type StartedService, startStack } from '../support/services.js';
import { get, send, tryLogin } from './support.js';

const PASSWORD = `Uniq-${randomUUID()}`;
const WRONG = `Wrong-${randomUUID()}`;
const USER = { id: 1001, email: 'audit.user@example.com', password: PASSWORD };

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;

beforeAll(async () => {
  stack = await startStack({ users: [USER], checkins: 0, env: { LOGIN_MAX_FAILS_PER_EMAIL_IP: '1' } });
  ({ redis, auth } = stack);
});

afterAll(async () => {
  await stack?.close();
});

type Entry = Record<string, unknown>;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const audits = (): Entry[] => auth.logs.entries().filter((e) => e['audit'] === true);
const rid = (name: string): Record<string, string> => ({ 'x-request-id': `audit-${name}` });

describe('audit log', () => {
  it('when a user logs in, fails, is rate-limited, logs out, revokes a session and logs out everywhere, then each event is logged once with its fields and no secret is logged', async () => {
    const ok = await tryLogin(auth.url, USER, rid('login-ok'));
    expect(ok.res.status).toBe(200);
    expect((await tryLogin(auth.url, { email: USER.email, password: WRONG }, rid('login-bad'))).res.status).toBe(401);
    expect((await tryLogin(auth.url, { email: USER.email, password: WRONG }, rid('login-limited'))).res.status).toBe(429);
    expect((await send(`${auth.url}/logout`, 'POST', { cookie: ok.cookie!, ...rid('logout') })).status).toBe(200);

    // The (email, IP) pair is locked now; clear its counter, as the end of its window would, to go on.
    await redis.client.del(`ncc:ratelimit:login:fails-email-ip:${USER.email}|127.0.0.1`);
    const keep = await tryLogin(auth.url, USER, rid('login-keep'));
    const gone = await tryLogin(auth.url, USER, rid('login-gone'));
    const list = (await (await get(`${auth.url}/sessions`, keep.cookie)).json()) as { sessions: { handle: string; current: boolean }[] };
    const handle = list.sessions.find((s) => !s.current && s.handle)!.handle;
    expect((await send(`${auth.url}/sessions/${handle}`, 'DELETE', { cookie: keep.cookie!, ...rid('revoke') })).status).toBe(200);
    expect((await send(`${auth.url}/logout-all`, 'POST', { cookie: keep.cookie!, ...rid('logout-all') })).status).toBe(200);

    const byRequest = (id: string): Entry[] => audits().filter((e) => e['clientRequestId'] === `audit-${id}`);
    const one = (id: string): Entry => {
      const entries = byRequest(id);
      expect(entries).toHaveLength(1);
      return entries[0]!;
    };
    const hash = /^[0-9a-f]{24}$/;
    const ip = '127.0.0.1';

    const loginOk = one('login-ok');
    expect(loginOk).toMatchObject({ event: 'login.succeeded', userId: USER.id, ip, level: 'info' });
    expect(loginOk['sessionHash']).toMatch(hash);
    expect(one('login-bad')).toMatchObject({ event: 'login.failed', email: USER.email, ip });
    expect(one('login-limited')).toMatchObject({ event: 'login.rate_limited', email: USER.email, ip });
    const logout = one('logout');
    expect(logout).toMatchObject({ event: 'logout', userId: USER.id, ip });
    // Same session, same hash: the entries correlate without naming the session.
    expect(logout['sessionHash']).toBe(loginOk['sessionHash']);
    const revoked = one('revoke');
    expect(revoked).toMatchObject({ event: 'session.revoked', userId: USER.id, ip, current: false });
    expect(revoked['sessionHash']).toBe(one('login-gone')['sessionHash']);
    const all = one('logout-all');
    expect(all).toMatchObject({ event: 'logout_all', userId: USER.id, ip, ended: 1 });
    expect(all['sessionHash']).toBe(one('login-keep')['sessionHash']);

    const counts = new Map<string, number>();
    for (const e of audits()) counts.set(String(e['event']), (counts.get(String(e['event'])) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({
      'login.succeeded': 3,
      'login.failed': 1,
      'login.rate_limited': 1,
      logout: 1,
      'session.revoked': 1,
      logout_all: 1,
    });

    const text = auth.logs.text();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(WRONG);
    for (const r of [ok, keep, gone]) {
      expect(text).not.toContain(r.sid!);
      expect(text).not.toContain(r.cookie!.split('=')[1]!);
    }
  });

  it('when a client sends its own X-Request-Id, then the audit entry carries a server-generated requestId (the X-Request-Id answered) and the client value only as clientRequestId', async () => {
    const clientId = 'attacker-chosen-id';
    const login = await tryLogin(auth.url, USER, { 'x-request-id': clientId });
    expect(login.res.status).toBe(200);
    const answered = login.res.headers.get('x-request-id');
    expect(answered).toMatch(UUID);
    expect(answered).not.toBe(clientId);

    const entries = audits().filter((e) => e['clientRequestId'] === clientId);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ event: 'login.succeeded', userId: USER.id, requestId: answered, clientRequestId: clientId });
    // No entry at all (audit or not) was filed under the client's id.
    expect(auth.logs.entries().filter((e) => e['requestId'] === clientId)).toEqual([]);
    // Every line of that request has our id next to the client's.
    const lines = auth.logs.entries().filter((e) => e['requestId'] === answered);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line['clientRequestId']).toBe(clientId);
  });

  it('when the client X-Request-Id is over 128 characters or has characters outside [A-Za-z0-9._:-], then it is not recorded at all and the request still gets its own id', async () => {
    const hostile = ['a'.repeat(500), 'b'.repeat(129), '<script>alert(1)</script>', 'id with spaces', 'quoted"id"', "x-id'--", 'semi;colon', 'comma,id'];
    for (const value of hostile) {
      const login = await tryLogin(auth.url, USER, { 'x-request-id': value });
      expect(login.res.status).toBe(200);
      const answered = login.res.headers.get('x-request-id');
      expect(answered).toMatch(UUID);
      const entry = audits().find((e) => e['requestId'] === answered);
      expect(entry).toMatchObject({ event: 'login.succeeded', userId: USER.id });
      expect(entry).not.toHaveProperty('clientRequestId');
    }
    const text = auth.logs.text();
    expect(text).not.toContain('a'.repeat(500));
    expect(text).not.toContain('b'.repeat(129));
    expect(text).not.toContain('<script>');
    expect(text).not.toContain('id with spaces');
    expect(text).not.toContain('quoted');
    expect(text).not.toContain('semi;colon');
    // The longest id that is allowed is kept whole.
    const longest = `${'c'.repeat(120)}.:_-AZ09`;
    const kept = await tryLogin(auth.url, USER, { 'x-request-id': longest });
    expect(audits().find((e) => e['requestId'] === kept.res.headers.get('x-request-id'))).toMatchObject({ clientRequestId: longest });
  });
});
