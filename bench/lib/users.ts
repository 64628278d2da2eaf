/**
 * The bench's users: seeded with one precomputed cost-10 hash (seeding 250 users then takes
 * milliseconds, and each login still costs one full cost-10 compare), then logged in over HTTP, one
 * session per connection.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { UsersRepository } from '../../services/auth/src/data-access/users-repository.js';
import { ROOT } from './processes.js';

export const PASSWORD = 'bench-password-1';
/** The bcrypt cost of the bench users' hash: what the services use by default. */
export const BCRYPT_COST = 10;
const FIRST_ID = 100_000;

export const benchEmail = (i: number): string => `bench.user${i}@example.com`;

/** bcryptjs is the auth service's dependency; the bench borrows it from there. */
interface Bcrypt {
  hashSync(password: string, rounds: number): string;
  compareSync(password: string, hash: string): boolean;
}
export const bcryptjs = (): Bcrypt => createRequire(join(ROOT, 'services/auth/package.json'))('bcryptjs') as Bcrypt;

/**
 * Users 1..`count` (ids 100001…, bench.user<i>@example.com), all with PASSWORD; returns their hash.
 * Written with the auth service's users repository: the seed CLI hashes every password itself, which
 * for 250 users at cost 10 takes 10–30 s on two cores.
 */
export async function seedBenchUsers(redis: Redis, count: number): Promise<string> {
  const hash = bcryptjs().hashSync(PASSWORD, BCRYPT_COST);
  const users = new UsersRepository(redis);
  for (let i = 1; i <= count; i++) {
    await users.save({ id: FIRST_ID + i, email: benchEmail(i), firstName: 'Bench', lastName: `User${i}`, passwordHash: hash });
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
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('checkinapp='))?.split(';')[0];
    if (res.status !== 200 || !cookie) throw new Error(`login of bench.user${i} failed: ${res.status} ${await res.text()}`);
    sessions.push({ userId: FIRST_ID + i, cookie });
  }
  return sessions;
}
