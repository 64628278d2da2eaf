import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { seedUsers } from '../domain/seeding.js';
import { userSchema } from '../domain/schemas.js';
import { flag, runCli } from './common.js';

export const DEMO_USERS_FILE = fileURLToPath(new URL('../../data/demo-users.json', import.meta.url));
const fileSchema = z.object({ users: z.array(userSchema).min(1) });

const args = process.argv.slice(2);
const force = args.includes('--force');
const file = flag(args, 'file') ?? DEMO_USERS_FILE;

await runCli('seed', async ({ repository, hasher }) => {
  const parsed = fileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(`${file} is not a valid user list: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const result = await seedUsers(parsed.data.users, { repository, hasher }, { force });
  process.stdout.write(`Seeded users: ${result.created} created, ${result.updated} updated, ${result.skipped} skipped.\n`);
});
