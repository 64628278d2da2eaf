import { seedUsers } from '../domain/seeding.js';
import { userSchema } from '../domain/schemas.js';
import { flag, runCli } from './common.js';

const USAGE = 'usage: pnpm user:add --email EMAIL --password PASSWORD [--first-name NAME] [--last-name NAME] [--id N] [--force]';
const args = process.argv.slice(2);

await runCli('user:add', async ({ repository, hasher }) => {
  const email = flag(args, 'email');
  const password = flag(args, 'password');
  if (!email || !password) throw new Error(USAGE);
  const idFlag = flag(args, 'id');
  const candidate = {
    id: idFlag !== undefined ? Number(idFlag) : await repository.nextId(),
    firstName: flag(args, 'first-name') ?? email.split('@')[0] ?? 'New',
    lastName: flag(args, 'last-name') ?? 'User',
    email,
    password,
  };
  const parsed = userSchema.safeParse(candidate);
  if (!parsed.success) throw new Error(`invalid user: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}. ${USAGE}`);
  // The same rules as the seed: unique email (case-insensitive), existing id only with --force.
  const result = await seedUsers([parsed.data], { repository, hasher }, { force: args.includes('--force') });
  if (result.skipped > 0) throw new Error(`user ${parsed.data.id} already exists (use --force to replace it).`);
  process.stdout.write(`User ${parsed.data.id} <${parsed.data.email}> ${result.created ? 'created' : 'updated'}.\n`);
});
