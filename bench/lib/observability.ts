/**
 * The observability overhead scenario (`--only observability`; part of a full `pnpm bench`): the
 * `checkin` scenario's load (logged-in users, every checkin unique → 202) against three checkin
 * processes of the same build on the bench's redis-server, started side by side:
 *  (a) METRICS_PORT=off: no metrics, no tracing — the baseline of this scenario;
 *  (b) metrics on (METRICS_PORT=0, the services' default), tracing off;
 *  (c) metrics on and tracing on at 100 % (OTEL_TRACES_SAMPLER=always_on), exporting OTLP/HTTP to a sink
 *      the bench runs itself on 127.0.0.1 (startOtlpSink below: it answers every export and counts it).
 * Measured in interleaved rounds a, b, c, a, b, c, …, a (bench/lib/rounds.ts), since this box is
 * noisy; reported as medians, and the ratios b/a and c/a paired with the (a) runs around them (the
 * neighbours' noise is shared by runs a few seconds apart) with their min–max over the rounds. Target:
 * b/a ≥ 0.95 (bench/lib/targets.ts); c/a is reported only.
 *
 * The sink's counts are attributed to the mode whose window they arrive in (from its warm-up to its
 * end). After a traced run the bench waits until the sink has been quiet for longer than the batch
 * span processor's OTEL_BSP_SCHEDULE_DELAY, so (c)'s last batches land in (c)'s window, not during the
 * next mode's run; (a) and (b), which have no endpoint, must then show 0. The stream is trimmed before
 * every run: each starts on an empty ncc:checkins, and many or long rounds would otherwise reach
 * CHECKIN_STREAM_MAXLEN (1,000,000 entries) and get 503s.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { sleep } from '@ncc/testing';
import { log } from './format.js';
import type { Started } from './processes.js';
import { type Arm, type ArmSummary, type CheckinRoundsOptions, type RoundRun, runRounds } from './rounds.js';
import { authenticatedCheckins, emptyStream } from './scenarios.js';

export type ObservabilityMode = 'a' | 'b' | 'c';

const MODES: readonly { mode: ObservabilityMode; name: string; label: string }[] = [
  { mode: 'a', name: 'no-metrics', label: 'METRICS_PORT=off: no metrics, no tracing (the baseline)' },
  { mode: 'b', name: 'metrics', label: 'metrics on (METRICS_PORT=0), tracing off' },
  { mode: 'c', name: 'metrics+tracing', label: 'metrics on + tracing, 100 % sampled (always_on), OTLP/HTTP to the bench sink' },
];

/** The SDK's default OTEL_BSP_SCHEDULE_DELAY. */
const DEFAULT_SCHEDULE_DELAY_MS = 5000;
/** --smoke: the idle tail of a traced run is exported after this, not after 5 s (under load batches fill in milliseconds anyway). */
const SMOKE_SCHEDULE_DELAY_MS = 300;
const QUIET_TIMEOUT_MS = 60_000;

/** What the sink received: export requests, bytes on the wire, spans in them. */
export interface SinkCounts {
  /** POST /v1/traces requests. */
  requests: number;
  bytes: number;
  spans: number;
  /** Requests to any other path (OTLP metrics or logs would land here), or whose body could not be read. */
  other: number;
}

const NO_EXPORTS: SinkCounts = { requests: 0, bytes: 0, spans: 0, other: 0 };

/** `a` + `sign` × `b`, field by field. */
const combine = (a: SinkCounts, b: SinkCounts, sign: 1 | -1): SinkCounts => ({
  requests: a.requests + sign * b.requests,
  bytes: a.bytes + sign * b.bytes,
  spans: a.spans + sign * b.spans,
  other: a.other + sign * b.other,
});

