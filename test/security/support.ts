/** Small helpers shared by the security tests (black-box: HTTP in, HTTP + Redis state out). */
import { cookiePair, postJson, sessionIdOf } from '@ncc/testing';
import { DEMO } from '../support/services.js';

export interface LoginResult {
  res: Response;
  body: unknown;
  /** `name=value` of the session cookie, if one was set. */
  cookie: string | undefined;
  sid: string | undefined;
}

export async function tryLogin(
  authUrl: string,
  credentials: { email: string; password: string } = DEMO,
  headers: Record<string, string> = {},
  cookieName = 'checkinapp',
): Promise<LoginResult> {
  const res = await postJson(`${authUrl}/login`, { email: credentials.email, password: credentials.password }, headers);
  const cookie = cookiePair(res, cookieName);
  const body: unknown = await res.json().catch(() => undefined);
  return { res, body, cookie, sid: cookie ? sessionIdOf(cookie) : undefined };
}

export function get(url: string, cookie?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { headers: { ...(cookie ? { cookie } : {}), ...headers } });
}

export function send(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<Response> {
  return fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
}

/** A valid checkin body for `userId` with a fresh location (no duplicate). */
let location = 1;
export function checkinBody(userId: number): { userId: number; locationId: number; starRating: number } {
  return { userId, locationId: 100_000 + location++, starRating: 4 };
}

export function errorCode(body: unknown): string | undefined {
  return (body as { error?: { code?: string } } | undefined)?.error?.code;
}

/** Headers that make a request come from `ip`, for a service trusting one proxy hop (TRUST_PROXY=1). */
export const from = (ip: string): Record<string, string> => ({ 'x-forwarded-for': ip });

/** How many responses had each status: `{ 200: 60, 429: 1940 }`. */
export function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}
