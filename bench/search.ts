/**
 * `npm run bench -- search`: seconds per PC-DARTS search step (architecture step + weight
 * step; first order, or with --order 2 / --order 1,2 the unrolled second-order step) and peak
 * RSS of the search network (C=16, 8 layers, 32x32x3), ours and, with --vs-pytorch, PyTorch's.
 *
 * Every configuration of every side runs in its own fresh process (peak RSS is per process:
 * VmHWM), one after the other, never concurrently. The parent spawns
 * `node dist/bench/search.js --worker '<json>'` for our side and
 * `python3 bench/pytorch/search.py '<json>'` for PyTorch's; each prints progress on stderr and
 * one JSON line on stdout.
 *
 * The plumbing shared with `bench/train.ts` (options, child processes, load notes, tables) is
 * exported from here.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { type ArchitectOrder, withFrozen } from '../src/darts/architect.js';
import { createArchitect } from '../src/darts/architects.js';
import { SearchNetwork } from '../src/darts/search-network.js';
import { setBackend } from '../src/kernels/registry.js';
import { clipGradNorm, SGD } from '../src/nn/optim.js';
import { backward, DEFAULT_ACTIVATION_BUDGET_BYTES } from '../src/tensor/autograd.js';
import * as ops from '../src/tensor/ops.js';
import { manualSeed, Random } from '../src/tensor/random.js';
import { type Tensor, fromArray, tidy } from '../src/tensor/tensor.js';
import {
  type PeakReport, LOAD_REMINDER, PYTORCH_HINT, availableCores, defaultPython, detectPytorch, formatRatio, formatTable, loadWarning,
  machineBusySeconds, machineLine, median, otherLoad, parsePositiveInt, peakLine, peakRssMiB, processCpuSeconds, runJsonChild,
  runAsWorker,
} from './harness.js';

export const description = 'seconds per search step (arch + weight step) and peak RSS of the search network vs PyTorch';

// ---------------------------------------------------------------------------------------
// Shared with bench/train.ts: results, children, formatting

/** What every step-benchmark process (ours or PyTorch's) prints as its JSON line. */
export interface StepResult {
  side: string;
  /** Our backend name, or the torch version. */
  version: string;
  /** Threads the side actually used. */
  threads: number;
  /** Median seconds of one timed step. */
  medianS: number;
  samplesS: number[];
  /**
   * CPU seconds of the whole process in each timed step (every thread, spinning included). At
   * 1 thread that is the time the step really ran, however busy the machine: the comparison
   * that survives other load.
   */
  cpuSamplesS?: number[];
  /** Search only: median seconds of the architecture step and of the weight step. */
  archMedianS?: number;
  weightMedianS?: number;
  /** Trained parameters (search: weights without architecture; train: main network without auxiliary head). */
  parameters: number;
  peakRssMiB: number;
  /** Our side: the most backend memory ever handed out at once, and what the wasm memory grew to (MiB). */
  backendPeakMiB?: number;
  backendReservedMiB?: number;
  cpuSeconds?: number;
  /** Our side: the wasm multiply-add peak measured in the process right before the timed steps. */
  peak?: PeakReport;
  /** Our side: counted FLOPs (convolutions and linear layers, a multiply-add = 2) of one timed step. */
  flopsPerStep?: number;
  /** PyTorch side: GFLOP/s of a large 1x1 convolution (oneDNN) at the same thread count: its own peak. */
  convPeakGflops?: number;
  /** Set (and nothing measured) when the side failed, e.g. out of memory. */
  error?: string;
}

export interface SideRun {
  /** 'ours' or 'pytorch'. */
  side: string;
  /** Configuration id (k4-b64, b96, ...). */
  config: string;
  result: StepResult | null;
  error: string | null;
  /** Cores' worth of CPU that other processes used while this process ran. */
  otherLoad: number | null;
  wallS: number;
}

/** Other load (cores) above which a measurement is flagged as disturbed. */
export const OTHER_LOAD_LIMIT = 0.1;

export const BACKENDS: Record<string, string> = {
  wasm: '../src/kernels/wasm/backend.js',
  ref: '../src/kernels/ref/backend.js',
};

/** The compiled module that registers backend `name` (relative to dist/bench/); throws when unknown or not built. */
export function backendModule(name: string): URL {
  const module = BACKENDS[name];
  if (!module) throw new Error(`--backend: unknown backend '${name}' (known: ${Object.keys(BACKENDS).join(', ')})`);
  const url = new URL(module, import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`backend '${name}' is not built (${fileURLToPath(url)} missing): run \`npm run build\``);
  }
  return url;
}

