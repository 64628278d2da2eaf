/**
 * Hostile input on every route of both services. Each gets a clear 4xx JSON error
 * (or Node's bare 431 for oversized headers), nothing is written to Redis, and the process stays up.
 */
import net from 'node:net';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis } from '@ncc/testing';
import { type StartedService, TEST_SECRET, startStack } from '../support/services.js';
import { tryLogin } from './support.js';

const USER = { id: 1101, email: 'sweep.user@example.com', password: 'sweep-password-1' };

let redis: SpawnedRedis;
let auth: StartedService;
let chk: StartedService;
let cookie: string;
let sid: string;

beforeAll(async () => {
  ({ redis, auth, checkin: chk } = await startStack({ users: [USER] }));
  const login = await tryLogin(auth.url, USER);
  cookie = login.cookie!;
  sid = login.sid!;
});

afterAll(async () => {
  await Promise.all([auth?.close(), chk?.close()]);
  await redis?.stop();
});

type Svc = 'auth' | 'checkin';
interface Target {
  svc: Svc;
  method: string;
  path: string;
  /** Sends the valid session cookie with body rows (so the body, not the session, is what gets judged). */
  withSession: boolean;
}

const HANDLE = 'AAAAAAAAAAAAAAAAAAAAAA';
/** Every route that takes a body, or may: JSON routes and the bodyless state-changing ones. */
const BODY_TARGETS: Target[] = [
  { svc: 'auth', method: 'POST', path: '/login', withSession: false },
  { svc: 'auth', method: 'POST', path: '/logout', withSession: true },
  { svc: 'auth', method: 'POST', path: '/logout-all', withSession: true },
  { svc: 'auth', method: 'DELETE', path: `/sessions/${HANDLE}`, withSession: true },
  { svc: 'checkin', method: 'POST', path: '/api/checkin', withSession: true },
];

/**
 * Every route that reads a session. GET /visits is left out of the cookie rows on purpose: it is the
 * one route that creates an anonymous session for a request without a valid one (its whole point).
 */
const COOKIE_TARGETS: Target[] = [
  { svc: 'auth', method: 'GET', path: '/me', withSession: false },
  { svc: 'auth', method: 'GET', path: '/sessions', withSession: false },
  { svc: 'auth', method: 'GET', path: '/logout', withSession: false },
  { svc: 'auth', method: 'POST', path: '/logout', withSession: false },
  { svc: 'auth', method: 'POST', path: '/logout-all', withSession: false },
  { svc: 'auth', method: 'DELETE', path: `/sessions/${HANDLE}`, withSession: false },
  { svc: 'checkin', method: 'POST', path: '/api/checkin', withSession: false },
];

const json = 'application/json';
const big = (n: number): string => 'a'.repeat(n);
/** A JSON object of exactly `bytes` bytes. */
const jsonOfSize = (bytes: number): string => {
  const shell = '{"pad":""}';
  return `{"pad":"${big(bytes - shell.length)}"}`;
};
let deep = '';
for (let i = 0; i < 2000; i++) deep = `[${deep}]`;

interface BodyCase {
  name: string;
  contentType?: string;
  body: string | Uint8Array;
  expect: number[];
  extraHeaders?: Record<string, string>;
}

