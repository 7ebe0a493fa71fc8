/**
 * Shared benchmark plumbing: timing (warm-up, median), fresh child processes per measured
 * side, peak RSS, PyTorch detection, machine description and plain-text tables.
 *
 * Nothing here imports the engine, so helpers stay testable and a benchmark decides itself
 * which backend its worker process loads.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------------------
// Registry contract (bench/main.ts)

/** What a benchmark module exports; main.ts maps a name to a lazy import of one. */
export interface BenchmarkModule {
  /** One line for `node dist/bench/main.js --help`. */
  readonly description: string;
  /** Runs the benchmark with the arguments after its name; prints its own report. */
  run(args: readonly string[]): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Statistics and timing

/** Median of the values (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface TimingOptions {
  /** Untimed calls first (JIT, allocator pools, thread start-up). */
  warmup: number;
  /** Timed calls; the median is reported. */
  repeat: number;
  /** Untimed work before every call, warm-up included (e.g. dropping accumulated gradients). */
  before?: () => void;
}

export interface Timing {
  /** Median wall time of one call, milliseconds. */
  medianMs: number;
  /** Every timed call, milliseconds, in call order. */
  samplesMs: number[];
}

/** Wall-clock timing of fn: `warmup` untimed calls, then the median of `repeat` timed ones. */
export function timeCalls(fn: () => void, options: TimingOptions): Timing {
  if (!Number.isInteger(options.repeat) || options.repeat < 1) throw new Error(`timeCalls: repeat must be >= 1, got ${options.repeat}`);
  for (let i = 0; i < options.warmup; i++) {
    options.before?.();
    fn();
  }
  const samplesMs: number[] = [];
  for (let i = 0; i < options.repeat; i++) {
    options.before?.();
    const start = performance.now();
    fn();
    samplesMs.push(performance.now() - start);
  }
  return { medianMs: median(samplesMs), samplesMs };
}

// ---------------------------------------------------------------------------------------
// Memory

/** Peak resident set size of this process in MiB (VmHWM, else resourceUsage().maxRSS). */
export function peakRssMiB(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    if (match) return Number(match[1]) / 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS / 1024; // kilobytes
}

/** CPU seconds this process has used so far (user + system, every thread). */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU seconds the whole machine has been busy (all cores, from /proc/stat; USER_HZ = 100),
 * or null where /proc/stat is missing. The difference over a measurement, minus what the
 * measured child used itself, is the load something else put on the machine meanwhile.
 */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = f[0] + f[1] + f[2] + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return Number.isFinite(busy) ? busy / 100 : null;
  } catch {
    return null;
  }
}

/** Cores' worth of other load during a measurement: (machine busy - own cpu) / wall time. */
export function otherLoad(busyBefore: number | null, busyAfter: number | null, ownCpuSeconds: number | undefined, wallSeconds: number): number | null {
  if (busyBefore === null || busyAfter === null || ownCpuSeconds === undefined || !(wallSeconds > 0)) return null;
  return Math.max(0, (busyAfter - busyBefore - ownCpuSeconds) / wallSeconds);
}

/**
 * On-CPU and run-queue time of this process's threads so far, summed over every thread
 * (Linux /proc/self/task/<tid>/schedstat: nanoseconds running, nanoseconds runnable but
 * waiting for a CPU); null where unavailable. Waiting time during a measurement is time the
 * scheduler gave our threads' cores to someone else: a sample with next to none was not
 * disturbed by time-slicing, whatever the load average says.
 */
export function threadTimes(): { runNs: number; waitNs: number } | null {
  try {
    let runNs = 0;
    let waitNs = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      runNs += run;
      waitNs += wait;
    }
    return { runNs, waitNs };
  } catch {
    return null;
  }
}

/**
 * Milliseconds this process's main thread has run on a CPU (Linux schedstat of the thread
 * whose id is the process id), or null where unavailable: a clock that time-slicing does
 * not advance. It lags by up to a scheduler tick while the thread runs, so it suits
 * intervals of a second or more (process.cpuUsage() is exact but counts every thread).
 */
