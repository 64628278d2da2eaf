/**
 * What goes where on the one origin — shared by both gateways: this Node one (`pnpm start`) and the nginx
 * one (deploy/nginx/gateway.conf, `docker compose up`), whose tests check it against these values.
 */

/**
 * The auth routes, with the paths the services themselves use: POST /login, GET|POST /logout,
 * POST /logout-all, GET /me, GET /visits, GET /sessions and DELETE /sessions/:handle. A regular
 * expression (PCRE and JavaScript alike) because nginx has it verbatim as `location ~ …`; exact and
 * case-sensitive, so nothing else of auth's (/healthz, /readyz, a new route) is published by accident.
 */
export const AUTH_PATHS = '^/(?:login|logout|logout-all|me|visits|sessions(?:/[^/]+)?)$';

/** Everything under it is checkin's: POST /api/checkin, the stats read API, the live stream. */
export const API_PREFIX = '/api/';

/** checkin's server-sent events: a response that never ends, passed on as it arrives. */
export const LIVE_STREAM_PATH = '/api/checkins/live';

/**
 * What the page needs and nothing more: its own scripts, styles, fetches and EventSource; images from
 * itself or data: URLs; no plugins, no inline code, no other origin, no framing, forms only to itself.
 */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * On every static response (the page, its assets, and their 404s). `no-cache`: the assets have no
 * content hash in their names, so a browser revalidates each time (ETag / Last-Modified: a 304, cheap)
 * and never runs an old app.js against a new API.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': PAGE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};
