/**
 * OpenTelemetry traces (issue 16): the three services as `pnpm auth|checkin|processor` runs them,
 * exporting OTLP/HTTP to a receiver in this test. One checkin is one trace — the client's span → the
 * checkin service's server span → its Redis spans → the processor's span for the entry (through the
 * traceparent stored in the stream entry) → the processor's Redis spans — and the log lines written
 * inside it carry its trace_id and span_id.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_FIELDS, TRACEPARENT_FIELD } from '@ncc/checkins';
import { cookiePair, postJson, until } from '@ncc/testing';
import { Redis } from 'ioredis';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp.js';
import { createUsers, DEMO, type ServiceProcess, useSpawnedServices } from '../support/services.js';

const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;

const services = useSpawnedServices('SIGTERM');
let receiver: OtlpReceiver;
let auth: ServiceProcess;
let checkin: ServiceProcess;
let processor: ServiceProcess;

const traced = (endpoint: string, protocol = 'http/json'): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  // Export within 100 ms instead of 5 s.
  OTEL_BSP_SCHEDULE_DELAY: '100',
  LOG_FORMAT: 'json',
  LOG_LEVEL: 'debug',
});

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  await createUsers(services.redis.url, [DEMO]);
  [auth, checkin, processor] = await Promise.all([
    services.spawn('auth', traced(receiver.url)),
    services.spawn('checkin', traced(receiver.url)),
    services.spawn('processor', { ...traced(receiver.url), PROCESSOR_BLOCK_MS: '100' }),
  ]);
});

afterAll(async () => {
  await receiver?.close();
});

/** JSON log lines of a process. */
const logLines = (service: ServiceProcess): Record<string, unknown>[] =>
  service
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const inTrace = (traceId: string): ReceivedSpan[] => receiver.spans().filter((s) => s.traceId === traceId);

/**
 * The fields of the next entry appended to ncc:checkins while `append` runs (XREAD BLOCK from `$`,
 * started first): the processor trims an entry as soon as it is acknowledged, so it cannot be read later.
 */
async function nextEntryDuring(append: () => Promise<void>): Promise<string[]> {
  const redis = new Redis(services.redis.url);
  try {
    await redis.ping();
    const next = redis.xread('BLOCK', 10_000, 'STREAMS', 'ncc:checkins', '$');
    // The XREAD is sent before the append: one connection, commands in order, and the PING above proves it is connected.
    await append();
    const result = await next;
    return result![0]![1][0]![1];
  } finally {
    redis.disconnect();
  }
}

describe('one checkin, one trace', () => {
  const clientTrace = randomBytes(16).toString('hex');
  const clientSpan = randomBytes(8).toString('hex');
  let entryId: string;
  let entryFields: string[];
  let spans: ReceivedSpan[];

  beforeAll(async () => {
    const login = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password });
    expect(login.status).toBe(200);
    const cookie = cookiePair(login, 'checkinapp')!;
    // The client's own trace context (a browser's, a gateway's): the checkin continues it.
    entryFields = await nextEntryDuring(async () => {
      const res = await postJson(
        `${checkin.url}/api/checkin`,
        { userId: DEMO.id, locationId: 42, starRating: 5 },
        { cookie, traceparent: `00-${clientTrace}-${clientSpan}-01` },
      );
      expect(res.status).toBe(202);
      entryId = ((await res.json()) as { id: string }).id;
    });
    spans = await until('the processor span of the entry, exported', 15_000, () => {
      const found = inTrace(clientTrace);
      return found.some((s) => s.service === 'processor' && s.kind === CONSUMER) && found.filter((s) => s.service === 'processor').length >= 3
        ? found
        : undefined;
    });
  });

  it("when the checkin request carried a traceparent, then the checkin service's server span continues it: same trace id, the client's span as parent", () => {
    const server = spans.find((s) => s.service === 'checkin' && s.kind === SERVER);
    expect(server).toMatchObject({
      name: 'POST /api/checkin',
      parentSpanId: clientSpan,
      attributes: expect.objectContaining({ 'http.route': '/api/checkin' }),
    });
  });

  it('when the checkin service handled it, then its Express route span and its Redis spans (the session GET, the accept script) are in the trace, below the server span, with command names only', () => {
    const server = spans.find((s) => s.service === 'checkin' && s.kind === SERVER)!;
    const checkinSpans = spans.filter((s) => s.service === 'checkin');
    const ids = new Set(checkinSpans.map((s) => s.spanId));
    const handler = checkinSpans.find((s) => s.scope.includes('express'));
    expect(handler).toMatchObject({ parentSpanId: server.spanId });
    const redisSpans = checkinSpans.filter((s) => s.scope.includes('ioredis'));
    // The session read (GET), the accept script (EVALSHA), and the session index touch.
    expect(redisSpans.map((s) => s.name)).toEqual(expect.arrayContaining(['evalsha', 'get']));
    for (const span of redisSpans) {
      expect(span.kind).toBe(CLIENT);
      expect(ids.has(span.parentSpanId!)).toBe(true);
      // Never a key (session id) or an argument.
      expect(JSON.stringify(span.attributes)).not.toMatch(/ncc:session|al\.appelhof/);
    }
  });

  it("when the processor applied the entry, then its consumer span is in the same trace, a child of the checkin request's span, with the effect scripts' Redis spans below it", () => {
    const checkinIds = new Set(spans.filter((s) => s.service === 'checkin').map((s) => s.spanId));
    const consumer = spans.find((s) => s.service === 'processor' && s.kind === CONSUMER)!;
    expect(consumer).toMatchObject({
      name: 'process ncc:checkins',
      attributes: expect.objectContaining({ 'messaging.message.id': entryId, 'messaging.destination.name': 'ncc:checkins', 'ncc.outcome': 'applied' }),
    });
    expect(checkinIds.has(consumer.parentSpanId!)).toBe(true);
    const effects = spans.filter((s) => s.service === 'processor' && s.scope.includes('ioredis'));
    expect(effects.map((s) => s.name)).toEqual(['evalsha', 'evalsha']);
    for (const span of effects) expect(span.parentSpanId).toBe(consumer.spanId);
  });

  it("when the stream entry is read, then it holds the four contract fields in order and then the request's traceparent", () => {
    expect(entryFields.filter((_, i) => i % 2 === 0)).toEqual([...ENTRY_FIELDS, TRACEPARENT_FIELD]);
    expect(entryFields[9]).toMatch(new RegExp(`^00-${clientTrace}-[0-9a-f]{16}-01$`));
  });

  it('when log lines are written inside the request and the entry, then they carry its trace_id and the span_id of a span in it', () => {
    const ids = new Set(spans.map((s) => s.spanId));
    const received = logLines(checkin).find((l) => String(l['message']).startsWith('Received checkin'));
    expect(received).toMatchObject({ trace_id: clientTrace });
    expect(ids.has(String(received!['span_id']))).toBe(true);
    const applied = logLines(processor).find((l) => l['message'] === `Checkin entry ${entryId}: applied.`);
    expect(applied).toMatchObject({ trace_id: clientTrace });
    expect(ids.has(String(applied!['span_id']))).toBe(true);
    // Outside any request: no trace fields.
    const listening = logLines(checkin).find((l) => String(l['message']).includes('listening on port'));
    expect(listening).toBeDefined();
    expect(listening).not.toHaveProperty('trace_id');
  });
});

