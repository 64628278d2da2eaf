/**
 * The whole flow on a real 3-master Redis Cluster, configured only through REDIS_CLUSTER_NODES:
 * seed (the CLI), login, checkin with the atomic duplicate check, visits, logout; sessions spread
 * over the masters; and MONITOR on every node proves no service sends SCAN/KEYS or a cross-slot command.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, sessionIdOf, sessionKeyOf, sleep, until } from '@ncc/testing';
import { checkin, DEMO, login, ROOT, startAuth, startCheckin, type StartedService } from '../support/services.js';
import { type LocalCluster, startCluster } from './topology.js';

let cluster: LocalCluster;
let auth: StartedService;
let checkinService: StartedService;
let env: Record<string, string>;
const monitors: Redis[] = [];
const seen: { node: number; args: string[] }[] = [];
let dataDir: string;
let watching = true;

/** Which master owns `key`'s slot, from CLUSTER KEYSLOT and CLUSTER SLOTS. */
async function ownerOf(key: string): Promise<number> {
  const slot = await cluster.masters[0]!.client.cluster('KEYSLOT', key);
  const slots = await cluster.masters[0]!.client.cluster('SLOTS');
  const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
  return cluster.masters.findIndex((m) => m.port === range[2]![1]);
}

async function get(url: string, cookie?: string): Promise<Response> {
  return fetch(url, cookie ? { headers: { cookie } } : {});
}

beforeAll(async () => {
  cluster = await startCluster();
  env = { REDIS_CLUSTER_NODES: cluster.nodes };
  // Watch every command every node receives from here on (the services' clients included).
  for (const [index, master] of cluster.masters.entries()) {
    const monitor = await master.client.duplicate().monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (watching) seen.push({ node: index, args });
    });
    monitors.push(monitor);
  }
  dataDir = mkdtempSync(join(tmpdir(), 'ncc-cluster-seed-'));
});

