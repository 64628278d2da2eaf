/**
 * Real Redis topologies for the scale tests: a 3-master Redis Cluster and a master + replica watched
 * by three Sentinels, all on free loopback ports in temp dirs. Every process is killed at exit even
 * when a test fails (spawnRedis registers its own hook; the sentinels register here).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, spawnRedis, type SpawnedRedis, until } from '@ncc/testing';

const run = promisify(execFile);

export interface LocalCluster {
  masters: SpawnedRedis[];
  /** The value for REDIS_CLUSTER_NODES. */
  nodes: string;
  stop(): Promise<void>;
}

/** Three empty cluster-enabled redis-servers joined with `redis-cli --cluster create` (no replicas). */
export async function startCluster(): Promise<LocalCluster> {
  const masters: SpawnedRedis[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      // Each spawnRedis has its own temp dir, where nodes.conf is written (cluster-config-file is relative to --dir).
      // Append-only so a node that is killed and started again comes back with its keys.
      masters.push(
        await spawnRedis({ appendOnly: true, args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }),
      );
    }
    const addresses = masters.map((m) => `127.0.0.1:${m.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    await until('cluster_state:ok on every node', 20_000, async () => {
      const infos = await Promise.all(masters.map((m) => m.client.cluster('INFO')));
      return infos.every((info) => info.includes('cluster_state:ok')) || undefined;
    });
    return {
      masters,
      nodes: addresses.join(','),
      stop: async () => {
        await Promise.all(masters.map((m) => m.stop()));
      },
    };
  } catch (err) {
    await Promise.all(masters.map((m) => m.stop()));
    throw err;
  }
}

const sentinels = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of sentinels) child.kill('SIGKILL');
});

export interface SentinelProcess {
  port: number;
  client: Redis;
  stop(): Promise<void>;
}

/** `redis-server <conf> --sentinel` with a generated config in its own dir (sentinels rewrite their config). */
export async function spawnSentinel(masterName: string, masterPort: number, quorum: number): Promise<SentinelProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ncc-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      'protected-mode no',
      `dir ${dir}`,
      `logfile ${join(dir, 'sentinel.log')}`,
      // Must come before `sentinel monitor`: addresses are IPs, never resolved names.
      'sentinel resolve-hostnames no',
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} ${quorum}`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 5000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  sentinels.add(child);
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      sentinels.delete(child);
      resolve();
    }),
  );
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  const stop = async (): Promise<void> => {
    client.disconnect();
    child.kill('SIGKILL');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(`sentinel on ${port} answering`, 10_000, async () => {
      if (client.status === 'wait') await client.connect();
      return (await client.ping()) === 'PONG' || undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, client, stop };
}

export interface SentinelSetup {
  master: SpawnedRedis;
  replica: SpawnedRedis;
  sentinels: SentinelProcess[];
  name: string;
  /** The value for REDIS_SENTINELS. */
  addresses: string;
  /** Where the sentinels say the master is now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

/** A master, one replica and three sentinels (quorum 2) that all know each other. */
export async function startSentinelSetup(name = 'ncc'): Promise<SentinelSetup> {
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((p) => p.stop()));
  };
  try {
    const master = await spawnRedis();
    started.push(master);
    const replica = await spawnRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    started.push(replica);
    await until('replica in sync', 15_000, async () => ((await replica.client.info('replication')).includes('master_link_status:up') ? true : undefined));
    const list: SentinelProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await spawnSentinel(name, master.port, 2);
      started.push(sentinel);
      list.push(sentinel);
    }
    // A failover needs every sentinel to know the replica (from INFO) and the other sentinels (hello messages).
    await until(
      'sentinels know the replica and each other',
      30_000,
      async () => {
        const states = await Promise.all(list.map((s) => s.client.call('SENTINEL', 'MASTER', name) as Promise<string[]>));
        return (
          states.every((flat) => {
            const field = (k: string): string | undefined => flat[flat.indexOf(k) + 1];
            return field('num-slaves') === '1' && field('num-other-sentinels') === '2' && field('flags') === 'master';
          }) || undefined
        );
      },
      250,
    );
    return {
      master,
      replica,
      sentinels: list,
      name,
      addresses: list.map((s) => `127.0.0.1:${s.port}`).join(','),
      masterPort: async () => {
        for (const s of list) {
          try {
            const [, port] = (await s.client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
            return Number(port);
          } catch {
            /* ask the next one */
          }
        }
        throw new Error('no sentinel answered');
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
