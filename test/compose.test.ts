/**
 * docker-compose.yml, checked without a Docker engine: Debian's docker-compose 1.29 validates the file
 * against its schema and resolves it (variable defaults, YAML merge keys) exactly as `up` would; the
 * assertions below run on that resolved output, so they see what the engine would be given.
 * scripts/install-system-deps.sh installs docker-compose; outside CI a missing binary skips this file
 * (saying so), in CI (CI set) it fails.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AUTH_PATHS, LIVE_STREAM_PATH, PAGE_CSP } from '@ncc/gateway';
import { ROOT } from './support/services.js';

const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const available = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' }).status === 0;
const inCi = Boolean(process.env['CI']);
if (!available && !inCi) {
  console.warn('test/compose.test.ts SKIPPED: docker-compose is not installed (bash scripts/install-system-deps.sh installs it).');
}

/** Only PATH and HOME: the "zero set-up" case, whatever the shell running the tests has exported. */
function composeRun(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root', ...options.env };
  return spawnSync('docker-compose', args, { cwd: ROOT, env, encoding: 'utf8', input: options.input, timeout: 20_000 });
}

interface ResolvedService {
  image?: string;
  build?: { args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string | number | null>;
  ports?: (string | { published: number | string; target: number; host_ip?: string })[];
  expose?: string[];
  volumes?: (string | { source: string; target: string })[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  init?: boolean;
  scale?: number;
  deploy?: { replicas?: number };
  profiles?: string[];
}
interface Resolved {
  services: Record<string, ResolvedService>;
  volumes?: Record<string, unknown>;
}

const resolvedCache = new Map<string, Resolved>();
function resolvedConfig(env: Record<string, string> = {}): Resolved {
  const cacheKey = JSON.stringify(env);
  const cached = resolvedCache.get(cacheKey);
  if (cached) return cached;
  const result = composeRun(['-f', COMPOSE_FILE, 'config'], { env });
  if (result.status !== 0) throw new Error(`docker-compose config failed:\n${result.stderr}`);
  const config = parse(result.stdout) as Resolved;
  resolvedCache.set(cacheKey, config);
  return config;
}

function service(config: Resolved, name: string): ResolvedService {
  const found = config.services[name];
  if (!found) throw new Error(`no service ${name}`);
  return found;
}

/** Short ("127.0.0.1:6379:6379/tcp") and long ({published, target}) port syntax, normalised. */
function ports(s: ResolvedService): { hostIp: string; published: string; target: string }[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { hostIp: p.host_ip ?? '', published: String(p.published), target: String(p.target) };
    const parts = p.replace(/\/\w+$/, '').split(':');
    const target = parts.pop()!;
    const published = parts.pop() ?? '';
    return { hostIp: parts.join(':'), published, target };
  });
}

/** Bind mounts as [source, target, mode?] (short syntax after resolution: absolute host path). */
function mountsOf(s: ResolvedService): string[][] {
  return (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]));
}

/** Each Node service's METRICS_PORT (deploy/prometheus/prometheus.yml scrapes these). */
const METRICS_PORTS = { auth: '9083', checkin: '9082', processor: '9084' };
/** The `observability` profile. */
const OBSERVABILITY = ['prometheus', 'grafana', 'jaeger'];

