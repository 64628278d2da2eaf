/**
 * `pnpm seed` and `pnpm user:add` as the user runs them: the real CLI in a child process against a
 * spawned redis-server. The demo file (120 users, bcrypt cost 10) is seeded once, by the first
 * describe, on a Redis of its own. The other tests share a second Redis holding three users of that
 * file (Al 77, Dev 1, Hana 2), written directly, and give the CLI small files of their own: they do
 * not depend on what else the demo file holds or on the 120-user run.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import type { Redis } from 'ioredis';
import { postJson, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { DEMO, login, ROOT, type Stack, type StartedService, startAuth, startStack, type TestUser } from './support/services.js';

const DEMO_USERS = (JSON.parse(readFileSync(join(ROOT, 'services/auth/data/demo-users.json'), 'utf8')) as { users: Required<TestUser>[] }).users;
/** Three users of the demo file, exactly as it has them. */
const FEW = DEMO_USERS.filter((u) => [77, 1, 2].includes(u.id));

let tmp: string;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a user runs it; `stdin` is what is piped in (user:add reads the password there), else nothing. */
function runCli(redisUrl: string, script: 'seed' | 'user-add', args: string[] = [], stdin = ''): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--conditions=ncc-source', '--import', 'tsx', `services/auth/src/cli/${script}.ts`, ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'], HOME: process.env['HOME'], REDIS_URL: redisUrl }, timeout: 90_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin);
  });
}

function writeUsers(name: string, users: unknown[]): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify({ users }));
  return file;
}

/** Everything stored under the user prefix, to prove a refused run wrote nothing. */
async function userSnapshot(client: Redis): Promise<Record<string, unknown>> {
  const keys = (await client.keys('ncc:user:*')).sort();
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    out[key] = (await client.type(key)) === 'hash' ? await client.hgetall(key) : await client.get(key);
  }
  return out;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ncc-seed-test-'));
});

afterAll(async () => {
  await few?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('pnpm seed with the demo file', () => {
  let demo: SpawnedRedis;
  let demoAuth: StartedService;
  let firstRun: CliResult;

  beforeAll(async () => {
    demo = await spawnRedis();
    firstRun = await runCli(demo.url, 'seed');
    demoAuth = await startAuth(demo.url);
  }, 120_000);

  afterAll(async () => {
    await demoAuth?.close();
    await demo?.stop();
  });

  it('when run on an empty Redis, then it creates the 120 demo users with bcrypt hashes and email indexes', async () => {
    expect(firstRun.stderr).toBe('');
    expect(firstRun.code).toBe(0);
    expect(firstRun.stdout.trim()).toBe('Seeded users: 120 created, 0 updated, 0 skipped.');

    const al = await demo.client.hgetall('ncc:user:77');
    expect(al).toMatchObject({ id: '77', firstName: 'Al', lastName: 'Appelhof', email: DEMO.email });
    expect(al['password']).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(await demo.client.get(`ncc:user:email:${DEMO.email}`)).toBe('77');
    expect((await demo.client.keys('ncc:user:email:*')).length).toBe(120);
    const hashes = (await demo.client.keys('ncc:user:*')).filter((k) => /^ncc:user:\d+$/.test(k));
    expect(hashes.length).toBe(120);
  });

  it('when the seeded demo user logs in with the documented password, then 200', async () => {
    const res = await postJson(`${demoAuth.url}/login`, { email: DEMO.email, password: DEMO.password });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user: { id: 77, email: DEMO.email, firstName: 'Al', lastName: 'Appelhof' } });
  });

  it('when run again, then it creates nothing and changes nothing', async () => {
    const before = await userSnapshot(demo.client);
    const again = await runCli(demo.url, 'seed');
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('Seeded users: 0 created, 0 updated, 120 skipped.');
    expect(await userSnapshot(demo.client)).toEqual(before);
  });
});

/** The tests below share a Redis holding FEW (written directly) and the auth service on it. */
let few: Stack;
let redis: SpawnedRedis;
let auth: StartedService;

beforeAll(async () => {
  few = await startStack({ users: FEW, checkins: 0 });
  ({ redis, auth } = few);
});