afterAll(async () => {
  for (const m of monitors) m.disconnect();
  await auth?.close();
  await checkinService?.close();
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  it('when the seed CLI runs with REDIS_CLUSTER_NODES, then users and email index land in the cluster', async () => {
    const file = join(dataDir, 'users.json');
    writeFileSync(
      file,
      JSON.stringify({
        users: [
          { id: DEMO.id, firstName: DEMO.firstName, lastName: DEMO.lastName, email: DEMO.email, password: DEMO.password },
          { id: 501, firstName: 'Ada', lastName: 'Cluster', email: 'ada.cluster@example.com', password: 'pw-ada-501' },
          { id: 502, firstName: 'Bo', lastName: 'Cluster', email: 'bo.cluster@example.com', password: 'pw-bo-502' },
        ],
      }),
    );
    const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'services/auth/src/cli/seed.ts', '--file', file], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code, output).toBe(0);
    expect(output).toContain('3 created');

    // The keys live on whichever master owns their slot.
    const owner = cluster.masters[await ownerOf(`ncc:user:${DEMO.id}`)]!;
    expect(await owner.client.hget(`ncc:user:${DEMO.id}`, 'email')).toBe(DEMO.email);
    const indexOwner = cluster.masters[await ownerOf(`ncc:user:email:${DEMO.email}`)]!;
    expect(await indexOwner.client.get(`ncc:user:email:${DEMO.email}`)).toBe(String(DEMO.id));

    // Services, bcrypt and the test share one Node process on a busy machine: a generous command
    // timeout keeps a slow event loop from looking like a slow Redis (node-loss 503s come from
    // refused connections and redirections, not from this timeout).
    // The spread test logs the demo user in 50 more times: above the default cap of 50 sessions per user.
    auth = await startAuth('', { ...env, REDIS_COMMAND_TIMEOUT_MS: '3000', MAX_SESSIONS_PER_USER: '100' });
    checkinService = await startCheckin('', { ...env, REDIS_COMMAND_TIMEOUT_MS: '3000' });
    expect(auth.redis).toBeInstanceOf(Cluster);
    expect(checkinService.redis).toBeInstanceOf(Cluster);
    expect((await get(`${auth.url}/readyz`)).status).toBe(200);
  });

  it('when a user logs in, checks in and repeats the checkin, then 202 then 422, with dedupe key and stream in one slot', async () => {
    const cookie = await login(auth.url);
    const sid = sessionIdOf(cookie);
    const sessionOwner = cluster.masters[await ownerOf(`ncc:session:${sid}`)]!;
    expect(await sessionOwner.client.exists(`ncc:session:${sid}`)).toBe(1);

    const body = { userId: DEMO.id, locationId: 4242, starRating: 5 };
    const first = await checkin(checkinService.url, body, cookie);
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    expect(id).toMatch(/^\d+-\d+$/);

    const duplicate = await checkin(checkinService.url, body, cookie);
    expect(duplicate.status).toBe(422);
    expect(((await duplicate.json()) as { error: { code: string } }).error.code).toBe('DUPLICATE_CHECKIN');

    const other = await checkin(checkinService.url, { ...body, starRating: 4 }, cookie);
    expect(other.status).toBe(202);

    // The hash tag: `{ncc:checkins}:recent:…` hashes like the plain stream key `ncc:checkins`.
    const dedupe = `{ncc:checkins}:recent:${DEMO.id}`;
    const client = cluster.masters[0]!.client;
    const streamSlot = await client.cluster('KEYSLOT', 'ncc:checkins');
    expect(await client.cluster('KEYSLOT', dedupe)).toBe(streamSlot);
    const streamOwner = cluster.masters[await ownerOf('ncc:checkins')]!;
    expect(await streamOwner.client.xlen('ncc:checkins')).toBe(2);
    expect((await streamOwner.client.zrange(dedupe, 0, -1)).sort()).toEqual(['4242:4', '4242:5']);
    expect(await streamOwner.client.ttl(dedupe)).toBeGreaterThan(0);
    const [entry] = await streamOwner.client.xrange('ncc:checkins', id, id);
    expect(entry![1]).toEqual(expect.arrayContaining(['userId', String(DEMO.id), 'locationId', '4242', 'starRating', '5']));
  });

  it('when the visit counter is called, then it counts exactly, and logout ends the session for checkin (401)', async () => {
    const cookie = await login(auth.url, 'ada.cluster@example.com', 'pw-ada-501');
    const sid = sessionIdOf(cookie);
    const counts = await Promise.all(
      Array.from({ length: 6 }, async () => ((await (await get(`${auth.url}/visits`, cookie)).json()) as { visits: number }).visits),
    );
    expect(counts.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    const visitsOwner = cluster.masters[await ownerOf(`ncc:visits:${sid}`)]!;
    expect(await visitsOwner.client.get(`ncc:visits:${sid}`)).toBe('6');

    expect((await checkin(checkinService.url, { userId: 501, locationId: 1, starRating: 3 }, cookie)).status).toBe(202);
    const logout = await fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } });
    expect(logout.status).toBe(200);
    expect(await logout.json()).toEqual({ status: 'OK' });

    const after = await checkin(checkinService.url, { userId: 501, locationId: 2, starRating: 3 }, cookie);
    expect(after.status).toBe(401);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
    const sessionOwner = cluster.masters[await ownerOf(`ncc:session:${sid}`)]!;
    expect(await sessionOwner.client.exists(`ncc:session:${sid}`)).toBe(0);
    expect(await visitsOwner.client.exists(`ncc:visits:${sid}`)).toBe(0);
  });

  it('when 50 users log in, then their sessions are spread over more than one master', async () => {
    const sids: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const cookies = await Promise.all(
        Array.from({ length: 5 }, () =>
          login(auth.url).catch((err: Error) => {
            throw new Error(
              `${err.message}\n${auth.logs
                .entries()
                .filter((e) => e['level'] === 'error')
                .map((e) => JSON.stringify(e))
                .join('\n')}`,
            );
          }),
        ),
      );
      sids.push(...cookies.map(sessionIdOf));
    }
    expect(new Set(sids).size).toBe(50);

    // Stop watching before the test's own per-node SCAN, which is allowed here and only here — once
    // the monitor feeds have caught up: each node's feed is in execution order, so when a marker sent
    // to every node after the logins has arrived, so has every command the logins made.
    const marker = `end-of-logins-${Date.now()}`;
    await Promise.all(cluster.masters.map((m) => m.client.echo(marker)));
    await until('every monitor feed shows the marker', 5000, () =>
      cluster.masters.every((_, node) => seen.some((c) => c.node === node && c.args[0]?.toLowerCase() === 'echo' && c.args[1] === marker)),
    );
    watching = false;
    for (const m of monitors) m.disconnect();
    const perNode: string[][] = [];
    for (const master of cluster.masters) {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await master.client.scan(cursor, 'MATCH', 'ncc:session:*', 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      perNode.push(keys);
    }
    const holding = perNode.filter((keys) => keys.length > 0).length;
    expect(holding).toBeGreaterThan(1);
    // Every new session is on exactly one master; together they are exactly the logged-in ones.
    const all = perNode.flat();
    for (const sid of sids) expect(all.filter((k) => k === `ncc:session:${sid}`)).toHaveLength(1);
    expect(all.length).toBe(sids.length + 1); // + the demo user's session from the checkin test
    console.info(`sessions per master: ${perNode.map((k) => k.length).join(' / ')}`);
  }, 90_000); // 50 bcrypt compares (cost 10) on a shared, busy machine

  it('when a user lists, revokes and ends all sessions on the cluster, then the other cookies get 401 on auth and checkin', async () => {
    const user = { email: 'ada.cluster@example.com', password: 'pw-ada-501', id: 501 };
    const [a, b, c] = [
      await login(auth.url, user.email, user.password),
      await login(auth.url, user.email, user.password),
      await login(auth.url, user.email, user.password),
    ];
    const listed = await get(`${auth.url}/sessions`, a);
    expect(listed.status).toBe(200);
    const { sessions } = (await listed.json()) as { sessions: { handle: string; current: boolean }[] };
    expect(sessions).toHaveLength(3);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    expect(JSON.stringify(sessions)).not.toContain(sessionIdOf(b));

    // Revoke one other session by its handle: that cookie is dead everywhere, the rest live on.
    const other = sessions.find((s) => !s.current)!;
    const revoke = await fetch(`${auth.url}/sessions/${other.handle}`, { method: 'DELETE', headers: { cookie: a } });
    expect(revoke.status).toBe(200);
    const alive = await Promise.all([b, c].map(async (cookie) => (await get(`${auth.url}/me`, cookie)).status));
    expect(alive.sort()).toEqual([200, 401]);

    const all = await fetch(`${auth.url}/logout-all`, { method: 'POST', headers: { cookie: a } });
    expect(all.status).toBe(200);
    for (const cookie of [a, b, c]) {
      expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
      expect((await checkin(checkinService.url, { userId: user.id, locationId: 77, starRating: 1 }, cookie)).status).toBe(401);
      const owner = cluster.masters[await ownerOf(sessionKeyOf(cookie))]!;
      expect(await owner.client.exists(sessionKeyOf(cookie))).toBe(0);
    }
  }, 60_000);

  it('when one (email, IP) keeps failing on the cluster, then the 11th attempt gets 429 with Retry-After, even with the right password', async () => {
    const email = 'ada.cluster@example.com';
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await postJson(`${auth.url}/login`, { email, password: `wrong-${i}` })).status);
    expect(statuses).toEqual(Array(10).fill(401));
    const locked = await postJson(`${auth.url}/login`, { email, password: 'pw-ada-501' });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await locked.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_REQUESTS');
    expect(locked.headers.getSetCookie()).toEqual([]);
  }, 60_000);

  it('when the whole flow ran, then no node ever received SCAN, KEYS or a multi-key command across slots', async () => {
    expect(seen.length).toBeGreaterThan(100);
    const names = seen.map((c) => c.args[0]!.toLowerCase());
    for (const forbidden of ['scan', 'keys', 'mget', 'mset', 'randomkey', 'flushdb', 'flushall', 'rename']) {
      expect(names, forbidden).not.toContain(forbidden);
    }
    // Commands naming several keys: every key of one command in one slot.
    const client = cluster.masters[0]!.client;
    let multiKey = 0;
    for (const { args } of seen) {
      const name = args[0]!.toLowerCase();
      let keys: string[] = [];
      if (name === 'evalsha' || name === 'eval') keys = args.slice(3, 3 + Number(args[2]));
      else if (name === 'del' || name === 'unlink' || name === 'exists') keys = args.slice(1);
      if (keys.length < 2) continue;
      multiKey++;
      const slots = new Set(await Promise.all(keys.map((k) => client.cluster('KEYSLOT', k))));
      expect(slots.size, args.join(' ')).toBe(1);
    }
    // The checkin script (dedupe marker + stream) is the one multi-key command.
    expect(multiKey).toBeGreaterThanOrEqual(3);
  });

  it('when the master holding the checkin stream dies, then answers are fast JSON 503s, and once it is back the same clients recover', async () => {
    const cookie = await login(auth.url);
    const victim = cluster.masters[await ownerOf('ncc:checkins')]!;
    const lengthBefore = await victim.client.xlen('ncc:checkins');
    await victim.kill();
    const killedAt = Date.now();

    const observations: { what: string; status: number; ms: number; code?: string }[] = [];
    const observe = async (what: string, request: () => Promise<Response>): Promise<number> => {
      const started = performance.now();
      const res = await request();
      const body = (await res.json()) as { error?: { code?: string } };
      observations.push({ what, status: res.status, ms: Math.round(performance.now() - started), ...(body.error?.code ? { code: body.error.code } : {}) });
      return res.status;
    };
    let location = 7000;
    let restarted = false;
    let recoveredAt: number | undefined;
    const accepted: number[] = [];
    while (Date.now() - killedAt < 25_000) {
      // Two seconds of outage (past cluster-node-timeout, so the cluster also reports CLUSTERDOWN), then the node returns.
      if (!restarted && Date.now() - killedAt > 2500) {
        await victim.start();
        restarted = true;
      }
      const loc = location++;
      const status = await observe('POST /api/checkin', () => checkin(checkinService.url, { userId: DEMO.id, locationId: loc, starRating: 2 }, cookie));
      if (status === 202) accepted.push(loc);
      if (restarted && status === 202) {
        recoveredAt = Date.now();
        break;
      }
      await sleep(100);
    }
    const slowest = Math.max(...observations.map((o) => o.ms));
    console.info(
      `cluster node loss: ${observations.filter((o) => o.status === 503).length} x 503, slowest ${slowest} ms, recovered ${recoveredAt ? recoveredAt - killedAt : 'never'} ms after SIGKILL`,
    );
    expect(recoveredAt, JSON.stringify(observations)).toBeDefined();
    expect(observations.some((o) => o.status === 503)).toBe(true);
    for (const o of observations) {
      expect(
        [202, 503],
        `${JSON.stringify(o)}\n${checkinService.logs
          .find(/./)
          .filter((e) => e['level'] === 'error')
          .map((e) => JSON.stringify(e))
          .join('\n')}`,
      ).toContain(o.status);
      if (o.status === 503) expect(o.code).toBe('SERVICE_UNAVAILABLE');
      expect(o.ms, JSON.stringify(o)).toBeLessThan(1500);
    }
    // Same processes, nothing lost (AOF), and only the checkins answered 202 were written.
    expect(await victim.client.xlen('ncc:checkins')).toBe(lengthBefore + accepted.length);
    // The auth instance's client recovers by itself too (its own slot cache, its own retries).
    const meStatuses: number[] = [];
    await until(
      'auth answers /me again',
      15_000,
      async () => {
        const status = await observe('GET /me', () => get(`${auth.url}/me`, cookie));
        meStatuses.push(status);
        return status === 200 || undefined;
      },
      200,
    );
    for (const o of observations) {
      expect([200, 202, 503], JSON.stringify(o)).toContain(o.status);
      expect(o.ms, JSON.stringify(o)).toBeLessThan(1500);
    }
  });
});
