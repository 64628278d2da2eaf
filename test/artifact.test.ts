/**
 * What the Docker image ships is what this file runs: no engine needed.
 *
 * For each service it runs the Dockerfile's own `pnpm deploy` line into a temp dir (the exact tree the
 * runtime stage copies to /app), then starts that tree with the Dockerfile's CMD (or the compose
 * `command`) and the environment docker-compose.yml gives the service, both read from the files, not
 * copied here. Only REDIS_URL (a spawned redis-server) and the listening ports are overridden. A
 * missing runtime dependency, a workspace package that does not resolve to its dist/, a wrong start
 * command or a compose variable the service rejects fails here instead of on a user's machine.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AUTH_PATHS } from '@ncc/gateway';
import { cookiePair, freePort, postJson, sessionKeyOf, sleep, type SpawnedRedis, spawnRedis, until } from '@ncc/testing';
import { DEMO, ROOT } from './support/services.js';

type Service = 'auth' | 'checkin' | 'processor';
const SERVICES = ['auth', 'checkin', 'processor'] as const;
/** The variable each service takes its port from (docker-compose.yml sets it, the healthcheck reads it). */
const PORT_VAR = { auth: 'AUTH_PORT', checkin: 'CHECKIN_PORT', processor: 'PROCESSOR_PORT' } as const satisfies Record<Service, string>;
type Env = Record<string, string>;

// ---------------------------------------------------------------------------------------------------
// Reading the container files.

interface ComposeService {
  build?: { context?: string; args?: Record<string, string> };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string[] | string };
  volumes?: string[];
}
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

/**
 * Compose variable substitution as `docker compose up` does it with nothing set: `${VAR:-default}` and
 * `${VAR-default}` give the default, `${VAR}` gives "", `$$` is a literal `$`.
 */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (match, _name: string | undefined, fallback: string | undefined) =>
    match === '$$' ? '$' : (fallback ?? ''),
  );
}

function composeService(name: string): ComposeService {
  const service = compose.services[name];
  if (!service) throw new Error(`docker-compose.yml has no service "${name}"`);
  return service;
}

function composeEnv(name: string): Env {
  const raw = composeService(name).environment ?? {};
  const pairs: [string, string][] = Array.isArray(raw)
    ? raw.map((line) => {
        const at = line.indexOf('=');
        return [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v)]));
}

/** The runtime stage: everything after the last FROM. */
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

