import type { Request, RequestHandler, Response } from 'express';
import type { Command } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { createBaseApp, type RunningServer, startServer } from './http.js';
import type { RedisClient } from './redis.js';

/**
 * METRICS_PORT: where a service serves GET /metrics (Prometheus text format), on a listener of its own
 * — not the API port. So a scrape never passes the session check, the rate limits or the cross-site
 * guard, is never reachable through the gateway (it proxies API ports only), and is not counted in the
 * API's own request metrics; in compose the port is exposed to Prometheus and never published. `off`:
 * no listener and nothing measured (the baseline of the metrics overhead bench).
 */
export const metricsPortEnv = (fallback: number) =>
  z.union([z.literal('off'), z.coerce.number().int().min(0).max(65535)], { error: 'must be a port number (0-65535) or "off"' }).default(fallback);

/** Request latencies: 1 ms … 5 s (a login's bcrypt compare is ~50-250 ms). */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Redis command latencies: 100 µs … 1 s (REDIS_COMMAND_TIMEOUT_MS is 1 s by default). */
const REDIS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Where countOutcomes leaves a route's status → outcome counters for the request timer. */
const OUTCOMES = Symbol('ncc.outcomes');
type OutcomeTagged = Response & { [OUTCOMES]?: ReadonlyMap<number, { inc(): void }> };

/** The `route` label of a request answered before any route matched it (404s, the cross-site guard, …). */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * One service's metrics, in its own registry (so two apps in one test process never share counters).
 * Labels carry route patterns, methods, status codes, command names and outcomes only — never a user
 * id, email, session id or IP: those would be unbounded (a series each) and personal data.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  private readonly redisDuration: Histogram<'command'>;
  /** One bound child per command name: a label lookup per command would cost more than the timing. */
  private readonly redisTimers = new Map<string, { observe(value: number): void }>();

  constructor(
    /** false (METRICS_PORT=off): the request and Redis timings are not taken at all. */
    readonly enabled: boolean,
  ) {
    if (enabled) collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status code: time from arrival to the last byte of the response.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_BUCKETS,
      registers: [this.registry],
    });
    this.redisDuration = new Histogram({
      name: 'ncc_redis_command_duration_seconds',
      help: 'Redis commands by name (lower case; scripts are evalsha): time from sending to the reply, failures included.',
      labelNames: ['command'],
      buckets: REDIS_BUCKETS,
      registers: [this.registry],
    });
  }

  /** A counter in this service's registry, every outcome present from the start at 0 (so rate() and dashboards see them all). */
  outcomeCounter<O extends string>(name: string, help: string, outcomes: readonly O[]): Counter<'outcome'> {
    const counter = new Counter({ name, help, labelNames: ['outcome'], registers: [this.registry] });
    for (const outcome of outcomes) counter.inc({ outcome }, 0);
    return counter;
  }

  counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }

  /** A counter by outcome whose values are kept elsewhere (monotonic), read at scrape time. */
  outcomeCounterOf(name: string, help: string, read: () => Readonly<Record<string, number>>): Counter<'outcome'> {
    return new Counter({
      name,
      help,
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [outcome, value] of Object.entries(read())) this.inc({ outcome }, value);
      },
    });
  }

  /** A gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number | undefined): Gauge {
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        const value = read();
        if (value !== undefined) this.set(value);
      },
    });
  }

  /**
   * Counts a route's outcomes from the status it answered with: mounted first on the route, so the
   * refusals of its own guards (401 from the session check, 415/413 from the body parser) count too.
   * It only tags the response; the request timer's one `finish` listener does the counting.
   */
  countOutcomes(counter: Counter<'outcome'>, byStatus: Readonly<Partial<Record<number, string>>>): RequestHandler {
    if (!this.enabled) return (_req, _res, next) => next();
    const byCode = new Map<number, { inc(): void }>();
    for (const [status, outcome] of Object.entries(byStatus)) if (outcome !== undefined) byCode.set(Number(status), counter.labels({ outcome }));
    return (_req, res, next) => {
      (res as OutcomeTagged)[OUTCOMES] = byCode;
      next();
    };
  }

  /**
   * http_request_duration_seconds for every request, first in the frame. The route label is the
   * matched pattern (`/api/users/:id/stats`, from Express at the response's end), never the raw URL.
   */
  httpTimer(): RequestHandler | undefined {
    if (!this.enabled) return undefined;
    const histogram = this.httpDuration;
    // One labelled child per (method, route pattern, status): observing through it skips prom-client's
    // per-call label hashing. Bounded: methods × route patterns × statuses, never raw URLs.
    const children = new Map<string, { observe(value: number): void }>();
    return (req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const route = req.route as { path?: unknown } | undefined;
        const pattern = typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : UNMATCHED_ROUTE;
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const key = `${req.method} ${res.statusCode} ${pattern}`;
        let child = children.get(key);
        if (!child) {
          child = histogram.labels({ method: req.method, route: pattern, status_code: res.statusCode });
          children.set(key, child);
        }
        child.observe(seconds);
        (res as OutcomeTagged)[OUTCOMES]?.get(res.statusCode)?.inc();
      });
      next();
    };
  }

  /**
   * Times every command `client` sends (ncc_redis_command_duration_seconds), and with `up` exports
   * ncc_redis_up: 1 while the client is connected and ready, else 0 (read at scrape time).
   */
  watchRedis(client: RedisClient, { up = false }: { up?: boolean } = {}): void {
    if (up) this.gauge('ncc_redis_up', 'Whether this process is connected to Redis and ready (1) or not (0).', () => (client.status === 'ready' ? 1 : 0));
    if (!this.enabled) return;
    const send = client.sendCommand.bind(client) as (command: Command, ...rest: unknown[]) => unknown;
    const timers = this.redisTimers;
    const histogram = this.redisDuration;
    (client as { sendCommand: typeof send }).sendCommand = (command, ...rest) => {
      let timer = timers.get(command.name);
      if (!timer) {
        timer = histogram.labels(command.name.toLowerCase());
        timers.set(command.name, timer);
      }
      const started = process.hrtime.bigint();
      const observe = (): void => timer.observe(Number(process.hrtime.bigint() - started) / 1e9);
      command.promise.then(observe, observe);
      return send(command, ...rest);
    };
  }

  /** The scrape: Prometheus text format and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** GET /metrics on its own listener (see metricsPortEnv); anything else there is a 404. */
export function startMetricsServer(metrics: ServiceMetrics, port: number, host: string): Promise<RunningServer> {
  const app = createBaseApp();
  app.get('/metrics', (_req, res) => {
    metrics.scrape().then(
      ({ contentType, body }) => res.type(contentType).send(body),
      () => res.status(500).json({ error: { code: 'INTERNAL', message: 'The metrics could not be collected.' } }),
    );
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'Only GET /metrics is served here.' } });
  });
  return startServer(app, port, host);
}
