/** autocannon's Node API, reduced to what the bench needs: a fixed-duration run and its numbers. */
import autocannon from 'autocannon';

export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  /** Called for every request: a fresh body (unique checkins, rotating logins). */
  body?: () => string;
}

export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Per connection: the same request shape with connection-specific headers (a session cookie). */
  request: (connection: number) => LoadRequest;
  /** Caps the total rate (a latency probe rather than a load). */
  overallRate?: number;
}

/**
 * autocannon corrects rate-capped runs for coordinated omission with an expected interval of
 * ceil(1 / overallRate) — 1 ms for any rate above 1/s, not the real 1000 ÷ rate ms — so one 100 ms
 * answer adds ~100 made-up samples and becomes the p99. A probe's latencies are taken as measured.
 */
const AS_MEASURED = { ignoreCoordinatedOmission: true } as const;

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
}

interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  setupRequest?: (req: RawRequest) => RawRequest;
}

/**
 * Every connection gets its own request list via setupClient (autocannon resets per-request context
 * on each loop, so per-connection state lives in the closure). Bodies are rebuilt per request through
 * setupRequest for every scenario — the baseline included — so the load generator spends the same
 * CPU on each and the ratios compare the servers, not the generator.
 */
export async function load(options: LoadOptions): Promise<LoadResult> {
  let nextConnection = 0;
  const toRaw = (r: LoadRequest): RawRequest => {
    const raw: RawRequest = { method: r.method, path: r.path, headers: { ...(r.headers ?? {}) } };
    const makeBody = r.body;
    if (makeBody) {
      raw.headers['content-type'] = 'application/json';
      raw.body = makeBody();
      raw.setupRequest = (req) => ({ ...req, body: makeBody() });
    }
    return raw;
  };
  const first = toRaw(options.request(0));
  const settings = {
    url: options.url,
    connections: options.connections,
    duration: options.durationS,
    ...(options.overallRate ? { overallRate: options.overallRate, ...AS_MEASURED } : {}),
    method: first.method as 'GET' | 'POST',
    requests: [first] as unknown as autocannon.Request[],
    setupClient: (client: autocannon.Client) => {
      const connection = nextConnection++;
      if (connection > 0) client.setRequests([toRaw(options.request(connection))] as unknown as autocannon.Request[]);
    },
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(settings, (err: unknown, res: autocannon.Result) =>
      err ? reject(err instanceof Error ? err : new Error('autocannon failed.', { cause: err })) : resolve(res),
    );
  });
  const statuses: Record<string, number> = {};
  const stats = (result as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {};
  let requests = 0;
  for (const [code, { count }] of Object.entries(stats)) {
    statuses[code] = count;
    requests += count;
  }
  return {
    requests,
    durationS: result.duration,
    rps: requests / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
