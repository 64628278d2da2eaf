// The bench's baseline: a bare Express 5 JSON POST endpoint with the same body parser settings as the
// services (express.json, limit 10kb, strict, application/json only) and nothing else — no session,
// no Redis, no helmet, no request id, no logger. Plain JavaScript so it runs under plain node, as the
// services do from dist/. Usage: node bench/baseline-server.mjs <port>
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.post('/api/checkin', express.json({ limit: '10kb', strict: true, type: 'application/json' }), (req, res) => {
  res.status(202).json({ id: `${Date.now()}-0`, locationId: req.body?.locationId ?? null });
});

const port = Number(process.argv[2] ?? 0);
const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`Baseline listening on port ${server.address().port}.\n`);
});
server.keepAliveTimeout = 65_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