/** `ENV K=V` lines of the runtime stage (the image's environment before compose adds its own). */
function imageEnv(): Env {
  const env: Env = {};
  for (const match of runtimeStage.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of match[1]!.trim().split(/\s+/)) {
      const at = pair.indexOf('=');
      env[pair.slice(0, at)] = pair.slice(at + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

/** The command the container runs: compose `command`, else the image's CMD (exec form). */
function containerCommand(name: string): string[] {
  const command = composeService(name).command;
  if (Array.isArray(command)) return command.map(interpolate);
  if (typeof command === 'string') throw new Error(`use the exec form (a list) for ${name}'s command`);
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(runtimeStage);
  if (!cmd) throw new Error('the Dockerfile runtime stage has no exec-form CMD');
  return JSON.parse(cmd[1]!) as string[];
}

/** Which image (which deployed service) a compose service runs, from its build args. */
function imageOf(name: string): Service {
  const service = composeService(name).build?.args?.['SERVICE'];
  if (!SERVICES.includes(service as Service)) throw new Error(`${name}: build.args.SERVICE must be one of ${SERVICES.join(', ')}`);
  return service as Service;
}

/** The Dockerfile's check of its SERVICE build arg (the RUN line that names the allowed values). */
function serviceGuard(): string {
  const line = /^RUN\s+(.*SERVICE must be.*)$/m.exec(dockerfile);
  if (!line) throw new Error('the Dockerfile has no RUN line checking SERVICE');
  return line[1]!;
}

/** The Dockerfile's `pnpm deploy` line, aimed at `target` instead of /out. */
function deployCommand(target: string): string {
  const line = /^RUN\s+(pnpm deploy\s.*?)\s+\/out\s*$/m.exec(dockerfile);
  if (!line) throw new Error('the Dockerfile has no `RUN pnpm deploy … /out` line');
  return `${line[1]} ${JSON.stringify(target)}`;
}

// ---------------------------------------------------------------------------------------------------
// Building and running the artifacts.

const BUILD_CHAIN = ['packages/service-kit', 'packages/session', 'packages/checkins', 'services/auth', 'services/checkin', 'services/processor'];

function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** .ci/run builds before testing; rebuild here only if dist/ is missing or older than src/. */
function ensureBuilt(): void {
  const stale = BUILD_CHAIN.filter((pkg) => {
    const dist = newestMtime(join(ROOT, pkg, 'dist'));
    return dist === 0 || newestMtime(join(ROOT, pkg, 'src')) > dist;
  });
  if (stale.length === 0) return;
  const filters = SERVICES.flatMap((service) => ['--filter', `@ncc/${service}...`]);
  const result = spawnSync('pnpm', [...filters, 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`pnpm build failed (${stale.join(', ')} stale):\n${result.stdout}\n${result.stderr}`);
}

function deploy(service: Service, target: string): void {
  // Run through a shell exactly as the Dockerfile's RUN does, with its build arg in the environment.
  const result = spawnSync('sh', ['-c', deployCommand(target)], { cwd: ROOT, env: { ...process.env, SERVICE: service }, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`pnpm deploy of ${service} failed:\n${result.stdout}\n${result.stderr}`);
}

/** Named volumes as directories on this machine, shared by every service that mounts one (as in Docker). */
const volumeDirs = new Map<string, string>();
function volumeDir(volume: string): string {
  if (!volumeDirs.has(volume)) volumeDirs.set(volume, mkdtempSync(join(tmpdir(), `ncc-volume-${volume}-`)));
  return volumeDirs.get(volume)!;
}

/** A path inside the container, where the service mounts a named volume, as the path on this machine. */
function hostPath(name: string, value: string): string {
  for (const mount of composeService(name).volumes ?? []) {
    const [source, target] = mount.split(':') as [string, string];
    if (/^[\w-]+$/.test(source) && (value === target || value.startsWith(`${target}/`))) return volumeDir(source) + value.slice(target.length);
  }
  return value;
}

/** The environment the container sees: image ENV, then compose `environment`, then `overrides`. */
function containerEnv(name: string, overrides: Env): Env {
  // Nothing from this machine leaks in except PATH (to find `node`, as the image's PATH does).
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...imageEnv(), ...composeEnv(name), ...overrides };
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, hostPath(name, v)]));
}

function run(argv: string[], cwd: string, env: Env): ChildProcess {
  // `node` in the image is Node 20; here it is the Node 20 running the tests.
  const [bin, ...args] = argv;
  return spawn(bin === 'node' ? process.execPath : bin!, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

interface Artifact {
  name: string;
  port: number;
  url: string;
  stdout(): string;
  output(): string;
  stop(): Promise<number | string>;
}

/** A started artifact answers /readyz with 200 and has written only JSON log lines (the compose settings). */
async function expectReadyWithJsonLogs(artifact: Artifact): Promise<void> {
  const ready = await fetch(`${artifact.url}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready' });
  const lines = artifact.stdout().split('\n').filter(Boolean);
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) expect(JSON.parse(line)).toMatchObject({ level: expect.any(String), message: expect.any(String) });
}

/** Start a compose service from its deployed tree and wait until its compose healthcheck passes. */
async function startArtifact(name: string, dir: string, port: number, redisUrl: string): Promise<Artifact> {
  // METRICS_PORT 0: each container has its own network; here they share one, so a fixed port would clash.
  const env = containerEnv(name, { REDIS_URL: redisUrl, [PORT_VAR[imageOf(name)]]: String(port), METRICS_PORT: '0' });
  const child = run(containerCommand(name), dir, env);
  children.add(child);
  let stdout = '';
  let output = '';
  child.stdout!.on('data', (d: Buffer) => ((stdout += d.toString()), (output += d.toString())));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  await waitHealthy(name, dir, env, exited, () => output);
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Poll the service's own compose healthcheck (run in the container's environment) until it exits 0. */
async function waitHealthy(name: string, dir: string, env: Env, exited: Promise<number | string>, output: () => string): Promise<void> {
  const test = composeService(name).healthcheck?.test;
  if (!Array.isArray(test) || test[0] !== 'CMD') throw new Error(`${name}: expected a ["CMD", …] healthcheck`);
  let gone: number | string | undefined;
  void exited.then((code) => (gone = code));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (gone !== undefined) throw new Error(`${name} exited (${gone}) before becoming healthy:\n${output()}`);
    const probe = run(test.slice(1), dir, env);
    const code = await new Promise<number | null>((resolve) => probe.once('exit', resolve));
    if (code === 0) return;
    await sleep(150);
  }
  throw new Error(`${name} did not pass its healthcheck within 20 s:\n${output()}`);
}

/** A one-shot job (seed, secret): its compose command, run to completion. */
function runJob(name: string, dir: string, redisUrl: string, overrides: Env = {}): Promise<{ code: number | null; output: string }> {
  const child = run(containerCommand(name), dir, containerEnv(name, { REDIS_URL: redisUrl, ...overrides }));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // 'close', not 'exit': the process can exit before its last output has been read from the pipes.
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

// ---------------------------------------------------------------------------------------------------

let redis: SpawnedRedis;
const deployed: Record<Service, string> = { auth: '', checkin: '', processor: '' };
const running: Artifact[] = [];

beforeAll(async () => {
  redis = await spawnRedis();
  ensureBuilt();
  for (const service of SERVICES) {
    deployed[service] = mkdtempSync(join(tmpdir(), `ncc-deploy-${service}-`));
    rmSync(deployed[service], { recursive: true });
    deploy(service, deployed[service]);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((a) => a.stop()));
  await redis?.stop();
  for (const dir of [...Object.values(deployed), ...volumeDirs.values()]) if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(name: string, port?: number): Promise<Artifact> {
  const artifact = await startArtifact(name, deployed[imageOf(name)], port ?? (await freePort()), redis.url);
  running.push(artifact);
  return artifact;
}

async function stop(artifact: Artifact): Promise<number | string> {
  running.splice(running.indexOf(artifact), 1);
  return artifact.stop();
}

describe('the deployed artifact (what the Docker image copies to /app)', () => {
  it('when the Dockerfile checks its SERVICE build arg, then it accepts every compose service image and refuses anything else', () => {
    const guard = (service: string) => spawnSync('sh', ['-c', serviceGuard()], { env: { PATH: process.env['PATH'], SERVICE: service }, encoding: 'utf8' });
    for (const service of SERVICES) expect(guard(service).status, service).toBe(0);
    const refused = guard('gateway');
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("SERVICE must be auth, checkin or processor, not 'gateway'");
    // Every image docker-compose.yml builds is one the guard allows.
    for (const [name, s] of Object.entries(compose.services)) if (s.build) expect(SERVICES, name).toContain(imageOf(name));
  });

  it('when deployed, then it holds only the service, its production dependencies and the workspace packages built to dist/', () => {
    const workspaceDeps = (service: Service): string[] => {
      const manifest = JSON.parse(readFileSync(join(ROOT, 'services', service, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      return Object.keys(manifest.dependencies ?? {})
        .filter((dep) => dep.startsWith('@ncc/'))
        .map((dep) => dep.slice('@ncc/'.length));
    };
    expect(workspaceDeps('processor').sort()).toEqual(['checkins', 'service-kit']);
    for (const service of SERVICES) {
      const dir = deployed[service];
      expect(existsSync(join(dir, 'dist/main.js'))).toBe(true);
      expect(existsSync(join(dir, 'src'))).toBe(false);
      for (const pkg of workspaceDeps(service)) {
        const root = join(dir, 'node_modules/@ncc', pkg);
        const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: { '.': { import: string } } };
        // Plain `node` (no ncc-source condition) takes the "import" condition: compiled JS that must exist.
        expect(existsSync(join(root, manifest.exports['.'].import))).toBe(true);
        expect(existsSync(join(root, 'src'))).toBe(false);
      }
      // --prod: no dev tooling.
      for (const dev of ['typescript', 'tsx', 'vitest', '@ncc/testing']) expect(existsSync(join(dir, 'node_modules', dev))).toBe(false);
    }
    expect(existsSync(join(deployed.auth, 'data/demo-users.json'))).toBe(true);
    // The processor reads no session: express-session and the session package stay out of its image.
    expect(existsSync(join(deployed.processor, 'node_modules/@ncc/session'))).toBe(false);
  });
});

describe('auth and checkin started as docker-compose.yml starts them', () => {
  let auth: Artifact;
  let checkin: Artifact;

  it('when the secret job runs (compose command, compose environment), then it writes a random secret once into the ncc-secrets volume, readable by the services, and keeps it on the next `up`', async () => {
    const file = join(volumeDir('ncc-secrets'), 'session_secret');
    const first = await runJob('secret', tmpdir(), redis.url);
    expect(first.code).toBe(0);
    const secret = readFileSync(file, 'utf8');
    expect(secret).toMatch(/^[A-Za-z0-9+/]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o444);
    const again = await runJob('secret', tmpdir(), redis.url);
    expect(again.code).toBe(0);
    expect(again.output).toContain('keeping');
    expect(readFileSync(file, 'utf8')).toBe(secret);
    // A fresh volume gets a different one: nothing is baked into the file or the image.
    const elsewhere = mkdtempSync(join(tmpdir(), 'ncc-secret-other-'));
    try {
      expect((await runJob('secret', tmpdir(), redis.url, { NCC_SECRET_FILE: join(elsewhere, 'session_secret') })).code).toBe(0);
      expect(readFileSync(join(elsewhere, 'session_secret'), 'utf8')).not.toBe(secret);
      // SESSION_SECRET=… docker compose up: the job writes that one.
      const given = 'given-secret-from-a-vault-0123456789abcdef';
      expect((await runJob('secret', tmpdir(), redis.url, { NCC_SECRET_FILE: join(elsewhere, 'session_secret'), SESSION_SECRET: given })).code).toBe(0);
      expect(readFileSync(join(elsewhere, 'session_secret'), 'utf8')).toBe(given);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('when the seed job runs (compose command, compose environment), then it loads the demo users and exits 0, and again on the next `up`', async () => {
    expect(imageOf('seed')).toBe('auth');
    const first = await runJob('seed', deployed.auth, redis.url);
    expect(first.output).toContain('Seeded users: 120 created, 0 updated, 0 skipped.');
    expect(first.code).toBe(0);
    expect(await redis.client.hget(`ncc:user:${DEMO.id}`, 'email')).toBe(DEMO.email);
    expect(await redis.client.get(`ncc:user:email:${DEMO.email}`)).toBe(String(DEMO.id));
    expect(await redis.client.hget(`ncc:user:${DEMO.id}`, 'password')).toMatch(/^\$2[ab]\$/);

    // Every `docker compose up` runs the job again: it must succeed without touching existing users.
    const again = await runJob('seed', deployed.auth, redis.url);
    expect(again.output).toContain('0 created, 0 updated, 120 skipped');
    expect(again.code).toBe(0);
    // 120 bcrypt hashes at cost 10: ~10 s on a quiet machine, several times that on a busy one.
  }, 120_000);

  it('when auth and checkin start with the compose command and environment, then their compose healthchecks pass and they log JSON', async () => {
    auth = await start('auth');
    checkin = await start('checkin');
    for (const artifact of [auth, checkin]) await expectReadyWithJsonLogs(artifact);
    expect(checkin.stdout()).toContain('Authentication enabled');
    // Both read the generated secret (the login/checkin test below proves they agree on it).
    for (const artifact of [auth, checkin]) expect(artifact.output()).not.toMatch(/development secret/i);
  });

  it('when a user logs in, checks in and logs out, then checkin answers 202 and afterwards 401, with Redis in step', async () => {
    const login = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password });
    expect(login.status).toBe(200);
    expect(await login.json()).toEqual({ user: { id: DEMO.id, email: DEMO.email, firstName: DEMO.firstName, lastName: DEMO.lastName } });
    const setCookie = login.headers.getSetCookie().find((c) => c.startsWith('checkinapp='));
    expect(setCookie).toMatch(/HttpOnly/i);
    // The local stack is plain http: compose turns Secure off (COOKIE_SECURE=${COOKIE_SECURE:-false}).
    expect(setCookie).not.toMatch(/Secure/i);
    const cookie = cookiePair(login, 'checkinapp')!;
    const key = sessionKeyOf(cookie);
    expect(await redis.client.exists(key)).toBe(1);
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(86_000);
    expect(ttl).toBeLessThanOrEqual(86_400);

    const before = await redis.client.xlen('ncc:checkins');
    const accepted = await postJson(`${checkin.url}/api/checkin`, { userId: DEMO.id, locationId: 1001, starRating: 5 }, { cookie });
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    expect(id).toMatch(/^\d+-\d+$/);
    expect(await redis.client.xlen('ncc:checkins')).toBe(before + 1);
    const [[, fields]] = (await redis.client.xrange('ncc:checkins', id, id)) as [[string, string[]]];
    expect(fields).toEqual(expect.arrayContaining(['userId', String(DEMO.id), 'locationId', '1001', 'starRating', '5']));

    const logout = await fetch(`${auth.url}/logout`, { headers: { cookie } });
    expect(logout.status).toBe(200);
    expect(await logout.json()).toEqual({ status: 'OK' });
    expect(await redis.client.exists(key)).toBe(0);

    const refused = await postJson(`${checkin.url}/api/checkin`, { userId: DEMO.id, locationId: 1002, starRating: 4 }, { cookie });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    expect(await redis.client.xlen('ncc:checkins')).toBe(before + 1);
  });

  it('when the process gets SIGTERM (what `docker compose stop` sends through init), then it shuts down gracefully with exit 0', async () => {
    expect(await stop(checkin)).toBe(0);
    expect(checkin.output()).toContain('Shutdown complete.');
  });
});

describe('auth and checkin replicas behind a round-robin proxy (the compose gateway in miniature)', () => {
  type Group = 'auth' | 'checkin';
  /**
   * A reverse proxy like the nginx gateway's :8080 server: the auth paths to the auth replicas, every
   * other path to the checkin replicas, alternating within each; X-Forwarded-* set from what it saw,
   * overwriting whatever the client sent, as nginx does.
   */
  function startProxy(backends: Record<Group, () => number[]>): Promise<{ url: string; served: Record<Group, number[]>; close(): Promise<void> }> {
    const served: Record<Group, number[]> = { auth: [], checkin: [] };
    const next: Record<Group, number> = { auth: 0, checkin: 0 };
    const authPaths = new RegExp(AUTH_PATHS);
    const server = http.createServer((req, res) => {
      const group: Group = authPaths.test(new URL(req.url ?? '/', 'http://proxy').pathname) ? 'auth' : 'checkin';
      const ports = backends[group]();
      const port = ports[next[group]++ % ports.length]!;
      served[group].push(port);
      const upstream = http.request(
        {
          host: '127.0.0.1',
          port,
          // A fresh connection per request, so a restarted replica never gets a dead pooled socket.
          agent: false,
          method: req.method,
          path: req.url,
          headers: {
            ...req.headers,
            'x-forwarded-for': req.socket.remoteAddress ?? '',
            'x-forwarded-proto': 'http',
            'x-forwarded-host': req.headers.host ?? '',
          },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.writeHead(502).end();
      });
      req.pipe(upstream);
    });
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          served,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              server.closeAllConnections();
            }),
        }),
      ),
    );
  }

  it('when one login cookie is sent through the proxy, then both auth and both checkin replicas (TRUST_PROXY from compose) accept it, also after the checkin replicas restart, and auth logs the client address the proxy saw, not a forged one', async () => {
    const authPorts = [await freePort(), await freePort()];
    const auths = await Promise.all(authPorts.map((port) => start('auth', port)));
    const ports = [await freePort(), await freePort()];
    let replicas = await Promise.all(ports.map((port) => start('checkin', port)));
    const proxy = await startProxy({ auth: () => authPorts, checkin: () => ports });
    try {
      const login = await postJson(
        `${proxy.url}/login`,
        { email: DEMO.email, password: DEMO.password },
        { 'x-forwarded-for': '203.0.113.50', 'x-request-id': 'artifact-proxied-login' },
      );
      expect(login.status).toBe(200);
      expect(proxy.served.auth).toEqual([authPorts[0]]);
      const cookie = cookiePair(login, 'checkinapp')!;
      const key = sessionKeyOf(cookie);
      // One proxy hop trusted (compose's TRUST_PROXY: 1): the address the proxy saw, never the client's claim.
      const audit = auths[0]!
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => entry['event'] === 'login.succeeded' && entry['clientRequestId'] === 'artifact-proxied-login');
      expect(audit).toEqual([expect.objectContaining({ ip: '127.0.0.1' })]);
      // The other auth replica knows the session too: it lives in Redis.
      const me = await fetch(`${proxy.url}/me`, { headers: { cookie } });
      expect(me.status).toBe(200);
      expect(proxy.served.auth).toEqual(authPorts);
      const before = await redis.client.xlen('ncc:checkins');

      let location = 2000;
      const checkinThroughProxy = async (): Promise<number> =>
        (await postJson(`${proxy.url}/api/checkin`, { userId: DEMO.id, locationId: ++location, starRating: 3 }, { cookie })).status;

      const firstRound = [await checkinThroughProxy(), await checkinThroughProxy(), await checkinThroughProxy(), await checkinThroughProxy()];
      expect(firstRound).toEqual([202, 202, 202, 202]);
      expect(proxy.served.checkin).toEqual([ports[0], ports[1], ports[0], ports[1]]);
      expect(await redis.client.xlen('ncc:checkins')).toBe(before + 4);

      // Restart both replicas (graceful stop, fresh processes, same ports): nothing about the session
      // lived in them, so the same cookie keeps working.
      expect(await Promise.all(replicas.map((r) => stop(r)))).toEqual([0, 0]);
      expect(await redis.client.exists(key)).toBe(1);
      replicas = await Promise.all(ports.map((port) => start('checkin', port)));

      const secondRound = [await checkinThroughProxy(), await checkinThroughProxy()];
      expect(secondRound).toEqual([202, 202]);
      expect(proxy.served.checkin.slice(4)).toEqual([ports[0], ports[1]]);
      expect(await redis.client.xlen('ncc:checkins')).toBe(before + 6);
      expect(await redis.client.exists(key)).toBe(1);

      // And without the cookie both refuse.
      const anonymous = [
        (await postJson(`${proxy.url}/api/checkin`, { userId: DEMO.id, locationId: 9999, starRating: 3 })).status,
        (await postJson(`${proxy.url}/api/checkin`, { userId: DEMO.id, locationId: 9999, starRating: 3 })).status,
      ];
      expect(anonymous).toEqual([401, 401]);
      expect(await redis.client.xlen('ncc:checkins')).toBe(before + 6);
    } finally {
      await proxy.close();
    }
  });
});

describe('the checkin processor started as docker-compose.yml starts it (two replicas)', () => {
  /** Entries ever added to ncc:checkins (unlike XLEN, not lowered when the processors trim what they acknowledged). */
  async function entriesAdded(): Promise<number> {
    const info = (await redis.client.xinfo('STREAM', 'ncc:checkins')) as unknown[];
    return Number(info[info.indexOf('entries-added') + 1]);
  }

  it('when both replicas start with the compose command and environment (no session secret), then their healthchecks pass, they log JSON, count the backlog and each new checkin into the stats, and stop with exit 0 on SIGTERM', async () => {
    // What compose gives the processor: production, JSON logs, no session secret and no secrets volume.
    const env = composeEnv('processor');
    expect(env['NODE_ENV']).toBe('production');
    expect(Object.keys(env).filter((k) => k.startsWith('SESSION_'))).toEqual([]);
    expect(composeService('processor').volumes).toBeUndefined();

    const processors = [await start('processor'), await start('processor')];
    for (const artifact of processors) {
      await expectReadyWithJsonLogs(artifact);
      expect(artifact.stdout()).toContain(`Checkin processor listening on port ${artifact.port} (health and readiness only).`);
    }
    // Two consumers of one group: PROCESSOR_CONSUMER defaults to a name unique per replica.
    const consumers = (await redis.client.xinfo('CONSUMERS', 'ncc:checkins', 'checkinProcessors')) as unknown[][];
    expect(consumers).toHaveLength(2);

    // The checkins of the tests above were in the stream before any processor ran: the group starts
    // at the stream's beginning, so they are all counted. Every one of them was the demo user's.
    const backlog = await entriesAdded();
    expect(backlog).toBeGreaterThan(0);
    await until('the backlog counted', 20_000, async () => (await redis.client.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === String(backlog));

    // A new checkin through a running receiver, then its stats through the read API (JSON numbers) and in Redis.
    const auth = running.find((a) => a.name === 'auth') ?? (await start('auth'));
    const checkin = running.find((a) => a.name === 'checkin') ?? (await start('checkin'));
    const login = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password });
    const cookie = cookiePair(login, 'checkinapp')!;
    const accepted = await postJson(`${checkin.url}/api/checkin`, { userId: DEMO.id, locationId: 3001, starRating: 4 }, { cookie });
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    const stats = await until('the new checkin counted', 20_000, async () => {
      const res = await fetch(`${checkin.url}/api/locations/3001/stats`, { headers: { cookie } });
      return res.status === 200 && (await res.json());
    });
    expect(stats).toEqual({ locationId: 3001, numCheckins: 1, numStars: 4, averageStars: 4 });
    const user = await fetch(`${checkin.url}/api/users/${DEMO.id}/stats`, { headers: { cookie } });
    expect(user.status).toBe(200);
    expect(await user.json()).toEqual({ userId: DEMO.id, numCheckins: backlog + 1, lastCheckin: Number(id.split('-')[0]), lastSeenAt: 3001 });
    expect(await redis.client.hgetall('ncc:location:3001')).toMatchObject({ numCheckins: '1', numStars: '4', averageStars: '4' });

    expect(await Promise.all(processors.map((p) => stop(p)))).toEqual([0, 0]);
    for (const artifact of processors) expect(artifact.output()).toContain('Shutdown complete.');
  });
});
