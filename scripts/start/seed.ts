import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { closeRedis, createRedisClient, createServiceLogger, waitForRedis } from '@ncc/service-kit';
import { UsersRepository } from '../../services/auth/src/data-access/users-repository.js';
import { BcryptHasher } from '../../services/auth/src/domain/passwords.js';
import { userSchema } from '../../services/auth/src/domain/schemas.js';
import { seedUsers } from '../../services/auth/src/domain/seeding.js';

/** The demo user: its presence means "seeded". */
export const DEMO_USER_ID = 77;
const fileSchema = z.object({ users: z.array(userSchema).min(1) });

/**
 * Seed the users of `file` (by default the same file as `pnpm seed`, with the same idempotent domain
 * code) unless the demo user is there. The demo user's presence is the quick check: hashing
 * 120 passwords takes seconds, a restart should not pay for it again.
 */
export async function seedDemoUsersIfMissing(redisUrl: string, file: string): Promise<string> {
  const logger = createServiceLogger('seed', { NODE_ENV: 'development', LOG_LEVEL: 'error' });
  const redis = createRedisClient({ REDIS_URL: redisUrl, REDIS_COMMAND_TIMEOUT_MS: 5000, REDIS_CONNECT_TIMEOUT_MS: 2000 }, logger);
  try {
    await waitForRedis(redis, 10_000);
    const repository = new UsersRepository(redis);
    if (await repository.exists(DEMO_USER_ID)) return `Demo users already there (user ${DEMO_USER_ID} exists): not seeding.`;
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success) {
      throw new Error(`${file} is not a valid user list: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const { users } = parsed.data;
    const started = Date.now();
    const deps = { repository, hasher: new BcryptHasher(10) };
    // The demo user goes last, on its own: its presence then means the whole seed finished, even if an
    // earlier run was stopped half-way (the seed is idempotent, so that run's users are simply skipped).
    const first = await seedUsers(users.filter((u) => u.id !== DEMO_USER_ID), deps, { force: false });
    const last = await seedUsers(users.filter((u) => u.id === DEMO_USER_ID), deps, { force: false });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    return `Seeded demo users in ${seconds} s: ${first.created + last.created} created, ${first.skipped + last.skipped} already there.`;
  } finally {
    await closeRedis(redis);
  }
}