/** bench/pytorch/<file> from dist/bench/ (or from the working directory). */
export function pytorchScript(file: string): string {
  const beside = fileURLToPath(new URL(`../../bench/pytorch/${file}`, import.meta.url));
  if (existsSync(beside)) return beside;
  return path.resolve('bench/pytorch', file);
}

export function threadEnv(threads: number): Record<string, string> {
  const n = String(threads);
  return { OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n };
}

/**
 * Runs one measuring process (its progress lines go to our stderr as they come) and
 * measures the other load on the machine meanwhile.
 */
export async function measureSide(side: string, config: string, command: string, args: string[], env?: Record<string, string>): Promise<SideRun> {
  const started = performance.now();
  const busyBefore = machineBusySeconds();
  const ownBefore = processCpuSeconds();
  process.stderr.write(`  measuring ${side} ${config} (fresh process) ...\n`);
  try {
    const result = await runJsonChild<StepResult>(command, args, { env, inheritStderr: true });
    const wallS = (performance.now() - started) / 1000;
    if (result.error !== undefined) {
      process.stderr.write(`  ${side} ${config}: failed after ${wallS.toFixed(0)} s\n`);
      const rss = Number.isFinite(result.peakRssMiB) ? ` (peak RSS ${formatGiB(result.peakRssMiB)} GiB)` : '';
      return { side, config, result: null, error: `${result.error}${rss}`, otherLoad: null, wallS };
    }
    const own = result.cpuSeconds === undefined ? undefined : result.cpuSeconds + processCpuSeconds() - ownBefore;
    const load = otherLoad(busyBefore, machineBusySeconds(), own, wallS);
    process.stderr.write(`  ${side} ${config}: ${wallS.toFixed(0)} s in all${load === null ? '' : `, other load ${load.toFixed(2)} cores`}\n`);
    return { side, config, result, error: null, otherLoad: load, wallS };
  } catch (error) {
    const wallS = (performance.now() - started) / 1000;
    process.stderr.write(`  ${side} ${config}: failed after ${wallS.toFixed(0)} s\n`);
    return { side, config, result: null, error: error instanceof Error ? error.message : String(error), otherLoad: null, wallS };
  }
}

/** Seconds with three significant digits; '-' when missing. */
export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '-';
  if (s >= 100) return s.toFixed(0);
  if (s >= 10) return s.toFixed(1);
  if (s >= 1) return s.toFixed(2);
  return s.toFixed(3);
}

/** MiB as GiB with two decimals; '-' when missing. */
export function formatGiB(mib: number | null | undefined): string {
  if (mib === null || mib === undefined || !Number.isFinite(mib)) return '-';
  return (mib / 1024).toFixed(2);
}

export function formatRate(images: number, seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !(seconds > 0)) return '-';
  const r = images / seconds;
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

/** Lines on other load, threads actually used, and errors of the measuring processes. */
export function reportProcesses(runs: readonly SideRun[], threads: number): string[] {
  const lines: string[] = [];
  const loads = runs.filter((r) => r.otherLoad !== null);
  if (loads.length > 0) {
    lines.push(`other load while measuring (cores busy outside the measured process): ${
      loads.map((r) => `${r.side} ${r.config} ${(r.otherLoad as number).toFixed(2)}`).join(', ')}`);
    const disturbed = loads.filter((r) => (r.otherLoad as number) > OTHER_LOAD_LIMIT);
    if (disturbed.length > 0) {
      lines.push(`warning: other load above ${OTHER_LOAD_LIMIT} cores while measuring ${
        disturbed.map((r) => `${r.side} ${r.config}`).join(', ')}: rerun on an idle machine before trusting those numbers`);
    }
  }
  for (const r of runs) {
    if (r.result && r.result.threads !== threads) lines.push(`warning: ${r.side} ${r.config} asked for ${threads} threads, used ${r.result.threads}`);
  }
  const errors = runs.filter((r) => r.error !== null);
  if (errors.length > 0) {
    lines.push('', 'errors:');
    for (const r of errors) lines.push(`  ${r.side} ${r.config}: ${(r.error as string).split('\n').slice(-6).join('\n    ')}`);
    if (errors.some((r) => r.side === 'ours' && /out of memory/.test(r.error as string))) {
      lines.push('  (our wasm memory is 32-bit: 4 GiB at most, whatever the machine has)');
    }
  }
  return lines;
}

export interface CommonOptions {
  threads: number;
  warmup: number;
  repeat: number;
  pytorch: boolean;
  python: string;
  backend: string;
  verbose: boolean;
  /** Our side: MiB of activations kept before recomputing (null: the library default). */
  activationBudgetMiB: number | null;
}

