/**
 * Shared by the tests of both gateways (this package's, and test/gateway/nginx.e2e.test.ts for the nginx
 * one): what every path on the one origin must reach, and what a static answer must look like.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { PAGE_HEADERS, PUBLIC_DIR } from '../src/index.js';

/** `page`: a file of services/gateway/public; `none`: not routed anywhere, a JSON 404. */
export type Destination = 'auth' | 'checkin' | 'page' | 'none';

/** The route table of the one origin, with the near misses that must stay unrouted. */
export const ROUTE_TABLE: readonly (readonly [method: string, path: string, destination: Destination])[] = [
  ['POST', '/login', 'auth'],
  ['GET', '/logout', 'auth'],
  ['POST', '/logout', 'auth'],
  ['POST', '/logout-all', 'auth'],
  ['GET', '/me', 'auth'],
  ['GET', '/visits', 'auth'],
  ['GET', '/sessions', 'auth'],
  ['DELETE', '/sessions/some-handle_1', 'auth'],
  ['POST', '/api/checkin', 'checkin'],
  ['GET', '/api/users/77/stats?fresh=1', 'checkin'],
  ['GET', '/api/locations/5/stats', 'checkin'],
  ['GET', '/api/checkins/live', 'checkin'],
  ['GET', '/', 'page'],
  ['GET', '/index.html', 'page'],
  ['GET', '/assets/app.js', 'page'],
  ['GET', '/assets/app.css', 'page'],
  // Served on ports of their own, never through the gateway.
  ['GET', '/metrics', 'none'],
  // The services' health routes are theirs (and the old ports'), not the page origin's.
  ['GET', '/healthz', 'none'],
  ['GET', '/readyz', 'none'],
  ['GET', '/api', 'none'],
  ['GET', '/LOGIN', 'none'],
  ['GET', '/me/again', 'none'],
  ['GET', '/sessions/a/b', 'none'],
  ['GET', '/assets/', 'none'],
  ['GET', '/nothing-here.js', 'none'],
];

/** The file a page path serves. */
export function pageFile(path: string): string {
  return join(PUBLIC_DIR, path === '/' ? 'index.html' : path.slice(1));
}

/** A static answer: the file's bytes with the page's security and cache headers. */
export async function expectPage(res: Response, path: string): Promise<void> {
  expect(res.status, path).toBe(200);
  expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(pageFile(path))), `${path}: the file's bytes`).toBe(true);
  for (const [name, value] of Object.entries(PAGE_HEADERS)) expect(res.headers.get(name), `${path}: ${name}`).toBe(value);
  const type = res.headers.get('content-type') ?? '';
  if (path.endsWith('.js')) expect(type).toMatch(/^(text|application)\/javascript\b/);
  else if (path.endsWith('.css')) expect(type).toMatch(/^text\/css\b/);
  else expect(type).toMatch(/^text\/html\b/);
}

/** Not routed: the JSON 404 every ncc answer uses. */
export async function expectNotFound(res: Response, path: string): Promise<void> {
  expect(res.status, path).toBe(404);
  expect(res.headers.get('content-type'), path).toMatch(/^application\/json\b/);
  expect(await res.json(), path).toMatchObject({ error: { code: 'NOT_FOUND', message: 'Not found.', requestId: expect.any(String) } });
}

export interface StreamingUpstream {
  url: string;
  port: number;
  /** Send the second event and end the response. */
  next(): void;
  /** Drop the connection mid-stream, as a service that dies would. */
  kill(): void;
  close(): Promise<void>;
}

/**
 * A stand-in for checkin's live stream (GET /api/checkins/live): one event at once, then the response
 * stays open until `next()`. Only a gateway that streams delivers the first event before then.
 */
export async function streamingUpstream(): Promise<StreamingUpstream> {
  let proceed: () => void = () => undefined;
  let response: http.ServerResponse | undefined;
  const server = http.createServer((_req, res) => {
    response = res;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write('data: first\n\n');
    proceed = () => res.end('data: second\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    next: () => proceed(),
    kill: () => response?.socket?.destroy(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Read a streamed body until `text` has arrived; fails if it has not within `timeoutMs` or the stream ends first. */
export async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, text: string, timeoutMs: number): Promise<string> {
  let got = '';
  const deadline = Date.now() + timeoutMs;
  const decoder = new TextDecoder();
  while (!got.includes(text)) {
    const chunk = await Promise.race([reader.read(), new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now())))]);
    if (chunk === 'late') throw new Error(`"${text}" did not arrive within ${timeoutMs} ms (got ${JSON.stringify(got)})`);
    if (chunk.done) throw new Error(`the stream ended before "${text}" (got ${JSON.stringify(got)})`);
    got += decoder.decode(chunk.value, { stream: true });
  }
  return got;
}
