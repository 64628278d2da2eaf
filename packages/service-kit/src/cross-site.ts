import type { Request, RequestHandler } from 'express';
import { AppError } from './errors.js';
import { env } from './env.js';

/**
 * Settings for the cross-site guard; spread into a service schema next to `sessionEnvShape`.
 * Empty (the default) = only same-origin browser requests and requests without an Origin header
 * (Postman, curl, server-to-server) may change state. See docs/decisions/011-csrf.md.
 */
export const crossSiteEnvShape = {
  /** Comma separated exact origins, e.g. `https://app.example.com,https://admin.example.com`. */
  ALLOWED_ORIGINS: env.list().default([]),
};

const crossSiteRequest = (): AppError => new AppError(403, 'CROSS_SITE_REQUEST', 'Cross-site requests are not allowed.');

/** Everything else (POST, PUT, PATCH, DELETE and any unusual method) counts as state-changing. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CrossSiteOptions {
  allowedOrigins: readonly string[];
  /** Safe-method routes that nevertheless change state (`GET /logout`), as `METHOD /path`. */
  alsoGuard?: readonly string[];
}

/**
 * `GET /logout` as Express's router would match it: HEAD runs GET handlers, and paths match
 * case-insensitively with an optional trailing slash — so `HEAD /LOGOUT/` is `GET /logout` too.
 */
function routeOf(req: Request): string {
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const path = req.path.toLowerCase().replace(/\/+$/, '') || '/';
  return `${method} ${path}`;
}

/** `scheme://host[:port]` of the request as the browser saw it (honours the app's `trust proxy`). */
function ownOrigin(req: Request): string {
  return `${req.protocol}://${req.host}`;
}

/**
 * CSRF and CORS for a cookie-authenticated JSON API:
 *  - a state-changing request (any method but GET/HEAD/OPTIONS, plus `alsoGuard` routes) whose `Origin` is present, not our own and not in ALLOWED_ORIGINS → 403;
 *  - `Sec-Fetch-Site: cross-site` → 403 unless its Origin is explicitly allowed;
 *  - CORS headers (credentials, exact origin, never `*`) only for allowed origins; a preflight from any
 *    other origin gets 403 and no allow headers, so the browser never sends the real request.
 * Requests without Origin and Sec-Fetch-Site (curl, Postman, other services) pass: they carry no
 * ambient browser credentials an attacker could borrow.
 */
export function crossSiteGuard({ allowedOrigins, alsoGuard = [] }: CrossSiteOptions): RequestHandler {
  const allowed = new Set(allowedOrigins.map((o) => o.replace(/\/+$/, '')));
  const extra = new Set(
    alsoGuard.map((r) =>
      r
        .replace(/\/+$/, '')
        .toLowerCase()
        .replace(/^[a-z]+/, (m) => m.toUpperCase()),
    ),
  );
  return (req, res, next) => {
    const origin = req.headers.origin;
    const isAllowed = origin !== undefined && allowed.has(origin);
    if (isAllowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id, Retry-After');
    }
    // Responses differ by Origin: caches must key on it.
    res.vary('Origin');

    if (req.method === 'OPTIONS' && origin !== undefined && req.headers['access-control-request-method'] !== undefined) {
      if (!isAllowed) {
        next(crossSiteRequest());
        return;
      }
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Request-Id');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }

    if (SAFE.has(req.method) && !extra.has(routeOf(req))) {
      next();
      return;
    }
    const site = req.headers['sec-fetch-site'];
    if (origin !== undefined && !isAllowed && origin !== ownOrigin(req)) {
      next(crossSiteRequest());
      return;
    }
    if (site === 'cross-site' && !isAllowed) {
      next(crossSiteRequest());
      return;
    }
    next();
  };
}
