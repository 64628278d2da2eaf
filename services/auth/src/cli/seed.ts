import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { seedUsers } from '../domain/seeding.js';
import { userSchema } from '../domain/schemas.js';
import { runCli } from './common.js';

export const DEMO_USERS_FILE = fileURLToPath(new URL('../../data/demo-users.json', import.meta.url));
const fileSchema = z.object({ users: z.array(userSchema).min(1) });

const USAGE = 'usage: pnpm seed [--file users.json] [--force]';

await runCli('seed', async ({ repository, hasher }) => {
  let values;
  try {
    ({ values } = parseArgs({ options: { file: { type: 'string', default: DEMO_USERS_FILE }, force: { type: 'boolean', default: false } }, strict: true }));
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  }
  const { file, force } = values;
  const parsed = fileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(`${file} is not a valid user list: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const result = await seedUsers(parsed.data.users, { repository, hasher }, { force });
  process.stdout.write(`Seeded users: ${result.created} created, ${result.updated} updated, ${result.skipped} skipped.\n`);
});
