/**
 * Prometheus metrics (issue 16): each service's registry served on its own listener, scraped over real
 * HTTP after a scripted flow against real services on a real redis-server; exact deltas, route
 * patterns instead of URLs, and no personal data in any label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startMetricsServer } from '@ncc/service-kit';
import { cookiePair, metricValue, postJson, type Sample, scrape, until } from '@ncc/testing';
import { checkin, DEMO, login, type Stack, type StartedService, startStack } from '../support/services.js';
import { get, send } from '../security/support.js';

const OTHER = { id: 78, email: 'mia.metrics@example.com', password: 'mia-password-1' };

let stack: Stack;
const servers: RunningServer[] = [];
const urls = { auth: '', checkin: '', processor: '' };

beforeAll(async () => {
  stack = await startStack({
    users: [DEMO, OTHER],
    processors: 1,
    authEnv: { LOGIN_MAX_FAILS_PER_EMAIL_IP: '2' },
    checkinEnv: { CHECKIN_RATE_LIMIT_PER_USER: '4' },
    processorEnv: { PROCESSOR_TRIM_INTERVAL_MS: '100', PROCESSOR_BLOCK_MS: '100' },
  });
  const serve = async (service: StartedService): Promise<string> => {
    const server = await startMetricsServer(service.metrics, 0, '127.0.0.1');
    servers.push(server);
    return `${server.url}/metrics`;
  };
  urls.auth = await serve(stack.auth);
  urls.checkin = await serve(stack.checkin);
  urls.processor = await serve(stack.processors[0]!);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(1000)));
  await stack?.close();
});

/** Each metric's change between two scrapes, by the labels that matter. */
const delta = (before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}): number =>
  metricValue(after, name, labels) - metricValue(before, name, labels);

const checkins = (s: Sample[], outcome: string): number => metricValue(s, 'ncc_checkins_total', { outcome });
const logins = (s: Sample[], outcome: string): number => metricValue(s, 'ncc_logins_total', { outcome });