interface OtlpSink {
  /** The endpoint to give as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  counts(): SinkCounts;
  /** The `other` requests by what was wrong with them (`POST /v1/metrics`, `unreadable body: …`). */
  otherKinds(): Record<string, number>;
  /** Resolves once no request has arrived for `quietMs` (counted from the call at the earliest). */
  quiet(quietMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A varint at `pos` of `buf`: [value, position after it]. */
function varint(buf: Buffer, pos: number): [number, number] {
  let value = 0;
  let factor = 1;
  for (;;) {
    const byte = buf[pos++];
    if (byte === undefined) throw new Error('truncated protobuf');
    value += (byte & 0x7f) * factor;
    if ((byte & 0x80) === 0) return [value, pos];
    factor *= 128;
  }
}

/** The [start, end) ranges of the length-delimited fields numbered `field` in the message buf[start, end); other fields skipped. */
function fieldRanges(buf: Buffer, start: number, end: number, field: number): [number, number][] {
  const out: [number, number][] = [];
  let pos = start;
  while (pos < end) {
    const [key, afterKey] = varint(buf, pos);
    pos = afterKey;
    const wireType = key % 8;
    if (wireType === 0) pos = varint(buf, pos)[1];
    else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else if (wireType === 2) {
      const [length, body] = varint(buf, pos);
      if (Math.floor(key / 8) === field) out.push([body, body + length]);
      pos = body + length;
    } else throw new Error(`protobuf wire type ${wireType} not expected in OTLP`);
  }
  if (pos !== end) throw new Error('truncated protobuf');
  return out;
}

/**
 * Spans in an OTLP ExportTraceServiceRequest: resource_spans (1) → scope_spans (2) → spans (2). Only
 * those three levels are walked (every span is skipped over by its length), so this costs next to
 * nothing in the bench process, which also runs the load generator.
 */
function protobufSpans(buf: Buffer): number {
  let spans = 0;
  for (const [rs, rsEnd] of fieldRanges(buf, 0, buf.length, 1))
    for (const [ss, ssEnd] of fieldRanges(buf, rs, rsEnd, 2)) spans += fieldRanges(buf, ss, ssEnd, 2).length;
  return spans;
}

function jsonSpans(buf: Buffer): number {
  const body = JSON.parse(buf.toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
  let spans = 0;
  for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
  return spans;
}

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

/**
 * An OTLP/HTTP trace receiver on 127.0.0.1: POST /v1/traces → 200 with an empty
 * ExportTraceServiceResponse (`{}` for http/json; an empty message, zero bytes, for protobuf — `{}` is
 * no valid protobuf, the exporter would fail to decode it), counting requests, bytes and spans.
 */
export async function startOtlpSink(): Promise<OtlpSink> {
  const counts: SinkCounts = { ...NO_EXPORTS };
  const otherKinds: Record<string, number> = {};
  const other = (kind: string): void => {
    counts.other++;
    otherKinds[kind] = (otherKinds[kind] ?? 0) + 1;
  };
  let lastRequestAt = performance.now();
  const server = createServer((req, res) => {
    lastRequestAt = performance.now();
    readBody(req).then(
      (raw) => {
        lastRequestAt = performance.now();
        const json = (req.headers['content-type'] ?? '').startsWith('application/json');
        const path = (req.url ?? '').split('?')[0];
        if (req.method !== 'POST' || path !== '/v1/traces') {
          other(`${req.method ?? '?'} ${path}`);
          res.writeHead(404).end();
          return;
        }
        try {
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          counts.spans += json ? jsonSpans(body) : protobufSpans(body);
          counts.requests++;
          counts.bytes += raw.length;
        } catch (err) {
          other(
            `unreadable body (${req.headers['content-type'] ?? 'no content-type'}, ${raw.length} bytes): ${err instanceof Error ? err.message : String(err)}`,
          );
          res.writeHead(400).end();
          return;
        }
        if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
      },
      (err: unknown) => {
        other(`request aborted: ${err instanceof Error ? err.message : String(err)}`);
        res.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    otherKinds: () => ({ ...otherKinds }),
    quiet: async (quietMs) => {
      const from = performance.now();
      const deadline = Date.now() + QUIET_TIMEOUT_MS;
      while (performance.now() - Math.max(from, lastRequestAt) < quietMs) {
        if (Date.now() > deadline) throw new Error(`observability: the OTLP sink kept receiving exports for ${QUIET_TIMEOUT_MS} ms after the load`);
        await sleep(50);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One measured run of one mode. */
export interface ObservabilityRun extends RoundRun {
  mode: ObservabilityMode;
  /** Checkins answered in the warm-up and the measured run: what the window's spans are divided by. */
  windowCheckins: number;
  /** What the OTLP sink received from this run's warm-up until the next run began. */
  sink: SinkCounts;
}

export interface ObservabilityModeSummary extends ArmSummary {
  mode: ObservabilityMode;
  sink: SinkCounts;
  /** Spans the sink received per checkin answered (warm-ups included): ~4 when every request is traced and exported. */
  spansPerCheckin: number;
}

export interface ObservabilityResults {
  rounds: number;
  order: ObservabilityMode[];
  warmupS: number;
  durationS: number;
  connections: number;
  /** The OTLP settings mode (c) ran with. */
  tracingEnv: Record<string, string>;
  /** Requests the sink did not count as trace exports, by kind (none expected). */
  sinkOther: Record<string, number>;
  runs: ObservabilityRun[];
  modes: ObservabilityModeSummary[];
  /** Responses with an unexpected status, connection errors or timeouts, over every measured run. */
  unexpected: number;
}

export interface ObservabilityOptions extends CheckinRoundsOptions {
  smoke: boolean;
  /** Starts a checkin process like the bench's own (same flags, env and mode) with `env` on top. */
  startCheckin: (label: string, env: Record<string, string>) => Promise<Started>;
}

/** OTEL_* from the bench's environment (the protocol, the batch settings, …), except what the scenario sets itself. */
function tracingPassThrough(): Record<string, string> {
  const own = /^OTEL_(EXPORTER_OTLP_(TRACES_)?ENDPOINT|TRACES_SAMPLER(_ARG)?|SDK_DISABLED|TRACES_EXPORTER)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('OTEL_') && !own.test(k) && v !== undefined)) as Record<string, string>;
}

export async function runObservabilityScenario(options: ObservabilityOptions): Promise<ObservabilityResults> {
  const { redis, sessions, durationS, warmupS, connections, rounds, smoke } = options;
  const sink = await startOtlpSink();
  const tracingEnv: Record<string, string> = {
    ...(smoke ? { OTEL_BSP_SCHEDULE_DELAY: String(SMOKE_SCHEDULE_DELAY_MS) } : {}),
    ...tracingPassThrough(),
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_TRACES_SAMPLER: 'always_on',
  };
  const scheduleDelayMs = Number(tracingEnv['OTEL_BSP_SCHEDULE_DELAY'] ?? DEFAULT_SCHEDULE_DELAY_MS);
  const envOf: Record<ObservabilityMode, Record<string, string>> = {
    a: { METRICS_PORT: 'off' },
    b: { METRICS_PORT: '0' },
    c: { METRICS_PORT: '0', ...tracingEnv },
  };
  log(
    `observability: ${rounds} interleaved round${rounds > 1 ? 's' : ''} of a, b, c and a last a (${warmupS} s warm-up + ${durationS} s each, ${connections} connections), ` +
      `OTLP sink at ${sink.url}${scheduleDelayMs !== DEFAULT_SCHEDULE_DELAY_MS ? `, OTEL_BSP_SCHEDULE_DELAY=${scheduleDelayMs}` : ''}`,
  );
  const servers: Partial<Record<ObservabilityMode, Started>> = {};
  try {
    await Promise.all(
      MODES.map(async ({ mode, name }) => {
        servers[mode] = await options.startCheckin(`checkin-${name}`, envOf[mode]);
      }),
    );
    log(`  pids (to match --cpu-prof files): ${MODES.map(({ mode, name }) => `(${mode}) ${name} ${servers[mode]!.pid}`).join(', ')}`);
    // What the sink received in each run's window (from its warm-up until the next run began), by "mode:round".
    const windows = new Map<string, SinkCounts>();
    const arms: Arm[] = MODES.map(({ mode, name, label }) => {
      let sink0 = NO_EXPORTS;
      return {
        name,
        label,
        expected: 202,
        server: servers[mode]!,
        request: authenticatedCheckins(sessions),
        beforeRun: async () => {
          await emptyStream(redis)();
          sink0 = sink.counts();
        },
        afterRun: async (run) => {
          // The traced run's last batches (a partly filled batch waits OTEL_BSP_SCHEDULE_DELAY) before the next run starts.
          if (mode === 'c') await sink.quiet(scheduleDelayMs + 500);
          const got = combine(sink.counts(), sink0, -1);
          windows.set(`${mode}:${run.round}`, got);
          log(`  observability r${run.round} (${mode}): OTLP sink ${got.requests} requests, ${(got.bytes / 1024).toFixed(0)} kB, ${got.spans} spans`);
        },
      };
    });
    const result = await runRounds({ redis, reference: arms[0]!, arms: arms.slice(1), rounds, warmupS, durationS, connections, title: 'observability' });
    const modeOf = (name: string): ObservabilityMode => MODES.find((m) => m.name === name)!.mode;
    const runs: ObservabilityRun[] = result.runs.map((r) => ({
      ...r,
      mode: modeOf(r.arm),
      windowCheckins: r.warmupRequests + r.load.requests,
      sink: windows.get(`${modeOf(r.arm)}:${r.round}`) ?? NO_EXPORTS,
    }));
    const modes: ObservabilityModeSummary[] = result.arms.map((a) => {
      const mine = runs.filter((r) => r.arm === a.name);
      const total = mine.reduce((n, r) => combine(n, r.sink, 1), NO_EXPORTS);
      const checkins = mine.reduce((n, r) => n + r.windowCheckins, 0);
      return { ...a, mode: modeOf(a.name), sink: total, spansPerCheckin: checkins > 0 ? total.spans / checkins : 0 };
    });
    const traced = modes.find((m) => m.mode === 'c')!;
    if (traced.sink.spans === 0)
      throw new Error(
        `observability: mode (c) exported no spans to the OTLP sink (OTEL_* settings: ${JSON.stringify(tracingEnv)}):\n${servers.c?.output() ?? ''}`,
      );
    return {
      rounds,
      order: result.order.map(modeOf),
      warmupS,
      durationS,
      connections,
      tracingEnv: { ...tracingEnv, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:<sink port>' },
      sinkOther: sink.otherKinds(),
      runs,
      modes,
      unexpected: result.unexpected,
    };
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    await sink.close();
  }
}
