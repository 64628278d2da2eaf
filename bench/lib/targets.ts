/**
 * The targets, each a ratio or a count within the same run (absolute numbers on a shared machine move
 * with the neighbours), judged on the medians of interleaved rounds: see docs/performance.md.
 */
import { fmt } from './format.js';
import type { ObservabilityResults } from './observability.js';
import type { ArmSummary } from './rounds.js';
import type { ScenarioResults } from './scenarios.js';

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

/** Throughput ÷ the baseline's (medians of the rounds' paired ratios), by scenario. */
export const THROUGHPUT_TARGETS: Record<string, number> = { checkin: 0.8, 'checkin-401': 0.95, me: 0.75 };
/** An accepted checkin's CPU µs per request ÷ the baseline's, at most. */
export const CHECKIN_CPU_TARGET = 1.25;
/** Checkin throughput with metrics on (tracing off) ÷ with METRICS_PORT=off, the median of the rounds' ratios. */
export const METRICS_OVERHEAD_TARGET = 0.95;

/** The median ratio with the rounds' min–max, as printed. */
const ratioText = (a: ArmSummary, ratio: number, min: number, max: number): string =>
  `${ratio.toFixed(2)}× (rounds ${min.toFixed(2)}–${max.toFixed(2)}, median of ${a.rounds})`;

/** The targets of the scenarios that ran, in a fixed order. */
export function evaluateTargets({ http, roundTrips, login }: ScenarioResults, cores: number, observability: ObservabilityResults | null = null): TargetResults {
  const byName = new Map(http.arms.map((a) => [a.name, a]));
  const targets: Target[] = [];
  const throughput = (a: ArmSummary): void => {
    const goal = THROUGHPUT_TARGETS[a.name]!;
    targets.push({
      name: `${a.name} throughput`,
      target: `≥ ${goal.toFixed(2)}× baseline`,
      measured: `${ratioText(a, a.ratio, a.ratioMin, a.ratioMax)}; CPU per request ${a.cpuRatio.toFixed(2)}× baseline`,
      met: a.ratio >= goal,
    });
  };
  const checkin = byName.get('checkin');
  if (checkin) {
    throughput(checkin);
    targets.push({
      name: 'checkin CPU per request',
      target: `≤ ${CHECKIN_CPU_TARGET.toFixed(2)}× the baseline's`,
      measured: `${ratioText(checkin, checkin.cpuRatio, checkin.cpuRatioMin, checkin.cpuRatioMax)}: ${fmt(checkin.cpuUsPerRequest)} µs vs ${fmt(byName.get('baseline')!.cpuUsPerRequest)} µs`,
      met: checkin.cpuRatio <= CHECKIN_CPU_TARGET,
    });
    const trips = roundTrips['checkin'];
    targets.push({
      name: 'Redis round trips per accepted checkin',
      target: '≤ 2',
      measured: `${trips?.toFixed(2)} (commands/req ${checkin.redisCommandsPerRequest.toFixed(2)} incl. Lua-internal)`,
      met: trips !== undefined && trips <= 2.05,
    });
  }
  const unauth = byName.get('checkin-401');
  if (unauth) {
    throughput(unauth);
    targets.push({
      name: 'Redis commands per 401',
      target: '0',
      measured: unauth.redisCommandsPerRequest.toFixed(3),
      met: unauth.redisCommandsPerRequest === 0,
    });
  }
  const me = byName.get('me');
  if (me) throughput(me);
  let loginCeiling: number | null = null;
  if (login) {
    loginCeiling = cores / (login.compareMs / 1000);
    targets.push({
      name: 'login throughput',
      target: `≥ 0.8 × ${cores} cores ÷ ${login.compareMs.toFixed(1)} ms = ${fmt(0.8 * loginCeiling, 1)} req/s`,
      measured: `${fmt(login.loginRps, 1)} req/s (${(login.loginRps / loginCeiling).toFixed(2)} of cores ÷ one compare; median of ${login.rounds.length})`,
      met: login.loginRps >= 0.8 * loginCeiling,
    });
    targets.push({
      name: '/healthz p99 while logins run',
      target: '< 20 ms',
      measured:
        `${login.healthDuringP99Ms} ms (rounds ${login.rounds.map((r) => r.healthDuringLogin.p99).join(' / ')}; p50 ${login.healthDuringP50Ms} ms; ` +
        `with no load: p99 ${login.healthIdleP99Ms} ms; in the storm's first second, not judged: p99 ${login.healthAtStormStartP99Ms} ms, max ${login.healthAtStormStartMaxMs} ms)`,
      met: login.healthDuringP99Ms < 20,
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
