// Runs a service as N node:cluster workers sharing one port (the primary accepts and hands out
// connections). Used by `pnpm bench --cluster N` to measure what several processes per box give.
// Usage: node bench/cluster.mjs <workers> <node args…> <script>  (the last argument is the entry file)
import cluster from 'node:cluster';

const [countText, ...rest] = process.argv.slice(2);
const count = Number(countText);
const exec = rest.at(-1);
const execArgv = rest.slice(0, -1);

cluster.setupPrimary({ exec, execArgv, silent: false });
for (let i = 0; i < count; i++) cluster.fork();

let stopping = false;
cluster.on('exit', (worker, code, signal) => {
  if (!stopping) {
    process.stderr.write(`cluster worker ${worker.process.pid} exited (${code ?? signal}); stopping.\n`);
    process.exit(1);
  }
  if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
});
process.on('SIGTERM', () => {
  stopping = true;
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
});
