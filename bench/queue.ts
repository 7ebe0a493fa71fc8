/**
 * `npm run bench -- queue`: what the coordination itself costs. 1,000 no-op trials (each a
 * search -> retrain flow, the experiment's real job layout, enqueued by the real TrialQueue)
 * go through a real redis-server started for the run, to 4 worker processes that run BullMQ
 * Workers with pcdarts' own settings (workerOptions: lock, stalled check, backoff) and a
 * processor that does nothing. So what is measured is Redis + BullMQ + our job layout, not a
 * trial: a real worker adds one child process per job (about 50 ms of node start-up, against
 * minutes of trial).
 *
 * Two phases, each with its own experiment key:
 *  - burst: all trials enqueued at once; trials/s = trials / (first enqueue -> last retrain
 *    completed), the rate the coordination sustains with a full queue;
 *  - paced: trials enqueued one by one at --rate trials/s (default 200, the target); the
 *    enqueue-to-start latency of each job (search: from its enqueue; retrain: from its search
 *    completing, when it became ready), median and p99.
 * Reference measured in the same run: the median round trip of a Redis PING.
 * Targets: >= 200 trials/s, p99 < 100 ms.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import {
  connectionOptions, parseQueueUrl, QUEUE_NAME, type TrialJobData, TrialQueue, type TrialToEnqueue, workerOptions,
} from '../src/queue/index.js';
import { RedisServer } from '../test/queue/redis-server.js';
import { availableCores, formatTable, loadWarning, machineLine, median, parsePositiveInt, runAsWorker } from './harness.js';

export const description = 'queue coordination: 1,000 no-op trials (search -> retrain flows) through a real redis-server to 4 BullMQ workers; trials/s and enqueue-to-start latency (median, p99)';

const TARGET_TRIALS_PER_S = 200;
const TARGET_P99_MS = 100;

interface WorkerConfig { url: string; concurrency: number }
/** One processed job as a worker reports it: id, its trial and phase, when it started and completed (epoch ms). */
interface JobRecord { id: string; trial: string; phase: string; enqueuedAt: number; startedAt: number; completedAt: number }

// ---------------------------------------------------------------------------------------
// Worker process: a BullMQ Worker with pcdarts' settings and a no-op processor.

async function worker(config: WorkerConfig): Promise<void> {
  const address = parseQueueUrl(config.url);
  const started = new Map<string, number>();
  const now = (): number => performance.timeOrigin + performance.now();
  const w = new Worker<TrialJobData>(QUEUE_NAME, async (job: Job<TrialJobData>) => {
    started.set(job.id!, now());
  }, { ...workerOptions({ address, concurrency: config.concurrency }), name: `bench:${process.pid}` });
  w.on('completed', (job: Job<TrialJobData>) => {
    const record: JobRecord = { id: job.id!, trial: job.data.trialId, phase: job.data.phase, enqueuedAt: job.timestamp, startedAt: started.get(job.id!)!, completedAt: now() };
    started.delete(job.id!);
    process.stdout.write(`${JSON.stringify(record)}\n`);
  });
  await w.waitUntilReady();
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => { void w.close(true).then(() => process.exit(0)); });
}

runAsWorker<WorkerConfig>(import.meta.url, 'queue', worker, (error) => {
  console.error(error);
  process.exit(1);
});

// ---------------------------------------------------------------------------------------
// Main process.

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface WorkerHandle { records: JobRecord[]; stop: () => Promise<void> }

