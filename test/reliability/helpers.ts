/**
 * Shared helpers for the fault tests: every answer is read to the end and checked for being a
 * complete JSON document whose length matches Content-Length (the original system sent truncated
 * bodies after a store error), and timed from request start to the last byte.
 */
import { connect } from 'node:net';
import { expect } from 'vitest';

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
  /** Milliseconds from sending the request to having read the whole body. */
  ms: number;
}

export async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(15_000) });
  const text = await res.text();
  const ms = performance.now() - started;
  const length = res.headers.get('content-length');
  // A truncated body would fail one of these: the length the server promised, and JSON.parse.
  if (length !== null) expect(Buffer.byteLength(text), `content-length of ${init.method ?? 'GET'} ${url}`).toBe(Number(length));
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${init.method ?? 'GET'} ${url} answered ${res.status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  return { status: res.status, headers: res.headers, body, text, ms };
}

export function postJsonTimed(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return call(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** The answer is the documented 503: JSON error body with code, message and request id, Retry-After, no cookie. */
export function expectUnavailable(answer: Answer, label: string): void {
  expect(answer.status, `${label}: ${answer.text}`).toBe(503);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.headers.get('retry-after')).toBe('1');
  expect(answer.body).toEqual({
    error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String) as string, requestId: expect.any(String) as string },
  });
  // A 503 must never hand out a session cookie (a session that was not stored).
  expect(answer.headers.getSetCookie().filter((c) => c.startsWith('checkinapp='))).toEqual([]);
}

/** True when a brand-new TCP connection to the port is refused. */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
