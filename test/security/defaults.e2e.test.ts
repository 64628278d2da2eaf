/**
 * Safe defaults with the real `pnpm auth` / `pnpm checkin` processes: with the development secret
 * they listen on 127.0.0.1 unless told otherwise, and an explicit non-loopback HOST makes them warn.
 * (The configuration defaults: defaults.test.ts.)
 */
import net from 'node:net';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { TEST_SECRET, useSpawnedServices } from '../support/services.js';

const HOST_WARNING = /warn.*HOST=0\.0\.0\.0 listens beyond this machine while SESSION_SECRET is not set/;

/** A non-loopback IPv4 address of this machine, if it has one. */
const externalIPv4 = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

/** Whether a TCP connection to host:port is accepted (true) or refused / unanswered (false). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const services = useSpawnedServices('SIGTERM');

describe('default bind address', () => {
  for (const name of ['auth', 'checkin'] as const) {
    it(`when ${name} runs with the development secret and HOST=0.0.0.0, then it logs a warning naming HOST and SESSION_SECRET`, async () => {
      const service = await services.spawn(name, { SESSION_SECRET: '', HOST: '0.0.0.0' });
      expect(service.output()).toMatch(HOST_WARNING);
      // It does listen where it was told to (the warning is not a refusal).
      if (externalIPv4) expect(await accepts(externalIPv4, service.port)).toBe(true);
      expect(await service.stop('SIGTERM')).toBe(0);
    });
  }

  it('when auth runs with the development secret and no HOST, then it listens on 127.0.0.1 only and does not warn about HOST', async () => {
    // spawnService passes HOST=127.0.0.1 unless told otherwise; '' is "unset" to the service.
    const service = await services.spawn('auth', { SESSION_SECRET: '', HOST: '' });
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    expect(await accepts('127.0.0.1', service.port)).toBe(true);
    if (externalIPv4) {
      expect(await accepts(externalIPv4, service.port)).toBe(false);
    } else {
      console.warn('this machine has no non-loopback IPv4 address: the "not reachable from outside" check is skipped');
    }
    expect(service.output()).toMatch(/SESSION_SECRET is not set/);
    expect(service.output()).not.toMatch(/HOST=/);
    expect(await service.stop('SIGTERM')).toBe(0);
  });

  it('when auth runs with a real secret and HOST=0.0.0.0, then it does not warn about HOST', async () => {
    const service = await services.spawn('auth', { SESSION_SECRET: TEST_SECRET, HOST: '0.0.0.0' });
    expect(service.output()).not.toMatch(/HOST=/);
    if (externalIPv4) expect(await accepts(externalIPv4, service.port)).toBe(true);
    expect(await service.stop('SIGTERM')).toBe(0);
  });
});