/**
 * Parses the options every step benchmark takes; returns the leftovers for the benchmark's
 * own flags through `extra` (flag, value getter) -> handled?
 */
export function parseCommon(
  args: readonly string[], help: string, extra: (flag: string, value: () => string) => boolean,
): CommonOptions | null {
  const options: CommonOptions = {
    threads: availableCores(), warmup: 2, repeat: 3, pytorch: false, python: defaultPython(), backend: 'wasm', verbose: false,
    activationBudgetMiB: null,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [flag, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag}: missing value`);
      return v;
    };
    switch (flag) {
      case '--help': case '-h': console.log(help); return null;
      case '--vs-pytorch': options.pytorch = true; break;
      case '--threads': options.threads = parsePositiveInt('--threads', value()); break;
      case '--steps': options.repeat = parsePositiveInt('--steps', value()); break;
      case '--warmup': {
        const v = value();
        options.warmup = v === '0' ? 0 : parsePositiveInt('--warmup', v);
        break;
      }
      case '--python': options.python = value(); break;
      case '--backend': options.backend = value(); break;
      case '--verbose': options.verbose = true; break;
      case '--activation-budget': {
        const v = value();
        options.activationBudgetMiB = v === '0' ? 0 : parsePositiveInt('--activation-budget', v);
        break;
      }
      default:
        if (!extra(flag, value)) throw new Error(`unknown option '${arg}'\n\n${help}`);
    }
  }
  backendModule(options.backend); // fail before measuring anything
  return options;
}

/** Machine line, load warning, PyTorch detection; returns the torch version (null: not used). */
export async function preamble(options: CommonOptions): Promise<string | null> {
  const torch = options.pytorch ? detectPytorch(options.python) : null;
  console.log(machineLine(options.pytorch ? torch ?? 'not found' : 'not used (no --vs-pytorch)'));
  const busy = await loadWarning(OTHER_LOAD_LIMIT);
  console.log(busy ?? `other load before starting: below ${OTHER_LOAD_LIMIT} cores (idle enough)`);
  if (options.threads > availableCores()) console.log(`warning: ${options.threads} threads on ${availableCores()} cores: expect oversubscription`);
  if (options.pytorch && torch === null) {
    console.log(`PyTorch not found (\`${options.python} -c 'import torch'\` failed): ${PYTORCH_HINT}; measuring our side only.`);
  }
  return torch;
}

export function samplesLines(runs: readonly SideRun[]): string[] {
  const lines = ['', 'samples (s per step, timed steps only):'];
  for (const r of runs) {
    if (r.result) lines.push(`  ${r.side} ${r.config}: ${r.result.samplesS.map((s) => formatSeconds(s)).join(' ')}`);
  }
  return lines;
}

/**
 * The fastest timed step of each side and their ratio, one line: interference from other
 * load only ever adds time, so on a noisy machine the minimum is the steadier comparison
 * (the table's medians stay the primary numbers).
 */
export function fastestStepLine(pairs: { id: string; ours: StepResult | null; torch: StepResult | null }[]): string | null {
  const parts = pairs.flatMap(({ id, ours, torch }) => {
    if (!ours || !torch || ours.samplesS.length === 0 || torch.samplesS.length === 0) return [];
    const o = Math.min(...ours.samplesS);
    const t = Math.min(...torch.samplesS);
    return [`${id} ${formatSeconds(o)} vs ${formatSeconds(t)} (${formatRatio(o, t)})`];
  });
  return parts.length === 0 ? null : `fastest timed step, ours vs PyTorch (s/step): ${parts.join(', ')}`;
}

/**
 * CPU seconds per step of each side (median) and their ratio. At 1 thread this is the
 * comparison to read on a busy machine: a process's CPU time is the time it actually ran,
 * which other load does not stretch (cache and memory traffic of others still can). At more
 * threads it counts spinning and waiting too, so it is printed but not a speed.
 */
export function cpuTimeLine(pairs: { id: string; ours: StepResult | null; torch: StepResult | null }[], threads: number): string | null {
  const parts = pairs.flatMap(({ id, ours, torch }) => {
    if (!ours?.cpuSamplesS?.length || !torch?.cpuSamplesS?.length) return [];
    const o = median(ours.cpuSamplesS);
    const t = median(torch.cpuSamplesS);
    return [`${id} ${formatSeconds(o)} vs ${formatSeconds(t)} (${formatRatio(o, t)})`];
  });
  if (parts.length === 0) return null;
  return `CPU seconds per step, ours vs PyTorch (median; ${threads === 1 ? 'at 1 thread: robust to other load' : `at ${threads} threads: includes spinning, not a speed`}): ${parts.join(', ')}`;
}

