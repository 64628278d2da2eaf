/**
 * The Grafana dashboard of the local stack (deploy/grafana/dashboards/ncc.json, docker-compose.yml's
 * `observability` profile) as data: its panels, their queries, and the metric names those queries
 * read. test/observability-config.test.ts checks the file; a scrape test can check that every name
 * `dashboardMetricNames()` returns is served by the running services, so no panel stays empty
 * because of a typo or a renamed metric.
 *
 * Reads only the JSON file: no service code, no Grafana.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DASHBOARD_FILE = join(ROOT, 'deploy/grafana/dashboards/ncc.json');

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface DashboardTarget {
  refId: string;
  expr?: string;
  legendFormat?: string;
  datasource?: DatasourceRef;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  targets?: DashboardTarget[];
  /** A collapsed row keeps its panels here. */
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
}

export function readDashboard(file: string = DASHBOARD_FILE): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel, those inside collapsed rows included; rows themselves (no queries) left out. */
export function dashboardPanels(dashboard: Dashboard = readDashboard()): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => (panel.type === 'row' ? (panel.panels ?? []) : [panel]));
}

/** Every PromQL expression of the dashboard, in panel order. */
export function dashboardExprs(dashboard: Dashboard = readDashboard()): string[] {
  return dashboardPanels(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? '').filter(Boolean));
}

// Aggregation operators: followed by `(` or by `by`/`without`, never a metric name.
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
// Label lists in parentheses follow these: `by (le, route)`, `on (job)`, `group_left (outcome)`.
const GROUPINGS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
// Binary operators and literals spelt as words.
const KEYWORDS = new Set(['and', 'or', 'unless', 'atan2', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names one PromQL expression selects, as written (`http_request_duration_seconds_bucket`).
 * A small tokenizer, not a full parser: it skips strings, label matchers `{…}` (except a
 * `__name__="…"` matcher, which names a metric), range and subquery brackets `[…]`, numbers, Grafana
 * variables (`$__rate_interval`, `${job}`), functions and aggregations (a name followed by `(`),
 * grouping label lists (`by (…)`, `on (…)`, …), keywords and `offset <duration>`. Whatever word is
 * left is a metric name.
 */
export function promqlMetricNames(expr: string): Set<string> {
  const names = new Set<string>();
  let i = 0;
  const peek = (from: number): string => {
    let j = from;
    while (j < expr.length && /\s/.test(expr[j]!)) j++;
    return expr[j] ?? '';
  };
  const skipString = (from: number): number => {
    const quote = expr[from]!;
    let j = from + 1;
    while (j < expr.length && expr[j] !== quote) j += quote !== '`' && expr[j] === '\\' ? 2 : 1;
    return j + 1;
  };
  /** From an opening bracket to just past its matching closing one, strings inside skipped. */
  const skipBalanced = (from: number, open: string, close: string): number => {
    let depth = 0;
    let j = from;
    while (j < expr.length) {
      const c = expr[j]!;
      if (c === '"' || c === "'" || c === '`') {
        j = skipString(j);
        continue;
      }
      if (c === open) depth++;
      else if (c === close && --depth === 0) return j + 1;
      j++;
    }
    return j;
  };

  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      i = skipString(i);
    } else if (c === '{') {
      const end = skipBalanced(i, '{', '}');
      const named = /__name__\s*=\s*"([^"]+)"/.exec(expr.slice(i, end));
      if (named) names.add(named[1]!);
      i = end;
    } else if (c === '[') {
      i = skipBalanced(i, '[', ']');
    } else if (c === '$') {
      const variable = /^\$(\{[^}]*\}|\w+)/.exec(expr.slice(i));
      i += variable ? variable[0].length : 1;
    } else if (/[0-9.]/.test(c)) {
      const number = /^(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)/.exec(expr.slice(i));
      i += number ? number[0].length : 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const word = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      i += word.length;
      const next = peek(i);
      if (GROUPINGS.has(word)) {
        if (next === '(') i = skipBalanced(expr.indexOf('(', i), '(', ')');
      } else if (word === 'offset') {
        i += /^\s*-?[0-9a-zA-Z]+/.exec(expr.slice(i))?.[0].length ?? 0;
      } else if (KEYWORDS.has(word.toLowerCase())) {
        // an operator or a literal
      } else if (next === '(') {
        // a function or an aggregation: its arguments are read on
      } else if (AGGREGATIONS.has(word) && /^\s*(by|without)\b/.test(expr.slice(i))) {
        // `sum by (…) (…)`
      } else {
        names.add(word);
      }
    } else {
      i++;
    }
  }
  return names;
}

/** A histogram's (or summary's) series name reduced to the metric's own: `x_bucket`, `x_count`, `x_sum` → `x`. */
export function metricFamily(name: string): string {
  return name.replace(/_(bucket|count|sum)$/, '');
}

/**
 * The metric names the dashboard queries.
 *
 * By default (`as: 'family'`) each is a metric's own name, as in the `# HELP` and `# TYPE` lines of a
 * scrape of /metrics: a histogram's series `_bucket`, `_count` and `_sum` are reduced to the
 * histogram (`http_request_duration_seconds`), so a metric that has no sample yet (a labelled
 * histogram or counter nothing has touched) is still found in the scrape by its HELP/TYPE lines.
 * Counters keep their `_total`, which prom-client makes part of the name. This assumes no counter or
 * gauge the dashboard reads has a name ending in `_bucket`, `_count` or `_sum` (none does).
 *
 * `as: 'series'` gives the names exactly as the queries write them (`…_bucket`, `…_count`).
 */
export function dashboardMetricNames(options: { as?: 'family' | 'series'; dashboard?: Dashboard } = {}): Set<string> {
  const names = new Set<string>();
  for (const expr of dashboardExprs(options.dashboard ?? readDashboard())) {
    for (const name of promqlMetricNames(expr)) names.add(options.as === 'series' ? name : metricFamily(name));
  }
  return names;
}
