/**
 * Crash-only on programmer errors (README, When Redis fails: "When a process crashes"). A child process runs the real runService with
 * deliberately faulty routes (fixtures/faulty-service.ts).
 *
 * - A request error (thrown in a handler, a non-Error value, an error mid-response) is the Express
 *   error handler's: a complete generic 500 JSON body, and the same process serves on.
 * - A truly uncaught error (a throw from a timer, a promise nobody handles) leaves the process in an
 *   undefined state: it is logged with stack and request id, new connections are refused, requests in
 *   flight finish, and the process exits with CRASH_EXIT_CODE (1) for its supervisor to restart it —
 *   within SHUTDOWN_TIMEOUT_MS + CRASH_EXIT_MARGIN_MS whatever happens, at once on a second error.
 * - An error before the server listens exits 1 too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_EXIT_CODE, CRASH_EXIT_MARGIN_MS } from '@ncc/service-kit';
import { freePort, type SpawnedRedis, spawnRedis, until } from '@ncc/testing';
import { ROOT } from '../support/services.js';
import { call, connectionRefused } from './helpers.js';

/** Sent with the requests around a crash; none of them may reach the log. */
const SECRETS = {
  cookie: 'checkinapp=s%3Atopsecret-cookie-value.signature',
  authorization: 'Bearer topsecret-bearer-token',
  password: 'topsecret-password-123',
};

interface Faulty {
  child: ChildProcess;
  port: number;
  base: string;
  output(): string;
  /** The JSON log lines the child has written so far. */
  logLines(): Record<string, unknown>[];
  /** Exit code (or signal) and when it happened (performance.now()). */
  exited: Promise<{ code: number | string; at: number }>;
}

let redis: SpawnedRedis;
const spawned = new Set<ChildProcess>();

beforeAll(async () => {
  redis = await spawnRedis();
});

afterAll(async () => {
  await redis?.stop();
});

afterEach(() => {
  // A failed test must not leave a fixture running.
  for (const child of spawned) child.kill('SIGKILL');
});

async function spawnFaulty(env: Record<string, string> = {}, waitFor: RegExp | null = /listening on port/): Promise<Faulty> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'test/reliability/fixtures/faulty-service.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      NODE_ENV: 'test',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'debug',
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      FAULTY_PORT: String(port),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | string; at: number }>((resolve) =>
    child.once('exit', (code, signal) => {
      spawned.delete(child);
      resolve({ code: code ?? signal ?? 'unknown', at: performance.now() });
    }),
  );
  const logLines = (): Record<string, unknown>[] =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  if (waitFor) {
    await Promise.race([
      until(`the fixture's ${String(waitFor)}`, 20_000, () => waitFor.test(output)),
      exited.then(({ code }) => {
        throw new Error(`the fixture exited (${code}) before starting:\n${output}`);
      }),
    ]);
  }
  return { child, port, base: `http://127.0.0.1:${port}`, output: () => output, logLines, exited };
}