/**
 * A worker's failure (e.g. out of memory) as its JSON line, so that the table's error list
 * says what went wrong in one line; the stack goes to stderr only with PCDARTS_BENCH_STACK=1.
 */
export function reportWorkerError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`    failed: ${message}\n`);
  if (process.env.PCDARTS_BENCH_STACK === '1' && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.stdout.write(`${JSON.stringify({ error: message, peakRssMiB: peakRssMiB(), cpuSeconds: processCpuSeconds() })}\n`);
}

/** The parts of the wasm backend the benchmarks read besides the kernel interface. */
interface Instrumented {
  readonly build?: string;
  flopCount?(): number;
  measurePeak?(ms?: number, repeats?: number, threadClockMs?: () => number): PeakReport;
}

/**
 * The multiply-add peak of our backend, measured now (null for a backend without one, e.g.
 * ref); the 1-thread figure on the process's CPU clock.
 */
export function measureOurPeak(backend: object): PeakReport | null {
  const b = backend as Instrumented;
  if (typeof b.measurePeak !== 'function') return null;
  // Process CPU time (getrusage: exact to the microsecond for a running thread, unlike
  // schedstat, which lags by up to a scheduler tick). Parked workers add nothing to it.
  const clock = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  return b.measurePeak(60, 5, clock);
}

/** Counted FLOPs so far (0 for a backend that does not count). */
export function flopCount(backend: object): number {
  const b = backend as Instrumented;
  return typeof b.flopCount === 'function' ? b.flopCount() : 0;
}

/**
 * Efficiency lines: our counted FLOPs per step over our step time (median and fastest), as a
 * fraction of the wasm peak measured in the same process; PyTorch's rate for the same FLOPs
 * (the same network and step, so the same useful work) against its own peak (a large 1x1
 * convolution through its convolution backend).
 */
