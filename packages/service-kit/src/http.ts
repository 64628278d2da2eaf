import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type RequestHandler, type Router } from 'express';
import { requestContext } from './context.js';
import { UnsupportedMediaTypeError } from './errors.js';
import { redisAnswers, type RedisClient } from './redis.js';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Reuse a well-formed incoming x-request-id or make one; echo it back; expose it to the logger. */
export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  requestContext.run({ requestId: id }, next);
};

export const DEFAULT_BODY_LIMIT = '10kb';

/**
 * For routes that take a JSON body: 415 for any other content type (also the CSRF guard for
 * cookie-authenticated routes: a cross-site form cannot send application/json without a preflight),
 * 400 for malformed JSON, 413 over the limit.
 */
export function jsonBody(limit: string = DEFAULT_BODY_LIMIT): RequestHandler[] {
  return [
    (req, _res, next) => {
      next(req.is('application/json') ? undefined : new UnsupportedMediaTypeError());
    },
    express.json({ limit, strict: true, type: 'application/json' }),
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

export async function startServer(app: Express, port: number, host = '127.0.0.1'): Promise<RunningServer> {
  const server = http.createServer(app);
  // Keep-alive longer than typical proxy idle timeouts, so a proxy never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
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
