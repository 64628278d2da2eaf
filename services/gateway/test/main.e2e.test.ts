/**
 * `pnpm gateway` as a process: runService without Redis (`redis: false`). It starts with no Redis
 * anywhere, logs JSON when told to, refuses a bad setting naming it, and stops gracefully on SIGTERM —
 * letting a request in flight finish within SHUTDOWN_TIMEOUT_MS — with exit 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, until } from '@ncc/testing';
import { ROOT } from '../../../test/support/services.js';

interface GatewayProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<number | string>;
}

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
});

async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const port = env['GATEWAY_PORT'] ?? String(await freePort());
  // What `pnpm gateway` runs (package.json), with only PATH and HOME from this shell.
  const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'services/gateway/src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], NODE_ENV: 'test', GATEWAY_PORT: port, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

describe('pnpm gateway (runService without Redis)', () => {
  it('when no Redis answers anywhere, then it starts anyway, logs JSON lines, and on SIGTERM lets the request in flight finish, then exits 0', async () => {
    // A checkin stand-in that answers one request slowly: the request the gateway is carrying at SIGTERM.
    let release: (() => void) | undefined;
    const slow = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      release = () => res.end('{"late":true}');
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const gateway = await spawnGateway({
        LOG_FORMAT: 'json',
        CHECKIN_URL: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
        // Would stop any service that uses Redis: the gateway does not even read it.
        REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
        REDIS_STARTUP_TIMEOUT_MS: '100',
        SHUTDOWN_TIMEOUT_MS: '5000',
      });
      await until('the listening line', 20_000, () => gateway.output().includes('Gateway listening on port'));
      const health = await fetch(`${gateway.url}/gateway/healthz`);
      expect(health.status).toBe(200);
      const lines = gateway.output().trim().split('\n');
      for (const line of lines) expect(JSON.parse(line)).toMatchObject({ service: 'gateway', level: 'info', message: expect.any(String) });
      expect(gateway.output()).not.toMatch(/redis/i);

      const inFlight = fetch(`${gateway.url}/api/users/77/stats`).then(async (res) => ({ status: res.status, body: await res.text() }));
      await until('the stand-in holding the request', 5000, () => release !== undefined);
      gateway.child.kill('SIGTERM');
      await until('the shutdown announced', 5000, () => gateway.output().includes('SIGTERM received, shutting down gracefully.'));
      // New connections are refused while the one in flight finishes.
      await expect(fetch(`${gateway.url}/gateway/healthz`)).rejects.toThrow();
      release!();
      expect(await inFlight).toEqual({ status: 200, body: '{"late":true}' });
      expect(await gateway.exited).toBe(0);
      expect(gateway.output()).toContain('Shutdown complete.');
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('when a setting is bad, then it exits 1 at once naming the key', async () => {
    const gateway = await spawnGateway({ AUTH_URL: 'auth:8083' });
    expect(await gateway.exited).toBe(1);
    expect(gateway.output()).toContain('gateway: Invalid configuration:');
    expect(gateway.output()).toMatch(/- AUTH_URL: must be the http:\/\/ origin of the service/);
  });

  it('when its port is taken, then it exits 1 saying so', async () => {
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const gateway = await spawnGateway({ GATEWAY_PORT: String((blocker.address() as AddressInfo).port) });
      expect(await gateway.exited).toBe(1);
      expect(gateway.output()).toMatch(/Could not listen on port \d+/);
    } finally {
      blocker.close();
    }
  });
});