/** The server blocks of deploy/nginx/gateway.conf by the port they listen on, with their locations in order. */
function nginxServers(): Map<string, { text: string; locations: string[] }> {
  const conf = readFileSync(join(ROOT, 'deploy/nginx/gateway.conf'), 'utf8');
  const servers = new Map<string, { text: string; locations: string[] }>();
  for (const match of conf.matchAll(/^server \{\n([\s\S]*?)^\}/gm)) {
    const text = match[1]!;
    const port = /^\s*listen (\d+);/m.exec(text)?.[1];
    if (!port) throw new Error(`a server block without a listen port:\n${text}`);
    servers.set(port, { text, locations: [...text.matchAll(/^\s*location\s+([^{]+?)\s*\{/gm)].map((m) => m[1]!) });
  }
  return servers;
}

function nginxServer(port: string): { text: string; locations: string[] } {
  const server = nginxServers().get(port);
  if (!server) throw new Error(`deploy/nginx/gateway.conf has no server listening on ${port}`);
  return server;
}

/** The body of the location `name` in a server block (nested blocks included). */
function locationBody(text: string, name: string): string {
  const start = text.indexOf(`location ${name} {`);
  if (start < 0) throw new Error(`no location ${name}`);
  let depth = 0;
  for (let i = text.indexOf('{', start); i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  throw new Error(`location ${name} is not closed`);
}

const env = (s: ResolvedService, key: string): string | undefined => {
  const value = s.environment?.[key];
  return value === undefined || value === null ? undefined : String(value);
};

describe.skipIf(!available && !inCi)('docker-compose.yml, validated by docker-compose without an engine', () => {
  it('when checked with `docker-compose config -q`, then it is valid with no warning', () => {
    expect(available, 'docker-compose must be installed in CI (scripts/install-system-deps.sh)').toBe(true);
    const result = composeRun(['-f', COMPOSE_FILE, 'config', '-q']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('when the file has a key docker-compose does not know, then the same check fails (the validator is not a no-op)', () => {
    const broken = readFileSync(COMPOSE_FILE, 'utf8').replace(/^ {2}checkin:\n/m, '  checkin:\n    replicas_typo: 2\n');
    const result = composeRun(['-f', '-', 'config', '-q'], { input: broken });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('replicas_typo');
  });

  it('when resolved with nothing set, then Redis is a pinned Redis 7 with append-only persistence on a named volume, a PING healthcheck and a loopback port', () => {
    const config = resolvedConfig();
    const redis = service(config, 'redis');
    expect(redis.image).toMatch(/^redis:7\.\d+/);
    expect(redis.command?.join(' ')).toContain('--appendonly yes');
    const dataVolume = (redis.volumes ?? [])
      .map((v) => (typeof v === 'string' ? v.split(':').slice(0, 2) : [v.source, v.target]))
      .find(([, target]) => target === '/data');
    expect(dataVolume?.[0]).toBe('redis-data');
    expect(Object.keys(config.volumes ?? {})).toContain('redis-data');
    expect(redis.healthcheck?.test.join(' ')).toContain('redis-cli ping');
    expect(ports(redis)).toEqual([{ hostIp: '127.0.0.1', published: '6379', target: '6379' }]);
  });

  it('when resolved, then seed runs the auth image once Redis is healthy, and auth waits for Redis and a successful seed', () => {
    const config = resolvedConfig();
    const seed = service(config, 'seed');
    expect(seed.build?.args?.['SERVICE']).toBe('auth');
    expect(seed.command).toEqual(['node', 'dist/cli/seed.js']);
    expect(seed.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
    expect(seed.restart).toBe('no');

    const auth = service(config, 'auth');
    expect(auth.depends_on).toEqual({
      redis: { condition: 'service_healthy' },
      seed: { condition: 'service_completed_successfully' },
      secret: { condition: 'service_completed_successfully' },
    });
    expect(env(auth, 'AUTH_PORT')).toBe('8083');
  });

  it('when resolved, then auth, checkin and the processor run in production mode with JSON logs, /readyz healthchecks, restart on failure and an init for signals', () => {
    const config = resolvedConfig();
    for (const name of ['auth', 'checkin', 'processor']) {
      const s = service(config, name);
      expect(env(s, 'NODE_ENV')).toBe('production');
      expect(env(s, 'LOG_FORMAT')).toBe('json');
      expect(env(s, 'REDIS_URL')).toBe('redis://redis:6379');
      expect(s.healthcheck?.test.join(' ')).toContain('/readyz');
      expect(s.restart).toBe('on-failure');
      expect(s.init).toBe(true);
      expect(s.depends_on?.['redis']).toEqual({ condition: 'service_healthy' });
    }
  });

  it('when nothing is set, then no secret is in the file: the one-shot `secret` job writes one into the ncc-secrets volume, and both services read it from there (SESSION_SECRET_FILE) once it has succeeded', () => {
    const config = resolvedConfig();
    const job = service(config, 'secret');
    expect(job.restart).toBe('no');
    const mounts = (s: ResolvedService): string[][] => (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]));
    expect(mounts(job).map(([source, target]) => [source, target])).toEqual([['ncc-secrets', '/run/ncc-secrets']]);
    expect(env(job, 'NCC_SECRET_FILE')).toBe('/run/ncc-secrets/session_secret');
    expect(env(job, 'SESSION_SECRET') ?? '').toBe('');
    expect(Object.keys(config.volumes ?? {})).toContain('ncc-secrets');
    for (const name of ['auth', 'checkin']) {
      const s = service(config, name);
      expect(env(s, 'SESSION_SECRET')).toBeUndefined();
      expect(env(s, 'SESSION_SECRET_FILE')).toBe('/run/ncc-secrets/session_secret');
      expect(mounts(s)).toContainEqual(['ncc-secrets', '/run/ncc-secrets', 'ro']);
      expect(s.depends_on?.['secret']).toEqual({ condition: 'service_completed_successfully' });
      expect(env(s, 'COOKIE_SECURE')).toBe('false');
    }
    // Exactly one public development secret in the repository, and it is not in the compose file.
    expect(readFileSync(COMPOSE_FILE, 'utf8')).not.toMatch(/SESSION_SECRET:\s*\$\{SESSION_SECRET:-[^}]/);
    expect(readFileSync(COMPOSE_FILE, 'utf8')).not.toContain('development-only-secret');
  });

  it('when SESSION_SECRET and COOKIE_SECURE are set in the environment, then the secret job writes that secret and both services get COOKIE_SECURE (how production overrides the defaults)', () => {
    const production = 'x'.repeat(20) + 'production-secret-from-a-vault';
    const config = resolvedConfig({ SESSION_SECRET: production, COOKIE_SECURE: 'true' });
    expect(env(service(config, 'secret'), 'SESSION_SECRET')).toBe(production);
    for (const name of ['auth', 'checkin']) {
      expect(env(service(config, name), 'SESSION_SECRET')).toBeUndefined();
      expect(env(service(config, name), 'COOKIE_SECURE')).toBe('true');
    }
  });

  it('when resolved, then auth and checkin each have 2 unpublished replicas trusting one proxy hop, and the nginx gateway, which waits for both, publishes 8080, 8082 and 8083 and proxies to them by service name', () => {
    const config = resolvedConfig();
    for (const [name, portVar] of [
      ['auth', 'AUTH_PORT'],
      ['checkin', 'CHECKIN_PORT'],
    ] as const) {
      const s = service(config, name);
      expect(s.scale ?? s.deploy?.replicas, name).toBe(2);
      // Behind the gateway only: a fixed host port could not be shared by replicas, and a published one
      // would let clients around the gateway forge the X-Forwarded-For this service trusts.
      expect(s.ports ?? [], name).toEqual([]);
      expect(s.expose, name).toContain(env(s, portVar));
      expect(env(s, 'TRUST_PROXY'), name).toBe('1');
    }

    const gateway = service(config, 'gateway');
    expect(gateway.image).toMatch(/^nginx:\d+\.\d+/);
    expect(ports(gateway)).toEqual(['8080', '8082', '8083'].map((port) => ({ hostIp: '', published: port, target: port })));
    expect(gateway.depends_on).toEqual({ auth: { condition: 'service_healthy' }, checkin: { condition: 'service_healthy' } });
    expect(gateway.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:8080/gateway/healthz');
    const mount = (gateway.volumes ?? []).map(String).find((v) => v.includes('/etc/nginx/conf.d/default.conf'));
    expect(mount).toBeDefined();
    const nginxConf = readFileSync(mount!.split(':')[0]!, 'utf8');
    expect(nginxConf).toMatch(/^resolver 127\.0\.0\.11\b/m);
    expect([...nginxServers().keys()].sort()).toEqual(['8080', '8082', '8083']);
    expect(nginxConf).toContain(`http://checkin:${env(service(config, 'checkin'), 'CHECKIN_PORT')}`);
    expect(nginxConf).toContain(`http://auth:${env(service(config, 'auth'), 'AUTH_PORT')}`);
    // Each server is the one hop the services trust: X-Forwarded-For overwritten with the client's address.
    for (const [port, { text }] of nginxServers()) {
      expect(text, port).toContain('proxy_set_header X-Forwarded-For $remote_addr;');
      for (const header of ['X-Forwarded-Proto', 'X-Forwarded-Host', 'Host']) expect(text, port).toContain(`proxy_set_header ${header} `);
    }
  });

  it('when resolved, then every image is pinned (no :latest, no bare name) and RedisInsight is only in the "tools" profile', () => {
    const config = resolvedConfig();
    for (const [name, s] of Object.entries(config.services)) {
      if (s.build) continue; // built locally from this repository
      expect(s.image, name).toMatch(/:v?[0-9][\w.-]*$/); // prom/prometheus tags are v2.55.1 and the like
    }
    expect(service(config, 'redisinsight').profiles).toEqual(['tools']);
    for (const name of ['redis', 'seed', 'auth', 'checkin', 'processor', 'gateway']) expect(service(config, name).profiles, name).toBeUndefined();
  });

  it('when resolved, then the checkin processor is built from the same Dockerfile, has 2 unpublished replicas with a /readyz healthcheck on PROCESSOR_PORT, waits for Redis and the seed, and gets no session secret', () => {
    const config = resolvedConfig();
    const processor = service(config, 'processor');
    expect(processor.build?.args?.['SERVICE']).toBe('processor');
    expect(processor.image).toBe('ncc-processor:local');
    expect(processor.command).toBeUndefined(); // the image's CMD, like auth and checkin
    expect(processor.scale ?? processor.deploy?.replicas).toBe(2);
    // Health and readiness only: nothing to publish (and a fixed host port could not be shared by replicas).
    expect(processor.ports ?? []).toEqual([]);
    expect(processor.expose).toEqual([env(processor, 'PROCESSOR_PORT'), env(processor, 'METRICS_PORT')]);
    expect(env(processor, 'PROCESSOR_PORT')).toBe('8084');
    expect(env(processor, 'HOST')).toBe('0.0.0.0');
    // Each replica its own consumer: the default (hostname-pid) is unique per container, so no fixed name here.
    expect(env(processor, 'PROCESSOR_CONSUMER')).toBeUndefined();
    const probe = processor.healthcheck?.test.join(' ') ?? '';
    expect(probe).toContain('process.env.PROCESSOR_PORT||8084');
    expect(probe).toContain('/readyz');
    expect(processor.depends_on).toEqual({
      redis: { condition: 'service_healthy' },
      seed: { condition: 'service_completed_successfully' },
    });
    // It reads no session: no secret, no secrets volume, no cookie settings.
    expect(Object.keys(processor.environment ?? {}).filter((k) => k.startsWith('SESSION_') || k.startsWith('COOKIE_'))).toEqual([]);
    expect(processor.volumes ?? []).toEqual([]);
    // The gateway fronts auth and checkin; the processor serves no API.
    expect(Object.keys(service(config, 'gateway').depends_on ?? {}).sort()).toEqual(['auth', 'checkin']);
  });

  it('when resolved, then auth, checkin and the processor serve /metrics on METRICS_PORT (9083, 9082, 9084), exposed on the compose network but never published, nor routed by the gateway', () => {
    const config = resolvedConfig();
    for (const [name, port] of Object.entries(METRICS_PORTS)) {
      const s = service(config, name);
      expect(env(s, 'METRICS_PORT'), name).toBe(port);
      expect(s.expose, name).toContain(port);
      expect(
        ports(s).map((p) => p.target),
        name,
      ).not.toContain(port);
      // The metrics listener binds HOST like the API one: every interface of the container.
      expect(env(s, 'HOST'), name).toBe('0.0.0.0');
    }
    // The gateway proxies the API ports only: /metrics is not reachable from the host through it.
    const nginxConf = readFileSync(join(ROOT, 'deploy/nginx/gateway.conf'), 'utf8');
    for (const port of Object.values(METRICS_PORTS)) expect(nginxConf).not.toContain(port);
  });

  it('when resolved with nothing set, then auth, checkin and the processor send traces over OTLP/HTTP (protobuf) to the jaeger service; set empty, the endpoint is empty (tracing off); set, it is the given collector', () => {
    for (const name of Object.keys(METRICS_PORTS)) {
      const s = service(resolvedConfig(), name);
      expect(env(s, 'OTEL_EXPORTER_OTLP_ENDPOINT'), name).toBe('http://jaeger:4318');
      expect(env(s, 'OTEL_EXPORTER_OTLP_PROTOCOL'), name).toBe('http/protobuf');
      // `OTEL_EXPORTER_OTLP_ENDPOINT= docker compose up`: `${VAR-default}` keeps the empty value.
      expect(env(service(resolvedConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), name), 'OTEL_EXPORTER_OTLP_ENDPOINT'), name).toBe('');
      const elsewhere = resolvedConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.example:4318' });
      expect(env(service(elsewhere, name), 'OTEL_EXPORTER_OTLP_ENDPOINT'), name).toBe('http://collector.example:4318');
    }
    expect(service(resolvedConfig(), 'jaeger').expose).toContain('4318');
  });

  it('when resolved, then Prometheus, Grafana and Jaeger are only in the "observability" profile, on pinned images, with their UIs published on 127.0.0.1 only and OTLP not published at all', () => {
    const config = resolvedConfig();
    for (const name of OBSERVABILITY) expect(service(config, name).profiles, name).toEqual(['observability']);

    const prometheus = service(config, 'prometheus');
    expect(prometheus.image).toMatch(/^prom\/prometheus:v[23]\.\d+\.\d+$/);
    expect(ports(prometheus)).toEqual([{ hostIp: '127.0.0.1', published: '9090', target: '9090' }]);
    expect(mountsOf(prometheus)).toContainEqual([join(ROOT, 'deploy/prometheus/prometheus.yml'), '/etc/prometheus/prometheus.yml', 'ro']);

    const grafana = service(config, 'grafana');
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(ports(grafana)).toEqual([{ hostIp: '127.0.0.1', published: '3000', target: '3000' }]);
    expect(mountsOf(grafana)).toContainEqual([join(ROOT, 'deploy/grafana/provisioning'), '/etc/grafana/provisioning', 'ro']);
    expect(mountsOf(grafana)).toContainEqual([join(ROOT, 'deploy/grafana/dashboards'), '/etc/grafana/dashboards', 'ro']);
    // Anonymous visitors may look, not edit (the port is loopback only); admin/admin unless GRAFANA_ADMIN_PASSWORD.
    expect(env(grafana, 'GF_AUTH_ANONYMOUS_ENABLED')).toBe('true');
    expect(env(grafana, 'GF_AUTH_ANONYMOUS_ORG_ROLE')).toBe('Viewer');
    expect(env(grafana, 'GF_SECURITY_ADMIN_PASSWORD')).toBe('admin');
    expect(env(grafana, 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH')).toBe('/etc/grafana/dashboards/ncc.json');

    const jaeger = service(config, 'jaeger');
    expect(jaeger.image).toMatch(/^jaegertracing\/all-in-one:1\.\d+\.\d+$/);
    expect(env(jaeger, 'COLLECTOR_OTLP_ENABLED')).toBe('true');
    expect(ports(jaeger)).toEqual([{ hostIp: '127.0.0.1', published: '16686', target: '16686' }]);
    expect(jaeger.expose).toEqual(['4318']);

    // Nothing of the profile is reachable from other machines.
    for (const name of OBSERVABILITY) for (const p of ports(service(config, name))) expect(p.hostIp, name).toBe('127.0.0.1');
  });

  it('when resolved with no profile, then the services `docker-compose up` starts do not include Prometheus, Grafana or Jaeger, and none of them waits for one', () => {
    const listed = composeRun(['-f', COMPOSE_FILE, 'config', '--services']);
    expect(listed.status, listed.stderr).toBe(0);
    const config = resolvedConfig();
    // docker-compose 1.29 lists every service here, whatever its profile (Compose v2 only the active
    // ones): the services `up` starts with no --profile are those without `profiles`.
    const started = listed.stdout
      .split('\n')
      .filter(Boolean)
      .filter((name) => (service(config, name).profiles ?? []).length === 0);
    expect(started).toEqual(['redis', 'secret', 'seed', 'auth', 'checkin', 'processor', 'gateway']);
    for (const name of started) {
      for (const dependency of Object.keys(service(config, name).depends_on ?? {})) expect(OBSERVABILITY, `${name} → ${dependency}`).not.toContain(dependency);
    }
    // With the profile, all three are there to start (and Grafana after Prometheus).
    const withProfile = composeRun(['-f', COMPOSE_FILE, '--profile', 'observability', 'config', '--services']);
    expect(withProfile.status, withProfile.stderr).toBe(0);
    expect(withProfile.stdout.split('\n')).toEqual(expect.arrayContaining(OBSERVABILITY));
    expect(Object.keys(service(config, 'grafana').depends_on ?? {})).toEqual(['prometheus']);
  });

  it('when the gateway config is read, then on 8082 every path but its own health route goes to checkin and on 8083 every path to auth: the APIs on their old ports, for Postman and curl', () => {
    const checkinPort = nginxServer('8082');
    expect(checkinPort.locations).toEqual(['= /gateway/healthz', '/']);
    expect(locationBody(checkinPort.text, '/')).toMatch(/set \$checkin_upstream http:\/\/checkin:8082;\s*proxy_pass \$checkin_upstream;/);
    const authPort = nginxServer('8083');
    expect(authPort.locations).toEqual(['= /gateway/healthz', '/', '@bad_gateway']);
    expect(locationBody(authPort.text, '/')).toMatch(/set \$auth_upstream http:\/\/auth:8083;\s*proxy_pass \$auth_upstream;/);
    // The cookie reaches the services untouched: nothing in the gateway drops or rewrites it.
    expect(readFileSync(join(ROOT, 'deploy/nginx/gateway.conf'), 'utf8')).not.toMatch(/proxy_set_header\s+Cookie|proxy_hide_header|proxy_cookie_/i);
  });

  it('when the gateway config is read, then 8080 routes exactly what the Node gateway routes: the auth paths to auth, /api/ to checkin (the live stream unbuffered), and the mounted page with its CSP at /; nothing else', () => {
    const { text, locations } = nginxServer('8080');
    expect(locations).toEqual(['= /gateway/healthz', `~ ${AUTH_PATHS}`, '^~ /api/', `= ${LIVE_STREAM_PATH}`, '/', '= /', '@not_found', '@bad_gateway']);
    expect(locationBody(text, `~ ${AUTH_PATHS}`)).toMatch(/set \$auth_upstream http:\/\/auth:8083;\s*proxy_pass \$auth_upstream;/);
    expect(locationBody(text, '^~ /api/')).toMatch(/set \$checkin_upstream http:\/\/checkin:8082;\s*proxy_pass \$checkin_upstream;/);
    const live = locationBody(text, `= ${LIVE_STREAM_PATH}`);
    expect(live).toMatch(/proxy_pass \$checkin_upstream;/);
    expect(live).toContain('proxy_buffering off;');
    expect(live).toMatch(/proxy_read_timeout (\d+h|\d{4,}s);/);
    // The page: the directory compose mounts, with the page's headers on every static answer.
    const page = locationBody(text, '/');
    const root = /^\s*root (\S+);/m.exec(page)?.[1];
    expect(mountsOf(service(resolvedConfig(), 'gateway'))).toContainEqual([join(ROOT, 'services/gateway/public'), root, 'ro']);
    expect(page).toContain(`add_header Content-Security-Policy "${PAGE_CSP}" always;`);
    expect(page).not.toMatch(/proxy_pass/);
  });
});
