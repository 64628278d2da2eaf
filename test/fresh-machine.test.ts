/**
 * The README's first command, `./run start`, on a machine with only Node.js: a copy of the working
 * tree without node_modules, a PATH with node, npm and npx (and the usual system tools) but no pnpm,
 * no redis-server and no global pnpm for npx to borrow. It must fetch pnpm at the pinned version with
 * npx, install the dependencies, install redis-server, start everything and print "Ready".
 *
 * redis-server is "installed" by a stand-in apt-get on that PATH which links the machine's own
 * redis-server into it, so the test never changes the system; everything else is real. Loopback only,
 * Redis on a free port (never the shared one on 6379).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@ncc/testing';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PNPM_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { packageManager: string }).packageManager.replace(/^pnpm@/, '');
const DEMO = { id: 77, email: 'al.appelhof@example.com', password: 'secret123' };
/** Left out of the fresh PATH: what a machine with only Node.js does not have (apt-get and sudo get stand-ins). */
const LEFT_OUT = new Set([
  'pnpm',
  'pnpx',
  'corepack',
  'redis-server',
  'redis-cli',
  'redis-benchmark',
  'redis-check-aof',
  'redis-check-rdb',
  'redis-sentinel',
  'apt-get',
  'sudo',
]);

const tmp = mkdtempSync(join(tmpdir(), 'ncc-fresh-machine-'));
let run: ChildProcess | undefined;

afterAll(() => {
  // Whatever is still running from the copy (a failed run): the script's process group, and every
  // process whose working directory is inside the copy (the services and redis-server run detached).
  if (run?.pid !== undefined && run.exitCode === null) {
    try {
      process.kill(-run.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const pid of processesIn(tmp)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

function which(command: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const file = join(dir, command);
    if (dir && existsSync(file)) return file;
  }
  throw new Error(`${command} is not on PATH`);
}

/** The working directory of a process (Linux /proc); undefined when it is gone or not ours to read. */
function cwdOf(pid: string | number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** Processes whose working directory is below `dir`. */
function processesIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && cwdOf(entry)?.startsWith(dir))
    .map(Number);
}

/** The tracked and new (not ignored) files of the working tree, as a fresh clone would have them plus the uncommitted work. */
function copyWorkingTree(target: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    const from = join(ROOT, file);
    if (!existsSync(from) || !statSync(from).isFile()) continue; // deleted in the working tree
    mkdirSync(dirname(join(target, file)), { recursive: true });
    copyFileSync(from, join(target, file)); // keeps the mode: ./run stays executable
  }
}

/**
 * A bin directory with a link to every command of this PATH except LEFT_OUT (and nothing from a
 * node_modules/.bin, where a pnpm may live), plus the stand-ins for apt-get and sudo.
 */
function freshPath(bin: string): void {
  mkdirSync(bin);
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir || dir.includes('node_modules') || !existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (LEFT_OUT.has(name) || existsSync(join(bin, name))) continue;
      symlinkSync(join(dir, name), join(bin, name));
    }
  }
  const redisServer = which('redis-server');
  const redisCli = which('redis-cli');
  writeFileSync(
    join(bin, 'apt-get'),
    [
      '#!/bin/sh',
      '# Stand-in for apt-get: records its arguments; "install ... redis-server" links the real redis-server here.',
      'here="$(dirname "$0")"',
      'echo "$*" >> "$here/apt-get.log"',
      `case " $* " in *" install "*" redis-server "*) ln -sf '${redisServer}' "$here/redis-server"; ln -sf '${redisCli}' "$here/redis-cli" ;; esac`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(bin, 'sudo'), '#!/bin/sh\n# Stand-in for sudo: runs the command as this user, from this PATH.\n[ "$1" = "-n" ] && shift\nexec "$@"\n');
  chmodSync(join(bin, 'apt-get'), 0o755);
  chmodSync(join(bin, 'sudo'), 0o755);
}

/** What a login shell would pass on: home, locale, proxies and certificates (npm needs them to reach its registry). */
function shellEnv(): Record<string, string> {
  const keep = /^(HOME|USER|LOGNAME|LANG|LC_ALL|TMPDIR|CI|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$/;
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => keep.test(e[0]) && e[1] !== undefined));
}

