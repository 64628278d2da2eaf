/**
 * The `observability` profile's configuration (docker-compose.yml), checked without running it:
 * deploy/prometheus/prometheus.yml by Prometheus' own promtool and against the compose services it
 * scrapes; deploy/grafana's provisioning and the "ncc" dashboard against each other and the compose
 * file. Whether the services really serve every metric the dashboard reads is for a scrape of the
 * running services (test/support/dashboard.ts gives the names).
 *
 * scripts/install-system-deps.sh installs promtool (Debian package prometheus); outside CI a missing
 * promtool skips the promtool checks (saying so), in CI (CI set) it fails them. The rest reads files only.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboardExprs, dashboardMetricNames, dashboardPanels, metricFamily, promqlMetricNames, readDashboard } from './support/dashboard.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PROMETHEUS_FILE = join(ROOT, 'deploy/prometheus/prometheus.yml');
const DATASOURCES_FILE = join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml');
const DASHBOARD_PROVIDERS_FILE = join(ROOT, 'deploy/grafana/provisioning/dashboards/ncc.yml');

const promtoolAvailable = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const inCi = Boolean(process.env['CI']);
if (!promtoolAvailable && !inCi) {
  console.warn(
    'test/observability-config.test.ts: the promtool checks are SKIPPED: promtool is not installed (bash scripts/install-system-deps.sh installs it, Debian package prometheus).',
  );
}

function promtool(args: string[]) {
  return spawnSync('promtool', args, { encoding: 'utf8', timeout: 20_000 });
}

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  scrape_interval?: string;
  static_configs?: unknown[];
  dns_sd_configs?: { names: string[]; type?: string; port?: number; refresh_interval?: string }[];
}
interface PrometheusConfig {
  global?: { scrape_interval?: string };
  scrape_configs: ScrapeConfig[];
}
interface ComposeService {
  environment?: Record<string, string | number | boolean | null>;
  expose?: (string | number)[];
  ports?: (string | { target: number })[];
  volumes?: string[];
  profiles?: string[];
}

const prometheusConfig = parse(readFileSync(PROMETHEUS_FILE, 'utf8')) as PrometheusConfig;
// The file as written (merge keys resolved); the interpolated form is test/compose.test.ts's business.
// Nothing checked here comes from a variable.
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };

function composeService(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

/** A bind mount's container path, for the host path given relative to the repository (`./deploy/…`). */
function mountTarget(s: ComposeService, source: string): string | undefined {
  return (s.volumes ?? []).map((v) => v.split(':')).find(([from]) => from === source)?.[1];
}

/** Prometheus durations as used here: `5s`, `1m`, `500ms`. */
function seconds(duration: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(duration);
  if (!match) throw new Error(`not a simple duration: ${duration}`);
  return Number(match[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] as 'ms' | 's' | 'm' | 'h'];
}

describe.skipIf(!promtoolAvailable && !inCi)('deploy/prometheus/prometheus.yml, checked by promtool', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'ncc-prometheus-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('when checked with `promtool check config`, then it is a valid Prometheus configuration', () => {
    expect(promtoolAvailable, 'promtool must be installed in CI (scripts/install-system-deps.sh)').toBe(true);
    const result = promtool(['check', 'config', PROMETHEUS_FILE]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it('when a copy has a key Prometheus does not know, or a discovery type it does not have, then the same check fails (the check is not a no-op)', () => {
    const original = readFileSync(PROMETHEUS_FILE, 'utf8');
    const broken: [string, string, string][] = [
      [
        'unknown-key.yml',
        original.replace(/^( +)metrics_path: \/metrics$/m, '$1metrics_path: /metrics\n$1scrape_intervall: 5s'),
        'field scrape_intervall not found',
      ],
      ['bad-dns-type.yml', original.replace(/^( +)type: A$/m, '$1type: CNAME'), 'invalid DNS-SD records type CNAME'],
    ];
    for (const [name, text, message] of broken) {
      expect(text, name).not.toBe(original);
      const file = join(scratch, name);
      writeFileSync(file, text);
      const result = promtool(['check', 'config', file]);
      expect(result.status, name).not.toBe(0);
      expect(result.stdout + result.stderr, name).toContain(message);
    }
  });
});