export function mainThreadCpuMs(): number | null {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Child processes

export interface ChildOptions {
  /** Extra environment variables (merged over the parent's). */
  env?: Record<string, string>;
  /** Forward the child's stderr to ours as it arrives (progress, warnings). */
  inheritStderr?: boolean;
}

/**
 * Runs `command args...` in a fresh process and parses the last non-empty line of its
 * stdout as JSON. Rejects with the exit status and stderr when it fails.
 */
export function runJsonChild<T>(command: string, args: readonly string[], options: ChildOptions = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', options.inheritStderr ? 'inherit' : 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => { stdout += chunk; });
    if (child.stderr) {
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => { stderr += chunk; });
    }
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const what = `${command} ${args.map(shellQuote).join(' ')}`;
      if (code !== 0) {
        reject(new Error(`${what} failed (${signal ?? `exit ${code}`})${stderr ? `:\n${stderr.trimEnd()}` : ''}`));
        return;
      }
      const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      const last = lines[lines.length - 1];
      try {
        resolve(JSON.parse(last ?? '') as T);
      } catch {
        reject(new Error(`${what}: expected JSON on the last line of stdout, got ${JSON.stringify(last ?? '')}`));
      }
    });
  });
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------
// PyTorch and the machine

/** Debian's interpreter (where `apt-get install python3-torch` puts torch), else python3. */
export function defaultPython(): string {
  return process.env.PCDARTS_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

export const PYTORCH_HINT = 'install it with `apt-get install python3-torch` (Debian/Ubuntu) or `pip install torch`';

/** torch.__version__ when `python -c 'import torch'` works, else null. */
export function detectPytorch(python = defaultPython()): string | null {
  const result = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0 || typeof result.stdout !== 'string') return null;
  const version = result.stdout.trim().split('\n').pop();
  return version ? version : null;
}

export function cpuModel(): string {
  const cpus = os.cpus();
  return cpus.length > 0 ? cpus[0].model.trim() : 'unknown cpu';
}

/** The vector extensions this report names, in order, as /proc/cpuinfo spells them. */
const VECTOR_FLAGS = [
  'sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16',
  'amx_tile', 'amx_bf16', 'amx_int8', 'asimd', 'sve', 'sve2',
];

/**
 * The CPU's vector extensions from /proc/cpuinfo (flags, or Features on ARM) that matter for
 * float32 kernels, e.g. ['sse4_2', 'avx2', 'fma', 'avx512f', ...]; [] where it is unreadable.
 */
export function cpuVectorExtensions(cpuinfo?: string): string[] {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return [];
    }
  }
  const match = /^(?:flags|Features)\s*:(.*)$/m.exec(text);
  if (!match) return [];
  const flags = new Set(match[1].trim().split(/\s+/));
  return VECTOR_FLAGS.filter((f) => flags.has(f));
}

/** "vector extensions: sse4_2 avx2 fma avx512f ..." (or "unknown"). */
export function vectorLine(): string {
  const ext = cpuVectorExtensions();
  return `vector extensions: ${ext.length > 0 ? ext.join(' ') : 'unknown'}; wasm SIMD is 128-bit (4 float32 lanes) whatever the CPU has`;
}

export function availableCores(): number {
  return os.availableParallelism();
}

/**
 * "machine: <cpu>, <n> cores, node vX, torch Y, load average a b c"; `torch` is the
 * version, or a word such as 'not found' / 'skipped'.
 */
export function machineLine(torch: string): string {
  const load = os.loadavg().map((v) => v.toFixed(2)).join(' ');
  return `machine: ${cpuModel()}, ${availableCores()} cores, node ${process.version}, torch ${torch}, load average ${load}\n${vectorLine()}`;
}

/** What a measuring process reports about the wasm multiply-add peak it measured before timing. */
export interface PeakReport {
  /** Kernel build measured (simd / relaxed-simd). */
  build: string;
  /** GFLOP/s of the multiply-add loop on one thread, and on every thread at once. */
  oneThread: number;
  allThreads: number;
  threads: number;
}

