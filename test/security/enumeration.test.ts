/**
 * An unknown email and a wrong password are indistinguishable — status, body (but the
 * request id), header names, and the work done: exactly one bcrypt compare and the same Redis commands
 * on both paths (docs/decisions/015-enumeration-timing.md). Equal work is asserted, not timed: a stopwatch on a shared
 * 2-core machine could not tell a missing compare from foreign load reliably. The response times are
 * only logged here; measuring them is the bench's job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandsDuring, type SpawnedRedis } from '@ncc/testing';
import { createPasswordHasher } from '../../services/auth/src/app.js';
import { type CountingHasher, countingHasher, type Stack, type StartedService, startStack } from '../support/services.js';
import { tryLogin } from './support.js';

const USER = { id: 601, email: 'enum.user@example.com', password: 'the-right-password' };

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;
let hasher: CountingHasher;

beforeAll(async () => {
  // The production hasher (bcrypt cost 10 on its worker pool), counted. High limits: lock-outs are not the subject here.
  stack = await startStack({
    users: [USER],
    checkins: 0,
    env: { LOGIN_MAX_FAILS_PER_EMAIL_IP: '100000', LOGIN_MAX_FAILS_PER_IP_DAY: '1000000', BCRYPT_ROUNDS: '10' },
    hasher: (config) => (hasher = countingHasher(createPasswordHasher(config))),
  });
  ({ redis, auth } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const wrongPassword = { email: USER.email, password: 'not-the-password' };
const unknownEmail = { email: 'no.such.user@example.com', password: 'not-the-password' };

function shape(res: Response, body: unknown): { status: number; body: unknown; headers: string[] } {
  const copy = structuredClone(body) as { error?: { requestId?: string } };
  delete copy.error?.requestId;
  const headers = [...res.headers.keys()].filter((h) => h !== 'date').sort();
  return { status: res.status, body: copy, headers };
}

interface Work {
  status: number;
  ms: number;
  compares: number;
  calls: CountingHasher['calls'];
  commands: Record<string, number>;
}

/** One failed login and everything it cost: hasher calls, and every Redis command it made (all of them run: a round trip on the service's connection comes after them). */
async function workOf(credentials: { email: string; password: string }): Promise<Work> {
  const before = { ...hasher.calls };
  const comparesBefore = hasher.compares();
  let status = 0;
  let ms = 0;
  const commands = await commandsDuring(redis.client, async () => {
    const started = performance.now();
    status = (await tryLogin(auth.url, credentials)).res.status;
    ms = performance.now() - started;
    await auth.redis.ping();
  });
  const calls = {
    hash: hasher.calls.hash - before.hash,
    verify: hasher.calls.verify - before.verify,
    verifyDummy: hasher.calls.verifyDummy - before.verifyDummy,
  };
  return { status, ms, compares: hasher.compares() - comparesBefore, calls, commands };
}

describe('user enumeration', () => {
  it('when the email is unknown or the password wrong, then status, body (minus requestId) and the set of header names are identical', async () => {
    const a = await tryLogin(auth.url, wrongPassword);
    const b = await tryLogin(auth.url, unknownEmail);
    expect(a.res.status).toBe(401);
    expect(shape(b.res, b.body)).toEqual(shape(a.res, a.body));
    expect(a.body).toMatchObject({ error: { code: 'INVALID_CREDENTIALS', message: 'Invalid login.' } });
    expect(a.res.headers.getSetCookie()).toEqual([]);
    expect(b.res.headers.getSetCookie()).toEqual([]);
  });

  it('when the email is unknown or the password wrong, then each login runs exactly one bcrypt compare and the same Redis commands, the same number of times', async () => {
    // Once each first: the dummy hash is made and the limiter's scripts are loaded (EVALSHA, not EVAL, from then on).
    await workOf(unknownEmail);
    await workOf(wrongPassword);
    const rounds: { unknown: Work; wrong: Work }[] = [];
    for (let i = 0; i < 3; i++) rounds.push({ unknown: await workOf(unknownEmail), wrong: await workOf(wrongPassword) });
    for (const { unknown, wrong } of rounds) {
      expect(unknown.status).toBe(401);
      expect(wrong.status).toBe(401);
      expect(unknown.compares).toBe(1);
      expect(wrong.compares).toBe(1);
      // The unknown email compares against the dummy hash; nothing is hashed per request.
      expect(unknown.calls).toEqual({ hash: 0, verify: 0, verifyDummy: 1 });
      expect(wrong.calls).toEqual({ hash: 0, verify: 1, verifyDummy: 0 });
      expect(unknown.commands).toEqual(wrong.commands);
      // The login reads the email index and a user hash on both paths (an unknown email reads ncc:user:0).
      expect(wrong.commands).toMatchObject({ get: expect.any(Number) as number, hgetall: 1, ping: 1 });
    }
    console.log(`enumeration: Redis commands per failed login ${JSON.stringify(rounds[0]!.wrong.commands)}`);
    console.log(
      `enumeration timing (logged only): unknown ${rounds.map((r) => r.unknown.ms.toFixed(0)).join('/')} ms, wrong ${rounds.map((r) => r.wrong.ms.toFixed(0)).join('/')} ms`,
    );
  });
});
