import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type SeedUser, seedUserSchema } from '../domain/schemas.js';
import { seedUsers } from '../domain/seeding.js';
import { parseFlags, runCli } from './common.js';

export const DEMO_USERS_FILE = fileURLToPath(new URL('../../data/demo-users.json', import.meta.url));

const fileSchema = z.object({ users: z.array(seedUserSchema).min(1) });

const USAGE = 'usage: pnpm seed [--file users.json] [--force]';

/** `users[3] (id 42)`: the entry an issue is about, by its place in the file and its id if it has one. */
function entryName(raw: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'users' || typeof path[1] !== 'number') return path.map(String).join('.') || '(file)';
  const id = ((raw as { users?: unknown[] }).users?.[path[1]] as { id?: unknown } | undefined)?.id;
  const field = path.slice(2).map(String).join('.');
  return `users[${path[1]}]${typeof id === 'number' ? ` (id ${id})` : ''}${field ? `.${field}` : ''}`;
}

/**
 * The file's JSON, or where it stops being JSON. Only the position: newer Node versions quote the text
 * around a syntax error, which may be a password, so the parser's message is not passed on.
 */
function parseJson(text: string): { ok: true; value: unknown } | { ok: false; at: string | undefined } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return { ok: false, at: /position \d+/.exec(err.message)?.[0] };
  }
}

function readUserFile(file: string): SeedUser[] {
  const json = parseJson(readFileSync(file, 'utf8'));
  if (!json.ok) throw new Error(`${file} is not valid JSON${json.at ? ` (at ${json.at})` : ''}.`);
  const raw = json.value;
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${file} is not a valid user list: ${parsed.error.issues.map((i) => `${entryName(raw, i.path)}: ${i.message}`).join('; ')}`);
  }
  return parsed.data.users;
}

const { file, force } = parseFlags('seed', { file: { type: 'string', default: DEMO_USERS_FILE }, force: { type: 'boolean', default: false } }, USAGE);

await runCli('seed', async ({ repository, hasher }) => {
  const result = await seedUsers(readUserFile(file), { repository, hasher }, { force });
  process.stdout.write(`Seeded users: ${result.created} created, ${result.updated} updated, ${result.skipped} skipped.\n`);
});
