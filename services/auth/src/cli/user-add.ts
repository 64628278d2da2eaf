import { text } from 'node:stream/consumers';
import { read } from 'read';
import { seedUsers } from '../domain/seeding.js';
import { userSchema } from '../domain/schemas.js';
import { exitWith, parseFlags, runCli } from './common.js';

const USAGE =
  'usage: pnpm user:add --email EMAIL [--first-name NAME] [--last-name NAME] [--id N] [--force]\n' +
  '  The password is asked for at the prompt (not echoed), or read from stdin: printf %s "$PASSWORD" | pnpm user:add --email …';

/** Never from argv: a password there lands in shell history and in `ps` for every user of the machine. */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) return read({ prompt: 'Password: ', silent: true, replace: '*', output: process.stderr });
  // One trailing newline (echo, a heredoc) is not part of the password.
  return (await text(process.stdin)).replace(/\r?\n$/, '');
}

const values = parseFlags(
  'user:add',
  {
    email: { type: 'string' },
    'first-name': { type: 'string' },
    'last-name': { type: 'string' },
    id: { type: 'string' },
    force: { type: 'boolean', default: false },
    // Declared only to refuse it with a reason (an unknown flag would get a generic message).
    password: { type: 'string' },
  },
  USAGE,
);
if (values.password !== undefined) {
  exitWith(
    'user:add',
    '--password is not accepted: a password on the command line lands in shell history and in `ps`. ' +
      `Leave it out and type the password at the prompt, or pipe it on stdin.\n${USAGE}`,
  );
}
const email = values.email ?? exitWith('user:add', USAGE);

await runCli('user:add', async ({ repository, hasher }) => {
  const password = await readPassword();
  if (!password) throw new Error(`no password given.\n${USAGE}`);
  const candidate = {
    id: values.id !== undefined ? Number(values.id) : await repository.nextId(),
    firstName: values['first-name'] ?? email.split('@')[0] ?? 'New',
    lastName: values['last-name'] ?? 'User',
    email,
    password,
  };
  const parsed = userSchema.safeParse(candidate);
  if (!parsed.success) throw new Error(`invalid user: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}. ${USAGE}`);
  // The same rules as the seed: unique email (case-insensitive), existing id only with --force.
  const result = await seedUsers([parsed.data], { repository, hasher }, { force: values.force });
  if (result.skipped > 0) throw new Error(`user ${parsed.data.id} already exists (use --force to replace it).`);
  process.stdout.write(`User ${parsed.data.id} <${parsed.data.email}> ${result.created ? 'created' : 'updated'}.\n`);
});
