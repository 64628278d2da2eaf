/**
 * The nginx gateway of `docker compose up` without Docker: the real nginx binary (Debian's nginx-light,
 * /usr/sbin/nginx) running the repository's deploy/nginx/gateway.conf, changed only where a test must:
 * free ports instead of 8080/8082/8083, 127.0.0.1:<port> instead of the compose service names (and so
 * no Docker DNS), the repository's services/gateway/public as the page, pid, temp files and the access
 * log in a temp dir (a child's stdout here is a socket, which nginx cannot open as /dev/stdout), in the
 * foreground. Wrapped in a minimal main nginx.conf as the image's own is: `events {}` and
 * `http { include mime.types; include <the file>; }`. Every change is checked to apply exactly where
 * expected, so an edit of gateway.conf cannot slip past the test unchanged.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PUBLIC_DIR } from '@ncc/gateway';
import { freePort, until } from '@ncc/testing';
import { ROOT } from '../support/services.js';

/** nginx on PATH, else where Debian puts it (/usr/sbin is often not on a normal user's PATH). */
export const NGINX: string | undefined = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), '/usr/sbin']
  .map((dir) => join(dir, 'nginx'))
  .find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return spawnSync(path, ['-v'], { encoding: 'utf8' }).status === 0;
    } catch {
      return false;
    }
  });

/** Debian's and Homebrew's mime.types, whichever is there (the image has /etc/nginx/mime.types too). */
const MIME_TYPES = ['/etc/nginx/mime.types', '/opt/homebrew/etc/nginx/mime.types', '/usr/local/etc/nginx/mime.types'].find((path) => existsSync(path));

export interface GatewayUpstreams {
  /** The port of the auth process (`http://auth:8083` in the file). */
  auth: number;
  /** The port of the checkin process (`http://checkin:8082`). */
  checkin: number;
  /** Another upstream for the live stream location only (default: checkin). */
  live?: number;
}

export interface NginxGateway {
  /** The three servers: the page origin (8080 in compose), the checkin API (8082) and the auth API (8083). */
  urls: { page: string; checkin: string; auth: string };
  ports: { page: number; checkin: number; auth: number };
  /** nginx's error log (its stderr). */
  output(): string;
  /** The access log entry of the request sent with this X-Request-Id (nginx logs it as request_id). */
  accessLogOf(requestId: string): Promise<Record<string, unknown>>;
  stop(): Promise<number | string>;
}

/** `text` with `from` replaced by `to`, which must occur exactly `times` times. */
function replaceExactly(text: string, from: string | RegExp, to: string, times: number): string {
  const count = typeof from === 'string' ? text.split(from).length - 1 : [...text.matchAll(new RegExp(from.source, `${from.flags.replace('g', '')}g`))].length;
  if (count !== times) throw new Error(`deploy/nginx/gateway.conf: expected ${times} × ${String(from)}, found ${count}; update test/gateway/nginx.ts`);
  return typeof from === 'string' ? text.split(from).join(to) : text.replace(new RegExp(from.source, `${from.flags.replace('g', '')}g`), to);
}

