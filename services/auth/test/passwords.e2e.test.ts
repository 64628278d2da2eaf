/**
 * The bcrypt worker pool as it runs outside vitest: compiled to JavaScript under plain node (how
 * `node dist/main.js` runs it), and inside the real auth process at shutdown. Process-spawning, so in
 * the e2e suite; the pool itself is tested in passwords.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { postJson, spawnRedis, until } from '@ncc/testing';
import { BCRYPT_THREAD_NICE } from '../src/domain/passwords.js';
import { spawnService } from '../../../test/support/services.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;

/** Every thread of a process: its nice value and CPU ticks so far, from /proc/<pid>/task/<tid>/stat. */
function threadsOf(pid: number): { tid: number; nice: number; ticks: number }[] {
  const threads: { tid: number; nice: number; ticks: number }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may contain spaces) start at ")": utime, stime at 11, 12; nice at 16.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.push({ tid: Number(tid), nice: Number(fields[16]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

describe('BcryptHasher compiled to JavaScript', () => {
  it('when passwords.ts and bcrypt-worker.ts are compiled and run by plain node (no tsx), then the pool loads the .js worker and hashes and compares', async () => {
    // Inside services/auth/node_modules so the compiled files resolve bcryptjs and piscina like dist/ does.
    const out = mkdtempSync(join(ROOT, 'services/auth/node_modules/.ncc-dist-test-'));
    try {
      await run(
        process.execPath,
        [
          join(ROOT, 'node_modules/typescript/bin/tsc'),
          '--outDir',
          out,
          '--rootDir',
          join(ROOT, 'services/auth/src/domain'),
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--target',
          'es2023',
          '--types',
          'node',
          '--skipLibCheck',
          join(ROOT, 'services/auth/src/domain/passwords.ts'),
          join(ROOT, 'services/auth/src/domain/bcrypt-worker.ts'),
        ],
        { cwd: join(ROOT, 'services/auth') },
      );
      const script = `
        const { BcryptHasher, bcryptWorkerModule } = await import(${JSON.stringify(join(out, 'passwords.js'))});
        const h = new BcryptHasher(10);
        const hash = await h.hash('secret123');
        const ok = await h.verify('secret123', hash);
        const bad = await h.verify('nope', hash);
        await h.verifyDummy('nope');
        await h.close();
        console.log(JSON.stringify({ worker: bcryptWorkerModule().filename, hash, ok, bad }));
      `;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: out, env: { PATH: process.env['PATH'] ?? '' } });
      const result = JSON.parse(stdout.trim()) as { worker: string; hash: string; ok: boolean; bad: boolean };
      expect(result.worker).toBe(join(out, 'bcrypt-worker.js'));
      expect(result.hash).toMatch(/^\$2b\$10\$/);
      expect(result.ok).toBe(true);
      expect(result.bad).toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('the auth process and its pool', () => {
  it('when auth has run logins on its worker pool and gets SIGTERM, then it closes the pool and exits 0 within seconds', async () => {
    const redis = await spawnRedis();
    try {
      const auth = await spawnService('auth', { REDIS_URL: redis.url });
      const res = await postJson(`${auth.url}/login`, { email: 'nobody@example.com', password: 'wrong-password' });
      expect(res.status).toBe(401);
      const t0 = performance.now();
      await expect(auth.stop('SIGTERM')).resolves.toBe(0);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(auth.output()).toContain('Shutdown complete.');
    } finally {
      await redis.stop();
    }
  });
});

describe('the bcrypt threads yield to the event loop', () => {
  it.skipIf(process.platform !== 'linux')(
    'when auth has answered a login, then each bcrypt thread runs at BCRYPT_THREAD_NICE (10) and did the hashing, while the event loop thread stays at nice 0',
    async () => {
      const redis = await spawnRedis();
      try {
        const auth = await spawnService('auth', { REDIS_URL: redis.url });
        const pid = auth.child.pid!;
        // An unknown email: one full dummy compare on the pool (and the warm-up hash before it).
        const res = await postJson(`${auth.url}/login`, { email: 'nobody@example.com', password: 'wrong-password' });
        expect(res.status).toBe(401);
        // Linux sets nice per thread: the workers' setPriority(0, …) must not reach the main thread.
        const niced = await until('one thread per core at the bcrypt nice', 10_000, () => {
          const found = threadsOf(pid).filter((t) => t.nice === BCRYPT_THREAD_NICE);
          return found.length === availableParallelism() && found;
        });
        expect(BCRYPT_THREAD_NICE).toBe(10);
        const all = threadsOf(pid);
        expect(all.find((t) => t.tid === pid)?.nice).toBe(0);
        expect(all.filter((t) => t.nice !== 0 && t.nice !== BCRYPT_THREAD_NICE)).toEqual([]);
        // They are the threads that hashed: the warm-up hash and the dummy compare (≥ 50 ms of CPU) ran there.
        expect(niced.reduce((sum, t) => sum + t.ticks, 0)).toBeGreaterThan(0);
        await auth.stop('SIGTERM');
      } finally {
        await redis.stop();
      }
    },
  );
});