/** "wasm relaxed-simd multiply-add peak (same process, just before): 33.1 GFLOP/s on 1 thread, 34.0 on 2 (1.03x)". */
export function peakLine(p: PeakReport): string {
  const scaling = p.threads > 1 ? `, ${p.allThreads.toFixed(1)} on ${p.threads} (${(p.allThreads / p.oneThread).toFixed(2)}x)` : '';
  return `wasm ${p.build} multiply-add peak (measured in the process, before timing): ${p.oneThread.toFixed(1)} GFLOP/s on 1 thread${scaling}`;
}

/**
 * A warning when something else is using the CPU right now (sampled from /proc/stat over
 * `sampleMs`, our own process excluded; the 1-minute load average where /proc/stat is
 * missing, which lags by a minute), else null.
 */
export async function loadWarning(threshold = 0.1, sampleMs = 1000): Promise<string | null> {
  const busyBefore = machineBusySeconds();
  const ownBefore = processCpuSeconds();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const load = otherLoad(busyBefore, machineBusySeconds(), processCpuSeconds() - ownBefore, (performance.now() - started) / 1000);
  const what = load === null ? `load average ${os.loadavg()[0].toFixed(2)}` : `${load.toFixed(2)} cores busy with other processes`;
  if ((load ?? os.loadavg()[0] / 2) < threshold) return null;
  return `warning: ${what} before starting: timings (PyTorch's above all) will be unreliable`;
}

export const LOAD_REMINDER =
  'Reminder: PyTorch at 2+ threads is very sensitive to other load (15-35x slower when anything else ' +
  'runs on a 2-core machine); check `uptime` and rerun on an idle machine before trusting a ratio.';

// ---------------------------------------------------------------------------------------
// Command line

/** "1,2" -> [1, 2] (positive integers, duplicates removed, order kept). */
export function parseThreadList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const t = part.trim();
    const n = Number(t);
    if (t === '' || !Number.isInteger(n) || n < 1) throw new Error(`--threads: expected positive integers like 1,2, got '${text}'`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

export function parsePositiveInt(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || text === '' || !Number.isInteger(n) || n < 1) {
    throw new Error(`${flag}: expected a positive integer, got '${text ?? ''}'`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Formatting

/** Milliseconds with about three significant digits; '-' for missing values. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** ours / theirs as "1.23x"; '-' when either side is missing. */
export function formatRatio(ours: number | null | undefined, theirs: number | null | undefined): string {
  if (ours === null || ours === undefined || theirs === null || theirs === undefined) return '-';
  if (!Number.isFinite(ours) || !Number.isFinite(theirs) || theirs <= 0) return '-';
  const r = ours / theirs;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

export type Align = 'left' | 'right';

/**
 * A plain-text table: header row, dashed rule, rows; columns padded to their widest cell,
 * separated by two spaces, no trailing spaces. `align` defaults to left for the first
 * column and right for the others.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const columns = headers.length;
  for (const row of rows) {
    if (row.length !== columns) throw new Error(`formatTable: row has ${row.length} cells, header has ${columns}`);
  }
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const alignOf = (c: number): Align => align?.[c] ?? (c === 0 ? 'left' : 'right');
  const line = (cells: readonly string[]): string =>
    cells.map((cell, c) => (alignOf(c) === 'left' ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/**
 * The worker entry of a benchmark module: when `node dist/bench/NAME.js --worker '<json>'`
 * runs that module directly, call `worker` with the parsed config. Imported as a module, it
 * does nothing.
 */
export function runAsWorker<Config>(
  moduleUrl: string, name: string, worker: (config: Config) => Promise<void>, onError: (error: unknown) => void,
): void {
  const invokedDirectly = process.argv[1] !== undefined && pathToFileURL(path.resolve(process.argv[1])).href === moduleUrl;
  if (!invokedDirectly) return;
  if (process.argv[2] !== '--worker' || process.argv[3] === undefined) {
    console.error(`bench/${name}.js is a worker; run the benchmark with \`npm run bench -- ${name}\``);
    process.exitCode = 2;
    return;
  }
  worker(JSON.parse(process.argv[3]) as Config).catch(onError);
}
