/**
 * The targets, each a ratio or a count within the same run (absolute numbers on a shared machine move
 * with the neighbours): see docs/performance.md.
 */
import { fmt } from './format.js';
import type { ObservabilityResults } from './observability.js';
import type { Scenario } from './scenarios.js';

export interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean;
}

export interface TargetResults {
  targets: Target[];
  /** cores ÷ one bcrypt compare, in logins/s; null without the login scenario. */
  loginCeiling: number | null;
}

/** Checkin throughput with metrics on (tracing off) ÷ with METRICS_PORT=off, the median of the rounds' ratios. */
export const METRICS_OVERHEAD_TARGET = 0.95;

/** The targets of the scenarios that ran, in a fixed order; `compareMs` is one bcrypt compare's time. */
export function evaluateTargets(
  results: Scenario[],
  compareMs: number | null,
  cores: number,
  observability: ObservabilityResults | null = null,
): TargetResults {
  const byName = new Map(results.map((s) => [s.name, s]));
  const targets: Target[] = [];
  const checkinS = byName.get('checkin');
  if (checkinS) {
    targets.push({ name: 'checkin throughput', target: '≥ 0.60× baseline', measured: `${checkinS.ratio.toFixed(2)}×`, met: checkinS.ratio >= 0.6 });
    targets.push({
      name: 'Redis round trips per accepted checkin',
      target: '≤ 2',
      measured: `${checkinS.roundTrips?.toFixed(2)} (commands/req ${checkinS.redisCommandsPerRequest.toFixed(2)} incl. Lua-internal)`,
      met: checkinS.roundTrips !== null && checkinS.roundTrips <= 2.05,
    });
  }
  const unauth = byName.get('checkin-401');
  if (unauth) {
    targets.push({ name: '401 throughput', target: '≥ 0.85× baseline', measured: `${unauth.ratio.toFixed(2)}×`, met: unauth.ratio >= 0.85 });
    targets.push({
      name: 'Redis commands per 401',
      target: '0',
      measured: unauth.redisCommandsPerRequest.toFixed(3),
      met: unauth.redisCommandsPerRequest === 0,
    });
  }
  const loginS = byName.get('login');
  const health = byName.get('healthz-during-login');
  let loginCeiling: number | null = null;
  if (loginS && health && compareMs !== null) {
    loginCeiling = cores / (compareMs / 1000);
    targets.push({
      name: 'login throughput',
      target: `≥ 0.8 × ${cores} cores ÷ ${compareMs.toFixed(1)} ms = ${fmt(0.8 * loginCeiling, 1)} req/s`,
      measured: `${fmt(loginS.load.rps, 1)} req/s (${(loginS.load.rps / loginCeiling).toFixed(2)} of the ceiling)`,
      met: loginS.load.rps >= 0.8 * loginCeiling,
    });
    const idle = byName.get('healthz-idle');
    targets.push({
      name: '/healthz p99 while logins run',
      target: '< 20 ms',
      measured: `${health.load.p99} ms (p50 ${health.load.p50} ms; with no load: p99 ${idle?.load.p99 ?? '?'} ms)`,
      met: health.load.p99 < 20,
    });
  }
  const metrics = observability?.modes.find((m) => m.mode === 'b');
  if (observability && metrics) {
    targets.push({
      name: 'checkin throughput with metrics on',
      target: `≥ ${METRICS_OVERHEAD_TARGET.toFixed(2)}× METRICS_PORT=off (median of ${observability.rounds} interleaved round${observability.rounds > 1 ? 's' : ''})`,
      measured: `${metrics.ratio.toFixed(3)}× (rounds ${metrics.ratioMin.toFixed(3)}–${metrics.ratioMax.toFixed(3)}; CPU per request ${metrics.cpuRatio.toFixed(3)}×)`,
      met: metrics.ratio >= METRICS_OVERHEAD_TARGET,
    });
  }
  return { targets, loginCeiling };
}
