import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ROOT } from './config.js';

/** The demo user: its presence means "seeded". */
export const DEMO_USER_ID = 77;
/** The auth service's seed CLI, exactly what `pnpm seed` runs: its file format, validation and bcrypt cost. */
const SEED_CLI = ['--conditions=ncc-source', '--import', 'tsx', join(ROOT, 'services', 'auth', 'src', 'cli', 'seed.ts')];

/** Whether the demo user is stored: its hash key as documented in the README (`ncc:user:<id>`). */
async function demoUserExists(redisUrl: string): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 2000, commandTimeout: 5000, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // the command's own rejection says what went wrong
  try {
    await redis.connect();
    return (await redis.exists(`ncc:user:${DEMO_USER_ID}`)) === 1;
  } finally {
    redis.disconnect();
  }
}

export interface SeedCounts {
  created: number;
  updated: number;
  skipped: number;
}

/** `pnpm seed --file <file>` against `redisUrl` (also how the bench seeds its users); its counts, or its own error message. */
export function runSeedCli(redisUrl: string, file: string): Promise<SeedCounts> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...SEED_CLI, '--file', file], { cwd: ROOT, env: { ...process.env, REDIS_URL: redisUrl } }, (err, stdout, stderr) => {
      const counts = /Seeded users: (\d+) created, (\d+) updated, (\d+) skipped\./.exec(stdout);
      if (err || !counts) {
        reject(new Error(stderr.trim() || stdout.trim() || (err ? err.message : 'the seed CLI printed no counts')));
        return;
      }
      resolve({ created: Number(counts[1]), updated: Number(counts[2]), skipped: Number(counts[3]) });
    });
  });
}

/**
 * Seed the users of `file` (by default the same file as `pnpm seed`) with the seed CLI, unless the
 * demo user is there. The demo user's presence is the quick check: hashing 120 passwords takes
 * seconds, a restart should not pay for it again.
 */
export async function seedDemoUsersIfMissing(redisUrl: string, file: string): Promise<string> {
  if (await demoUserExists(redisUrl)) return `Demo users already there (user ${DEMO_USER_ID} exists): not seeding.`;
  const started = Date.now();
  // The demo user goes last, in a second run: its presence then means the whole seed finished, even if
  // an earlier run was stopped half-way (the seed is idempotent, so that run's users are simply skipped).
  // A file that is not a user list goes to the CLI as it is, which says what is wrong with it.
  let runs = [file];
  let dir: string | undefined;
  try {
    const users = (JSON.parse(readFileSync(file, 'utf8')) as { users?: unknown }).users;
    if (Array.isArray(users) && users.length > 0) {
      const isDemo = (u: unknown): boolean => (u as { id?: unknown } | null)?.id === DEMO_USER_ID;
      dir = mkdtempSync(join(tmpdir(), 'ncc-start-seed-'));
      runs = [users.filter((u) => !isDemo(u)), users.filter(isDemo)]
        .filter((part) => part.length > 0)
        .map((part, i) => {
          const partFile = join(dir!, `users-${i}.json`);
          writeFileSync(partFile, JSON.stringify({ users: part }));
          return partFile;
        });
    }
  } catch {
    // Unreadable or not JSON: the CLI reports it.
  }
  try {
    const total = { created: 0, skipped: 0 };
    for (const run of runs) {
      const counts = await runSeedCli(redisUrl, run);
      total.created += counts.created;
      total.skipped += counts.skipped;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    return `Seeded demo users in ${seconds} s: ${total.created} created, ${total.skipped} already there.`;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