/** deploy/nginx/gateway.conf as the test runs it, its JSON access log going to `accessLog`. */
export function gatewayConfFor(ports: NginxGateway['ports'], upstreams: GatewayUpstreams, accessLog: string, tls?: TlsFiles): string {
  let conf = readFileSync(join(ROOT, 'deploy/nginx/gateway.conf'), 'utf8');
  conf = replaceExactly(conf, 'access_log /dev/stdout ncc_json;', `access_log ${accessLog} ncc_json;`, 3);
  // With `tls`, the page origin is served over HTTPS, as behind a TLS-terminating gateway in production.
  const pageListen = tls
    ? `listen 127.0.0.1:${ports.page} ssl;\n  ssl_certificate ${tls.cert};\n  ssl_certificate_key ${tls.key};`
    : `listen 127.0.0.1:${ports.page};`;
  conf = replaceExactly(conf, 'listen 8080;', pageListen, 1);
  conf = replaceExactly(conf, 'listen 8082;', `listen 127.0.0.1:${ports.checkin};`, 1);
  conf = replaceExactly(conf, 'listen 8083;', `listen 127.0.0.1:${ports.auth};`, 1);
  // Upstreams are IP addresses here: nginx asks no resolver for them.
  conf = replaceExactly(conf, /^resolver 127\.0\.0\.11 /m, 'resolver 127.0.0.1 ', 1);
  if (upstreams.live !== undefined) {
    conf = replaceExactly(
      conf,
      /(location = \/api\/checkins\/live \{\s*set \$checkin_upstream )http:\/\/checkin:8082;/,
      `$1http://127.0.0.1:${upstreams.live};`,
      1,
    );
  }
  conf = replaceExactly(conf, 'http://checkin:8082', `http://127.0.0.1:${upstreams.checkin}`, upstreams.live === undefined ? 3 : 2);
  conf = replaceExactly(conf, 'http://auth:8083', `http://127.0.0.1:${upstreams.auth}`, 2);
  return replaceExactly(conf, 'root /usr/share/nginx/ncc;', `root ${PUBLIC_DIR};`, 1);
}

const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((child) => child.kill('SIGKILL')));

/** A certificate and its key (PEM files) for the page origin. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/**
 * nginx with the gateway config on three free ports, answering /gateway/healthz on each when this
 * resolves (with `tls`, the page origin is https:// and only the two plain servers are polled: fetch
 * refuses a self-signed certificate).
 */
export async function startNginxGateway(upstreams: GatewayUpstreams, tls?: TlsFiles): Promise<NginxGateway> {
  if (!NGINX) throw new Error('nginx is not installed (bash scripts/install-system-deps.sh installs nginx-light)');
  if (!MIME_TYPES) throw new Error('no mime.types for nginx found');
  const ports = { page: await freePort(), checkin: await freePort(), auth: await freePort() };
  const dir = mkdtempSync(join(tmpdir(), 'ncc-nginx-'));
  // Run as root, nginx's workers run as `nobody`: they must reach the temp dirs the master makes here.
  chmodSync(dir, 0o755);
  const accessLog = join(dir, 'access.log');
  writeFileSync(join(dir, 'gateway.conf'), gatewayConfFor(ports, upstreams, accessLog, tls));
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      'error_log stderr notice;',
      'events {}',
      'http {',
      `  include ${MIME_TYPES};`,
      '  default_type application/octet-stream;',
      // The image's http-level access log goes to a file; every server of gateway.conf has its own.
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(dir, kind)};`),
      `  include ${join(dir, 'gateway.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let gone: number | string | undefined;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      gone = code ?? signal ?? 'unknown';
      rmSync(dir, { recursive: true, force: true });
      resolve(gone);
    }),
  );
  const urls = {
    page: `${tls ? 'https' : 'http'}://127.0.0.1:${ports.page}`,
    checkin: `http://127.0.0.1:${ports.checkin}`,
    auth: `http://127.0.0.1:${ports.auth}`,
  };
  const answering = until('nginx answering /gateway/healthz on all three servers', 10_000, async () => {
    const plain = Object.values(urls).filter((url) => url.startsWith('http:'));
    const answers = await Promise.all(plain.map((url) => fetch(`${url}/gateway/healthz`).then((r) => r.ok)));
    return answers.every(Boolean);
  });
  // A refused configuration makes nginx exit at once: say why instead of waiting out the poll.
  const refused = exited.then((code) => Promise.reject(new Error(`nginx exited (${code}) before it answered`)));
  try {
    await Promise.race([answering, refused]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${err instanceof Error ? err.message : String(err)}:\n${output}`, { cause: err });
  } finally {
    refused.catch(() => undefined);
  }
  return {
    urls,
    ports,
    output: () => output,
    accessLogOf: (requestId) =>
      until(`nginx's access log line of ${requestId}`, 5000, () =>
        readFileSync(accessLog, 'utf8')
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((entry) => entry['request_id'] === requestId),
      ),
    stop: async () => {
      if (gone === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}
