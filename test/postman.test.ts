/**
 * The Postman collection users import is the one this test runs, with newman's Node API, against the
 * real services over a real redis-server: auth, checkin and one checkin processor (requests 8 and 9
 * read the stats it keeps). Only the environment's URLs are overridden (free ports).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import newman, { type NewmanRunSummary } from 'newman';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, DEMO, ROOT, startStack } from './support/services.js';

const COLLECTION = join(ROOT, 'postman/ncc.postman_collection.json');
const ENVIRONMENT = join(ROOT, 'postman/local.postman_environment.json');

/** Every pm.test in the collection, in order; a request whose script did not run would be missing here. */
const EXPECTED_ASSERTIONS = 26;
const REQUESTS = 11;
/** Requests 8 and 9 send themselves again (at most 40 times each) until the processor has counted request 5's checkin. */
const POLLING = ['8. ', '9. '];

/** `onRequest`: called with each request's name as it is answered. */
function runCollection(authUrl: string, checkinUrl: string, onRequest?: (name: string) => void): Promise<NewmanRunSummary> {
  return new Promise((resolve, reject) => {
    const run = newman.run(
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
    if (onRequest) run.on('request', (_err: unknown, args: { item: { name: string } }) => onRequest(args.item.name));
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

/** How often each request was sent, by name: once each, except the polling stats requests. */
function sends(summary: NewmanRunSummary): Map<string, number> {
  const counts = new Map<string, number>();
  for (const execution of summary.run.executions) counts.set(execution.item.name, (counts.get(execution.item.name) ?? 0) + 1);
  return counts;
}

/** The JSON body of the last answer to the request whose name starts with `prefix`, and that request's resolved body. */
function lastExchange(summary: NewmanRunSummary, prefix: string): { response: unknown; requestBody: unknown } {
  const execution = summary.run.executions.filter((e) => e.item.name.startsWith(prefix)).at(-1);
  if (!execution?.response) throw new Error(`no answer to request ${prefix}`);
  const raw = execution.request.body?.raw;
  return {
    response: JSON.parse(execution.response.stream?.toString('utf8') ?? 'null') as unknown,
    requestBody: raw ? (JSON.parse(raw) as unknown) : undefined,
  };
}

/** Entries ever added to ncc:checkins: unlike XLEN, not lowered when the processor trims what it has acknowledged. */
async function entriesAdded(stack: Stack): Promise<number> {
  const info = (await stack.redis.client.xinfo('STREAM', 'ncc:checkins')) as unknown[];
  return Number(info[info.indexOf('entries-added') + 1]);
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
      'GET {{checkinUrl}}/api/users/{{userId}}/stats',
      'GET {{checkinUrl}}/api/locations/{{locationId}}/stats',
      'POST {{authUrl}}/logout',
      'POST {{checkinUrl}}/api/checkin',
    ]);
    expect(collection.item.map((i) => i.name.split('.')[0])).toEqual(collection.item.map((_, n) => String(n + 1)));
    let tests = 0;
    for (const item of collection.item) {
      expect(item.request.description, item.name).toMatch(/\*\*redis-cli:\*\* .*`(keys|get|ttl|xlen|exists|hgetall|xinfo) /);
      const script = item.event?.find((e) => e.listen === 'test')?.script.exec.join('\n') ?? '';
      expect(script, item.name).toMatch(/pm\.response\.to\.have\.status\(\d{3}\)/);
      expect(script, item.name).toMatch(/pm\.response\.json\(\)/);
      tests += script.match(/pm\.test\(/g)?.length ?? 0;
    }
    expect(tests).toBe(EXPECTED_ASSERTIONS);
  });
});

/** Each request once, the polling stats requests at least once; none failed to get an answer. */
function expectSends(summary: NewmanRunSummary): void {
  const counts = sends(summary);
  expect(counts.size).toBe(REQUESTS);
  for (const [name, count] of counts) {
    if (POLLING.some((prefix) => name.startsWith(prefix))) expect(count, name).toBeGreaterThanOrEqual(1);
    else expect(count, name).toBe(1);
  }
  expect(summary.run.stats.requests.failed).toBe(0);
}

describe('the Postman collection, run by newman', () => {
  let stack: Stack;

  beforeAll(async () => {
    // One processor, as `pnpm start` runs it: requests 8 and 9 wait for it to count request 5's checkin.
    stack = await startStack({ processors: 1 });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('when the collection runs against localhost URLs, then every assertion passes, Redis holds one checkin and no session, and the stats count that checkin', async () => {
    const { auth, checkin, redis } = stack;
    const summary = await runCollection(`http://localhost:${auth.port}`, `http://localhost:${checkin.port}`);
    const { total, failed, failures } = report(summary);

    expect(failures).toEqual([]);
    expect(failed).toBe(0);
    expect(total).toBe(EXPECTED_ASSERTIONS);
    expectSends(summary);
    // Exactly one checkin was accepted (request 5), it is in the user's recent-checkins set, and logout left no session.
    // (Counted with entries-added: the processor trims the stream once it has acknowledged an entry.)
    expect(await entriesAdded(stack)).toBe(1);
    expect(await redis.client.zcard(`{ncc:checkins}:recent:${DEMO.id}`)).toBe(1);
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);

    // Requests 8 and 9 saw request 5's checkin counted, as JSON numbers, and Redis holds the same.
    const checkinBody = lastExchange(summary, '5. ');
    const { locationId } = checkinBody.requestBody as { locationId: number };
    const checkinTime = Number((checkinBody.response as { id: string }).id.split('-')[0]);
    expect(lastExchange(summary, '8. ').response).toEqual({ userId: DEMO.id, numCheckins: 1, lastCheckin: checkinTime, lastSeenAt: locationId });
    expect(lastExchange(summary, '9. ').response).toEqual({ locationId, numCheckins: 1, numStars: 5, averageStars: 5 });
    expect(await redis.client.hgetall(`ncc:user:${DEMO.id}`)).toMatchObject({
      numCheckins: '1',
      lastCheckin: String(checkinTime),
      lastSeenAt: String(locationId),
    });
    expect(await redis.client.hgetall(`ncc:location:${locationId}`)).toMatchObject({ numCheckins: '1', numStars: '5', averageStars: '5' });
  });

  it('when the collection runs again on the same Redis with 127.0.0.1 URLs, then it passes again (a fresh locationId per run, the cookie crosses ports on an IP host too) and the user stats count both checkins', async () => {
    const { auth, checkin, redis } = stack;
    const summary = await runCollection(`http://127.0.0.1:${auth.port}`, `http://127.0.0.1:${checkin.port}`);
    const { total, failed, failures } = report(summary);

    expect(failures).toEqual([]);
    expect(failed).toBe(0);
    expect(total).toBe(EXPECTED_ASSERTIONS);
    expectSends(summary);
    expect(await entriesAdded(stack)).toBe(2);
    expect(await redis.client.zcard(`{ncc:checkins}:recent:${DEMO.id}`)).toBe(2);
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);
    const { locationId } = lastExchange(summary, '5. ').requestBody as { locationId: number };
    expect(lastExchange(summary, '8. ').response).toMatchObject({ userId: DEMO.id, numCheckins: 2, lastSeenAt: locationId });
    expect(lastExchange(summary, '9. ').response).toEqual({ locationId, numCheckins: 1, numStars: 5, averageStars: 5 });
  });

  it('when the checkin service is given the wrong URL, then the collection run reports failures (the assertions can fail)', async () => {
    const { auth } = stack;
    // Both URLs point at auth: every checkin request gets a 404 from auth instead of the checkin answers.
    const summary = await runCollection(`http://localhost:${auth.port}`, `http://localhost:${auth.port}`);
    const { total, failed } = report(summary);

    expect(total).toBe(EXPECTED_ASSERTIONS);
    expect(failed).toBeGreaterThanOrEqual(12);
    // No checkin was accepted, so the stats requests did not wait for one: every request was sent once.
    expect([...sends(summary).values()]).toEqual(Array<number>(REQUESTS).fill(1));
    expect(await entriesAdded(stack)).toBe(2);
  });
});

