/**
 * The bench's users: seeded with one precomputed cost-10 hash (seeding 250 users then costs little
 * more than the seed CLI's start-up, and each login still costs one full cost-10 compare), then logged
 * in over HTTP, one session per connection.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { BCRYPT_COST as AUTH_BCRYPT_COST } from '@ncc/auth';
import { runSeedCli } from '../../scripts/start/seed.js';

export const PASSWORD = 'bench-password-1';
/** The bcrypt cost of the bench users' hash: what the auth service uses by default. */
export const BCRYPT_COST = AUTH_BCRYPT_COST.default;
const FIRST_ID = 100_000;

export const benchEmail = (i: number): string => `bench.user${i}@example.com`;

/** bcryptjs, as the auth service's bcrypt threads run it (the same catalog version). */
export const bcryptjs = (): Pick<typeof bcrypt, 'hashSync' | 'compareSync'> => bcrypt;

/**
 * Users 1..`count` (ids 100001…, bench.user<i>@example.com), all with PASSWORD; returns their hash.
 * Written by the seed CLI from a temporary file of `passwordHash` entries: the hash is computed once
 * here, so the CLI hashes nothing (hashing 250 passwords at cost 10 takes 10–30 s on two cores).
 */
export async function seedBenchUsers(redisUrl: string, count: number): Promise<string> {
  const hash = bcrypt.hashSync(PASSWORD, BCRYPT_COST);
  const users = Array.from({ length: count }, (_, k) => ({
    id: FIRST_ID + k + 1,
    firstName: 'Bench',
    lastName: `User${k + 1}`,
    email: benchEmail(k + 1),
    passwordHash: hash,
  }));
  const dir = mkdtempSync(join(tmpdir(), 'ncc-bench-users-'));
  try {
    const file = join(dir, 'users.json');
    writeFileSync(file, JSON.stringify({ users }));
    const { created } = await runSeedCli(redisUrl, file);
    if (created !== count) throw new Error(`the seed CLI was to create ${count} bench users on a fresh Redis, it created ${created}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return hash;
}

export interface Session {
  userId: number;
  cookie: string;
}

/** Log users 1..`count` in, one after another (distinct users, as real traffic would be). */
export async function logIn(authUrl: string, count: number): Promise<Session[]> {
  const sessions: Session[] = [];
  for (let i = 1; i <= count; i++) {
    const res = await fetch(`${authUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: benchEmail(i), password: PASSWORD }),
    });
    const cookie = res.headers
      .getSetCookie()
      .find((c) => c.startsWith('checkinapp='))
      ?.split(';')[0];
    if (res.status !== 200 || !cookie) throw new Error(`login of bench.user${i} failed: ${res.status} ${await res.text()}`);
    sessions.push({ userId: FIRST_ID + i, cookie });
  }
  return sessions;
}
