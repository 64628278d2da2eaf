/**
 * The Node gateway (what `pnpm start` runs on GATEWAY_PORT) in this process, over real HTTP: in front
 * of recording upstreams, to see exactly what reaches which service and with which headers; in front
 * of the real auth and checkin apps (startStack) with the settings `pnpm start` gives them (TRUST_PROXY
 * 0, no ALLOWED_ORIGINS); and in front of a service that is down or streams. The nginx gateway answers
 * the same route table in test/gateway/nginx.e2e.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type RunningServer, startServer } from '@ncc/service-kit';
import { captureLogs, type CapturedLogs, cookiePair, freePort, postJson } from '@ncc/testing';
import { DEMO, type Stack, startStack } from '../../../test/support/services.js';
import { createGatewayApp, gatewayEnvSchema } from '../src/index.js';
import { expectNotFound, expectPage, readUntil, ROUTE_TABLE, streamingUpstream } from './support.js';

interface Gateway {
  url: string;
  port: number;
  /** What a same-origin page sends: the gateway's own origin. */
  origin: string;
  logs: CapturedLogs;
  close(): Promise<void>;
}

const opened: { close(): Promise<void> }[] = [];

afterAll(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function startGateway(env: Record<string, string>): Promise<Gateway> {
  const config = loadConfig(gatewayEnvSchema, { NODE_ENV: 'test', ...env });
  const logs = captureLogs('gateway');
  const service = createGatewayApp({ config, logger: logs.logger });
  const server: RunningServer = await startServer(service.app, 0, '127.0.0.1', config);
  const gateway = {
    url: server.url,
    port: server.port,
    origin: server.url,
    logs,
    close: async () => {
      await server.close(1000);
      await service.close();
    },
  };
  opened.push(gateway);
  return gateway;
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A stand-in service that records each request and answers `{"upstream": name}` with a cookie. */
async function recordingUpstream(name: string): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'checkinapp=s%3Aid.sig; Path=/; HttpOnly; SameSite=Lax' });
      res.end(JSON.stringify({ upstream: name }));
    });
  });
  return listen(server).then((url) => ({ url, seen }));
}