const BODY_CASES: BodyCase[] = [
  { name: 'text/plain', contentType: 'text/plain', body: 'hello', expect: [415] },
  { name: 'form-encoded', contentType: 'application/x-www-form-urlencoded', body: 'email=a%40b.c&password=x', expect: [415] },
  { name: 'no content type', body: new TextEncoder().encode('{"email":"a@b.c"}'), expect: [415] },
  { name: 'JSON in a latin1 charset', contentType: 'application/json; charset=latin1', body: '{}', expect: [415] },
  // body-parser accepts the utf-* family; these bytes are not UTF-16 JSON, so they cannot parse.
  { name: 'JSON labelled UTF-16', contentType: 'application/json; charset=utf-16', body: '{}', expect: [400, 415] },
  { name: 'not JSON', contentType: json, body: '{not json', expect: [400] },
  { name: 'null', contentType: json, body: 'null', expect: [400] },
  { name: 'a bare string', contentType: json, body: '"hello"', expect: [400] },
  { name: '1e309', contentType: json, body: '1e309', expect: [400] },
  { name: 'an array', contentType: json, body: '[]', expect: [400] },
  { name: 'an array of objects', contentType: json, body: '[{"email":"a@b.c","password":"x"}]', expect: [400] },
  { name: 'nulls in fields', contentType: json, body: '{"email":null,"password":null,"userId":null,"locationId":null,"starRating":null}', expect: [400] },
  { name: 'infinite numbers', contentType: json, body: '{"userId":1e309,"locationId":1e309,"starRating":1e309}', expect: [400] },
  { name: 'huge numbers', contentType: json, body: '{"userId":1e300,"locationId":123456789012345678901234567890,"starRating":5}', expect: [400] },
  { name: 'negative and fractional numbers', contentType: json, body: '{"userId":-1,"locationId":1.5,"starRating":-0.1}', expect: [400] },
  { name: 'numbers as strings', contentType: json, body: '{"userId":"1101","locationId":"1","starRating":"5"}', expect: [400] },
  { name: '__proto__ pollution', contentType: json, body: '{"__proto__":{"admin":true,"userId":1101}}', expect: [400] },
  { name: 'constructor.prototype pollution', contentType: json, body: '{"constructor":{"prototype":{"admin":true}}}', expect: [400] },
  { name: 'prototype key', contentType: json, body: '{"prototype":{"isAdmin":true}}', expect: [400] },
  { name: 'very long strings', contentType: json, body: JSON.stringify({ email: `${big(9000)}@example.com`, password: big(500) }), expect: [400] },
  {
    name: 'unicode and control characters',
    contentType: json,
    body: '{"email":"\\u0000\\ud800\\u202e@例え.jp","password":"\\u0000","userId":"１１０１"}',
    expect: [400],
  },
  { name: 'deep nesting', contentType: json, body: deep, expect: [400] },
  { name: 'a body of exactly 10 kB', contentType: json, body: jsonOfSize(10 * 1024), expect: [400] },
  { name: 'a body over 10 kB', contentType: json, body: jsonOfSize(10 * 1024 + 1), expect: [413] },
  { name: 'a 1 MB body', contentType: json, body: jsonOfSize(1024 * 1024), expect: [413] },
  { name: 'gzip that is not gzip', contentType: json, body: 'garbage', expect: [400], extraHeaders: { 'content-encoding': 'gzip' } },
  { name: 'an unknown content encoding', contentType: json, body: '{}', expect: [415], extraHeaders: { 'content-encoding': 'x-evil' } },
];

/** What cookie-signature does: `value.` + base64 HMAC-SHA256 without padding. */
const signature = {
  sign: (value: string, secret: string): string => `${value}.${createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')}`,
};

const forgedSid = (): string => `checkinapp=${encodeURIComponent(`s:${signature.sign(sid, 'not-our-secret-not-our-secret-not-ours')}`)}`;
const COOKIE_CASES: { name: string; cookie: () => string }[] = [
  { name: 'forged signature on a real id', cookie: forgedSid },
  { name: 'truncated signed cookie', cookie: () => cookie.slice(0, 20) },
  { name: 'unsigned raw id', cookie: () => `checkinapp=${sid}` },
  {
    name: 'signed with our secret but for an unknown id',
    cookie: () => `checkinapp=${encodeURIComponent(`s:${signature.sign('no-such-session-id-000000000000', TEST_SECRET)}`)}`,
  },
  { name: 'broken percent-encoding', cookie: () => 'checkinapp=%E0%A4%A; other=%' },
  { name: 'empty value', cookie: () => 'checkinapp=' },
  { name: 'no name', cookie: () => '=; ; ;=;' },
  { name: 'a forged cookie shadowing the real one', cookie: () => `checkinapp=s%3Ax.y; ${cookie}` },
  { name: '500 cookie entries', cookie: () => Array.from({ length: 500 }, (_, i) => `c${i}=v${i}`).join('; ') },
  { name: 'an 8 kB cookie value', cookie: () => `checkinapp=s%3A${big(8000)}` },
  { name: 'unicode in the cookie', cookie: () => 'checkinapp=s%3A%F0%9F%98%80.%00' },
];

const urlOf = (svc: Svc): string => (svc === 'auth' ? auth.url : chk.url);

async function expectNothingWritten<T>(action: () => Promise<T>): Promise<T> {
  const before = await redis.client.dbsize();
  const xlen = await redis.client.xlen('ncc:checkins');
  const result = await action();
  expect(await redis.client.dbsize()).toBe(before);
  expect(await redis.client.xlen('ncc:checkins')).toBe(xlen);
  expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
  return result;
}

