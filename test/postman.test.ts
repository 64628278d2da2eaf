/**
 * The Postman collection users import is the one this test runs, with newman's Node API, against both
 * real services over a real redis-server. Only the environment's URLs are overridden (free ports).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import newman, { type NewmanRunSummary } from 'newman';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis } from '@ncc/testing';
import { DEMO, ROOT, type StartedService, startStack } from './support/services.js';

const COLLECTION = join(ROOT, 'postman/ncc.postman_collection.json');
const ENVIRONMENT = join(ROOT, 'postman/local.postman_environment.json');

/** Every pm.test in the collection, in order; a request whose script did not run would be missing here. */
const EXPECTED_ASSERTIONS = 22;

function runCollection(authUrl: string, checkinUrl: string): Promise<NewmanRunSummary> {
  return new Promise((resolve, reject) => {
    newman.run(
      {
        collection: JSON.parse(readFileSync(COLLECTION, 'utf8')) as object,
        environment: JSON.parse(readFileSync(ENVIRONMENT, 'utf8')) as object,
        envVar: [
          { key: 'authUrl', value: authUrl },
          { key: 'checkinUrl', value: checkinUrl },
        ],
        reporters: [],
        timeoutRequest: 10_000,
      },
      (err, summary) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(summary)),
    );
  });
}

/** The plain `N passed, N failed` line the README quotes, plus what failed (request, test, message) when something did. */
function report(summary: NewmanRunSummary): { total: number; failed: number; failures: string[] } {
  const total = summary.run.stats.assertions.total ?? 0;
  const failed = summary.run.stats.assertions.failed ?? 0;
  console.log(`${total - failed} passed, ${failed} failed`);
  const failures = summary.run.failures.map((f) => `${f.source?.name ?? '?'}: ${f.error.name} ${f.error.message}`);
  return { total, failed, failures };
}

interface Item {
  name: string;
  request: { method: string; url: { raw: string }; description: string };
  event?: { listen: string; script: { exec: string[] } }[];
}

describe('the Postman files', () => {
  it('when read, then the environment points at the default ports with the demo user, and every request explains itself for redis-cli', () => {
    const environment = JSON.parse(readFileSync(ENVIRONMENT, 'utf8')) as { values: { key: string; value: string }[] };
    expect(Object.fromEntries(environment.values.map((v) => [v.key, v.value]))).toEqual({
      authUrl: 'http://localhost:8083',
      checkinUrl: 'http://localhost:8082',
      email: DEMO.email,
      password: DEMO.password,
      userId: String(DEMO.id),
    });
    const collection = JSON.parse(readFileSync(COLLECTION, 'utf8')) as { info: { schema: string }; item: Item[] };
    expect(collection.info.schema).toBe('https://schema.getpostman.com/json/collection/v2.1.0/collection.json');
    expect(collection.item.map((i) => `${i.request.method} ${i.request.url.raw}`)).toEqual([
      'POST {{checkinUrl}}/api/checkin',
      'POST {{authUrl}}/login',
      'POST {{authUrl}}/login',
      'GET {{authUrl}}/me',
      'POST {{checkinUrl}}/api/checkin',
      'POST {{checkinUrl}}/api/checkin',
      'POST {{checkinUrl}}/api/checkin',
      'POST {{authUrl}}/logout',
      'POST {{checkinUrl}}/api/checkin',
    ]);
    let tests = 0;
    for (const item of collection.item) {
      expect(item.request.description, item.name).toMatch(/\*\*redis-cli:\*\* .*`(keys|get|ttl|xlen|exists) /);
      const script = item.event?.find((e) => e.listen === 'test')?.script.exec.join('\n') ?? '';
      expect(script, item.name).toMatch(/pm\.response\.to\.have\.status\(\d{3}\)/);
      expect(script, item.name).toMatch(/pm\.response\.json\(\)/);
      tests += script.match(/pm\.test\(/g)?.length ?? 0;
    }
    expect(tests).toBe(EXPECTED_ASSERTIONS);
  });
});

describe('the Postman collection, run by newman', () => {
  let redis: SpawnedRedis;
  let auth: StartedService;
  let checkin: StartedService;

  beforeAll(async () => {
    ({ redis, auth, checkin } = await startStack());
  });

  afterAll(async () => {
    await Promise.all([auth?.close(), checkin?.close()]);
    await redis?.stop();
  });

  it('when the collection runs against localhost URLs, then every assertion passes and Redis holds one checkin and no session', async () => {
    const summary = await runCollection(`http://localhost:${auth.port}`, `http://localhost:${checkin.port}`);
    const { total, failed, failures } = report(summary);

    expect(failures).toEqual([]);
    expect(failed).toBe(0);
    expect(total).toBe(EXPECTED_ASSERTIONS);
    expect(summary.run.stats.requests).toMatchObject({ total: 9, failed: 0 });
    // Exactly one checkin was accepted (request 5), it is in the user's recent-checkins set, and logout left no session.
    expect(await redis.client.xlen('ncc:checkins')).toBe(1);
    expect(await redis.client.zcard(`{ncc:checkins}:recent:${DEMO.id}`)).toBe(1);
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);
    const entries = await redis.client.xrange('ncc:checkins', '-', '+');
    expect(entries[0]?.[1].slice(0, 2)).toEqual(['userId', String(DEMO.id)]);
  });

  it('when the collection runs again on the same Redis with 127.0.0.1 URLs, then it passes again (a fresh locationId per run, the cookie crosses ports on an IP host too)', async () => {
    const summary = await runCollection(`http://127.0.0.1:${auth.port}`, `http://127.0.0.1:${checkin.port}`);
    const { total, failed, failures } = report(summary);

    expect(failures).toEqual([]);
    expect(failed).toBe(0);
    expect(total).toBe(EXPECTED_ASSERTIONS);
    expect(await redis.client.xlen('ncc:checkins')).toBe(2);
    expect(await redis.client.zcard(`{ncc:checkins}:recent:${DEMO.id}`)).toBe(2);
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);
  });

  it('when the checkin service is given the wrong URL, then the collection run reports failures (the assertions can fail)', async () => {
    // Both URLs point at auth: every checkin request gets a 404 from auth instead of the checkin answers.
    const summary = await runCollection(`http://localhost:${auth.port}`, `http://localhost:${auth.port}`);
    const { total, failed } = report(summary);

    expect(total).toBe(EXPECTED_ASSERTIONS);
    expect(failed).toBeGreaterThanOrEqual(8);
    expect(await redis.client.xlen('ncc:checkins')).toBe(2);
  });
});