describe('the metrics listener', () => {
  it('when /metrics is scraped, then it answers Prometheus text with the default Node metrics, and any other path is a JSON 404', async () => {
    const samples = await scrape(urls.checkin);
    const names = new Set(samples.map((s) => s.name));
    for (const name of ['process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) expect(names, name).toContain(name);
    // GC durations have samples only once a collection ran (labelled by kind); the metric is declared from the start.
    expect(await (await fetch(urls.checkin)).text()).toContain('# TYPE nodejs_gc_duration_seconds histogram');
    expect(metricValue(samples, 'ncc_redis_up')).toBe(1);
    const other = await fetch(urls.checkin.replace('/metrics', '/api/checkin'));
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('when the API port is asked for /metrics, then it is a 404: metrics are never served where clients (and the gateway) reach', async () => {
    const res = await get(`${stack.checkin.url}/metrics`);
    expect(res.status).toBe(404);
  });
});

describe('after a scripted flow', () => {
  let before: { auth: Sample[]; checkin: Sample[]; processor: Sample[] };
  let after: typeof before;
  const statuses: Record<string, number[]> = {};

  beforeAll(async () => {
    before = { auth: await scrape(urls.auth), checkin: await scrape(urls.checkin), processor: await scrape(urls.processor) };
    const note = (what: string, status: number): void => {
      (statuses[what] ??= []).push(status);
    };
    // Logins: 1 succeeded; 2 failed then 1 rate limited for the other user (LOGIN_MAX_FAILS_PER_EMAIL_IP=2).
    const cookie = await login(stack.auth.url);
    for (let i = 0; i < 3; i++) note('bad login', (await postJson(`${stack.auth.url}/login`, { email: OTHER.email, password: 'wrong-password' })).status);
    // Checkins: 4 accepted (the rate limit is 4), 1 duplicate, 1 rate limited, 2 unauthenticated, 1 forbidden, 2 invalid.
    for (const locationId of [1, 2, 3, 4]) note('accepted', (await checkin(stack.checkin.url, { userId: DEMO.id, locationId, starRating: 4 }, cookie)).status);
    note('duplicate', (await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 1, starRating: 4 }, cookie)).status);
    note('rate limited', (await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 5, starRating: 4 }, cookie)).status);
    note('unauthenticated', (await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 6, starRating: 4 })).status);
    note('unauthenticated', (await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 6, starRating: 4 }, 'checkinapp=s%3Aforged.sig')).status);
    note('forbidden', (await checkin(stack.checkin.url, { userId: OTHER.id, locationId: 6, starRating: 4 }, cookie)).status);
    note('invalid', (await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 6, starRating: 9 }, cookie)).status);
    note('invalid', (await send(`${stack.checkin.url}/api/checkin`, 'POST', { cookie, 'content-type': 'text/plain' }, 'hello')).status);
    note('stats', (await get(`${stack.checkin.url}/api/users/${DEMO.id}/stats`, cookie)).status);
    note('not found', (await get(`${stack.checkin.url}/no/such/path/${DEMO.id}`)).status);
    // Sessions ended: one revoked by handle, one logout, then logout-all ending the 2 left.
    const second = await login(stack.auth.url);
    const third = await login(stack.auth.url);
    const fourth = await login(stack.auth.url);
    const listed = (await (await get(`${stack.auth.url}/sessions`, second)).json()) as { sessions: { handle: string; current: boolean }[] };
    const handleOfFourth = (await (await get(`${stack.auth.url}/sessions`, fourth)).json()) as { sessions: { handle: string; current: boolean }[] };
    const revokeHandle = handleOfFourth.sessions.find((s) => s.current)!.handle;
    expect(listed.sessions.map((s) => s.handle)).toContain(revokeHandle);
    note('revoke', (await send(`${stack.auth.url}/sessions/${revokeHandle}`, 'DELETE', { cookie: second })).status);
    note('logout', (await get(`${stack.auth.url}/logout`, third)).status);
    const all = await send(`${stack.auth.url}/logout-all`, 'POST', { cookie });
    note('logout-all', all.status);
    expect(await all.json()).toEqual({ status: 'OK', ended: 2 });
    // The processor applies the 4 accepted checkins; lag and pending are read every 100 ms here.
    await until('the processor to apply 4 entries', 10_000, async () => {
      const s = await scrape(urls.processor);
      return delta(before.processor, s, 'ncc_processor_entries_total', { outcome: 'applied' }) >= 4 && metricValue(s, 'ncc_processor_pending_entries') === 0;
    });
    after = { auth: await scrape(urls.auth), checkin: await scrape(urls.checkin), processor: await scrape(urls.processor) };
  });

  it('when the flow has run, then every request got the status it was meant to', () => {
    expect(statuses).toEqual({
      'bad login': [401, 401, 429],
      accepted: [202, 202, 202, 202],
      duplicate: [422],
      'rate limited': [429],
      unauthenticated: [401, 401],
      forbidden: [403],
      invalid: [400, 415],
      stats: [200],
      'not found': [404],
      revoke: [200],
      logout: [200],
      'logout-all': [200],
    });
  });

  it('when checkins are counted, then ncc_checkins_total moved by exactly 4 accepted, 1 duplicate, 1 rate limited, 2 unauthenticated, 1 forbidden, 2 invalid, 0 unavailable', () => {
    const moved = Object.fromEntries(
      ['accepted', 'duplicate', 'forbidden', 'unauthenticated', 'invalid', 'rate_limited', 'unavailable'].map((o) => [
        o,
        checkins(after.checkin, o) - checkins(before.checkin, o),
      ]),
    );
    expect(moved).toEqual({ accepted: 4, duplicate: 1, forbidden: 1, unauthenticated: 2, invalid: 2, rate_limited: 1, unavailable: 0 });
  });

  it('when logins are counted, then ncc_logins_total moved by 4 succeeded, 2 failed, 1 rate limited, and ncc_sessions_revoked_total by 4 (revoke 1, logout 1, logout-all 2)', () => {
    const moved = Object.fromEntries(['succeeded', 'failed', 'rate_limited', 'unavailable'].map((o) => [o, logins(after.auth, o) - logins(before.auth, o)]));
    expect(moved).toEqual({ succeeded: 4, failed: 2, rate_limited: 1, unavailable: 0 });
    expect(delta(before.auth, after.auth, 'ncc_sessions_revoked_total')).toBe(4);
  });

  it('when requests are timed, then http_request_duration_seconds counts them by method, route pattern and status — /api/users/:id/stats, not the URL; "unmatched" for a 404', () => {
    const count = (labels: Record<string, string>): number => delta(before.checkin, after.checkin, 'http_request_duration_seconds_count', labels);
    expect(count({ method: 'POST', route: '/api/checkin', status_code: '202' })).toBe(4);
    expect(count({ method: 'POST', route: '/api/checkin', status_code: '401' })).toBe(2);
    expect(count({ method: 'GET', route: '/api/users/:id/stats', status_code: '200' })).toBe(1);
    expect(count({ method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1);
    const routes = new Set(after.checkin.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels['route']));
    expect([...routes].filter((r) => /\d/.test(r ?? ''))).toEqual([]);
    // The histogram's buckets are cumulative and end at the count.
    const inf = metricValue(after.checkin, 'http_request_duration_seconds_bucket', { method: 'POST', route: '/api/checkin', status_code: '202', le: '+Inf' });
    expect(inf).toBe(metricValue(after.checkin, 'http_request_duration_seconds_count', { method: 'POST', route: '/api/checkin', status_code: '202' }));
  });

  it('when Redis commands are timed, then ncc_redis_command_duration_seconds counts the accept script (evalsha) once per checkin that reached it', () => {
    // 4 accepted + 1 duplicate + 1 rate limited ran the script; 401/403/400/415 never reached Redis's script.
    expect(delta(before.checkin, after.checkin, 'ncc_redis_command_duration_seconds_count', { command: 'evalsha' })).toBe(6);
    expect(metricValue(after.checkin, 'ncc_redis_command_duration_seconds_count', { command: 'get' })).toBeGreaterThan(0);
  });

  it('when the processor has caught up, then ncc_processor_entries_total counts 4 applied, and lag and pending are 0', () => {
    expect(delta(before.processor, after.processor, 'ncc_processor_entries_total', { outcome: 'applied' })).toBe(4);
    expect(delta(before.processor, after.processor, 'ncc_processor_entries_total', { outcome: 'dead_lettered' })).toBe(0);
    expect(metricValue(after.processor, 'ncc_processor_entries_total', { outcome: 'claimed' })).toBe(0);
    expect(metricValue(after.processor, 'ncc_processor_lag_entries')).toBe(0);
    expect(metricValue(after.processor, 'ncc_processor_pending_entries')).toBe(0);
    expect(metricValue(after.processor, 'ncc_redis_up')).toBe(1);
  });

  it('when every label of every scrape is read, then none holds a user id, an email, an IP or a session id', async () => {
    const cookie = cookiePair(await postJson(`${stack.auth.url}/login`, { email: DEMO.email, password: DEMO.password }), 'checkinapp')!;
    const sid = decodeURIComponent(cookie.split('=')[1]!).slice(2).split('.')[0]!;
    for (const samples of [...Object.values(after), await scrape(urls.auth)]) {
      for (const value of samples.flatMap((s) => Object.values(s.labels))) {
        expect(value).not.toMatch(/@|127\.0\.0\.1|::1/);
        expect(value).not.toContain(sid);
        expect([String(DEMO.id), String(OTHER.id)]).not.toContain(value);
      }
    }
  });
});

