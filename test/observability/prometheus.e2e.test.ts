/**
 * A real scraper (issue 16): Debian's `prometheus` binary runs the repository's own
 * deploy/prometheus/prometheus.yml — its jobs, paths and settings — with each job's DNS discovery
 * (compose service names) swapped for the test's processes on 127.0.0.1, and its HTTP API answers
 * what the services counted. Then every metric the Grafana dashboard queries is in the scrapes, and
 * every dashboard query is valid PromQL to this Prometheus.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { cookiePair, freePort, metricValue, postJson, type Sample, scrape, until } from '@ncc/testing';
import { dashboardExprs, dashboardMetricNames } from '../support/dashboard.js';
import { createUsers, DEMO, metricsUrlOf, ROOT, type ServiceProcess, useSpawnedServices } from '../support/services.js';

const JOBS = ['auth', 'checkin', 'processor'] as const;
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;
if (!hasPrometheus && process.env['CI']) throw new Error('prometheus is not installed (scripts/install-system-deps.sh installs it); CI needs it');

interface PromConfig {
  global: Record<string, unknown>;
  scrape_configs: ({ job_name: string; dns_sd_configs?: unknown; static_configs?: { targets: string[] }[] } & Record<string, unknown>)[];
}

interface QueryResult {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe.skipIf(!hasPrometheus)('Prometheus scraping the services', () => {
  const services = useSpawnedServices('SIGTERM');
  const processes: Partial<Record<(typeof JOBS)[number], ServiceProcess>> = {};
  let prometheus: ChildProcess;
  let promUrl: string;
  let dir: string;
  let output = '';

  const query = async (promql: string): Promise<QueryResult> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    return (await res.json()) as QueryResult;
  };
  /** The single value of an instant query (undefined while it has no result). */
  const valueOf = async (promql: string): Promise<number | undefined> => {
    const { data } = await query(promql);
    return data.result.length === 1 ? Number(data.result[0]!.value[1]) : undefined;
  };

  beforeAll(async () => {
    await createUsers(services.redis.url, [DEMO]);
    [processes.auth, processes.checkin, processes.processor] = await Promise.all([
      services.spawn('auth'),
      services.spawn('checkin'),
      services.spawn('processor', { PROCESSOR_BLOCK_MS: '100', PROCESSOR_TRIM_INTERVAL_MS: '100' }),
    ]);
    // The repository's config, each job pointed at this test's process instead of the compose service.
    const config = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as PromConfig;
    expect(config.scrape_configs.map((job) => job.job_name).sort()).toEqual([...JOBS].sort());
    for (const job of config.scrape_configs) {
      expect(job.dns_sd_configs, `${job.job_name} discovers its replicas by DNS`).toBeDefined();
      delete job.dns_sd_configs;
      job.static_configs = [{ targets: [new URL(metricsUrlOf(processes[job.job_name as (typeof JOBS)[number]]!)).host] }];
    }
    config.global = { ...config.global, scrape_interval: '1s', scrape_timeout: '900ms' };
    dir = mkdtempSync(join(tmpdir(), 'ncc-prometheus-'));
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    promUrl = `http://127.0.0.1:${await freePort()}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=${new URL(promUrl).host}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await until('Prometheus ready', 30_000, async () => (await fetch(`${promUrl}/-/ready`)).status === 200, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when it has scraped, then every job of the repository config has its target up', async () => {
    for (const job of JOBS) await until(`up{job="${job}"} == 1`, 20_000, async () => (await valueOf(`up{job="${job}"}`)) === 1, 250);
  });

  it('when 3 checkins are accepted, 1 is a duplicate and 2 have no session, then Prometheus reports exactly those counts, and the processor applied 3', async () => {
    const login = await postJson(`${processes.auth!.url}/login`, { email: DEMO.email, password: DEMO.password });
    const cookie = cookiePair(login, 'checkinapp')!;
    const url = `${processes.checkin!.url}/api/checkin`;
    const statuses: number[] = [];
    for (const locationId of [1, 2, 3, 1]) statuses.push((await postJson(url, { userId: DEMO.id, locationId, starRating: 3 }, { cookie })).status);
    for (let i = 0; i < 2; i++) statuses.push((await postJson(url, { userId: DEMO.id, locationId: 7, starRating: 3 })).status);
    expect(statuses).toEqual([202, 202, 202, 422, 401, 401]);
    const counted = async (outcome: string): Promise<number | undefined> => valueOf(`ncc_checkins_total{job="checkin",outcome="${outcome}"}`);
    await until('Prometheus to see the 6 checkins', 20_000, async () => (await counted('accepted')) === 3 && (await counted('unauthenticated')) === 2, 250);
    expect(await counted('duplicate')).toBe(1);
    expect(await counted('forbidden')).toBe(0);
    // The auth job is scraped on its own schedule: its sample may come a second after checkin's.
    await until('Prometheus to see the login', 20_000, async () => (await valueOf('ncc_logins_total{job="auth",outcome="succeeded"}')) === 1, 250);
    await until(
      'Prometheus to see 3 applied entries',
      20_000,
      async () => (await valueOf('ncc_processor_entries_total{job="processor",outcome="applied"}')) === 3,
      250,
    );
    await until('the processor to have caught up', 20_000, async () => (await valueOf('ncc_processor_lag_entries{job="processor"}')) === 0, 250);
    expect(await valueOf('sum(ncc_redis_up)')).toBe(3);
    expect(await valueOf('sum(http_request_duration_seconds_count{job="checkin",route="/api/checkin",status_code="202"})')).toBe(3);
  });

  it('when the dashboard is read, then every metric it queries is in a real scrape of the services, and every query is valid PromQL here', async () => {
    const scrapes: Sample[] = (await Promise.all(JOBS.map((job) => scrape(metricsUrlOf(processes[job]!))))).flat();
    const texts = (await Promise.all(JOBS.map(async (job) => (await fetch(metricsUrlOf(processes[job]!))).text()))).join('\n');
    const names = dashboardMetricNames();
    expect(names.size).toBeGreaterThan(5);
    for (const name of names) {
      // A histogram or a labelled counter nothing touched yet still has its TYPE line.
      expect(scrapes.some((s) => s.name === name) || texts.includes(`# TYPE ${name} `), name).toBe(true);
    }
    for (const expr of dashboardExprs()) {
      // Grafana's own variables, as Grafana substitutes them.
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '5m');
      const result = await query(promql);
      expect(result.status, promql).toBe('success');
    }
    expect(metricValue(scrapes, 'ncc_processor_pending_entries')).toBe(0);
  });
});
