/**
 * `npm run bench -- queue`: what the coordination itself costs. 1,000 no-op trials (each a
 * search -> retrain flow, the experiment's real job layout, enqueued by the real TrialQueue)
 * go through a real redis-server started for the run, to 4 worker processes that run BullMQ
 * Workers with pcdarts' own settings (workerOptions: lock, stalled check, backoff) and a
 * processor that does nothing. So what is measured is Redis + BullMQ + our job layout, not a
 * trial: a real worker adds one child process per job (about 50 ms of node start-up, against
 * minutes of trial).
 *
 * Phases, each with its own experiment key:
 *  - enqueue: all trials added with no worker running (TrialQueue.addTrials), trials/s;
 *  - drain: the workers start and empty the full queue; trials/s = trials / (first job start
 *    -> last retrain completed): the rate the coordination itself sustains;
 *  - paced: trials enqueued one by one at --rate trials/s (default 200, the target); the
 *    enqueue-to-start latency of each job (search: from its enqueue; retrain: from its search
 *    completing, when it became ready), median, p99 and max.
 * Reference measured in the same run: the median round trip of a Redis PING.
 * Targets: >= 200 trials/s, p99 < 100 ms.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

interface WorkerHandle { records: JobRecord[]; pids: number[]; stop: () => Promise<void> }

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) a process has used so far, from /proc (null where there is none). */
function processCpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

function cpuOf(pids: readonly number[]): number | null {
  let total = 0;
  for (const pid of pids) {
    const s = processCpuSecondsOf(pid);
    if (s === null) return null;
    total += s;
  }
  return total;
}

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
    pids: children.map((child) => child.pid!),
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

    // Enqueue alone (no worker yet), then the drain of a full queue by the workers.
    const enqueueStart = performance.now();
    await queue.addTrials(dir, 'burst', trialsOf('b', trials));
    const enqueueSeconds = (performance.now() - enqueueStart) / 1000;
    handle = await startWorkers(redis.url, workers, concurrency);
    const records = handle.records;
    const redisCpuBefore = cpuOf([redis.pid!]);
    const workersCpuBefore = cpuOf(handle.pids);
    await until(() => records.filter((r) => r.trial.startsWith('b')).length === 2 * trials, 600_000, 'the drain');
    const redisCpu = redisCpuBefore === null ? null : cpuOf([redis.pid!])! - redisCpuBefore;
    const workersCpu = workersCpuBefore === null ? null : cpuOf(handle.pids)! - workersCpuBefore;
    const drained = records.filter((r) => r.trial.startsWith('b'));
    const drainSeconds = (Math.max(...drained.map((r) => r.completedAt)) - Math.min(...drained.map((r) => r.startedAt))) / 1000;

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
    const all = [...pacedLatency.search, ...pacedLatency.retrain];
    console.log('');
    console.log(formatTable(
      ['what', 'trials', 'seconds', 'trials/s', 'jobs/s'],
      [
        ['enqueue (TrialQueue.addTrials, no worker running)', String(trials), enqueueSeconds.toFixed(2), (trials / enqueueSeconds).toFixed(0), (2 * trials / enqueueSeconds).toFixed(0)],
        [`drain of the full queue by ${workers} workers (first start -> last completion)`, String(trials), drainSeconds.toFixed(2), (trials / drainSeconds).toFixed(0), (2 * trials / drainSeconds).toFixed(0)],
        [`paced: ${rate} trials/s offered (first enqueue -> last completion)`, String(trials), pacedSeconds.toFixed(2), (trials / pacedSeconds).toFixed(0), (2 * trials / pacedSeconds).toFixed(0)],
      ],
      ['left', 'right', 'right', 'right', 'right'],
    ));
    console.log('');
    console.log(formatTable(
      ['enqueue-to-start latency, paced', 'jobs', 'median', 'p99', 'max'],
      [
        ['search (from its enqueue)', String(pacedLatency.search.length), fmt(median(pacedLatency.search)), fmt(percentile(pacedLatency.search, 99)), fmt(Math.max(...pacedLatency.search))],
        ['retrain (from its search completing)', String(pacedLatency.retrain.length), fmt(median(pacedLatency.retrain)), fmt(percentile(pacedLatency.retrain, 99)), fmt(Math.max(...pacedLatency.retrain))],
        ['all jobs', String(all.length), fmt(median(all)), fmt(percentile(all, 99)), fmt(Math.max(...all))],
      ],
      ['left', 'right', 'right', 'right', 'right'],
    ));
    console.log('');
    if (redisCpu !== null && workersCpu !== null) {
      // On a machine this busy the wall-clock rate is what the CPU we got allows; the CPU cost per
      // trial says what the coordination needs: Redis runs its scripts on one thread, so
      // 1 / (its CPU per trial) bounds the trials/s it can carry whatever the number of workers.
      const redisMs = (1000 * redisCpu) / trials;
      const workersMs = (1000 * workersCpu) / trials;
      console.log(`CPU per trial during the drain: redis-server ${redisMs.toFixed(2)} ms, the ${workers} workers ${workersMs.toFixed(2)} ms together; Redis's one thread alone could carry ${(1000 / redisMs).toFixed(0)} trials/s, the whole coordination ${(1000 / (redisMs + workersMs)).toFixed(0)} trials/s per core of CPU it gets`);
    }
    console.log(`reference: Redis PING round trip median ${pingMs.toFixed(3)} ms (paced start latency median = ${(median(all) / pingMs).toFixed(1)} PINGs)`);
    const throughput = trials / drainSeconds;
    const p99 = percentile(all, 99);
    console.log(`target >= ${TARGET_TRIALS_PER_S} trials/s: ${throughput >= TARGET_TRIALS_PER_S ? 'met' : 'NOT met'} (${throughput.toFixed(0)} draining a full queue); target p99 < ${TARGET_P99_MS} ms: ${p99 < TARGET_P99_MS ? 'met' : 'NOT met'} (${fmt(p99)} at ${rate} trials/s offered)`);
  } finally {
    await handle?.stop();
    await queue.close();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