describe('./run start on a machine with only Node.js', () => {
  it('when pnpm and redis-server are missing, then it gets pnpm through npx, installs the dependencies and redis-server, and gets to Ready; SIGTERM stops it all', async () => {
    const t0 = Date.now();
    const repo = join(tmp, 'repo');
    const bin = join(tmp, 'bin');
    copyWorkingTree(repo);
    freshPath(bin);
    expect(existsSync(join(repo, 'node_modules'))).toBe(false);
    for (const name of ['pnpm', 'redis-server']) expect(existsSync(join(bin, name)), name).toBe(false);
    expect(existsSync(join(bin, 'node')) && existsSync(join(bin, 'npx'))).toBe(true);

    // No global pnpm either: npx would borrow one from npm's global prefix. The global npmrc stays
    // (it may hold the certificate settings the registry needs).
    const globalconfig = execFileSync('npm', ['config', 'get', 'globalconfig'], { cwd: tmp, encoding: 'utf8', env: { ...shellEnv(), PATH: bin } }).trim();
    const prefix = join(tmp, 'npm-global');
    mkdirSync(prefix);
    // Only the demo user: the seed of all 120 is covered by the seed and start tests.
    const demoUsers = JSON.parse(readFileSync(join(ROOT, 'services/auth/data/demo-users.json'), 'utf8')) as { users: { id: number }[] };
    const seedFile = join(tmp, 'users.json');
    writeFileSync(seedFile, JSON.stringify({ users: demoUsers.users.filter((u) => u.id === DEMO.id) }));

    const [redisPort, authPort, checkinPort] = [await freePort(), await freePort(), await freePort()];
    let output = '';
    run = spawn(join(repo, 'run'), ['start'], {
      cwd: repo,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...shellEnv(),
        PATH: bin,
        npm_config_prefix: prefix,
        npm_config_globalconfig: globalconfig,
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        NCC_REDIS_PORT: String(redisPort),
        AUTH_PORT: String(authPort),
        CHECKIN_PORT: String(checkinPort),
        PROCESSOR_PORT: String(await freePort()),
        GATEWAY_PORT: String(await freePort()),
        // Not what this test is about; a port picked ahead of its use could be taken by then.
        AUTH_METRICS_PORT: 'off',
        CHECKIN_METRICS_PORT: 'off',
        PROCESSOR_METRICS_PORT: 'off',
        NCC_SEED_FILE: seedFile,
      },
    });
    run.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | string>((resolve) => run!.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));

    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`./run start was not ready within 240 s:\n${output}`)), 240_000);
      const check = (): void => {
        if (!output.includes('Press Ctrl-C to stop')) return;
        clearTimeout(timer);
        resolve();
      };
      run!.stdout!.on('data', check);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`./run start exited (${code}) before it was ready:\n${output}`));
      });
    });
    const readyAfter = (Date.now() - t0) / 1000;

    expect(output).toContain(`run: pnpm ${PNPM_VERSION} is not on PATH; running it with npx`);
    expect(output).toContain('redis-server is not on PATH: installing it');
    expect(output).toContain('install: redis-server not found; installing the redis-server package with apt-get');
    expect(readFileSync(join(bin, 'apt-get.log'), 'utf8')).toMatch(/install .*redis-server/);
    expect(output).toContain(`redis-server started (pid`);
    expect(output).toMatch(/Seeded demo users in [\d.]+ s: 1 created, 0 already there\./);
    expect(output).toContain(
      `Ready: auth http://localhost:${authPort}, checkin http://localhost:${checkinPort}, Redis redis://127.0.0.1:${redisPort} (started here`,
    );

    // The system it started works: the demo user logs in and checks in.
    const loginRes = await fetch(`http://127.0.0.1:${authPort}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: DEMO.email, password: DEMO.password }),
    });
    expect(loginRes.status).toBe(200);
    const cookie = loginRes.headers
      .getSetCookie()
      .find((c) => c.startsWith('checkinapp='))!
      .split(';')[0]!;
    const checkinRes = await fetch(`http://127.0.0.1:${checkinPort}/api/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ userId: DEMO.id, locationId: 1, starRating: 5 }),
    });
    expect(checkinRes.status).toBe(202);

    // SIGTERM to the start script (as `kill` would): it stops the services and its redis-server, and
    // pnpm, npx and ./run exit with its 0.
    const startScript = execFileSync('ps', ['-e', '-o', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find(([pid, ...args]) => args.join(' ').includes('scripts/start.ts') && args[0]?.endsWith('node') && cwdOf(pid!) === repo);
    expect(startScript, `no start script process below ${repo}`).toBeDefined();
    process.kill(Number(startScript![0]), 'SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('Stopped. Data kept in .data/redis.');
    const deadline = Date.now() + 10_000;
    while (processesIn(repo).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(processesIn(repo), 'processes left running in the copy').toEqual([]);
    console.info(`fresh machine: ./run start ready after ${readyAfter.toFixed(1)} s, stopped after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 300_000);
});
