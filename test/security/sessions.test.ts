/**
 * A user's sessions — listed with opaque handles, ended one by one or all at once,
 * on a per-user sorted set that only ever uses single-key commands (Redis Cluster safe;
 * docs/decisions/012-session-index.md).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SpawnedRedis } from '@ncc/testing';
import { checkin, type Stack, startAuth, type StartedService, startStack } from '../support/services.js';
import { checkinBody, errorCode, get, send, tryLogin } from './support.js';

const ANN = { id: 801, email: 'ann.sessions@example.com', password: 'ann-password-1' };
const BEN = { id: 802, email: 'ben.sessions@example.com', password: 'ben-password-1' };

interface Listed {
  handle: string;
  createdAt: string;
  lastSeenAt: string;
  userAgent: string | null;
  current: boolean;
}

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;
let auth2: StartedService;
let chk: StartedService;

beforeAll(async () => {
  stack = await startStack({ users: [ANN, BEN], auths: 2, env: { SESSION_TOUCH_INTERVAL_S: '0' } });
  ({ redis, checkin: chk } = stack);
  [auth, auth2] = stack.auths as [StartedService, StartedService];
});

afterAll(async () => {
  await stack?.close();
});

const loginAs = (user: typeof ANN, ua: string, url?: string) => tryLogin(url ?? auth.url, user, { 'user-agent': ua });

async function list(cookie: string | undefined, url = auth.url): Promise<{ res: Response; sessions: Listed[]; text: string }> {
  const res = await get(`${url}/sessions`, cookie);
  const text = await res.text();
  const body = JSON.parse(text) as { sessions?: Listed[] };
  return { res, sessions: body.sessions ?? [], text };
}

describe('session list and revocation', () => {
  it('when a user has logged in on three devices, then GET /sessions lists them with opaque handles, times, user agents and the current flag', async () => {
    const a = await loginAs(ANN, 'Device-A/1.0');
    const b = await loginAs(ANN, 'Device-B/2.0', auth2.url);
    const c = await loginAs(ANN, `Device-C/${'x'.repeat(500)}`);
    expect(await redis.client.zcard(`ncc:user-sessions:${ANN.id}`)).toBe(3);
    expect(await redis.client.ttl(`ncc:user-sessions:${ANN.id}`)).toBeGreaterThan(7 * 86_400 - 10);

    const { res, sessions, text } = await list(b.cookie);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(sessions).toHaveLength(3);
    expect(sessions.filter((s) => s.current).map((s) => s.userAgent)).toEqual(['Device-B/2.0']);
    expect(sessions.map((s) => s.userAgent?.slice(0, 8)).sort()).toEqual(['Device-A', 'Device-B', 'Device-C']);
    expect(sessions.find((s) => s.userAgent?.startsWith('Device-C'))!.userAgent!.length).toBe(200);
    for (const s of sessions) {
      expect(s.handle).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Date.parse(s.createdAt)).toBeGreaterThan(Date.now() - 60_000);
      expect(Date.parse(s.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(s.createdAt));
    }
    // Never the raw id, in any form.
    for (const sid of [a.sid, b.sid, c.sid]) expect(text).not.toContain(sid!);
    expect((await get(`${auth.url}/sessions`)).status).toBe(401);
  });

  it('when a session is used on checkin, then its last-seen time moves; when it logs out or its key expires, then it leaves the list (lazily for expiry)', async () => {
    const a = await loginAs(BEN, 'Ben-A');
    const b = await loginAs(BEN, 'Ben-B');
    const c = await loginAs(BEN, 'Ben-C');
    const key = `ncc:user-sessions:${BEN.id}`;
    const seenAtLogin = Number(await redis.client.zscore(key, a.sid!));
    // The score is a time in ms: let the clock pass it, so a touch can only move it forward.
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(seenAtLogin));
    expect((await checkin(chk.url, checkinBody(BEN.id), a.cookie)).status).toBe(202);
    // The checkin service touches the session after its read without waiting: poll for it to land.
    await vi.waitFor(async () => expect(Number(await redis.client.zscore(key, a.sid!))).toBeGreaterThan(seenAtLogin), { timeout: 2000 });

    expect((await send(`${auth.url}/logout`, 'POST', { cookie: b.cookie! })).status).toBe(200);
    expect(await redis.client.zscore(key, b.sid!)).toBeNull();

    // The session key expires (here: deleted behind the service's back); the index still names it…
    await redis.client.del(`ncc:session:${c.sid}`);
    expect(await redis.client.zscore(key, c.sid!)).not.toBeNull();
    // …until the next listing cleans it up.
    const { sessions } = await list(a.cookie);
    expect(sessions.map((s) => s.userAgent)).toEqual(['Ben-A']);
    expect(await redis.client.zrange(key, 0, -1)).toEqual([a.sid]);
  });

  it('when DELETE /sessions/:handle names another of my sessions, then it ends at once on both services; unknown or foreign handles get 404', async () => {
    const mine = await loginAs(ANN, 'Keep');
    const other = await loginAs(ANN, 'Revoke-me');
    const bens = await loginAs(BEN, 'Bens-device');
    const target = (await list(mine.cookie)).sessions.find((s) => s.userAgent === 'Revoke-me')!;
    const bensHandle = (await list(bens.cookie)).sessions.find((s) => s.current)!.handle;

    const res = await send(`${auth.url}/sessions/${target.handle}`, 'DELETE', { cookie: mine.cookie! });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'OK' });
    expect(await redis.client.exists(`ncc:session:${other.sid}`)).toBe(0);
    expect(await redis.client.zscore(`ncc:user-sessions:${ANN.id}`, other.sid!)).toBeNull();
    expect((await get(`${auth2.url}/me`, other.cookie)).status).toBe(401);
    expect((await checkin(chk.url, checkinBody(ANN.id), other.cookie)).status).toBe(401);
    expect((await get(`${auth.url}/me`, mine.cookie)).status).toBe(200);

    for (const handle of [target.handle, bensHandle, 'A'.repeat(22), 'not-a-handle', encodeURIComponent(other.sid!)]) {
      const missing = await send(`${auth.url}/sessions/${handle}`, 'DELETE', { cookie: mine.cookie! });
      expect(missing.status).toBe(404);
      expect(errorCode(await missing.json())).toBe('SESSION_NOT_FOUND');
    }
    // Ben's session was not touched by Ann's attempt.
    expect((await get(`${auth.url}/me`, bens.cookie)).status).toBe(200);
    expect((await send(`${auth.url}/sessions/${bensHandle}`, 'DELETE')).status).toBe(401);
  });

  it('when I delete my current session by handle, then its cookie is cleared and it gets 401', async () => {
    const me = await loginAs(BEN, 'Self');
    const handle = (await list(me.cookie)).sessions.find((s) => s.current)!.handle;
    const res = await send(`${auth.url}/sessions/${handle}`, 'DELETE', { cookie: me.cookie! });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().join()).toMatch(/checkinapp=;.*Expires=Thu, 01 Jan 1970/);
    expect((await get(`${auth.url}/me`, me.cookie)).status).toBe(401);
  });

  it('when POST /logout-all, then every session of the user ends (401 on auth and checkin) and other users keep theirs', async () => {
    const cookies = [await loginAs(ANN, 'L1'), await loginAs(ANN, 'L2', auth2.url), await loginAs(ANN, 'L3')];
    const bens = await loginAs(BEN, 'Ben-stays');
    const live = (await list(cookies[0]!.cookie)).sessions.length;
    const res = await send(`${auth2.url}/logout-all`, 'POST', { cookie: cookies[1]!.cookie! });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'OK', ended: live });
    expect(res.headers.getSetCookie().join()).toMatch(/checkinapp=;/);
    for (const c of cookies) {
      expect(await redis.client.exists(`ncc:session:${c.sid}`)).toBe(0);
      expect((await get(`${auth.url}/me`, c.cookie)).status).toBe(401);
      expect((await checkin(chk.url, checkinBody(ANN.id), c.cookie)).status).toBe(401);
    }
    expect(await redis.client.zcard(`ncc:user-sessions:${ANN.id}`)).toBe(0);
    expect((await get(`${auth.url}/me`, bens.cookie)).status).toBe(200);
    expect((await send(`${auth.url}/logout-all`, 'POST')).status).toBe(401);
  });

  it('when the session index cannot be written, then the login fails (5xx), no cookie and no session key (never an unrevocable session)', async () => {
    await redis.client.call('ACL', 'SETUSER', 'noindex', 'on', '>noindex-pass', '~ncc:session:*', '~ncc:user:*', '~ncc:visits:*', '~ncc:ratelimit:*', '+@all');
    const svc = await startAuth(redis.url.replace('redis://', 'redis://noindex:noindex-pass@'));
    try {
      const before = await redis.client.dbsize();
      const res = await loginAs(BEN, 'No-index', svc.url);
      // NOPERM is a misconfiguration, not an outage: a generic 500 (an outage would be 503).
      expect(res.res.status).toBe(500);
      expect(errorCode(res.body)).toBe('INTERNAL');
      expect(res.res.headers.getSetCookie()).toEqual([]);
      expect(await redis.client.dbsize()).toBe(before);
    } finally {
      await svc.close();
    }
  });

  it('when the session features run, then Redis sees only single-key commands (no KEYS, SCAN or multi-key commands): Cluster-safe', async () => {
    const monitor = await redis.client.monitor();
    const commands: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args));
    try {
      const x = await loginAs(ANN, 'M1');
      const y = await loginAs(ANN, 'M2');
      await checkin(chk.url, checkinBody(ANN.id), x.cookie);
      const handle = (await list(x.cookie)).sessions.find((s) => !s.current)!.handle;
      await send(`${auth.url}/sessions/${handle}`, 'DELETE', { cookie: x.cookie! });
      await send(`${auth.url}/logout-all`, 'POST', { cookie: x.cookie! });
      expect((await get(`${auth.url}/me`, y.cookie)).status).toBe(401);
      // The feed is in execution order: once a marker sent after the services' commands shows up,
      // every command they sent before it is in `commands` (the services' own round trips too).
      await Promise.all(stack.auths.concat(chk).map((s) => s.redis.ping()));
      const marker = `end-of-session-features-${Date.now()}`;
      await redis.client.echo(marker);
      await vi.waitFor(() => expect(commands.some((c) => c[0]?.toLowerCase() === 'echo' && c[1] === marker)).toBe(true), { timeout: 2000 });
    } finally {
      monitor.disconnect();
    }
    const names = commands.map((c) => c[0]!.toLowerCase());
    expect(names).toContain('zadd');
    expect(names).toContain('zrange');
    for (const forbidden of ['keys', 'scan', 'mget', 'mset', 'sunion', 'zunionstore', 'rename']) expect(names).not.toContain(forbidden);
    for (const args of commands.filter((c) => ['del', 'exists', 'unlink', 'touch'].includes(c[0]!.toLowerCase()))) expect(args).toHaveLength(2);
  });
});
