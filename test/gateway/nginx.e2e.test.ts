/**
 * The nginx gateway of `docker compose up` (deploy/nginx/gateway.conf) in the real nginx binary, in
 * front of real auth and checkin processes started as compose starts them behind it (TRUST_PROXY=1),
 * over real HTTP (test/gateway/nginx.ts: what is changed for the test and why). The same route table
 * and checks as the Node gateway's own tests (services/gateway/test/gateway.test.ts), plus the two
 * old ports. scripts/install-system-deps.sh installs nginx (nginx-light); outside CI a missing binary
 * skips this file (saying so), in CI (CI set) it fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_HEADERS } from '@ncc/gateway';
import { cookiePair, postJson } from '@ncc/testing';
import { expectNotFound, expectPage, readUntil, ROUTE_TABLE, streamingUpstream, type StreamingUpstream } from '../../services/gateway/test/support.js';
import { createUsers, DEMO, type ServiceProcess, useSpawnedServices } from '../support/services.js';
import { NGINX, type NginxGateway, startNginxGateway } from './nginx.js';

const inCi = Boolean(process.env['CI']);
if (!NGINX && !inCi) {
  console.warn('test/gateway/nginx.e2e.test.ts SKIPPED: nginx is not installed (bash scripts/install-system-deps.sh installs nginx-light).');
}

/** The audit entries auth wrote (JSON lines) for the request sent with this X-Request-Id. */
function auditOf(service: ServiceProcess, clientRequestId: string): Record<string, unknown>[] {
  return service
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry['audit'] === true && entry['clientRequestId'] === clientRequestId);
}