async function startWorkers(url: string, count: number, concurrency: number): Promise<WorkerHandle> {
  const records: JobRecord[] = [];
  const script = fileURLToPath(import.meta.url);
  const children = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof spawn>>((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--worker', JSON.stringify({ url, concurrency })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line === 'ready') resolve(child);
        else records.push(JSON.parse(line) as JobRecord);
      }
    });
    child.once('exit', (code) => reject(new Error(`bench worker exited with ${code} before it was ready`)));
  })));
  return {
    records,
    stop: async () => {
      await Promise.all(children.map((child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      })));
    },
  };
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function trialsOf(prefix: string, count: number): TrialToEnqueue[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}${String(i).padStart(5, '0')}`, phases: ['search', 'retrain'] }));
}

/** Enqueue-to-start latencies: search from its enqueue, retrain from its search's completion. */
function latencies(records: readonly JobRecord[], prefix: string): { search: number[]; retrain: number[] } {
  const mine = records.filter((r) => r.trial.startsWith(prefix));
  const searchDone = new Map(mine.filter((r) => r.phase === 'search').map((r) => [r.trial, r.completedAt]));
  return {
    search: mine.filter((r) => r.phase === 'search').map((r) => r.startedAt - r.enqueuedAt),
    retrain: mine.filter((r) => r.phase === 'retrain').map((r) => r.startedAt - searchDone.get(r.trial)!),
  };
}

export async function run(args: readonly string[]): Promise<void> {
  let trials = 1000;
  let workers = 4;
  let concurrency = 1;
  let rate = TARGET_TRIALS_PER_S;
  for (let i = 0; i < args.length; i += 1) {
    const flag = args[i];
    if (flag === '--trials') trials = parsePositiveInt(flag, args[++i]);
    else if (flag === '--workers') workers = parsePositiveInt(flag, args[++i]);
    else if (flag === '--concurrency') concurrency = parsePositiveInt(flag, args[++i]);
    else if (flag === '--rate') rate = parsePositiveInt(flag, args[++i]);
    else if (flag === '--help' || flag === '-h') {
      console.log(`${description}\n\nusage: npm run bench -- queue [--trials 1000] [--workers 4] [--concurrency 1] [--rate ${TARGET_TRIALS_PER_S}]`);
      return;
    } else throw new Error(`unknown option '${flag}'`);
  }
  const warning = await loadWarning();
  console.log(machineLine('not used'));
  console.log(`${availableCores()} cores; ${trials} trials (2 jobs each), ${workers} worker processes x concurrency ${concurrency}, redis-server with appendonly (fsync every second)`);
  if (warning) console.log(warning);

  const redis = await RedisServer.start({ appendFsync: 'everysec' });
  const dir = mkdtempSync(join(tmpdir(), 'pcdarts-bench-queue-'));
  let handle: WorkerHandle | null = null;
  const queue = new TrialQueue(parseQueueUrl(redis.url));
  try {
    // Reference: a bare PING round trip on this machine now.
    const client = new Redis(connectionOptions(parseQueueUrl(redis.url)));
    const pings: number[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const t = performance.now();
      await client.ping();
      pings.push(performance.now() - t);
    }
    client.disconnect();
    const pingMs = median(pings);

    handle = await startWorkers(redis.url, workers, concurrency);
    const records = handle.records;

    // Burst: everything at once.
    const burstStart = performance.timeOrigin + performance.now();
    await queue.addTrials(dir, 'burst', trialsOf('b', trials));
    const enqueuedAt = performance.timeOrigin + performance.now();
    await until(() => records.filter((r) => r.trial.startsWith('b')).length === 2 * trials, 600_000, 'the burst');
    const burstEnd = Math.max(...records.filter((r) => r.trial.startsWith('b')).map((r) => r.completedAt));
    const burstSeconds = (burstEnd - burstStart) / 1000;
    const burst = latencies(records, 'b');

    // Paced: one trial every 1/rate s, on a schedule (a late enqueue does not shift the next).
    const paced = trialsOf('p', trials);
    const pacedStart = performance.now();
    for (let i = 0; i < paced.length; i += 1) {
      const due = pacedStart + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      await queue.addTrials(dir, 'paced', [paced[i]]);
    }
    await until(() => records.filter((r) => r.trial.startsWith('p')).length === 2 * trials, 600_000, 'the paced trials');
    const pacedSeconds = (Math.max(...records.filter((r) => r.trial.startsWith('p')).map((r) => r.completedAt)) - (performance.timeOrigin + pacedStart)) / 1000;
    const pacedLatency = latencies(records, 'p');

    const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
    const all = (l: { search: number[]; retrain: number[] }): number[] => [...l.search, ...l.retrain];
    const row = (name: string, seconds: number, l: { search: number[]; retrain: number[] }): string[] => [
      name, `${(trials / seconds).toFixed(0)}`, seconds.toFixed(2), fmt(median(all(l))), fmt(percentile(all(l), 99)), fmt(percentile(l.search, 99)), fmt(percentile(l.retrain, 99)),
    ];
    console.log('');
    console.log(formatTable(
      ['phase', 'trials/s', 'seconds', 'start latency median', 'p99', 'p99 search', 'p99 retrain'],
      [row('burst (all enqueued at once)', burstSeconds, burst), row(`paced (${rate} trials/s offered)`, pacedSeconds, pacedLatency)],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ));
    console.log('');
    console.log(`enqueueing ${trials} trials alone (TrialQueue.addTrials, one flow after the other): ${((enqueuedAt - burstStart) / 1000).toFixed(2)} s, ${(trials / ((enqueuedAt - burstStart) / 1000)).toFixed(0)} trials/s`);
    console.log(`reference: Redis PING round trip median ${pingMs.toFixed(3)} ms; paced start latency median = ${(median(all(pacedLatency)) / pingMs).toFixed(1)} PINGs`);
    const throughput = trials / burstSeconds;
    const p99 = percentile(all(pacedLatency), 99);
    console.log(`target >= ${TARGET_TRIALS_PER_S} trials/s: ${throughput >= TARGET_TRIALS_PER_S ? 'met' : 'NOT met'} (${throughput.toFixed(0)}); target p99 < ${TARGET_P99_MS} ms at ${rate} trials/s: ${p99 < TARGET_P99_MS ? 'met' : 'NOT met'} (${fmt(p99)})`);
  } finally {
    await handle?.stop();
    await queue.close();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