describe('a login', () => {
  it('when a user logs in, then its trace has the server span, the bcrypt compare and the Redis reads, and the audit line carries the trace id', async () => {
    const before = new Set(receiver.spans().map((s) => s.traceId));
    expect((await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password })).status).toBe(200);
    const spans = await until('the login trace', 10_000, () => {
      const server = receiver.spans().find((s) => s.service === 'auth' && s.kind === SERVER && !before.has(s.traceId));
      const all = server ? inTrace(server.traceId) : [];
      return all.some((s) => s.name === 'bcrypt.compare') ? all : undefined;
    });
    expect(spans.find((s) => s.kind === SERVER)).toMatchObject({ name: 'POST /login' });
    expect(spans.filter((s) => s.name === 'bcrypt.compare')).toHaveLength(1);
    expect(spans.filter((s) => s.scope.includes('ioredis')).length).toBeGreaterThanOrEqual(2);
    const audit = logLines(auth).filter((l) => l['event'] === 'login.succeeded');
    expect(audit.at(-1)).toMatchObject({ trace_id: spans[0]!.traceId });
  });

  it('when a probe asks /healthz, then no span is made for it', async () => {
    expect((await fetch(`${auth.url}/healthz`)).status).toBe(200);
    expect((await postJson(`${auth.url}/login`, { email: DEMO.email, password: 'wrong-password' })).status).toBe(401);
    await until('the failed login span', 10_000, () =>
      receiver.spans().some((s) => s.service === 'auth' && s.kind === SERVER && s.attributes['http.response.status_code'] === 401),
    );
    expect(receiver.spans().filter((s) => s.attributes['url.path'] === '/healthz')).toEqual([]);
  });
});

describe('the protocols and the switch', () => {
  it('when OTEL_EXPORTER_OTLP_PROTOCOL is http/protobuf, then the spans arrive as protobuf at /v1/traces, holding the trace id', async () => {
    const own = await startOtlpReceiver();
    try {
      const service = await services.spawn('checkin', { ...traced(own.url, 'http/protobuf'), CHECKIN_AUTH: 'off' });
      const traceId = randomBytes(16).toString('hex');
      const res = await postJson(
        `${service.url}/api/checkin`,
        { userId: DEMO.id, locationId: 43, starRating: 3 },
        { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
      );
      expect(res.status).toBe(202);
      const request = await until('a protobuf export holding the trace id', 10_000, () =>
        own.requests.find((r) => r.path === '/v1/traces' && r.body.includes(Buffer.from(traceId, 'hex'))),
      );
      expect(request.contentType).toBe('application/x-protobuf');
      expect(request.body.includes(Buffer.from('POST /api/checkin'))).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('when no OTLP endpoint is set, then log lines have no trace ids and the stream entry has only the contract fields, whatever traceparent the client sent', async () => {
    const service = await services.spawn('checkin', { LOG_FORMAT: 'json', LOG_LEVEL: 'debug', CHECKIN_AUTH: 'off' });
    const fields = await nextEntryDuring(async () => {
      const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
      const res = await postJson(`${service.url}/api/checkin`, { userId: DEMO.id, locationId: 44, starRating: 2 }, { traceparent });
      expect(res.status).toBe(202);
    });
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual([...ENTRY_FIELDS]);
    const received = logLines(service).find((l) => String(l['message']).startsWith('Received checkin'));
    expect(received).toBeDefined();
    expect(received).not.toHaveProperty('trace_id');
  });
});