describe('pnpm seed with a file of its own, on a few demo users', () => {
  it('when a user exists and the file changes its password, then without --force it is skipped; with --force it is updated', async () => {
    const file = writeUsers('changed.json', [
      { id: 1, firstName: 'Dev', lastName: 'Kowalski', email: 'dev.kowalski@example.com', password: 'a-new-password-1' },
    ]);
    const hashBefore = await redis.client.hget('ncc:user:1', 'password');

    const skipped = await runCli(redis.url, 'seed', ['--file', file]);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout.trim()).toBe('Seeded users: 0 created, 0 updated, 1 skipped.');
    expect(await redis.client.hget('ncc:user:1', 'password')).toBe(hashBefore);

    const forced = await runCli(redis.url, 'seed', ['--force', '--file', file]);
    expect(forced.code).toBe(0);
    expect(forced.stdout.trim()).toBe('Seeded users: 0 created, 1 updated, 0 skipped.');
    const hashAfter = await redis.client.hget('ncc:user:1', 'password');
    expect(hashAfter).not.toBe(hashBefore);
    expect(hashAfter).toMatch(/^\$2b\$10\$/);
    expect((await postJson(`${auth.url}/login`, { email: 'dev.kowalski@example.com', password: 'a-new-password-1' })).status).toBe(200);
  });

  it("when --force changes a user's email, then the old address no longer logs in and its index entry is gone", async () => {
    const hana = await redis.client.hgetall('ncc:user:2');
    expect(hana['email']).toBe('hana.tanaka@example.com');
    const file = writeUsers('renamed.json', [{ id: 2, firstName: 'Hana', lastName: 'Tanaka', email: 'hana.t@example.com', password: 'hana-new-pw-2' }]);
    const run = await runCli(redis.url, 'seed', ['--force', '--file', file]);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('Seeded users: 0 created, 1 updated, 0 skipped.');
    expect(await redis.client.get('ncc:user:email:hana.t@example.com')).toBe('2');
    expect(await redis.client.exists('ncc:user:email:hana.tanaka@example.com')).toBe(0);
    expect((await postJson(`${auth.url}/login`, { email: 'hana.tanaka@example.com', password: 'hana-new-pw-2' })).status).toBe(401);
    expect((await postJson(`${auth.url}/login`, { email: 'hana.t@example.com', password: 'hana-new-pw-2' })).status).toBe(200);
  });

  it('when two users in the file share an email case-insensitively, then exit 1 naming both ids and nothing is written', async () => {
    const file = writeUsers('duplicates.json', [
      { id: 901, firstName: 'Pat', lastName: 'One', email: 'Pat.Twin@example.com', password: 'pw-901-pw' },
      { id: 902, firstName: 'Pat', lastName: 'Two', email: 'pat.twin@EXAMPLE.com', password: 'pw-902-pw' },
    ]);
    const before = await userSnapshot(redis.client);
    const dbBefore = await redis.client.dbsize();
    const run = await runCli(redis.url, 'seed', ['--file', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('Users 901 and 902 share the email pat.twin@example.com (emails are case-insensitive)');
    expect(run.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(await redis.client.dbsize()).toBe(dbBefore);
    expect(await userSnapshot(redis.client)).toEqual(before);
  });

  it('when a new user in the file reuses the email of an existing user, then exit 1 naming both ids and nothing is written', async () => {
    const file = writeUsers('clash.json', [{ id: 903, firstName: 'Not', lastName: 'Al', email: 'AL.APPELHOF@example.com', password: 'whatever-1' }]);
    const before = await userSnapshot(redis.client);
    const run = await runCli(redis.url, 'seed', ['--file', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Email al.appelhof@example.com already belongs to user 77; refusing user 903');
    expect(await userSnapshot(redis.client)).toEqual(before);
  });

  it('when the file is not a valid user list, then exit 1 with a message and nothing is written', async () => {
    const file = writeUsers('invalid.json', [{ id: 904, email: 'no-names@example.com', password: 'x'.repeat(73) }]);
    const before = await userSnapshot(redis.client);
    const run = await runCli(redis.url, 'seed', ['--file', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/not a valid user list/);
    expect(run.stderr).toMatch(/password/);
    expect(await userSnapshot(redis.client)).toEqual(before);
  });
});

describe('pnpm seed with pre-computed bcrypt hashes (passwordHash)', () => {
  const PASSWORD = 'pre-hashed-pw-1';
  /** Made once here, as an operator (or the bench) would: the seed stores it as it is. */
  const hash = bcrypt.hashSync(PASSWORD, 10);

  it('when an entry has a cost-10 passwordHash instead of a password, then exactly that hash is stored, the user logs in with its password, and the output never shows it', async () => {
    const file = writeUsers('hashed.json', [
      { id: 910, firstName: 'Pre', lastName: 'Hashed', email: 'pre.hashed@example.com', passwordHash: hash },
      { id: 911, firstName: 'Plain', lastName: 'Text', email: 'plain.text@example.com', password: 'plain-pw-911' },
    ]);
    const run = await runCli(redis.url, 'seed', ['--file', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('Seeded users: 2 created, 0 updated, 0 skipped.');
    expect(run.stdout).not.toContain(hash);

    expect(await redis.client.hgetall('ncc:user:910')).toEqual({
      id: '910',
      firstName: 'Pre',
      lastName: 'Hashed',
      email: 'pre.hashed@example.com',
      password: hash,
    });
    expect(await redis.client.get('ncc:user:email:pre.hashed@example.com')).toBe('910');
    // The plaintext entry in the same file is still hashed by the seed.
    expect(await redis.client.hget('ncc:user:911', 'password')).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);

    expect((await postJson(`${auth.url}/login`, { email: 'pre.hashed@example.com', password: PASSWORD })).status).toBe(200);
    expect((await postJson(`${auth.url}/login`, { email: 'pre.hashed@example.com', password: 'not-the-password' })).status).toBe(401);
    expect((await postJson(`${auth.url}/login`, { email: 'plain.text@example.com', password: 'plain-pw-911' })).status).toBe(200);
  });

  it('when an entry has both password and passwordHash, or a cost-4 hash, then exit 1 naming that entry, never printing the hash or password, and nothing is written', async () => {
    const cheap = bcrypt.hashSync(PASSWORD, 4);
    const cases = [
      {
        file: writeUsers('both.json', [
          { id: 912, firstName: 'Ok', lastName: 'Entry', email: 'ok.entry@example.com', passwordHash: hash },
          { id: 913, firstName: 'Two', lastName: 'Secrets', email: 'two.secrets@example.com', password: 'both-given-pw', passwordHash: hash },
        ]),
        entry: 'users[1] (id 913)',
        reason: /exactly one of "password" .* or "passwordHash" .*this entry has both/,
        secrets: [hash, 'both-given-pw'],
      },
      {
        file: writeUsers('cost4.json', [{ id: 914, firstName: 'Cheap', lastName: 'Hash', email: 'cheap.hash@example.com', passwordHash: cheap }]),
        entry: 'users[0] (id 914).passwordHash',
        reason: /bcrypt cost 4 is refused/,
        secrets: [cheap],
      },
    ];
    const before = await userSnapshot(redis.client);
    const dbBefore = await redis.client.dbsize();
    for (const { file, entry, reason, secrets } of cases) {
      const run = await runCli(redis.url, 'seed', ['--file', file]);
      expect(run.code, file).toBe(1);
      expect(run.stdout, file).toBe('');
      expect(run.stderr, file).toContain('not a valid user list');
      expect(run.stderr, file).toContain(`${entry}: `);
      expect(run.stderr, file).toMatch(reason);
      expect(run.stderr, file).not.toMatch(/\n\s+at /); // a message, not a stack trace
      for (const secret of secrets) {
        expect(run.stderr, file).not.toContain(secret);
        // Not even the salt and hash without the prefix.
        expect(run.stderr, file).not.toContain(secret.slice(7));
      }
    }
    expect(await redis.client.dbsize()).toBe(dbBefore);
    expect(await userSnapshot(redis.client)).toEqual(before);
  });
});

describe('pnpm user:add', () => {
  it('when a new email and password are given, then the user is created with a bcrypt hash and can log in', async () => {
    const run = await runCli(redis.url, 'user-add', ['--email', 'New.Person@example.com', '--first-name', 'New', '--last-name', 'Person'], 'brand-new-pw\n');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const match = /^User (\d+) <New\.Person@example\.com> created\.$/.exec(run.stdout.trim());
    expect(match).not.toBeNull();
    const id = match![1]!;
    expect(await redis.client.get('ncc:user:email:new.person@example.com')).toBe(id);
    const stored = await redis.client.hgetall(`ncc:user:${id}`);
    expect(stored).toMatchObject({ id, firstName: 'New', lastName: 'Person', email: 'New.Person@example.com' });
    expect(stored['password']).toMatch(/^\$2b\$10\$/);

    const cookie = await login(auth.url, 'new.person@example.com', 'brand-new-pw');
    const me = await fetch(`${auth.url}/me`, { headers: { cookie } });
    expect(((await me.json()) as { user: { id: number } }).user.id).toBe(Number(id));
  });

  it('when the email already belongs to another user (any case), then exit 1 naming both ids and nothing is written', async () => {
    const before = await userSnapshot(redis.client);
    const run = await runCli(redis.url, 'user-add', ['--email', 'Al.Appelhof@Example.com'], 'another-pw');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Email al\.appelhof@example\.com already belongs to user 77; refusing user \d+/);
    // The refused run may only have moved the id counter, never a user or an email index.
    const after = await userSnapshot(redis.client);
    delete after['ncc:user:next-id'];
    const expected = { ...before };
    delete expected['ncc:user:next-id'];
    expect(after).toEqual(expected);
    // The original password still works.
    expect((await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password })).status).toBe(200);
  });

  it('when the password is over 72 bytes or the email is missing, then exit 1 with usage', async () => {
    const long = await runCli(redis.url, 'user-add', ['--email', 'long@example.com'], 'é'.repeat(37));
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/password/);
    const missing = await runCli(redis.url, 'user-add', [], 'x');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/usage/);
    expect(await redis.client.exists('ncc:user:email:long@example.com')).toBe(0);
  });
});
