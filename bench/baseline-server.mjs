// The bench's baseline: a bare Express 5 JSON POST endpoint with the same body parser settings as the
// services (express.json, limit 10kb, strict, application/json only) and nothing else — no session,
// no Redis, no helmet, no request id, no logger. Plain JavaScript so it runs under plain node, as the
// services do from dist/. Usage: node bench/baseline-server.mjs <port>
//
// With a Redis URL (node bench/baseline-server.mjs <port> <redis-url> [pipelined]) it is the bench's
// "floor": the same endpoint plus the two Redis round trips an accepted checkin makes — a GET of a
// session-sized value, then an EVALSHA (of a script that only returns an id) — through ioredis with the
// services' settings that matter for CPU (no auto-pipelining unless `pipelined`, as with
// REDIS_AUTO_PIPELINING=on; a command timeout). No session check, no validation, no headers: what any
// checkin that reads its session and writes once costs at least.
import express from 'express';
import { Redis } from 'ioredis';

const port = Number(process.argv[2] ?? 0);
const redisUrl = process.argv[3];
const pipelined = process.argv[4] === 'pipelined';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const parse = express.json({ limit: '10kb', strict: true, type: 'application/json' });

if (redisUrl) {
  const redis = new Redis(redisUrl, { enableAutoPipelining: pipelined, commandTimeout: 1000, maxRetriesPerRequest: 1 });
  const key = 'ncc:bench:floor-session';
  // About the size of a real session value (cookie options, user id, created/touched times).
  await redis.set(
    key,
    JSON.stringify({
      cookie: { originalMaxAge: 86_400_000, expires: new Date().toISOString(), secure: false, httpOnly: true, path: '/', sameSite: 'lax' },
      userId: 77,
      createdAt: Date.now(),
    }),
  );
  const sha = await redis.script('LOAD', "return ARGV[1] .. '-0'");
  app.post('/api/checkin', parse, async (req, res) => {
    try {
      await redis.get(key);
      const id = await redis.evalsha(sha, 0, String(Date.now()));
      res.status(202).json({ id, locationId: req.body?.locationId ?? null });
    } catch {
      res.status(503).json({ error: { code: 'SERVICE_UNAVAILABLE', message: 'Redis did not answer.' } });
    }
  });
} else {
  app.post('/api/checkin', parse, (req, res) => {
    res.status(202).json({ id: `${Date.now()}-0`, locationId: req.body?.locationId ?? null });
  });
}

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`Baseline listening on port ${server.address().port}.\n`);
});
server.keepAliveTimeout = 65_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