export function efficiencyLines(pairs: { id: string; ours: StepResult | null; torch: StepResult | null }[]): string[] {
  const lines: string[] = [];
  const peaks = pairs.map((p) => p.ours?.peak).filter((p): p is PeakReport => p !== undefined);
  if (peaks.length > 0) lines.push(...[...new Set(peaks.map(peakLine))]);
  for (const { id, ours, torch } of pairs) {
    if (!ours?.flopsPerStep || !ours.peak) continue;
    const gflop = ours.flopsPerStep / 1e9;
    const fastest = Math.min(...ours.samplesS);
    const rate = gflop / ours.medianS;
    const best = gflop / fastest;
    const peak = ours.peak.allThreads;
    let line = `efficiency ${id}: ${gflop.toFixed(1)} GFLOP per step (convolutions + linear, counted); ours ${rate.toFixed(1)} GFLOP/s median, ` +
      `${best.toFixed(1)} fastest = ${(100 * rate / peak).toFixed(0)} % / ${(100 * best / peak).toFixed(0)} % of the ${ours.peak.threads}-thread wasm peak (${peak.toFixed(1)} GFLOP/s)`;
    if (ours.peak.threads === 1 && ours.cpuSamplesS?.length) {
      // At 1 thread both the step and the peak can be timed on CPU clocks: immune to time-slicing.
      const perCpu = gflop / median(ours.cpuSamplesS);
      line += `; per CPU second ${perCpu.toFixed(1)} GFLOP/s = ${(100 * perCpu / ours.peak.oneThread).toFixed(0)} % of the peak`;
    }
    if (torch && torch.medianS > 0) {
      const t = gflop / torch.medianS;
      line += `; PyTorch ${t.toFixed(1)} GFLOP/s` + (torch.convPeakGflops ? ` = ${(100 * t / torch.convPeakGflops).toFixed(0)} % of its own peak (a large 1x1 convolution: ${torch.convPeakGflops.toFixed(0)} GFLOP/s at ${torch.threads} threads)` : '');
      if (torch.threads === 1 && torch.cpuSamplesS?.length) {
        const tc = gflop / median(torch.cpuSamplesS);
        line += `, per CPU second ${tc.toFixed(1)}` + (torch.convPeakGflops ? ` = ${(100 * tc / torch.convPeakGflops).toFixed(0)} %` : '');
      }
    }
    lines.push(line);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------
// Search configurations

export interface SearchConfigId {
  id: string;
  k: number;
  batch: number;
}

export const DEFAULT_CONFIGS = 'k4-b64,k4-b256,k1-b64';

/** Reference numbers: the authors' code, PyTorch 1.13 at 2 threads (../shared/anchors/pytorch-search.md). */
const ANCHORS: Record<string, { seconds: number; gb: number }> = {
  'k4-b64': { seconds: 9.7, gb: 3.34 },
  'k4-b256': { seconds: 33.8, gb: 12.1 },
  'k1-b64': { seconds: 20.6, gb: 10.1 },
};

/** The authors' second-order case, which check_fixtures.py replays with bench/pytorch/architect.py. */
const SECOND_ORDER_FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/pytorch-second-order/', import.meta.url));

/** "--order 1,2" -> [1, 2]. */
export function parseOrders(text: string): ArchitectOrder[] {
  const out: ArchitectOrder[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (part !== '1' && part !== '2') throw new Error(`--order: expected 1, 2 or 1,2, got '${text}'`);
    const order = Number(part) as ArchitectOrder;
    if (!out.includes(order)) out.push(order);
  }
  if (out.length === 0) throw new Error('--order: no order given');
  return out;
}

/**
 * Per configuration measured at both orders: the second order's median time, peak RSS and
 * backend live peak over the first order's, ours and PyTorch's (the claim: memory within 2x).
 */
export function orderLines(runs: readonly { config: SearchConfigId; order: ArchitectOrder; ours: SideRun; torch: SideRun | null }[]): string[] {
  const lines: string[] = [];
  for (const second of runs.filter((r) => r.order === 2)) {
    const first = runs.find((r) => r.order === 1 && `${r.config.id}-o2` === second.config.id);
    if (!first) continue;
    const o1 = first.ours.result;
    const o2 = second.ours.result;
    const parts: string[] = [];
    if (o1 && o2) {
      parts.push(`ours time ${formatRatio(o2.medianS, o1.medianS)}${cpuRatio(o1, o2)}, peak RSS ${formatRatio(o2.peakRssMiB, o1.peakRssMiB)}` +
        ` (${formatGiB(o1.peakRssMiB)} -> ${formatGiB(o2.peakRssMiB)} GiB)` +
        (o1.backendPeakMiB !== undefined && o2.backendPeakMiB !== undefined
          ? `, backend live peak ${formatRatio(o2.backendPeakMiB, o1.backendPeakMiB)} (${formatGiB(o1.backendPeakMiB)} -> ${formatGiB(o2.backendPeakMiB)} GiB)` : ''));
    }
    const t1 = first.torch?.result;
    const t2 = second.torch?.result;
    if (t1 && t2) {
      parts.push(`PyTorch time ${formatRatio(t2.medianS, t1.medianS)}${cpuRatio(t1, t2)}, peak RSS ${formatRatio(t2.peakRssMiB, t1.peakRssMiB)}` +
        ` (${formatGiB(t1.peakRssMiB)} -> ${formatGiB(t2.peakRssMiB)} GiB)`);
    }
    if (parts.length > 0) lines.push(`order 2 / order 1, ${first.config.id}: ${parts.join('; ')}`);
  }
  return lines;
}

/** ", CPU s/step 0.85 -> 2.06 (2.44x)": median CPU seconds per step of two results, when both have them. */
function cpuRatio(first: StepResult, second: StepResult): string {
  if (!first.cpuSamplesS?.length || !second.cpuSamplesS?.length) return '';
  const a = median(first.cpuSamplesS);
  const b = median(second.cpuSamplesS);
  return `, CPU s/step ${formatSeconds(a)} -> ${formatSeconds(b)} (${formatRatio(b, a)})`;
}

export function parseConfigs(text: string): SearchConfigId[] {
  const out: SearchConfigId[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^k(\d+)-b(\d+)$/i.exec(part);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`--configs: expected ids like k4-b64 (K, batch), got '${part}'`);
    const id = `k${Number(m[1])}-b${Number(m[2])}`;
    if (!out.some((c) => c.id === id)) out.push({ id, k: Number(m[1]), batch: Number(m[2]) });
  }
  if (out.length === 0) throw new Error('--configs: no configuration given');
  return out;
}

export interface SearchWorkerConfig {
  backend: string;
  threads: number;
  C: number;
  layers: number;
  K: number;
  steps: number;
  batch: number;
  hw: number;
  classes: number;
  in_channels: number;
  warmup: number;
  repeat: number;
  seed: number;
  /** Our side: MiB of activations kept before recomputing (absent: the library default). */
  activation_budget_mib?: number;
  /** PyTorch side only: no architecture gradients in the weight step (as ours). */
  freeze_arch?: boolean;
  /** The architecture step: 1 first order (absent), 2 the unrolled second order. */
  order?: ArchitectOrder;
}

// ---------------------------------------------------------------------------------------
// Our side (worker process)

function randomTensor(rng: Random, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = rng.normal();
  return fromArray(values, shape).keep();
}

function randomLabels(rng: Random, n: number, classes: number): Int32Array {
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(classes);
  return labels;
}

async function worker(config: SearchWorkerConfig): Promise<void> {
  await import(backendModule(config.backend).href);
  const backend = setBackend(config.backend, { threads: config.threads });
  manualSeed(config.seed);
  const model = new SearchNetwork({
    channels: config.C, layers: config.layers, k: config.K, steps: config.steps, multiplier: config.steps,
    classes: config.classes, inChannels: config.in_channels,
    ...(config.activation_budget_mib === undefined ? {} : { activationBudgetBytes: config.activation_budget_mib * 2 ** 20 }),
  });
  model.train();
  // The step of test/fixtures/handlers/search.ts and src/run/search.ts, defaults of spec section 6.
  const architect = createArchitect(config.order ?? 1, model);
  const weights = model.weightParameters();
  const sgd = new SGD(weights, { lr: 0.1, momentum: 0.9, weightDecay: 3e-4 });
  const rng = new Random(config.seed + 1);
  const shape = [config.batch, config.in_channels, config.hw, config.hw];
  const trainX = randomTensor(rng, shape);
  const trainLabels = randomLabels(rng, config.batch, config.classes);
  const validX = randomTensor(rng, shape);
  const validLabels = randomLabels(rng, config.batch, config.classes);

  const step = (): { total: number; arch: number; weight: number; loss: number } => {
    const t0 = performance.now();
    tidy(() => architect.step(validX, validLabels, { trainX, trainLabels, lr: 0.1, weightOptimizer: sgd }));
    const t1 = performance.now();
    model.zeroGrad();
    const loss = withFrozen(model.archParameters(), () => tidy(() => {
      const l = ops.crossEntropy(model.forward(trainX), trainLabels);
      backward(l);
      return l.item();
    }));
    clipGradNorm(weights, 5);
    sgd.step();
    const t2 = performance.now();
    return { total: (t2 - t0) / 1000, arch: (t1 - t0) / 1000, weight: (t2 - t1) / 1000, loss };
  };

  const samples: number[] = [];
  const archSamples: number[] = [];
  const weightSamples: number[] = [];
  const flops: number[] = [];
  let peak: PeakReport | null = null;
  const cpuSamples: number[] = [];
  for (let i = 0; i < config.warmup + config.repeat; i++) {
    const timed = i >= config.warmup;
    if (timed && peak === null) peak = measureOurPeak(backend); // right before the timed steps
    const flops0 = flopCount(backend);
    const cpu0 = processCpuSeconds();
    const s = step();
    if (timed) {
      cpuSamples.push(processCpuSeconds() - cpu0);
      samples.push(s.total);
      archSamples.push(s.arch);
      weightSamples.push(s.weight);
      flops.push(flopCount(backend) - flops0);
    }
    process.stderr.write(`    ours step ${i + 1}/${config.warmup + config.repeat}${timed ? '' : ' (warm-up)'}: ${s.total.toFixed(2)} s ` +
      `(arch ${s.arch.toFixed(2)} + weights ${s.weight.toFixed(2)}), loss ${s.loss.toFixed(4)}\n`);
  }
  const memory = backend.memoryStats();
  const out: StepResult = {
    side: 'ours', version: `${backend.name}${'build' in backend ? ` ${String(backend.build)}` : ''}`, threads: backend.threads,
    medianS: median(samples), samplesS: samples, cpuSamplesS: cpuSamples, archMedianS: median(archSamples), weightMedianS: median(weightSamples),
    parameters: weights.reduce((s, p) => s + p.numel, 0),
    peakRssMiB: peakRssMiB(), backendPeakMiB: memory.peakBytes / 2 ** 20, backendReservedMiB: memory.reservedBytes / 2 ** 20,
    cpuSeconds: processCpuSeconds(),
    ...(peak === null ? {} : { peak, flopsPerStep: median(flops) }),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------
// Parent process

const HELP = `usage: npm run bench -- search [options]

Seconds per search step (architecture step on a validation batch + weight step on a training
batch, both forward + backward; SGD with clipping; Adam on the architecture; first order, or
the unrolled second order: three more forward + backward passes on the training batch)
and peak RSS (VmHWM) of the PC-DARTS search network, C=16, 8 layers, 4 nodes, 32x32x3 inputs,
10 classes. Median of the timed steps after the warm-up steps; every configuration and side
in its own fresh process, one after the other.

options:
  --configs LIST        k<K>-b<batch> ids (default ${DEFAULT_CONFIGS})
  --order LIST          architecture step orders, each config at each: 1, 2 or 1,2 (default 1);
                        with both, a line compares order 2 with order 1 (time, RSS, backend peak)
  --vs-pytorch          also run the PyTorch implementation (bench/pytorch/search.py), after
                        checking it against the reference fixtures (check_fixtures.py)
  --threads N           threads of both sides (default: os.availableParallelism())
  --steps N             timed steps, median reported (default 3)
  --warmup N            untimed steps first (default 2: the first is much slower)
  --channels N          C (default 16)       --layers N   cells (default 8)
  --pytorch-freeze-arch PyTorch computes no architecture gradients in the weight step (as
                        ours); default: as the authors' script, which computes and discards them
  --no-check            skip check_fixtures.py
  --fixtures DIR        fixture folder for check_fixtures.py (default ../shared/fixtures/pytorch)
  --backend wasm|ref    our kernel backend (default wasm)
  --activation-budget MIB  our side: MiB of activations kept before MixedOps recompute
                        (default: the library's, ${DEFAULT_ACTIVATION_BUDGET_BYTES / 2 ** 20}; 0 recomputes all)
  --python PATH         interpreter with torch (default: $PCDARTS_PYTHON or /usr/bin/python3)
  --verbose             also print every timed step`;

/**
 * Runs bench/pytorch/check_fixtures.py; returns its summary (last line) and the FAIL lines.
 */
export async function checkFixtures(python: string, folder: string | null): Promise<string[]> {
  const { spawnSync } = await import('node:child_process');
  const args = [pytorchScript('check_fixtures.py'), ...(folder ? [folder] : [])];
  const result = spawnSync(python, args, { encoding: 'utf8', env: { ...process.env, ...threadEnv(1) }, timeout: 600_000 });
  const lines = `${result.stdout ?? ''}`.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  const summary = lines.filter((l) => l.startsWith('check_fixtures:'));
  const failures = lines.filter((l) => l.startsWith('FAIL'));
  if (summary.length === 0) {
    return [`check_fixtures.py did not finish (${result.error?.message ?? `exit ${result.status}`}): ${`${result.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ')}`];
  }
  return [...summary, ...failures.map((l) => `  ${l}`)];
}

export async function run(args: readonly string[]): Promise<void> {
  let configs = parseConfigs(DEFAULT_CONFIGS);
  let channels = 16;
  let layers = 8;
  let freezeArch = false;
  let check = true;
  let fixtures: string | null = null;
  let orders: ArchitectOrder[] = [1];
  const options = parseCommon(args, HELP, (flag, value) => {
    switch (flag) {
      case '--order': orders = parseOrders(value()); return true;
      case '--configs': configs = parseConfigs(value()); return true;
      case '--channels': channels = parsePositiveInt('--channels', value()); return true;
      case '--layers': layers = parsePositiveInt('--layers', value()); return true;
      case '--pytorch-freeze-arch': freezeArch = true; return true;
      case '--no-check': check = false; return true;
      case '--fixtures': fixtures = value(); return true;
      default: return false;
    }
  });
  if (options === null) return;
  const torch = await preamble(options);
  const withTorch = torch !== null;
  console.log(`network: search network C=${channels}, ${layers} layers, 4 nodes, 32x32x3, 10 classes; ` +
    `step = arch step (Adam) + weight step (SGD, clip 5), ${orders.map((o) => (o === 1 ? 'first order' : 'second order (unrolled)')).join(' and ')}; ${options.threads} threads; ` +
    `median of ${options.repeat} steps after ${options.warmup} warm-up; ours: backend ${options.backend}` +
    (withTorch ? `; PyTorch weight step ${freezeArch ? 'without' : 'with'} architecture gradients${freezeArch ? '' : ' (as the authors\' script)'}` : ''));
  if (withTorch && check) {
    for (const line of await checkFixtures(options.python, fixtures)) console.log(line);
    if (orders.includes(2)) for (const line of await checkFixtures(options.python, SECOND_ORDER_FIXTURES)) console.log(line);
  }

  const self = fileURLToPath(import.meta.url);
  const script = pytorchScript('search.py');
  const runs: { config: SearchConfigId; order: ArchitectOrder; ours: SideRun; torch: SideRun | null }[] = [];
  for (const base of configs) {
    for (const order of orders) {
      // Rows of the second order carry "-o2" (k4-b64-o2); the first order's keep their ids.
      const config = order === 1 ? base : { ...base, id: `${base.id}-o2` };
      const workerConfig: SearchWorkerConfig = {
        ...(options.activationBudgetMiB === null ? {} : { activation_budget_mib: options.activationBudgetMiB }),
        backend: options.backend, threads: options.threads, C: channels, layers, K: config.k, steps: 4, batch: config.batch,
        hw: 32, classes: 10, in_channels: 3, warmup: options.warmup, repeat: options.repeat, seed: 1, ...(order === 2 ? { order } : {}),
      };
      const ours = await measureSide('ours', config.id, process.execPath, [...process.execArgv, self, '--worker', JSON.stringify(workerConfig)]);
      let theirs: SideRun | null = null;
      if (withTorch) {
        theirs = await measureSide('pytorch', config.id, options.python,
          [script, JSON.stringify({ ...workerConfig, freeze_arch: freezeArch })], threadEnv(options.threads));
      }
      runs.push({ config, order, ours, torch: theirs });
    }
  }

  const headers = ['config', 'images/step', 'ours s/step', 'ours img/s', 'ours RSS GiB'];
  if (withTorch) headers.push('torch s/step', 'torch img/s', 'torch RSS GiB', 'time ratio', 'RSS ratio');
  const rows = runs.map(({ config, ours, torch: theirs }) => {
    const images = 2 * config.batch;
    const o = ours.result;
    const row = [config.id, String(images), o ? formatSeconds(o.medianS) : 'error', formatRate(images, o?.medianS), formatGiB(o?.peakRssMiB)];
    if (withTorch) {
      const t = theirs?.result ?? null;
      row.push(t ? formatSeconds(t.medianS) : 'error', formatRate(images, t?.medianS), formatGiB(t?.peakRssMiB),
        formatRatio(o?.medianS, t?.medianS), formatRatio(o?.peakRssMiB, t?.peakRssMiB));
    }
    return row;
  });
  console.log('');
  console.log(formatTable(headers, rows));
  if (withTorch) console.log('ratio = ours / PyTorch, same run, same thread count (below 1: we are faster / smaller)');
  const fastest = fastestStepLine(runs.map((r) => ({ id: r.config.id, ours: r.ours.result, torch: r.torch?.result ?? null })));
  if (fastest) console.log(fastest);
  const cpuLine = cpuTimeLine(runs.map((r) => ({ id: r.config.id, ours: r.ours.result, torch: r.torch?.result ?? null })), options.threads);
  if (cpuLine) console.log(cpuLine);
  console.log('images/s = 2 x batch images per step (a validation batch for the arch step + a training batch) / seconds per step');

  const split = runs.flatMap(({ config, ours, torch: theirs }) => [ours, theirs]
    .filter((r): r is SideRun => r?.result?.archMedianS !== undefined)
    .map((r) => `${r.side} ${config.id} ${formatSeconds(r.result?.archMedianS)} + ${formatSeconds(r.result?.weightMedianS)}`));
  if (split.length > 0) console.log(`arch step + weight step (median s): ${split.join(', ')}`);
  for (const line of efficiencyLines(runs.map((r) => ({ id: r.config.id, ours: r.ours.result, torch: r.torch?.result ?? null })))) console.log(line);
  const memory = runs.filter((r) => r.ours.result?.backendPeakMiB !== undefined)
    .map((r) => `${r.config.id} ${formatGiB(r.ours.result?.backendPeakMiB)} live peak / ${formatGiB(r.ours.result?.backendReservedMiB)} reserved`);
  if (memory.length > 0) console.log(`our backend memory (GiB): ${memory.join(', ')}`);
  for (const line of orderLines(runs)) console.log(line);
  const anchors = channels !== 16 || layers !== 8 || !orders.includes(1) ? [] : configs.filter((c) => ANCHORS[c.id]).map((c) => `${c.id} ${ANCHORS[c.id].seconds} s / ${ANCHORS[c.id].gb} GB`);
  if (anchors.length > 0) {
    console.log(`note: reference (../shared/anchors/pytorch-search.md: the authors' code, PyTorch 1.13, 2 threads, idle machine): ${anchors.join(', ')}` +
      (withTorch ? '; the ratios above come from this run\'s own PyTorch measurement' : ''));
  }
  const all = runs.flatMap((r) => [r.ours, ...(r.torch ? [r.torch] : [])]);
  for (const line of reportProcesses(all, options.threads)) console.log(line);
  if (options.verbose) for (const line of samplesLines(all)) console.log(line);
  if (withTorch) console.log(`\n${LOAD_REMINDER}`);
  if (all.some((r) => r.error !== null)) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------
// Worker entry: node dist/bench/search.js --worker '<json>'

runAsWorker<SearchWorkerConfig>(import.meta.url, 'search', worker, reportWorkerError);
