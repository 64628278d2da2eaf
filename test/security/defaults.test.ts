/**
 * Safe defaults: a service that signs cookies with the public development secret (SESSION_SECRET
 * unset) must not be reachable from other machines by default — anyone who can reach it can forge a
 * session. Its default bind is 127.0.0.1; with a real secret the default stays 0.0.0.0 (containers
 * rely on it). The configuration here; the real processes, where they listen and what they warn:
 * defaults.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@ncc/service-kit';
import { authEnvSchema } from '../../services/auth/src/config.js';
import { checkinEnvSchema } from '../../services/checkin/src/config.js';
import { TEST_SECRET } from '../support/services.js';

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
});

describe('default limits', () => {
  it('when nothing is set, then the brute-force and flood limits are the documented ones (decisions 010 and 022)', () => {
    expect(loadConfig(authEnvSchema, {})).toMatchObject({
      LOGIN_MAX_FAILS_PER_EMAIL_IP: 10,
      LOGIN_FAILS_EMAIL_IP_WINDOW_S: 900,
      LOGIN_MAX_FAILS_PER_IP_DAY: 100,
      LOGIN_FAILS_IP_WINDOW_S: 86_400,
      VISITS_MAX_NEW_SESSIONS_PER_IP: 60,
      VISITS_NEW_SESSIONS_WINDOW_S: 600,
      BCRYPT_ROUNDS: 10,
    });
    expect(loadConfig(checkinEnvSchema, {})).toMatchObject({
      CHECKIN_RATE_LIMIT_PER_USER: 30,
      CHECKIN_RATE_LIMIT_WINDOW_S: 60,
      CHECKIN_DUPLICATE_MAX_PER_USER: 1_000,
    });
  });
});