async function expectJsonError(res: Response, statuses: number[], label: string): Promise<void> {
  expect(statuses, `${label}: got ${res.status}`).toContain(res.status);
  expect(res.headers.get('content-type'), label).toMatch(/^application\/json/);
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof body.error?.code, label).toBe('string');
  expect(typeof body.error?.message, label).toBe('string');
  expect(JSON.stringify(body), label).not.toMatch(/ at |node_modules|Error:/);
}

/** A raw HTTP/1.1 request (fetch cannot send thousands of headers); resolves with the status code. */
function rawStatus(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (match) {
        resolve(Number(match[1]));
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed without a status line: ${data.slice(0, 100)}`)));
    socket.write(head);
  });
}

describe('bad input sweep', () => {
  for (const target of BODY_TARGETS) {
    for (const c of BODY_CASES) {
      it(`when ${target.svc} ${target.method} ${target.path} gets ${c.name}, then ${c.expect.join('/')} JSON and nothing is written`, async () => {
        await expectNothingWritten(async () => {
          const headers: Record<string, string> = { ...(c.contentType ? { 'content-type': c.contentType } : {}), ...(c.extraHeaders ?? {}) };
          if (target.withSession) headers['cookie'] = cookie;
          const res = await fetch(`${urlOf(target.svc)}${target.path}`, { method: target.method, headers, body: c.body });
          await expectJsonError(res, c.expect, `${target.path} ${c.name}`);
        });
      });
    }
  }

  for (const target of COOKIE_TARGETS) {
    it(`when ${target.svc} ${target.method} ${target.path} gets hostile cookies, then no session is found (401, or 200 for an idempotent logout) and nothing is written`, async () => {
      for (const c of COOKIE_CASES) {
        await expectNothingWritten(async () => {
          const res = await fetch(`${urlOf(target.svc)}${target.path}`, { method: target.method, headers: { cookie: c.cookie() } });
          const label = `${target.method} ${target.path} ${c.name}`;
          if (target.path === '/logout') {
            expect(res.status, label).toBe(200);
            expect(await res.json()).toEqual({ status: 'OK' });
          } else {
            await expectJsonError(res, [401], label);
          }
        });
      }
    });
  }

  it('when paths and methods are hostile, then 404/401 JSON and nothing is written', async () => {
    const cases: [Svc, string, string, number[]][] = [
      ['auth', 'PUT', '/login', [404]],
      ['auth', 'PATCH', '/me', [404]],
      ['auth', 'GET', '/login', [404]],
      ['auth', 'DELETE', '/sessions', [404]],
      ['auth', 'DELETE', `/sessions/${encodeURIComponent('../../etc/passwd')}`, [404]],
      ['auth', 'DELETE', '/sessions/%00', [404]],
      ['auth', 'DELETE', `/sessions/${big(5000)}`, [404]],
      ['auth', 'GET', '/login%00', [404]],
      ['auth', 'GET', '/%E0%A4%A', [400, 404]],
      ['checkin', 'GET', '/api/checkin', [404]],
      ['checkin', 'DELETE', '/api/checkin', [404]],
      ['checkin', 'POST', '/api/checkin/../../login', [401, 404]],
    ];
    for (const [svc, method, path, statuses] of cases) {
      await expectNothingWritten(async () => {
        const res = await fetch(`${urlOf(svc)}${path}`, { method, headers: { cookie } });
        await expectJsonError(res, statuses, `${svc} ${method} ${path}`);
      });
    }
  });

  it('when a request has thousands of headers, a 20 kB cookie or a 20 kB URL, then Node answers 431 and the services keep serving', async () => {
    for (const svc of ['auth', 'checkin'] as const) {
      const port = svc === 'auth' ? auth.port : chk.port;
      const path = svc === 'auth' ? '/me' : '/api/checkin';
      await expectNothingWritten(async () => {
        const many = Array.from({ length: 5000 }, (_, i) => `x-h${i}: v`).join('\r\n');
        expect(await rawStatus(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`)).toBe(431);
        const cookies = Array.from({ length: 3000 }, (_, i) => `c${i}=v${i}`).join('; ');
        expect(await rawStatus(port, `POST ${path} HTTP/1.1\r\nHost: x\r\nCookie: ${cookies}\r\nContent-Length: 0\r\n\r\n`)).toBe(431);
        expect(await rawStatus(port, `GET /${big(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)).toBe(431);
      });
    }
  });

  it('when the sweep is over, then both services are healthy and the valid session still works', async () => {
    for (const url of [auth.url, chk.url]) expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${auth.url}/me`, { headers: { cookie } })).status).toBe(200);
  });
});
