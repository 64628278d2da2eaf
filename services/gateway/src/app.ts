import http from 'node:http';
import { fileURLToPath } from 'node:url';
import express, { type Request, type RequestHandler, type Response } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { createBaseApp, errorHandler, type Logger, notFoundHandler, requestId, type ServiceApp, type ServiceParts } from '@ncc/service-kit';
import type { GatewayConfig } from './config.js';
import { API_PREFIX, AUTH_PATHS, PAGE_HEADERS } from './routes.js';

/** The web page (index.html, assets/): next to src/ and dist/ alike. */
export const PUBLIC_DIR = fileURLToPath(new URL('../public', import.meta.url));

export type GatewayParts = Omit<ServiceParts<GatewayConfig>, 'redis' | 'metrics'>;

/**
 * The X-Forwarded-* headers a client may have sent. They are dropped before the proxy adds its own
 * (`xfwd`), so each service sees exactly what this one hop saw — as the nginx gateway does by
 * overwriting X-Forwarded-For with $remote_addr. Left in, http-proxy would append to a forged
 * X-Forwarded-For and keep a forged X-Forwarded-Host and -Proto, and a service trusting one hop
 * (TRUST_PROXY=1) would believe them: another client address, HTTPS, another origin.
 */
const CLIENT_FORWARDED_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port'] as const;

const forwardAsThisHop: RequestHandler = (req, res, next) => {
  for (const name of CLIENT_FORWARDED_HEADERS) delete req.headers[name];
  // The services log a well-formed X-Request-Id as clientRequestId next to their own id: the caller's
  // if it sent one, else this gateway's (the nginx gateway passes its $request_id the same way).
  req.headers['x-request-id'] ??= String(res.getHeader('X-Request-Id'));
  next();
};

const pageHeaders: RequestHandler = (_req, res, next) => {
  for (const [name, value] of Object.entries(PAGE_HEADERS)) res.setHeader(name, value);
  next();
};

function proxyTo(name: 'auth' | 'checkin', target: string, routed: (path: string) => boolean, agent: http.Agent, logger: Logger): RequestHandler {
  return createProxyMiddleware<Request, Response>({
    target,
    pathFilter: (path) => routed(path),
    // The Host the browser used goes on unchanged: the service's cross-site guard compares the Origin
    // with it (decision 011), and the page's origin is this gateway's, not the service's port.
    changeOrigin: false,
    xfwd: true,
    // Keep-alive to the service. Node's agent retires an idle socket a second before the service's
    // advertised Keep-Alive timeout, so a request never lands on a socket the service is closing.
    agent,
    on: {
      proxyRes: (proxyRes, req, res) => {
        logger.debug(`${req.method} ${req.path} → ${name} ${proxyRes.statusCode ?? '?'}.`);
        // The service went away mid-response (a restart while the live stream runs): cut the client's
        // response too, so that it sees the break (EventSource reconnects) instead of a stream that
        // merely went quiet. A client that leaves first is handled by the library (the upstream is destroyed).
        proxyRes.once('close', () => {
          if (!proxyRes.complete) res.destroy();
        });
      },
      // A service that is down or restarting: a JSON error like every other, never the library's text.
      error: (err: NodeJS.ErrnoException, req, res) => {
        if (!(res instanceof http.ServerResponse)) {
          res.destroy();
          return;
        }
        const id = res.getHeader('X-Request-Id');
        const requestIdOf = typeof id === 'string' ? { requestId: id } : {};
        logger.warn(`${name} did not answer at ${target} (${err.code ?? err.name}): ${req.method} ${req.path}.`, requestIdOf);
        if (res.headersSent) {
          // Part of the answer went out already: end the connection rather than finish a cut-off body.
          res.destroy();
          return;
        }
        res.status(502).json({ error: { code: 'BAD_GATEWAY', message: `The ${name} service is not reachable. Please retry shortly.`, ...requestIdOf } });
      },
    },
  });
}

/**
 * The gateway's composition root: one origin for the browser. /gateway/healthz is its own; the auth
 * routes go to AUTH_URL and /api/ to CHECKIN_URL, with their paths unchanged and streamed both ways
 * (the live checkin stream passes as it arrives); GET / and /assets/… are the page from PUBLIC_DIR with
 * PAGE_HEADERS; anything else is a JSON 404 — no /metrics, no /healthz or /readyz of the services.
 */
export function createGatewayApp({ config, logger }: GatewayParts): ServiceApp {
  const agent = new http.Agent({ keepAlive: true });
  const authPaths = new RegExp(AUTH_PATHS);
  // No helmet here: proxied responses keep the services' own security headers, and the page gets PAGE_HEADERS.
  const app = createBaseApp();
  app.use(requestId);
  app.get('/gateway/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(forwardAsThisHop);
  app.use(proxyTo('auth', config.AUTH_URL, (path) => authPaths.test(path), agent, logger));
  app.use(proxyTo('checkin', config.CHECKIN_URL, (path) => path.startsWith(API_PREFIX), agent, logger));
  // serve-static's own Cache-Control is off: PAGE_HEADERS sets it.
  app.use(pageHeaders, express.static(PUBLIC_DIR, { index: 'index.html', redirect: false, dotfiles: 'ignore', cacheControl: false }));
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  logger.info(`Routing the auth paths to ${config.AUTH_URL} and ${API_PREFIX} to ${config.CHECKIN_URL}; the page from ${PUBLIC_DIR}.`);
  return {
    app,
    close: () => {
      agent.destroy();
      return Promise.resolve();
    },
  };
}
