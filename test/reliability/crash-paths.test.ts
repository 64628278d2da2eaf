/**
 * Issue 7, item 8: no request can take a service down. A child process runs the real runService with
 * deliberately faulty routes (fixtures/faulty-service.ts): unhandled rejections and uncaught
 * exceptions are logged with the request id, thrown non-Error values become a generic 500 JSON body,
 * and the process keeps serving throughout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { ROOT } from '../support/services.js';
import { call, sleep, until } from './helpers.js';

let redis: SpawnedRedis;
let child: ChildProcess;
let output = '';
let base: string;
let firstPid: number;

/** The JSON log lines the child has written so far. */
function logLines(): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  redis = await spawnRedis();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'test/reliability/fixtures/faulty-service.ts'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], NODE_ENV: 'test', LOG_FORMAT: 'json', HOST: '127.0.0.1', REDIS_URL: redis.url, FAULTY_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await until(async () => /listening on port/.test(output), 20_000, 50);
  firstPid = ((await call(`${base}/whoami`)).body as { pid: number }).pid;
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  await redis?.stop();
});

async function stillServing(): Promise<void> {
  const who = await call(`${base}/whoami`);
  expect(who.status).toBe(200);
  expect((who.body as { pid: number }).pid).toBe(firstPid);
  expect(child.exitCode).toBeNull();
  expect((await call(`${base}/healthz`)).status).toBe(200);
}

describe('when a request causes an unhandled rejection', () => {
  it('then the rejection is logged with that request id and the process keeps serving', async () => {
    const answer = await call(`${base}/unhandled-rejection`, { headers: { 'x-request-id': 'req-rejection-1' } });
    expect(answer.status).toBe(200);
    const entry = await until(async () => logLines().some((l) => l['message'] === 'Unhandled promise rejection.'), 3000, 20).then(() =>
      logLines().find((l) => l['message'] === 'Unhandled promise rejection.'),
    );
    expect(entry).toMatchObject({ level: 'error', requestId: 'req-rejection-1', error: expect.stringContaining('nobody handled this rejection') as string });
    await stillServing();
  });
});

describe('when a request causes an uncaught exception', () => {
  it('then the exception is logged with that request id and the process keeps serving', async () => {
    const answer = await call(`${base}/uncaught-exception`, { headers: { 'x-request-id': 'req-exception-1' } });
    expect(answer.status).toBe(200);
    await until(async () => logLines().some((l) => l['message'] === 'Uncaught exception.'), 3000, 20);
    const entry = logLines().find((l) => l['message'] === 'Uncaught exception.');
    expect(entry).toMatchObject({ level: 'error', requestId: 'req-exception-1', error: expect.stringContaining('thrown from a timer') as string });
    await stillServing();
  });
});

describe('when route code throws something that is not an Error', () => {
  for (const path of ['/throw-string', '/throw-null', '/next-object']) {
    it(`when ${path} is called, then the client gets a complete generic 500 JSON body and the process keeps serving`, async () => {
      const answer = await call(`${base}${path}`, { headers: { 'x-request-id': `req${path.replace('/', '-')}` } });
      expect(answer.status).toBe(500);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ error: { code: 'INTERNAL', message: 'Something went wrong.', requestId: `req${path.replace('/', '-')}` } });
      expect(answer.text).not.toContain('fixture');
      const logged = logLines().filter((l) => l['message'] === 'Unhandled error.' && l['requestId'] === `req${path.replace('/', '-')}`);
      expect(logged).toHaveLength(1);
      await stillServing();
    });
  }
});

describe('when an error happens after the response has started', () => {
  it('then the response is ended (the client does not hang) and the process keeps serving', async () => {
    const started = performance.now();
    const res = await fetch(`${base}/error-after-headers`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    // Chunked and ended: the client reads what was sent and sees the end, within moments.
    const text = await res.text().catch(() => '');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(text).toBe('{"partial":');
    expect(logLines().some((l) => l['message'] === 'Unhandled error.' && String(JSON.stringify(l['error'])).includes('failed mid-response'))).toBe(true);
    await stillServing();
  });
});

describe('after all of the above', () => {
  it('then the same process is still up, and SIGTERM still stops it cleanly with exit code 0', async () => {
    await stillServing();
    expect(output).not.toMatch(/at .*node_modules.*\n.*HTTP\//);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await sleep(0);
  });
});
