/**
 * Issue 13 item 6a: a service that signs cookies with the public development secret (SESSION_SECRET
 * unset) must not be reachable from other machines by default — anyone who can reach it can forge a
 * session. Its default bind is 127.0.0.1; an explicit non-loopback HOST makes it warn. With a real
 * secret the default stays 0.0.0.0 (containers rely on it). Real `pnpm auth` / `pnpm checkin` processes.
 */
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@ncc/service-kit';
import { type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { authEnvSchema } from '../../services/auth/src/config.js';
import { checkinEnvSchema } from '../../services/checkin/src/config.js';
import { type ServiceProcess, spawnService, TEST_SECRET } from '../support/services.js';

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

let redis: SpawnedRedis;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  redis = await spawnRedis();
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop('SIGTERM')));
  await redis?.stop();
});

describe('default bind address', () => {
  it('when neither HOST nor SESSION_SECRET is set, then both services default to HOST 127.0.0.1', () => {
    for (const schema of [authEnvSchema, checkinEnvSchema]) {
      expect(loadConfig(schema, {}).HOST).toBe('127.0.0.1');
      // An empty value counts as unset, also a list with nothing in it.
      expect(loadConfig(schema, { SESSION_SECRET: '', HOST: '' }).HOST).toBe('127.0.0.1');
      expect(loadConfig(schema, { SESSION_SECRET: ' , ' }).HOST).toBe('127.0.0.1');
    }
  });

  it('when a real SESSION_SECRET is set and HOST is not, then the default stays 0.0.0.0', () => {
    for (const schema of [authEnvSchema, checkinEnvSchema]) {
      expect(loadConfig(schema, { SESSION_SECRET: TEST_SECRET }).HOST).toBe('0.0.0.0');
      expect(loadConfig(schema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'production' }).HOST).toBe('0.0.0.0');
    }
  });

  it('when HOST is set explicitly, then it is used as given, with or without a secret', () => {
    expect(loadConfig(authEnvSchema, { HOST: '0.0.0.0' }).HOST).toBe('0.0.0.0');
    expect(loadConfig(authEnvSchema, { HOST: '::1' }).HOST).toBe('::1');
    expect(loadConfig(checkinEnvSchema, { HOST: '127.0.0.1', SESSION_SECRET: TEST_SECRET }).HOST).toBe('127.0.0.1');
  });

  for (const name of ['auth', 'checkin'] as const) {
    it(`when ${name} runs with the development secret and HOST=0.0.0.0, then it logs a warning naming HOST and SESSION_SECRET`, async () => {
      const service = await spawnService(name, { REDIS_URL: redis.url, SESSION_SECRET: '', HOST: '0.0.0.0' });
      running.push(service);
      expect(service.output()).toMatch(HOST_WARNING);
      // It does listen where it was told to (the warning is not a refusal).
      if (externalIPv4) expect(await accepts(externalIPv4, service.port)).toBe(true);
      expect(await service.stop('SIGTERM')).toBe(0);
    });
  }

  it('when auth runs with the development secret and no HOST, then it listens on 127.0.0.1 only and does not warn about HOST', async () => {
    // spawnService passes HOST=127.0.0.1 unless told otherwise; '' is "unset" to the service.
    const service = await spawnService('auth', { REDIS_URL: redis.url, SESSION_SECRET: '', HOST: '' });
    running.push(service);
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
    const service = await spawnService('auth', { REDIS_URL: redis.url, SESSION_SECRET: TEST_SECRET, HOST: '0.0.0.0' });
    running.push(service);
    expect(service.output()).not.toMatch(/HOST=/);
    if (externalIPv4) expect(await accepts(externalIPv4, service.port)).toBe(true);
    expect(await service.stop('SIGTERM')).toBe(0);
  });
});
