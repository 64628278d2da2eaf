/**
 * `pnpm user:add` refusing a password on the command line, as a user runs it: the real CLI in a child
 * process against a redis-server of its own, which must still be empty afterwards.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis, spawnRedis } from '@ncc/testing';

const ROOT = new URL('../../../', import.meta.url).pathname;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `pnpm user:add …` with only REDIS_URL set; `stdin` is what is piped in. */
function userAdd(redisUrl: string, args: string[], stdin = ''): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--conditions=ncc-source', '--import', 'tsx', 'services/auth/src/cli/user-add.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'], HOME: process.env['HOME'], REDIS_URL: redisUrl }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin);
  });
}

describe('pnpm user:add --password', () => {
  let redis: SpawnedRedis;

  beforeAll(async () => {
    redis = await spawnRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('when the password is given as --password x, then exit 1 telling to use the prompt or stdin, and nothing is written to Redis', async () => {
    // A password piped in as well: the refusal must not depend on stdin being empty.
    const run = await userAdd(redis.url, ['--email', 'argv.user@example.com', '--password', 'x'], 'piped-pw\n');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^user:add: --password is not accepted/);
    expect(run.stderr).toMatch(/prompt/);
    expect(run.stderr).toMatch(/stdin/);
    expect(run.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(await redis.client.dbsize()).toBe(0);
  });
});