function listen(server: http.Server): Promise<string> {
  opened.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** A URL where nothing listens: a service that is down. */
async function downUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

describe('the gateway configuration', () => {
  it('when nothing is set, then it listens on 127.0.0.1:8080 in front of auth on 8083 and checkin on 8082', () => {
    const config = loadConfig(gatewayEnvSchema, {});
    expect(config).toMatchObject({ GATEWAY_PORT: 8080, HOST: '127.0.0.1', AUTH_URL: 'http://127.0.0.1:8083', CHECKIN_URL: 'http://127.0.0.1:8082' });
  });

  it('when a setting is bad, then loading fails naming each key; Redis settings are not its business and are not read', () => {
    const refused = (env: Record<string, string>): string[] => {
      try {
        loadConfig(gatewayEnvSchema, env);
        return [];
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return err.issues.map((i) => i.key);
      }
    };
    expect(refused({ GATEWAY_PORT: 'eighty', AUTH_URL: 'ftp://127.0.0.1:8083', CHECKIN_URL: 'http://127.0.0.1:8082/api' })).toEqual([
      'GATEWAY_PORT',
      'AUTH_URL',
      'CHECKIN_URL',
    ]);
    expect(refused({ AUTH_URL: 'http://user:pass@127.0.0.1:8083' })).toEqual(['AUTH_URL']);
    // The base rule between the HTTP timeouts still holds (processEnvSchema keeps it).
    expect(refused({ HTTP_REQUEST_TIMEOUT_MS: '1000', HTTP_HEADERS_TIMEOUT_MS: '2000' })).toEqual(['HTTP_HEADERS_TIMEOUT_MS']);
    expect(refused({ REDIS_URL: 'not-a-url', REDIS_CLUSTER_NODES: 'nonsense' })).toEqual([]);
  });
});

describe('what goes where (recording upstreams)', () => {
  let gateway: Gateway;
  let auth: Awaited<ReturnType<typeof recordingUpstream>>;
  let checkin: Awaited<ReturnType<typeof recordingUpstream>>;

  beforeAll(async () => {
    [auth, checkin] = await Promise.all([recordingUpstream('auth'), recordingUpstream('checkin')]);
    gateway = await startGateway({ AUTH_URL: auth.url, CHECKIN_URL: checkin.url });
  });

  it('when each path of the route table is asked for, then the auth routes reach auth and /api/ reaches checkin with path and query unchanged, the page is served with its headers, and anything else (/metrics too) is a JSON 404 that reached no service', async () => {
    for (const [method, path, destination] of ROUTE_TABLE) {
      const before = { auth: auth.seen.length, checkin: checkin.seen.length };
      const res = await fetch(`${gateway.url}${path}`, { method });
      if (destination === 'auth' || destination === 'checkin') {
        expect(res.status, `${method} ${path}`).toBe(200);
        expect(await res.json(), `${method} ${path}`).toEqual({ upstream: destination });
        const upstream = destination === 'auth' ? auth : checkin;
        expect(upstream.seen.slice(before[destination]).map((s) => `${s.method} ${s.url}`)).toEqual([`${method} ${path}`]);
      } else {
        if (destination === 'page') await expectPage(res, path);
        else await expectNotFound(res, path);
      }
      const other = destination === 'auth' ? 'checkin' : 'auth';
      expect({ auth, checkin }[other].seen.length, `${method} ${path} reached ${other}`).toBe(before[other]);
      if (destination === 'page' || destination === 'none')
        expect(auth.seen.length + checkin.seen.length, `${method} ${path}`).toBe(before.auth + before.checkin);
    }
  });

  it('when a client sends its own X-Forwarded-* headers, then the service sees only what this hop saw: the client address, http, and the Host the client used (kept, not rewritten to the service)', async () => {
    const res = await postJson(
      `${gateway.url}/login`,
      {},
      {
        cookie: 'checkinapp=s%3Asome.cookie',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '443',
        'x-request-id': 'client-chosen-id.1',
      },
    );
    expect(res.status).toBe(200);
    const { headers } = auth.seen.at(-1)!;
    expect(headers).toMatchObject({
      host: `127.0.0.1:${gateway.port}`,
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-host': `127.0.0.1:${gateway.port}`,
      'x-forwarded-proto': 'http',
      'x-forwarded-port': String(gateway.port),
      cookie: 'checkinapp=s%3Asome.cookie',
      'x-request-id': 'client-chosen-id.1',
    });
    // The service's Set-Cookie reaches the browser as the service wrote it.
    expect(res.headers.getSetCookie()).toEqual(['checkinapp=s%3Aid.sig; Path=/; HttpOnly; SameSite=Lax']);
  });

  it('when the client sends no X-Request-Id, then the service gets the gateway’s own request id', async () => {
    const res = await fetch(`${gateway.url}/me`);
    expect(res.status).toBe(200);
    const sent = auth.seen.at(-1)!.headers['x-request-id'];
    expect(sent).toMatch(/^[0-9a-f-]{36}$/);
    // The stand-in sets none of its own, so the response still carries the gateway's.
    expect(res.headers.get('x-request-id')).toBe(sent);
  });

  it('when /gateway/healthz is asked for, then the gateway answers itself', async () => {
    const res = await fetch(`${gateway.url}/gateway/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
});

describe('the real auth and checkin behind the gateway (as `pnpm start` runs them)', () => {
  let stack: Stack;
  let gateway: Gateway;

  beforeAll(async () => {
    stack = await startStack();
    opened.push(stack);
    gateway = await startGateway({ AUTH_URL: stack.auth.url, CHECKIN_URL: stack.checkin.url });
  });

  /** What the page's fetch sends: its own origin. */
  const sameOrigin = (): Record<string, string> => ({ origin: gateway.origin, 'sec-fetch-site': 'same-origin' });

  it('when the page logs in, checks in and logs out on its own origin, then each step succeeds without ALLOWED_ORIGINS: login 200 with the cookie, /me, /sessions, checkin 202, the stats, logout', async () => {
    const login = await postJson(`${gateway.url}/login`, { email: DEMO.email, password: DEMO.password }, sameOrigin());
    expect(login.status).toBe(200);
    expect(await login.json()).toMatchObject({ user: { id: DEMO.id, email: DEMO.email } });
    const setCookie = login.headers.getSetCookie().find((c) => c.startsWith('checkinapp='));
    expect(setCookie).toMatch(/; Path=\/; HttpOnly; SameSite=Lax$/);
    const cookie = cookiePair(login, 'checkinapp')!;

    const me = await fetch(`${gateway.url}/me`, { headers: { cookie, ...sameOrigin() } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ user: { id: DEMO.id } });
    const sessions = await fetch(`${gateway.url}/sessions`, { headers: { cookie, ...sameOrigin() } });
    expect(sessions.status).toBe(200);
    expect(await sessions.json()).toMatchObject({ sessions: [expect.objectContaining({ current: true })] });

    const accepted = await postJson(`${gateway.url}/api/checkin`, { userId: DEMO.id, locationId: 4001, starRating: 5 }, { cookie, ...sameOrigin() });
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toEqual({ id: expect.stringMatching(/^\d+-\d+$/) });
    const stats = await fetch(`${gateway.url}/api/users/${DEMO.id}/stats`, { headers: { cookie, ...sameOrigin() } });
    expect(stats.status).toBe(200);
    expect(await stats.json()).toMatchObject({ userId: DEMO.id });

    const logout = await postJson(`${gateway.url}/logout`, {}, { cookie, ...sameOrigin() });
    expect(logout.status).toBe(200);
    expect((await fetch(`${gateway.url}/me`, { headers: { cookie } })).status).toBe(401);
  });

  it('when a page on another origin posts through the gateway, then the service refuses it (403 CROSS_SITE_REQUEST) and sets no cookie; the same-origin Origin sent to the service directly is foreign there', async () => {
    const foreign = { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' };
    const login = await postJson(`${gateway.url}/login`, { email: DEMO.email, password: DEMO.password }, foreign);
    expect(login.status).toBe(403);
    expect(await login.json()).toMatchObject({ error: { code: 'CROSS_SITE_REQUEST' } });
    expect(login.headers.getSetCookie()).toEqual([]);
    const xlen = await stack.redis.client.xlen('ncc:checkins');
    const refused = await postJson(`${gateway.url}/api/checkin`, { userId: DEMO.id, locationId: 4002, starRating: 1 }, { origin: 'http://evil.example' });
    expect(refused.status).toBe(403);
    expect(await stack.redis.client.xlen('ncc:checkins')).toBe(xlen);
    // It is the Host the gateway keeps that makes the page's origin the service's own: the same
    // Origin straight to auth's port is another origin, and refused.
    const direct = await postJson(`${stack.auth.url}/login`, { email: DEMO.email, password: DEMO.password }, { origin: gateway.origin });
    expect(direct.status).toBe(403);
  });

  it('when a client forges X-Forwarded-For through the gateway, then auth records the real address in its audit log', async () => {
    const login = await postJson(
      `${gateway.url}/login`,
      { email: DEMO.email, password: DEMO.password },
      { ...sameOrigin(), 'x-forwarded-for': '198.51.100.23', 'x-request-id': 'forged-xff-login' },
    );
    expect(login.status).toBe(200);
    const audit = stack.auth.logs.entries().filter((e) => e['event'] === 'login.succeeded' && e['clientRequestId'] === 'forged-xff-login');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ ip: '127.0.0.1' });
  });
});

describe('a service that is down, and a response that streams', () => {
  it('when auth or checkin is down, then the gateway answers 502 with a JSON error of its own (no library text), logs a warning, and keeps serving the page', async () => {
    const gateway = await startGateway({ AUTH_URL: await downUrl(), CHECKIN_URL: await downUrl() });
    for (const [path, name] of [
      ['/login', 'auth'],
      ['/api/checkin', 'checkin'],
    ] as const) {
      const res = await postJson(`${gateway.url}${path}`, { email: DEMO.email, password: DEMO.password });
      expect(res.status, path).toBe(502);
      expect(res.headers.get('content-type')).toMatch(/^application\/json\b/);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({
        error: { code: 'BAD_GATEWAY', message: `The ${name} service is not reachable. Please retry shortly.`, requestId: res.headers.get('x-request-id') },
      });
      expect(text).not.toMatch(/ECONNREFUSED|proxy|127\.0\.0\.1/i);
    }
    expect(gateway.logs.find(/^auth did not answer at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): POST \/login\.$/)).toHaveLength(1);
    expect(gateway.logs.find(/^checkin did not answer/)[0]).toMatchObject({ level: 'warn', requestId: expect.any(String) });
    await expectPage(await fetch(`${gateway.url}/`), '/');
  });

  it('when the live stream sends an event and then waits, then the client has the event at once — chunked, not buffered until the end — and the rest when it comes', async () => {
    const upstream = await streamingUpstream();
    opened.push(upstream);
    const gateway = await startGateway({ CHECKIN_URL: upstream.url });
    const res = await fetch(`${gateway.url}/api/checkins/live`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const reader = res.body!.getReader();
    // The upstream has not finished its response: only a gateway that streams can deliver this.
    expect(await readUntil(reader, 'data: first\n\n', 2000)).toBe('data: first\n\n');
    upstream.next();
    expect(await readUntil(reader, 'data: second\n\n', 2000)).toBe('data: second\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('when the service goes away in the middle of a stream, then the client’s response is cut too (EventSource reconnects) instead of hanging open', async () => {
    const upstream = await streamingUpstream();
    opened.push(upstream);
    const gateway = await startGateway({ CHECKIN_URL: upstream.url });
    const res = await fetch(`${gateway.url}/api/checkins/live`);
    const reader = res.body!.getReader();
    await readUntil(reader, 'data: first\n\n', 2000);
    upstream.kill();
    const ended = await Promise.race([
      reader.read().then(
        (chunk) => (chunk.done ? 'ended' : 'more data'),
        () => 'cut',
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('still open after 2 s'), 2000)),
    ]);
    expect(ended).toBe('cut');
  });
});
