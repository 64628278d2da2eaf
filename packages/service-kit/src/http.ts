import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type RequestHandler, type Router } from 'express';
import { DEFAULT_HTTP_TIMEOUTS } from './config.js';
import { requestContext } from './context.js';
import { httpErrors } from './errors.js';
import { redisAnswers, type RedisClient } from './redis.js';

/**
 * What a client may put in X-Request-Id to be recorded as `clientRequestId`: at most 128 characters of
 * `[A-Za-z0-9._:-]`. A header that does not match is dropped whole, not stripped to what would match:
 * a stripped value is something the client never sent (`<script>` would become `script`) and would
 * correlate with the wrong request just as easily. Nothing from it reaches a log line then.
 */
const VALID_CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Every request gets an id of ours (a random UUID): it is `requestId` in every log and audit entry
 * written while the request runs, in error bodies and in the `X-Request-Id` response header. A client
 * cannot choose it — a chosen id could collide with another request's and muddle or forge the audit
 * trail. A well-formed incoming X-Request-Id is kept as `clientRequestId` (logged next to ours, for
 * correlating with the caller's logs) and is not echoed back.
 */
export const requestId: RequestHandler = (req, res, next) => {
  const id = randomUUID();
  const incoming = req.headers['x-request-id'];
  const clientRequestId = typeof incoming === 'string' && VALID_CLIENT_REQUEST_ID.test(incoming) ? incoming : undefined;
  res.setHeader('X-Request-Id', id);
  requestContext.run(clientRequestId === undefined ? { requestId: id } : { requestId: id, clientRequestId }, next);
};

export const DEFAULT_BODY_LIMIT = '10kb';

/**
 * For routes that take a JSON body: 415 for any other content type (also the CSRF guard for
 * cookie-authenticated routes: a cross-site form cannot send application/json without a preflight),
 * 400 for malformed JSON, 413 over the limit.
 */
export function jsonBody(): RequestHandler[] {
  return [
    express.json({ limit: DEFAULT_BODY_LIMIT, strict: true, type: 'application/json' }),
    // The parser leaves other content types unread (req.body undefined): only then is the type looked at again.
    (req, _res, next) => {
      next(req.body !== undefined || req.is('application/json') ? undefined : httpErrors.unsupportedMediaType());
    },
  ];
}

/**
 * For state-changing routes without a payload (`POST /logout`, `DELETE /sessions/:h`): no body or an
 * empty JSON object `{}` is fine (Postman, fetch); any other body is refused — 415 if not JSON, 400 if
 * JSON but not `{}`, 413 over the limit — so a request the route would silently misread never acts.
 */
export function optionalJsonBody(): RequestHandler[] {
  const [parse, requireJson] = jsonBody();
  const requireEmpty: RequestHandler = (req, _res, next) => {
    const body: unknown = req.body;
    const empty = typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0;
    next(empty ? undefined : httpErrors.validation(['body'], 'This request takes no body.'));
  };
  return [
    (req, res, next) => {
      const length = req.headers['content-length'];
      const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
      if (!hasBody) {
        next();
        return;
      }
      parse!(req, res, (err?: unknown) => {
        if (err) return next(err);
        requireJson!(req, res, (typeErr?: unknown) => (typeErr ? next(typeErr) : requireEmpty(req, res, next)));
      });
    },
  ];
}

/** `/healthz`: the process is alive. `/readyz`: it can serve, i.e. Redis answers PING. */
export function healthRoutes(redis: RedisClient): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.status(200).json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ok = await redisAnswers(redis);
    res.status(ok ? 200 : 503).json(ok ? { status: 'ready' } : { status: 'unavailable', redis: 'unreachable' });
  });
  return router;
}

/** An Express app with the settings every ncc service wants, before any route. */
export function createBaseApp(options: { trustProxy?: number } = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy ?? 0);
  app.set('etag', false);
  return app;
}

export interface RunningServer {
  server: http.Server;
  port: number;
  url: string;
  /** Stop accepting, let in-flight requests finish for up to `timeoutMs`, then cut what is left. */
  close(timeoutMs?: number): Promise<void>;
}

/** The server's time limits (HTTP_*_TIMEOUT_MS in the base config); a service passes its config. */
export interface HttpTimeoutSettings {
  HTTP_REQUEST_TIMEOUT_MS?: number | undefined;
  HTTP_HEADERS_TIMEOUT_MS?: number | undefined;
  HTTP_KEEP_ALIVE_TIMEOUT_MS?: number | undefined;
}

/**
 * How often Node looks for requests past their headers/request timeout. Node checks those timeouts
 * only on this interval (30 s by default), so a connection could outlive its timeout by up to that:
 * at most 1 s late here, and a quarter of the timeout for second-scale (test) values.
 */
export function connectionsCheckingInterval(headersTimeoutMs: number, requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4)));
}

export async function startServer(app: Express, port: number, host = '127.0.0.1', timeouts: HttpTimeoutSettings = {}): Promise<RunningServer> {
  const requestTimeout = timeouts.HTTP_REQUEST_TIMEOUT_MS ?? DEFAULT_HTTP_TIMEOUTS.requestMs;
  // Never longer than the request timeout: Node 20 then holds a request to the headers timeout instead
  // (a trickled body lived to 66 s + the check interval under the old 30 s / 66 s settings).
  const headersTimeout = Math.min(timeouts.HTTP_HEADERS_TIMEOUT_MS ?? DEFAULT_HTTP_TIMEOUTS.headersMs, requestTimeout);
  // Passed at creation: the checking interval cannot be changed afterwards. A request (headers + body)
  // or its headers not complete in time gets Node's own `408 Request Timeout` and the socket is closed.
  const server = http.createServer(
    { requestTimeout, headersTimeout, connectionsCheckingInterval: connectionsCheckingInterval(headersTimeout, requestTimeout) },
    app,
  );
  // Keep-alive longer than typical proxy idle timeouts, so a proxy never reuses a socket we just closed.
  // A socket timer (Node adds a fixed 1 s to the advertised value), not the interval above. Node 18+
  // counts headersTimeout from a request's first byte, so it no longer has to exceed this.
  server.keepAliveTimeout = timeouts.HTTP_KEEP_ALIVE_TIMEOUT_MS ?? DEFAULT_HTTP_TIMEOUTS.keepAliveMs;
  let closing = false;
  // server.close() only closes the connections idle at that moment. A keep-alive connection whose
  // request was in flight becomes idle after its response and would hold the shutdown open until
  // SHUTDOWN_TIMEOUT_MS; close each one as soon as its response has gone out.
  server.on('request', (_req, res: http.ServerResponse) => {
    res.once('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    server,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    close: (timeoutMs = 10_000) =>
      new Promise<void>((resolve) => {
        closing = true;
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