describe('the Postman collection, run by newman while the processor is behind', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('when no processor has counted the checkin yet at request 8, then requests 8 and 9 ask again until one has, and every assertion passes', async () => {
    // No processor runs until request 8 has had its first answer (not counting request 5's checkin yet).
    let started: Promise<unknown> | undefined;
    const summary = await runCollection(`http://localhost:${stack.auth.port}`, `http://localhost:${stack.checkin.port}`, (name) => {
      if (!name.startsWith('8. ') || started) return;
      started = stack.startProcessor();
      started.catch(() => undefined); // awaited below; this only keeps a failure from being reported as unhandled first
    });
    await started;
    const { total, failed, failures } = report(summary);

    expect(failures).toEqual([]);
    expect(failed).toBe(0);
    expect(total).toBe(EXPECTED_ASSERTIONS);
    expectSends(summary);
    const counts = sends(summary);
    const polled = [...counts].find(([name]) => name.startsWith('8. '))![1];
    console.log(`request 8 sent ${polled} times, request 9 ${[...counts].find(([name]) => name.startsWith('9. '))![1]} times`);
    expect(polled).toBeGreaterThan(1);
    const { locationId } = lastExchange(summary, '5. ').requestBody as { locationId: number };
    expect(lastExchange(summary, '8. ').response).toMatchObject({ userId: DEMO.id, numCheckins: 1, lastSeenAt: locationId });
    expect(lastExchange(summary, '9. ').response).toEqual({ locationId, numCheckins: 1, numStars: 5, averageStars: 5 });
  });
});