describe('deploy/prometheus/prometheus.yml against docker-compose.yml', () => {
  const jobs = prometheusConfig.scrape_configs;

  it('when read, then it scrapes every 5 to 15 s, with one job per Node service, named after it, on /metrics', () => {
    const interval = seconds(prometheusConfig.global?.scrape_interval ?? '1m');
    expect(interval).toBeGreaterThanOrEqual(5);
    expect(interval).toBeLessThanOrEqual(15);
    expect(jobs.map((job) => job.job_name).sort()).toEqual(['auth', 'checkin', 'processor']);
    for (const job of jobs) {
      expect(job.metrics_path, job.job_name).toBe('/metrics');
      if (job.scrape_interval) expect(seconds(job.scrape_interval), job.job_name).toBeLessThanOrEqual(15);
      // Only DNS discovery: a static target would be one replica (or one stale address).
      expect(job.static_configs, job.job_name).toBeUndefined();
    }
  });

  it("when each job's dns_sd_configs are read, then every name is a compose service, looked up as A records (every replica), on that service's METRICS_PORT, which it exposes and does not publish", () => {
    for (const job of jobs) {
      const discovery = job.dns_sd_configs ?? [];
      expect(discovery.length, job.job_name).toBeGreaterThan(0);
      for (const sd of discovery) {
        expect(sd.type, job.job_name).toBe('A');
        // The job label is the service: the dashboard's per-job panels read it so.
        expect(sd.names, job.job_name).toEqual([job.job_name]);
        for (const name of sd.names) {
          const s = composeService(name);
          expect(s.profiles, name).toBeUndefined();
          const metricsPort = s.environment?.['METRICS_PORT'];
          expect(metricsPort, `${name}: METRICS_PORT in docker-compose.yml`).toBeDefined();
          expect(String(sd.port), name).toBe(String(metricsPort));
          expect((s.expose ?? []).map(String), name).toContain(String(metricsPort));
          const published = (s.ports ?? []).map((p) => (typeof p === 'string' ? p.split(':').pop()! : String(p.target)));
          expect(published, name).not.toContain(String(metricsPort));
        }
      }
    }
  });

  it('when docker-compose.yml is read, then every service with a METRICS_PORT is scraped by some job', () => {
    const withMetrics = Object.entries(compose.services)
      .filter(([, s]) => s.environment?.['METRICS_PORT'] != null)
      .map(([name]) => name);
    const scraped = jobs.flatMap((job) => (job.dns_sd_configs ?? []).flatMap((sd) => sd.names));
    expect(withMetrics.sort()).toEqual([...scraped].sort());
  });
});