/** Poll the fixture's log until an entry matches; returns it. */
async function logEntry(faulty: Faulty, match: (entry: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
  return until('a matching log entry', timeoutMs, () => faulty.logLines().find(match), 10);
}

const withMessage =
  (text: string) =>
  (entry: Record<string, unknown>): boolean =>
    String(entry['message']).startsWith(text);

/** POST /slow?ms=…, carrying every kind of secret; settles with what the client saw and when. */
function slowRequest(faulty: Faulty, ms: number, id: string): Promise<{ status: number | 'cut'; body: unknown; at: number }> {
  return fetch(`${faulty.base}/slow?ms=${ms}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id, cookie: SECRETS.cookie, authorization: SECRETS.authorization },
    body: JSON.stringify({ email: 'someone@example.com', password: SECRETS.password }),
    signal: AbortSignal.timeout(15_000),
  }).then(
    async (res) => ({ status: res.status, body: await res.json(), at: performance.now() }),
    () => ({ status: 'cut' as const, body: undefined, at: performance.now() }),
  );
}

function expectNoSecrets(output: string): void {
  for (const secret of ['topsecret-cookie-value', 'topsecret-bearer-token', SECRETS.password]) expect(output).not.toContain(secret);
}

describe('when a route causes a truly uncaught error while another request is in flight', () => {
  const cases = [
    { kind: 'an uncaught exception', path: '/uncaught-exception', message: 'Uncaught exception.', text: 'fixture: thrown from a timer' },
    { kind: 'an unhandled rejection', path: '/unhandled-rejection', message: 'Unhandled promise rejection.', text: 'fixture: nobody handled this rejection' },
  ];
  for (const { kind, path, message, text } of cases) {
    it(`when it is ${kind}, then it is logged with stack and request id, new connections are refused, the in-flight request completes, and the process exits ${CRASH_EXIT_CODE} within SHUTDOWN_TIMEOUT_MS + margin`, async () => {
      const shutdownTimeoutMs = 5000;
      const faulty = await spawnFaulty({ SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) });
      const inFlight = slowRequest(faulty, 2000, 'req-in-flight-1');
      await logEntry(faulty, withMessage('fixture holding a slow request'));

      const trigger = await call(`${faulty.base}${path}`, {
        headers: { 'x-request-id': 'req-crash-1', cookie: SECRETS.cookie, authorization: SECRETS.authorization },
      });
      const crashed = performance.now();
      expect(trigger.status).toBe(200);
      // The service's own id for the request that caused the error (the one in its X-Request-Id header).
      const requestId = trigger.headers.get('x-request-id');
      expect(requestId).toBeTruthy();

      const entry = await logEntry(faulty, withMessage(message));
      expect(entry).toMatchObject({ level: 'error', requestId, error: expect.stringContaining(text) as string });
      // The stack, not only the message: the frame in the fixture that threw.
      expect(String(entry['error'])).toMatch(/\n\s+at .*faulty-service\.ts:\d+:\d+/);
      await logEntry(faulty, withMessage('Shutting down after an uncaught error'));
      // Draining: no new connections, while the slow request is still being served.
      expect(await connectionRefused(faulty.port)).toBe(true);
      expect(faulty.child.exitCode).toBeNull();

      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ done: true, pid: faulty.child.pid, waitedMs: 2000 });
      const { code, at } = await faulty.exited;
      const exitMs = at - crashed;
      console.log(
        `${kind}: in-flight answered ${(answer.at - crashed).toFixed(0)} ms after the crash, exit ${code} ${exitMs.toFixed(0)} ms after it (deadline ${shutdownTimeoutMs + CRASH_EXIT_MARGIN_MS} ms)`,
      );
      expect(code).toBe(CRASH_EXIT_CODE);
      expect(at).toBeGreaterThanOrEqual(answer.at - 50);
      expect(exitMs).toBeLessThan(shutdownTimeoutMs + CRASH_EXIT_MARGIN_MS);

      // The same stop as SIGTERM: drained, Redis closed by the service (QUIT), then the exit code said.
      const output = faulty.output();
      const drain = output.indexOf('Shutting down after an uncaught error');
      expect(output.indexOf('Redis connection ended.', drain), output).toBeGreaterThan(drain);
      expect(output).toContain(`Shutdown complete; exiting with code ${CRASH_EXIT_CODE}.`);
      expect(faulty.logLines().filter(withMessage(message))).toHaveLength(1);
      expectNoSecrets(output);
    });
  }
});

describe('when a second uncaught error happens while the process drains after the first', () => {
  it('then it does not wait for the drain: it exits 1 at once, cutting the request still in flight', async () => {
    const faulty = await spawnFaulty({ SHUTDOWN_TIMEOUT_MS: '10000' });
    const inFlight = slowRequest(faulty, 4000, 'req-in-flight-2');
    await logEntry(faulty, withMessage('fixture holding a slow request'));
    const trigger = await call(`${faulty.base}/uncaught-twice`, { headers: { 'x-request-id': 'req-twice-1' } });
    const crashed = performance.now();
    expect(trigger.status).toBe(200);

    const { code, at } = await faulty.exited;
    const exitMs = at - crashed;
    console.log(`second error during the drain: exit ${code} ${exitMs.toFixed(0)} ms after the first error (second one at ~100 ms)`);
    expect(code).toBe(CRASH_EXIT_CODE);
    expect(exitMs).toBeLessThan(2000);
    expect((await inFlight).status).toBe('cut');
    const lines = faulty.logLines();
    expect(lines.find(withMessage('Uncaught exception.'))).toMatchObject({
      requestId: trigger.headers.get('x-request-id'),
      error: expect.stringContaining('fixture: first throw') as string,
    });
    expect(lines.filter(withMessage('Uncaught exception.')).map((l) => String(l['error']).split('\n')[0])).toEqual([
      'Error: fixture: first throw',
      'Error: fixture: second throw, during the drain',
    ]);
    expect(lines.some(withMessage('Another uncaught error while shutting down'))).toBe(true);
    expect(faulty.output()).not.toContain('Shutdown complete');
    expectNoSecrets(faulty.output());
  });
});

describe('when the shutdown after an uncaught error hangs (onClose never finishes)', () => {
  it('then the hard deadline SHUTDOWN_TIMEOUT_MS + CRASH_EXIT_MARGIN_MS ends the process with exit code 1', async () => {
    const shutdownTimeoutMs = 500;
    const deadline = shutdownTimeoutMs + CRASH_EXIT_MARGIN_MS;
    const faulty = await spawnFaulty({ SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs), FAULTY_HANG_ON_CLOSE: 'true' });
    expect((await call(`${faulty.base}/uncaught-exception`)).status).toBe(200);
    const crashed = performance.now();
    const { code, at } = await faulty.exited;
    const exitMs = at - crashed;
    console.log(`hung shutdown: exit ${code} ${exitMs.toFixed(0)} ms after the error (deadline ${deadline} ms)`);
    expect(code).toBe(CRASH_EXIT_CODE);
    expect(exitMs).toBeGreaterThanOrEqual(deadline - 50);
    expect(exitMs).toBeLessThan(deadline + 1500);
    expect(faulty.output()).toContain(`did not finish within ${deadline} ms (SHUTDOWN_TIMEOUT_MS + ${CRASH_EXIT_MARGIN_MS} ms)`);
  });
});

describe('when an error happens before the server listens', () => {
  it('when createApp throws, then the process logs it with its stack and exits 1 without listening', async () => {
    const faulty = await spawnFaulty({ FAULTY_FAIL_AT_START: 'throw' }, null);
    const { code } = await faulty.exited;
    expect(code).toBe(1);
    const entry = faulty.logLines().find(withMessage('Start-up failed.'));
    expect(entry).toMatchObject({ level: 'error', error: expect.stringContaining('fixture: createApp failed') as string });
    expect(String(entry?.['error'])).toMatch(/\n\s+at /);
    expect(faulty.output()).not.toMatch(/listening on port/);
  });

  it('when a timer throws during start-up, then the process logs it and exits 1 without listening', async () => {
    const faulty = await spawnFaulty({ FAULTY_FAIL_AT_START: 'uncaught' }, null);
    const { code } = await faulty.exited;
    expect(code).toBe(1);
    expect(faulty.logLines().find(withMessage('Uncaught exception.'))).toMatchObject({
      level: 'error',
      error: expect.stringContaining('during start-up') as string,
    });
    expect(faulty.logLines().some(withMessage('Uncaught error during start-up; exiting with code 1.'))).toBe(true);
    expect(faulty.output()).not.toMatch(/listening on port/);
  });
});

describe('when route code fails inside the request (a request error)', () => {
  let faulty: Faulty;
  let firstPid: number;

  beforeAll(async () => {
    faulty = await spawnFaulty();
    spawned.delete(faulty.child); // shared by the tests below: afterEach must not kill it
    firstPid = ((await call(`${faulty.base}/whoami`)).body as { pid: number }).pid;
  });

  afterAll(() => {
    if (faulty?.child.exitCode === null) faulty.child.kill('SIGKILL');
  });

  async function stillServing(): Promise<void> {
    const who = await call(`${faulty.base}/whoami`);
    expect(who.status).toBe(200);
    expect((who.body as { pid: number }).pid).toBe(firstPid);
    expect(faulty.child.exitCode).toBeNull();
    expect((await call(`${faulty.base}/healthz`)).status).toBe(200);
  }

  for (const path of ['/throw-error', '/throw-string', '/throw-null', '/next-object']) {
    it(`when ${path} is called, then the client gets a complete generic 500 JSON body and the process keeps serving`, async () => {
      const answer = await call(`${faulty.base}${path}`, { headers: { 'x-request-id': `req${path.replace('/', '-')}`, cookie: SECRETS.cookie } });
      const id = answer.headers.get('x-request-id');
      expect(id).toBeTruthy();
      expect(answer.status).toBe(500);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ error: { code: 'INTERNAL', message: 'Something went wrong.', requestId: id } });
      expect(answer.text).not.toContain('fixture');
      const logged = faulty.logLines().filter((l) => l['message'] === 'Unhandled error.' && l['requestId'] === id);
      expect(logged).toHaveLength(1);
      await stillServing();
    });
  }

  it('when an error happens after the response has started, then the response is ended (the client does not hang) and the process keeps serving', async () => {
    const started = performance.now();
    const res = await fetch(`${faulty.base}/error-after-headers`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    // Chunked and ended: the client reads what was sent and sees the end, within moments.
    const text = await res.text().catch(() => '');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(text).toBe('{"partial":');
    expect(faulty.logLines().some((l) => l['message'] === 'Unhandled error.' && String(JSON.stringify(l['error'])).includes('failed mid-response'))).toBe(true);
    await stillServing();
  });

  it('when all of the above happened, then the same process is still up, never logged an uncaught error, and SIGTERM stops it cleanly with exit code 0', async () => {
    await stillServing();
    expect(faulty.output()).not.toMatch(/Uncaught exception|Unhandled promise rejection|Shutting down after/);
    expect(faulty.output()).not.toMatch(/at .*node_modules.*\n.*HTTP\//);
    expectNoSecrets(faulty.output());
    faulty.child.kill('SIGTERM');
    expect((await faulty.exited).code).toBe(0);
    expect(faulty.output()).toMatch(/"message":"Shutdown complete\."/);
  });
});