describe.skipIf(!NGINX && !inCi)('the nginx gateway (deploy/nginx/gateway.conf) in front of auth and checkin', () => {
  const services = useSpawnedServices('SIGTERM');
  let auth: ServiceProcess;
  let checkin: ServiceProcess;
  let live: StreamingUpstream;
  let nginx: NginxGateway;
  /** What the page's fetch sends: its own origin. */
  const sameOrigin = (): Record<string, string> => ({ origin: nginx.urls.page, 'sec-fetch-site': 'same-origin' });
  let requests = 0;
  /** A fresh X-Request-Id: nginx logs it as request_id, and auth as clientRequestId. */
  const tag = (what: string): string => `nginx-e2e-${what}-${++requests}`;

  beforeAll(async () => {
    if (!NGINX) return;
    await createUsers(services.redis.url, [DEMO]);
    // As docker-compose.yml runs them behind the gateway: one trusted proxy hop, JSON logs.
    const behindGateway = { TRUST_PROXY: '1', LOG_FORMAT: 'json' };
    [auth, checkin, live] = await Promise.all([services.spawn('auth', behindGateway), services.spawn('checkin', behindGateway), streamingUpstream()]);
    // The live stream location points at a stand-in that streams on command (checkin's route is not the subject here).
    nginx = await startNginxGateway({ auth: auth.port, checkin: checkin.port, live: live.port });
  });

  afterAll(async () => {
    await nginx?.stop();
    await live?.close();
  });

  it('when the tests run in CI, then nginx is installed (scripts/install-system-deps.sh)', () => {
    expect(NGINX, 'nginx must be installed in CI (scripts/install-system-deps.sh)').toBeDefined();
  });

  it('when each path of the route table is asked of the page origin, then the auth routes reach auth and /api/ reaches checkin, the page is served with its CSP and headers, and anything else (/metrics too) is a JSON 404 that reached no service', async () => {
    const upstreamOf = { auth: `127.0.0.1:${auth.port}`, checkin: `127.0.0.1:${checkin.port}` };
    for (const [method, path, destination] of ROUTE_TABLE) {
      const id = tag('route');
      const res = await fetch(`${nginx.urls.page}${path}`, { method, headers: { 'x-request-id': id } });
      // nginx writes the access log line once the response is complete: read it to the end first.
      if (destination === 'page') await expectPage(res, path);
      else if (destination === 'none') await expectNotFound(res, path);
      else {
        if (path === '/api/checkins/live') live.next();
        // The service's own answer (401, 415, …), never nginx's.
        expect(res.status, `${method} ${path}`).not.toBe(502);
        await res.arrayBuffer();
      }
      const logged = await nginx.accessLogOf(id);
      expect(logged['uri'], `${method} ${path}`).toBe(path);
      const upstream =
        destination === 'page' || destination === 'none' ? '' : path === '/api/checkins/live' ? `127.0.0.1:${live.port}` : upstreamOf[destination];
      expect(logged['upstream'], `${method} ${path}: where it went`).toBe(upstream);
    }
  });

  it('when the page logs in, checks in and lists its sessions on its own origin, then each step succeeds without ALLOWED_ORIGINS', async () => {
    const login = await postJson(`${nginx.urls.page}/login`, { email: DEMO.email, password: DEMO.password }, sameOrigin());
    expect(login.status).toBe(200);
    expect(login.headers.getSetCookie().find((c) => c.startsWith('checkinapp='))).toMatch(/; Path=\/; HttpOnly; SameSite=Lax$/);
    const cookie = cookiePair(login, 'checkinapp')!;

    const me = await fetch(`${nginx.urls.page}/me`, { headers: { cookie, ...sameOrigin() } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ user: { id: DEMO.id } });
    const sessions = await fetch(`${nginx.urls.page}/sessions`, { headers: { cookie, ...sameOrigin() } });
    expect(sessions.status).toBe(200);
    expect(await sessions.json()).toMatchObject({ sessions: [expect.objectContaining({ current: true })] });
    const accepted = await postJson(`${nginx.urls.page}/api/checkin`, { userId: DEMO.id, locationId: 5001, starRating: 4 }, { cookie, ...sameOrigin() });
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toEqual({ id: expect.stringMatching(/^\d+-\d+$/) });
    const stats = await fetch(`${nginx.urls.page}/api/users/${DEMO.id}/stats`, { headers: { cookie } });
    expect(stats.status).toBe(200);
    // The services' own security headers pass through; the page's are only on the page.
    expect(me.headers.get('content-security-policy')).not.toBe(PAGE_HEADERS['Content-Security-Policy']);
    expect(me.headers.get('cache-control')).toBe('no-store');
  });

  it('when a page on another origin posts through the gateway, then 403 CROSS_SITE_REQUEST and no cookie — also when it claims that origin in X-Forwarded-Host, which nginx overwrites', async () => {
    const foreign = await postJson(`${nginx.urls.page}/login`, { email: DEMO.email, password: DEMO.password }, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({ error: { code: 'CROSS_SITE_REQUEST' } });
    expect(foreign.headers.getSetCookie()).toEqual([]);
    // auth trusts one hop, so it believes X-Forwarded-Host: a client's own would make evil.example "same origin".
    const claimed = await postJson(
      `${nginx.urls.page}/login`,
      { email: DEMO.email, password: DEMO.password },
      { origin: 'http://evil.example', 'x-forwarded-host': 'evil.example', 'sec-fetch-site': 'same-origin' },
    );
    expect(claimed.status).toBe(403);
    const checkinRefused = await postJson(
      `${nginx.urls.page}/api/checkin`,
      { userId: DEMO.id, locationId: 5002, starRating: 1 },
      { origin: 'http://evil.example' },
    );
    expect(checkinRefused.status).toBe(403);
  });

  it('when a client sends its own X-Forwarded-For, then auth (trusting one hop) records the address nginx saw, on the page origin and on the auth port alike', async () => {
    for (const url of [nginx.urls.page, nginx.urls.auth]) {
      const id = tag('xff');
      const login = await postJson(`${url}/login`, { email: DEMO.email, password: DEMO.password }, { 'x-forwarded-for': '203.0.113.77', 'x-request-id': id });
      expect(login.status, url).toBe(200);
      expect(auditOf(auth, id), url).toEqual([expect.objectContaining({ event: 'login.succeeded', ip: '127.0.0.1' })]);
    }
  });

  it('when Postman or curl use the old ports, then 8083 answers as auth and 8082 as checkin did directly: the same login, /me, checkin and health routes', async () => {
    const login = await postJson(`${nginx.urls.auth}/login`, { email: DEMO.email, password: DEMO.password });
    expect(login.status).toBe(200);
    const cookie = cookiePair(login, 'checkinapp')!;
    const [throughGateway, direct] = await Promise.all([nginx.urls.auth, auth.url].map((url) => fetch(`${url}/me`, { headers: { cookie } })));
    expect(throughGateway!.status).toBe(200);
    expect(await throughGateway!.json()).toEqual(await direct!.json());
    expect((await postJson(`${nginx.urls.checkin}/api/checkin`, { userId: DEMO.id, locationId: 5003, starRating: 5 }, { cookie })).status).toBe(202);
    expect((await postJson(`${nginx.urls.checkin}/api/checkin`, { userId: DEMO.id, locationId: 5003, starRating: 5 }, { cookie })).status).toBe(422);
    for (const url of [nginx.urls.auth, nginx.urls.checkin]) {
      const health = await fetch(`${url}/healthz`);
      expect(health.status, url).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
    }
    // The page origin publishes none of that.
    await expectNotFound(await fetch(`${nginx.urls.page}/healthz`), '/healthz');
  });

  it('when the live stream sends an event and then waits, then the browser has the event at once (not buffered until the end), and the rest when it comes', async () => {
    const res = await fetch(`${nginx.urls.page}/api/checkins/live`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    expect(await readUntil(reader, 'data: first\n\n', 3000)).toBe('data: first\n\n');
    live.next();
    expect(await readUntil(reader, 'data: second\n\n', 3000)).toBe('data: second\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('when auth is down, then the page origin and the auth port answer 502 with a JSON error (no nginx page), and the page is still served', async () => {
    expect(await auth.stop()).toBe(0);
    for (const url of [nginx.urls.page, nginx.urls.auth]) {
      const res = await postJson(`${url}/login`, { email: DEMO.email, password: DEMO.password });
      expect(res.status, url).toBe(502);
      expect(res.headers.get('content-type'), url).toMatch(/^application\/json\b/);
      expect(await res.json(), url).toEqual({
        error: { code: 'BAD_GATEWAY', message: expect.any(String), requestId: expect.stringMatching(/^[0-9a-f]{32}$/) },
      });
    }
    await expectPage(await fetch(`${nginx.urls.page}/`), '/');
  });
});
