/**
 * Secrets at start-up: the real `pnpm auth` / `pnpm checkin` processes refuse to run in
 * production without a proper secret, and read it from SESSION_SECRET_FILE (the compose set-up).
 * Process-spawning, so in the e2e suite; the in-process part is cookies-and-secrets.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_SECRET } from '@ncc/session';
import { type SpawnedRedis } from '@ncc/testing';
import { checkin, DEMO, spawnService, type Stack, startStack } from '../support/services.js';
import { checkinBody, tryLogin } from './support.js';

const NEW = 'new-rotation-secret-new-rotation-secret-02';

let stack: Stack;
let redis: SpawnedRedis;

beforeAll(async () => {
  stack = await startStack({ auths: 0, checkins: 0 });
  redis = stack.redis;
});

afterAll(async () => {
  await stack?.close();
});

describe('secrets', () => {
  it('when NODE_ENV=production starts without SESSION_SECRET or with a short entry, then auth and checkin exit 1 naming the problem', async () => {
    const base = { NODE_ENV: 'production', REDIS_URL: redis.url };
    const runs = await Promise.all([
      spawnService('auth', { ...base, SESSION_SECRET: undefined }, { waitFor: null }),
      spawnService('auth', { ...base, SESSION_SECRET: `${NEW},too-short` }, { waitFor: null }),
      spawnService('checkin', { ...base, SESSION_SECRET: '' }, { waitFor: null }),
    ]);
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes).toEqual([1, 1, 1]);
    expect(runs[0].output()).toMatch(/SESSION_SECRET is required when NODE_ENV=production/);
    expect(runs[1].output()).toMatch(/SESSION_SECRET entry 2 is shorter than 32 characters/);
    expect(runs[2].output()).toMatch(/SESSION_SECRET is required when NODE_ENV=production/);
    for (const r of runs) expect(r.output()).not.toMatch(/listening on port/);
  }, 60_000);

  it('when NODE_ENV=production is given the public development secret, then auth and checkin refuse to start naming it', async () => {
    const base = { NODE_ENV: 'production', REDIS_URL: redis.url, SESSION_SECRET: `${NEW},${DEVELOPMENT_SECRET}` };
    const runs = await Promise.all([spawnService('auth', base, { waitFor: null }), spawnService('checkin', base, { waitFor: null })]);
    expect(await Promise.all(runs.map((r) => r.exited))).toEqual([1, 1]);
    for (const r of runs) {
      expect(r.output()).toMatch(/SESSION_SECRET entry 2 is the public development secret/);
      expect(r.output()).not.toMatch(/listening on port/);
    }
  }, 60_000);

  it("when the secret comes from SESSION_SECRET_FILE (the compose set-up), then both services sign and verify with the file's content, trailing newline dropped", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncc-secret-file-'));
    try {
      const file = join(dir, 'session_secret');
      writeFileSync(file, `${NEW}\n`, { mode: 0o400 });
      const env = {
        NODE_ENV: 'production',
        COOKIE_SECURE: 'false',
        REDIS_URL: redis.url,
        SESSION_SECRET: undefined,
        SESSION_SECRET_FILE: file,
        HOST: '127.0.0.1',
      };
      const [a, c] = await Promise.all([spawnService('auth', env), spawnService('checkin', env)]);
      try {
        const { res, cookie } = await tryLogin(a.url);
        expect(res.status).toBe(200);
        expect((await checkin(c.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
        // Signed with exactly the file's secret: a service given it directly accepts the cookie.
        const direct = await stack.start('checkin', { SESSION_SECRET: NEW });
        expect((await checkin(direct.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
        for (const s of [a, c]) expect(s.output()).not.toContain(NEW);
      } finally {
        await Promise.all([a.stop(), c.stop()]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('when SESSION_SECRET_FILE is unreadable, empty, or set together with SESSION_SECRET, then the service exits 1 naming SESSION_SECRET_FILE and never prints a secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncc-secret-file-'));
    try {
      writeFileSync(join(dir, 'empty'), '');
      const base = { NODE_ENV: 'production', REDIS_URL: redis.url, SESSION_SECRET: undefined };
      const runs = await Promise.all([
        spawnService('auth', { ...base, SESSION_SECRET_FILE: join(dir, 'missing') }, { waitFor: null }),
        spawnService('checkin', { ...base, SESSION_SECRET_FILE: join(dir, 'empty') }, { waitFor: null }),
        spawnService('auth', { ...base, SESSION_SECRET_FILE: join(dir, 'empty'), SESSION_SECRET: NEW }, { waitFor: null }),
      ]);
      expect(await Promise.all(runs.map((r) => r.exited))).toEqual([1, 1, 1]);
      expect(runs[0].output()).toMatch(/SESSION_SECRET_FILE: cannot read .*missing \(ENOENT\)/);
      expect(runs[1].output()).toMatch(/SESSION_SECRET_FILE: .*empty is empty/);
      expect(runs[2].output()).toMatch(/SESSION_SECRET_FILE: set either SESSION_SECRET or SESSION_SECRET_FILE, not both/);
      for (const r of runs) {
        expect(r.output()).not.toMatch(/listening on port/);
        expect(r.output()).not.toContain(NEW);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