describe('when Redis goes away', () => {
  it('then ncc_redis_up turns 0, a checkin and a login are counted as unavailable (503), and ncc_redis_up is 1 again once Redis is back', async () => {
    const cookie = await login(stack.auth.url);
    const before = { auth: await scrape(urls.auth), checkin: await scrape(urls.checkin) };
    await stack.redis.kill();
    try {
      await until('ncc_redis_up 0 on checkin', 5000, async () => metricValue(await scrape(urls.checkin), 'ncc_redis_up') === 0);
      await until('ncc_redis_up 0 on the processor', 5000, async () => metricValue(await scrape(urls.processor), 'ncc_redis_up') === 0);
      expect((await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 9, starRating: 1 }, cookie)).status).toBe(503);
      expect((await postJson(`${stack.auth.url}/login`, { email: DEMO.email, password: DEMO.password })).status).toBe(503);
      const during = { auth: await scrape(urls.auth), checkin: await scrape(urls.checkin) };
      expect(checkins(during.checkin, 'unavailable') - checkins(before.checkin, 'unavailable')).toBe(1);
      expect(logins(during.auth, 'unavailable') - logins(before.auth, 'unavailable')).toBe(1);
      expect(logins(during.auth, 'failed') - logins(before.auth, 'failed')).toBe(0);
    } finally {
      await stack.redis.restart();
    }
    await until('ncc_redis_up 1 again', 10_000, async () => metricValue(await scrape(urls.checkin), 'ncc_redis_up') === 1);
  });
});
