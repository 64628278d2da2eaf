import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, RequestHandler, Router } from 'express';
import helmet from 'helmet';
import { type CrossSiteOptions, crossSiteGuard } from './cross-site.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { createBaseApp, healthRoutes, requestId } from './http.js';
import type { Logger } from './logger.js';
import type { ServiceMetrics } from './metrics.js';
import type { RedisClient } from './redis.js';

/** What a service's composition root hands back to runService (and to the tests). */
export interface ServiceApp {
  app: Express;
  /** Releases what the app holds besides Redis (worker pools…); runService calls it after the HTTP drain. */
  close(): Promise<void>;
  /**
   * Called once the server stops accepting, before the HTTP drain: ends the responses that never
   * finish by themselves (the live checkin stream), so that the drain does not wait them out.
   */
  beginShutdown?(): void;
}

export interface ServiceFrameOptions {
  redis: RedisClient;
  logger: Logger;
  /** Times every request (http_request_duration_seconds), first of all. */
  metrics: ServiceMetrics;
  /** Exact number of reverse proxies in front (TRUST_PROXY). */
  trustProxy: number;
  crossSite: CrossSiteOptions;
  /** Right after the security headers, before anything can answer: headers every response needs. */
  head?: RequestHandler[];
  /** The service's own middleware and routes, after the health routes. */
  routes: (RequestHandler | Router)[];
}

/**
 * helmet's security headers, computed once: helmet() with its defaults sets the same headers on every
 * response (no directive depends on the request), through a chain of a dozen middleware functions.
 * Run that chain once against a recorder at start-up, then set the recorded headers in one step.
 */
export function securityHeaders(): RequestHandler {
  const headers: [string, string | number | readonly string[]][] = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => headers.push([name, value]),
    removeHeader: () => undefined,
  };
  let done = false;
  helmet()({} as IncomingMessage, recorder as unknown as ServerResponse, () => {
    done = true;
  });
  // A helmet that answered asynchronously or not at all would leave headers out: refuse to start.
  if (!done || headers.length === 0) throw new Error('helmet did not set its headers synchronously; securityHeaders() cannot precompute them.');
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}

/**
 * The frame every ncc service shares, in this order: the request timer (metrics), request id, helmet's security headers, `head`,
 * the cross-site guard (CSRF/CORS, decision 011), /healthz and /readyz (never behind a session or a
 * body parser), the service's routes, then 404 and the one error handler that maps errors to JSON.
 */
export function createServiceFrame({ redis, logger, metrics, trustProxy, crossSite, head = [], routes }: ServiceFrameOptions): Express {
  const app = createBaseApp({ trustProxy });
  const timer = metrics.httpTimer();
  if (timer) app.use(timer);
  app.use(requestId);
  app.use(securityHeaders());
  for (const handler of head) app.use(handler);
  app.use(crossSiteGuard(crossSite));
  app.use(healthRoutes(redis));
  for (const route of routes) app.use(route);
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