describe('deploy/grafana: the provisioned data source and the "ncc" dashboard', () => {
  const datasources = (
    parse(readFileSync(DATASOURCES_FILE, 'utf8')) as {
      datasources: { name: string; uid: string; type: string; url: string; access?: string; isDefault?: boolean }[];
    }
  ).datasources;
  const providers = (parse(readFileSync(DASHBOARD_PROVIDERS_FILE, 'utf8')) as { providers: { type: string; options: { path: string } }[] }).providers;
  const grafana = composeService('grafana');

  it('when the data source provisioning is read, then there is one Prometheus data source, the default, with a fixed uid, at the compose service prometheus on its port', () => {
    expect(datasources).toHaveLength(1);
    const [prometheus] = datasources;
    expect(prometheus).toMatchObject({ type: 'prometheus', access: 'proxy', url: 'http://prometheus:9090', isDefault: true });
    expect(prometheus!.uid).toMatch(/^[\w-]{1,40}$/);
    // The container port Prometheus listens on, in docker-compose.yml.
    expect((composeService('prometheus').ports ?? []).map(String)).toContainEqual(expect.stringMatching(/:9090$/));
  });

  it('when the dashboard provisioning is read, then it loads the directory docker-compose.yml mounts deploy/grafana/dashboards at, and provisioning itself is mounted where Grafana reads it', () => {
    expect(mountTarget(grafana, './deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const dashboardsDir = mountTarget(grafana, './deploy/grafana/dashboards');
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({ type: 'file', options: { path: dashboardsDir } });
    // The home page: the dashboard file, inside that directory.
    expect(grafana.environment?.['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH']).toBe(`${dashboardsDir}/ncc.json`);
  });

  it('when the dashboard JSON is parsed, then it is "ncc", every panel has at least one query, and every panel and query names the provisioned data source by its uid', () => {
    const dashboard = readDashboard();
    expect(dashboard).toMatchObject({ uid: 'ncc', title: 'ncc' });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const uid = datasources[0]!.uid;
    const panels = dashboardPanels(dashboard);
    expect(panels.length).toBeGreaterThan(0);
    for (const panel of panels) {
      expect(['timeseries', 'stat'], panel.title).toContain(panel.type);
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid });
      expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource, `${panel.title} ${target.refId}`).toEqual({ type: 'prometheus', uid });
        expect(target.expr?.trim(), `${panel.title} ${target.refId}`).toBeTruthy();
        expect(promqlMetricNames(target.expr!).size, `${panel.title} ${target.refId}: reads no metric`).toBeGreaterThan(0);
      }
    }
  });

  it('when the panels are laid out, then their ids are unique and they fit the 24-column grid without overlapping', () => {
    const panels = dashboardPanels();
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const boxes = (readDashboard().panels as unknown as { title: string; gridPos: { x: number; y: number; w: number; h: number } }[]).map((p) => ({
      title: p.title,
      ...p.gridPos,
    }));
    for (const box of boxes) expect(box.x + box.w, box.title).toBeLessThanOrEqual(24);
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${a.title} / ${b.title}`).toBe(false);
      }
    }
  });

  it('when the queries are read, then they show what the dashboard is for: requests, errors and p99 per route, logins, checkins, revocations, the processor, Redis and the event loop', () => {
    const exprs = dashboardExprs();
    expect(exprs).toContain('sum by (route) (rate(http_request_duration_seconds_count[1m]))');
    expect(exprs).toContain('histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{route!="/api/checkins/live"}[5m])))');
    expect(exprs.some((e) => e.includes('status_code=~"5.."') && e.includes('sum by (job)'))).toBe(true);
    expect(exprs).toContain('histogram_quantile(0.99, sum by (le, command) (rate(ncc_redis_command_duration_seconds_bucket[5m])))');
    for (const outcomeCounter of ['ncc_logins_total', 'ncc_checkins_total', 'ncc_processor_entries_total']) {
      expect(exprs).toContain(`sum by (outcome) (rate(${outcomeCounter}[1m]))`);
    }
    // Every metric read is one of the services' metrics (names of the services' metrics contract; the
    // nodejs_* ones are prom-client's default metrics). A scrape test checks the services serve them.
    expect([...dashboardMetricNames()].sort()).toEqual(
      [
        'http_request_duration_seconds',
        'ncc_checkins_total',
        'ncc_logins_total',
        'ncc_processor_entries_total',
        'ncc_processor_lag_entries',
        'ncc_processor_pending_entries',
        'ncc_redis_command_duration_seconds',
        'ncc_redis_up',
        'ncc_sessions_revoked_total',
        'nodejs_eventloop_lag_p99_seconds',
        'nodejs_eventloop_lag_seconds',
      ].sort(),
    );
  });

  it("when the dashboard's metric names are asked for as series, then histograms keep the suffix each query reads; by default each is reduced to the metric's own name", () => {
    const series = dashboardMetricNames({ as: 'series' });
    expect(series).toContain('http_request_duration_seconds_count');
    expect(series).toContain('http_request_duration_seconds_bucket');
    expect(series).not.toContain('http_request_duration_seconds');
    expect(dashboardMetricNames()).toEqual(new Set([...series].map(metricFamily)));
  });
});

describe('promqlMetricNames, the PromQL reading behind dashboardMetricNames()', () => {
  it.each([
    ['sum by (route) (rate(http_request_duration_seconds_count[1m]))', ['http_request_duration_seconds_count']],
    ['histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))', ['http_request_duration_seconds_bucket']],
    ['ncc_redis_up', ['ncc_redis_up']],
    ['sum(rate(a_total{route=~"/api/.+", note="by (x) {y}"}[$__rate_interval] offset 5m)) by (job)', ['a_total']],
    ['max without (instance) (b_gauge) / on (job) group_left (outcome) c_total > bool 0.5e3 unless {__name__="d_info"}', ['b_gauge', 'c_total', 'd_info']],
    ['(sum by (job) (rate(e_count{status_code=~"5.."}[1m])) or sum by (job) (rate(e_count[1m])) * 0) / sum by (job) (rate(e_count[1m]))', ['e_count']],
    ['topk(3, sum by (command) (increase(f_sum[${window}]))) and Inf > NaN', ['f_sum']],
  ])('when %s is read, then the metric names are %j', (expr, names) => {
    expect([...promqlMetricNames(expr)].sort()).toEqual(names);
  });

  it('when a name ends in _bucket, _count or _sum, then its family is the name without it; any other name is its own family', () => {
    expect(['x_bucket', 'x_count', 'x_sum', 'x_total', 'x_seconds', 'x_count_total'].map(metricFamily)).toEqual([
      'x',
      'x',
      'x',
      'x_total',
      'x_seconds',
      'x_count_total',
    ]);
  });
});
