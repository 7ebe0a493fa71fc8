/**
 * `npm run bench -- kernels`: each wasm kernel on the shapes the search and the retraining
 * run, timed against the multiply-add peak loop measured in the same process right before
 * it (assembly/peak.ts), at 1 thread and at every core, on one or both kernel builds.
 *
 * Why relative to a peak measured just before: on a shared machine absolute times move with
 * the other load, but a kernel and the peak loop measured a moment apart on the same core
 * are slowed alike, so "% of peak" and "N threads vs 1" stay readable when seconds are not.
 *
 * Every (build, thread count) runs in its own fresh process, one after the other: the
 * parent spawns `node [--experimental-wasm-relaxed-simd] dist/bench/kernels.js --worker
 * '<json>'`, which prints one JSON line.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { makeConvGeometry, makePoolGeometry, type ConvGeometry } from '../src/kernels/backend.js';
import { relaxedSimdAvailable, selectKernelBuild, WasmBackend, type KernelBuild } from '../src/kernels/wasm/backend.js';
import { pytorchScript, threadEnv } from './search.js';
import {
  PYTORCH_HINT, availableCores, defaultPython, detectPytorch, formatRatio, formatTable, machineBusySeconds, machineLine, median, otherLoad, parsePositiveInt, parseThreadList,
  processCpuSeconds, runAsWorker, runJsonChild, loadWarning, threadTimes,
} from './harness.js';

export const description = 'each wasm kernel on search/retraining shapes: ms, GFLOP/s and % of the multiply-add peak measured just before, 1 thread vs all';

interface KernelsWorkerConfig {
  build: KernelBuild;
  threads: number;
  repeat: number;
  rows: string[] | null;
  /** Only print the convolution rows' geometry (for the PyTorch side), measure nothing. */
  list?: boolean;
}

interface RowResult {
  id: string;
  /** Fastest and median call, ms. */
  bestMs: number;
  medianMs: number;
  /** Counted FLOPs of one call (0: a memory-bound kernel). */
  flops: number;
  /** GFLOP/s of the peak loop measured right before (1 thread, or all threads when threads > 1). */
  peakGflops: number;
  /** Batches of calls measured with no run-queue wait (0: every batch was disturbed). */
  clean: number;
  /** Whether some peak sample before the row ran with no run-queue wait. */
  peakClean: boolean;
}

interface WorkerOutput {
  build: KernelBuild;
  threads: number;
  peakOne: number;
  peakAll: number;
  rows: RowResult[];
  cpuSeconds: number;
}

// ---------------------------------------------------------------------------------------
// Rows

type Row = { id: string; flops: number; run: () => void; conv?: TorchConvRow };

/** A convolution row as bench/pytorch/kernels.py runs it. */
interface TorchConvRow {
  id: string;
  kind: 'fwd' | 'gradIn' | 'gradW';
  batch: number; inC: number; outC: number; H: number; W: number;
  k: number; stride: number; pad: number; dilation: number; groups: number;
}

function conv(p: Parameters<typeof makeConvGeometry>[0]): ConvGeometry {
  return makeConvGeometry(p);
}

function buildRows(be: WasmBackend): Row[] {
  let seed = 1;
  const buf = (n: number): Float32Array => {
    const a = be.alloc(n);
    let s = seed++ >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = s / 2 ** 31 - 1;
    }
    return a;
  };
  const rows: Row[] = [];
  const convRows = (tag: string, g: ConvGeometry): void => {
    const x = buf(g.batch * g.inChannels * g.inH * g.inW);
    const w = buf(g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW);
    const y = buf(g.batch * g.outChannels * g.outH * g.outW);
    const gx = buf(x.length);
    const gw = buf(w.length);
    const flops = 2 * g.batch * g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW * g.outH * g.outW;
    const torchRow = (id: string, kind: TorchConvRow['kind']): TorchConvRow => ({
      id, kind, batch: g.batch, inC: g.inChannels, outC: g.outChannels, H: g.inH, W: g.inW,
      k: g.kernelH, stride: g.strideH, pad: g.padH, dilation: g.dilationH, groups: g.groups,
    });
    rows.push({ id: `${tag} fwd`, flops, run: () => be.conv2d(x, w, y, g), conv: torchRow(`${tag} fwd`, 'fwd') });
    rows.push({ id: `${tag} gradIn`, flops, run: () => be.conv2dGradInput(y, w, gx, g), conv: torchRow(`${tag} gradIn`, 'gradIn') });
    rows.push({ id: `${tag} gradW`, flops, run: () => be.conv2dGradWeight(x, y, gw, g), conv: torchRow(`${tag} gradW`, 'gradW') });
  };
  const dw = (C: number, k: number, d: number, H = 32): ConvGeometry =>
    conv({ batch: 64, inChannels: C, inH: H, inW: H, outChannels: C, kernel: k, padding: (d * (k - 1)) / 2, dilation: d, groups: C });
  const pw = (Ci: number, Co: number, H: number, N = 64): ConvGeometry =>
    conv({ batch: N, inChannels: Ci, inH: H, inW: H, outChannels: Co, kernel: 1 });
  // Search, K=4 (operations see C/4 = 4 channels at 32x32) and K=1 (16 channels).
  convRows('search dw3x3 64x4x32', dw(4, 3, 1));
  convRows('search dw5x5 64x4x32', dw(4, 5, 1));
  convRows('search dw3x3 d2 64x4x32', dw(4, 3, 2));
  convRows('search pw 4->4 64x32', pw(4, 4, 32));
  // Later search stages: 8 channels at 16x16, 16 at 8x8 (same numel, smaller planes).
  convRows('search dw3x3 64x8x16', dw(8, 3, 1, 16));
  convRows('search dw3x3 64x16x8', dw(16, 3, 1, 8));
  convRows('search dw5x5 64x16x8', dw(16, 5, 1, 8));
  convRows('search pw 8->8 64x16', pw(8, 8, 16));
  convRows('search pw 16->16 64x8', pw(16, 16, 8));
  convRows('search dw3x3 64x16x32', dw(16, 3, 1));
  convRows('search pw 16->16 64x32', pw(16, 16, 32));
  // Retraining PC_DARTS_cifar C36: cells at 32x32 (36), 16x16 (72), 8x8 (144), preprocessing 1x1s, stem.
  convRows('train dw3x3 64x36x32', dw(36, 3, 1));
  convRows('train pw 36->36 64x32', pw(36, 36, 32));
  convRows('train pw 144->36 64x32', pw(144, 36, 32));
  convRows('train pw 72->72 64x16', pw(72, 72, 16));
  convRows('train pw 144->144 64x8', pw(144, 144, 8));
  convRows('train stem 3x3 3->108', conv({ batch: 64, inChannels: 3, inH: 32, inW: 32, outChannels: 108, kernel: 3, padding: 1 }));
  // Memory-bound kernels of a search cell, [64, 4, 32, 32].
  {
    const n = 64 * 4 * 32 * 32;
    const x = buf(n);
    const gy = buf(n);
    const y = buf(n);
    const gx = buf(n);
    const mean = buf(16);
    const inv = buf(16);
    const bn = { batch: 64, channels: 4, spatial: 1024 };
    const pool = makePoolGeometry({ batch: 64, channels: 4, inH: 32, inW: 32, kernel: 3, stride: 1, padding: 1 });
    rows.push({ id: 'search relu 64x4x32', flops: 0, run: () => be.relu(x, y, n) });
    rows.push({ id: 'search reluBackward 64x4x32', flops: 0, run: () => be.reluBackward(gy, x, gx, n) });
    rows.push({ id: 'search bn train fwd 64x4x32', flops: 0, run: () => be.batchNormTrain(x, null, null, 1e-5, y, mean, inv, bn) });
    rows.push({ id: 'search bn train bwd 64x4x32', flops: 0, run: () => be.batchNormTrainBackward(gy, x, mean, inv, null, gx, null, null, bn) });
    rows.push({ id: 'search maxpool3 fwd 64x4x32', flops: 0, run: () => be.maxPool2d(x, y, pool) });
    rows.push({ id: 'search maxpool3 bwd 64x4x32', flops: 0, run: () => be.maxPool2dBackward(x, gy, gx, pool) });
    rows.push({ id: 'search avgpool3 fwd 64x4x32', flops: 0, run: () => be.avgPool2d(x, y, pool) });
    rows.push({ id: 'search axpy 64x4x32', flops: 0, run: () => be.axpy(0.5, x, y, n) });
    const pool8 = makePoolGeometry({ batch: 64, channels: 16, inH: 8, inW: 8, kernel: 3, stride: 1, padding: 1 });
    rows.push({ id: 'search maxpool3 fwd 64x16x8', flops: 0, run: () => be.maxPool2d(x, y, pool8) });
    rows.push({ id: 'search maxpool3 bwd 64x16x8', flops: 0, run: () => be.maxPool2dBackward(x, gy, gx, pool8) });
    const bn8 = { batch: 64, channels: 16, spatial: 64 };
    rows.push({ id: 'search bn train fwd 64x16x8', flops: 0, run: () => be.batchNormTrain(x, null, null, 1e-5, y, mean, inv, bn8) });
    const xs = Array.from({ length: 7 }, () => buf(n));
    rows.push({ id: 'search weightedSum 7x 64x4x32', flops: 0, run: () => be.weightedSum(xs, [1, 2, 3, 4, 5, 6, 7].map((v) => v / 28), y, n) });
  }
  // A tiny job: what one call costs when the work itself is nothing.
  {
    const x = buf(64);
    const y = buf(64);
    rows.push({ id: 'tiny relu (64 floats)', flops: 0, run: () => be.relu(x, y, 64) });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Worker

/**
 * Samples of `fn` as batches of calls lasting at least `minMs`, each with its wall time per
 * call and the run-queue wait of our threads during it; the fastest "clean" batch (wait
 * below 2 % of its wall time: nobody else held our cores) wins, else the fastest of all.
 */
function sample(fn: () => void, minMs: number, batches: number): { bestMs: number; medianMs: number; clean: number } {
  let calls = 1;
  for (;;) {
    const t = performance.now();
    for (let i = 0; i < calls; i++) fn();
    if (performance.now() - t >= minMs || calls >= 1 << 20) break;
    calls *= 2;
  }
  const all: number[] = [];
  const clean: number[] = [];
  for (let b = 0; b < batches; b++) {
    const before = threadTimes();
    const t = performance.now();
    for (let i = 0; i < calls; i++) fn();
    const wall = performance.now() - t;
    const after = threadTimes();
    all.push(wall / calls);
    if (before && after && (after.waitNs - before.waitNs) / 1e6 < 0.02 * wall) clean.push(wall / calls);
  }
  const pool = clean.length > 0 ? clean : all;
  return { bestMs: Math.min(...pool), medianMs: median(pool), clean: clean.length };
}

async function worker(config: KernelsWorkerConfig): Promise<void> {
  const be = new WasmBackend({ threads: config.threads, build: config.build });
  const rows = buildRows(be).filter((r) => config.rows === null || config.rows.some((f) => r.id.includes(f)));
  if (config.list) {
    be.dispose();
    process.stdout.write(`${JSON.stringify(rows.flatMap((r) => (r.conv ? [r.conv] : [])))}\n`);
    return;
  }
  const overall = be.measurePeak(100, 5);
  const out: RowResult[] = [];
  // The peak loop as a sample too: one call = 2 ms of multiply-adds on every thread.
  const peakRate = (): number => {
    const one = be.measurePeak(2, 1);
    return config.threads > 1 ? one.allThreads : one.oneThread;
  };
  for (const row of rows) {
    for (let i = 0; i < 3; i++) row.run();
    // Peak right before the row, from its cleanest samples.
    let peak = 0;
    let peakAny = 0;
    for (let i = 0; i < 8; i++) {
      const before = threadTimes();
      const t = performance.now();
      const rate = peakRate();
      const wall = performance.now() - t;
      const after = threadTimes();
      peakAny = Math.max(peakAny, rate);
      if (!before || !after || (after.waitNs - before.waitNs) / 1e6 < 0.02 * wall) peak = Math.max(peak, rate);
    }
    const peakClean = peak > 0;
    if (!peakClean) peak = peakAny;
    const s = sample(row.run, 5, Math.max(5, Math.min(config.repeat, 40)));
    out.push({ id: row.id, bestMs: s.bestMs, medianMs: s.medianMs, flops: row.flops, peakGflops: peak, peakClean, clean: s.clean });
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  be.dispose();
  const result: WorkerOutput = {
    build: be.build, threads: be.threads, peakOne: overall.oneThread, peakAll: overall.allThreads, rows: out, cpuSeconds: processCpuSeconds(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ---------------------------------------------------------------------------------------
// Parent

const HELP = `usage: npm run bench -- kernels [options]

Each wasm kernel (forward, input gradient, weight gradient of the convolutions; the
memory-bound kernels of a search cell) on the search (K=4, K=1) and retraining (C=36)
shapes: fastest call in ms, GFLOP/s, and that as a % of the multiply-add peak loop measured
in the same process right before the row; then N threads against 1 (every kernel should be
at least as fast on N threads, serial or not).

options:
  --threads LIST     thread counts (default 1,${availableCores()})
  --builds LIST      simd, relaxed-simd or both (default: the build this Node uses; on Node 20
                     relaxed-simd runs with --experimental-wasm-relaxed-simd)
  --repeat N         batches of calls per row (default 20, each at least 5 ms)
  --rows TEXT,...    only rows whose id contains one of these
  --vs-pytorch       also time PyTorch's own kernels for the convolution rows (F.conv2d,
                     aten.convolution_backward; bench/pytorch/kernels.py), same thread counts,
                     same clean-batch rule, and print ours / PyTorch
  --python PATH      interpreter with torch (default: $PCDARTS_PYTHON or /usr/bin/python3)
  --json             print the raw results as JSON too`;

export async function run(args: readonly string[]): Promise<void> {
  let threads = [1, availableCores()].filter((t, i, a) => a.indexOf(t) === i);
  let builds: KernelBuild[] = [selectKernelBuild()];
  let repeat = 20;
  let rows: string[] | null = null;
  let json = false;
  let vsPytorch = false;
  let python = defaultPython();
  for (let i = 0; i < args.length; i++) {
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${args[i - 1]}: missing value`);
      return v;
    };
    switch (args[i]) {
      case '--help': case '-h': console.log(HELP); return;
      case '--threads': threads = parseThreadList(value()); break;
      case '--builds': builds = value().split(',').map((b) => {
        if (b !== 'simd' && b !== 'relaxed-simd') throw new Error(`--builds: expected simd and/or relaxed-simd, got '${b}'`);
        return b;
      }); break;
      case '--repeat': repeat = parsePositiveInt('--repeat', value()); break;
      case '--rows': rows = value().split(','); break;
      case '--json': json = true; break;
      case '--vs-pytorch': vsPytorch = true; break;
      case '--python': python = value(); break;
      default: throw new Error(`unknown option '${args[i]}'\n\n${HELP}`);
    }
  }
  const torchVersion = vsPytorch ? detectPytorch(python) : null;
  if (vsPytorch && torchVersion === null) console.log(`PyTorch not found (\`${python} -c 'import torch'\` failed): ${PYTORCH_HINT}`);
  console.log(machineLine(torchVersion ?? 'not used'));
  const busy = await loadWarning(0.1);
  console.log(busy ?? 'other load before starting: below 0.1 cores (idle enough)');
  const self = fileURLToPath(import.meta.url);
  const results: { key: string; out: WorkerOutput; load: number | null }[] = [];
  for (const build of builds) {
    // This process's node flags, plus the one that enables relaxed SIMD on Node 20 when needed.
    const flag = '--experimental-wasm-relaxed-simd';
    const flags = [...process.execArgv, ...(build === 'relaxed-simd' && !relaxedSimdAvailable() ? [flag] : [])];
    for (const t of threads) {
      const config: KernelsWorkerConfig = { build, threads: t, repeat, rows };
      process.stderr.write(`  measuring ${build} at ${t} thread${t > 1 ? 's' : ''} (fresh process) `);
      const busyBefore = machineBusySeconds();
      const started = performance.now();
      const out = await runJsonChild<WorkerOutput>(process.execPath, [...flags, self, '--worker', JSON.stringify(config)],
        { env: { PCDARTS_WASM_BUILD: build } });
      const load = otherLoad(busyBefore, machineBusySeconds(), out.cpuSeconds, (performance.now() - started) / 1000);
      results.push({ key: `${build}@${t}`, out, load });
    }
  }
  const torchRuns: { threads: number; rows: { id: string; bestMs: number; clean: number }[] }[] = [];
  if (torchVersion !== null) {
    const list = await runJsonChild<TorchConvRow[]>(process.execPath, [self, '--worker', JSON.stringify({ build: builds[0], threads: 1, repeat, rows, list: true })],
      { env: { PCDARTS_WASM_BUILD: builds[0] } }).catch(() => null);
    for (const t of list && list.length > 0 ? threads : []) {
      process.stderr.write(`  measuring PyTorch at ${t} thread${t > 1 ? 's' : ''} (fresh process) `);
      const out = await runJsonChild<{ threads: number; rows: { id: string; bestMs: number; clean: number }[] }>(
        python, [pytorchScript('kernels.py'), JSON.stringify({ threads: t, repeat, rows: list })], { env: threadEnv(t) });
      torchRuns.push({ threads: t, rows: out.rows });
    }
  }
  for (const r of results) {
    console.log(`wasm ${r.out.build} at ${r.out.threads} thread(s): multiply-add peak ${r.out.peakOne.toFixed(1)} GFLOP/s on 1 thread, ` +
      `${r.out.peakAll.toFixed(1)} on all ${r.out.threads} (${(r.out.peakAll / r.out.peakOne).toFixed(2)}x)` +
      `; other load while measuring ${r.load === null ? '?' : r.load.toFixed(2)} cores`);
  }
  const headers = ['kernel'];
  for (const r of results) headers.push(`${r.key} ms`, 'GFLOP/s', '% peak');
  const scaling: { build: KernelBuild; one: WorkerOutput; many: WorkerOutput }[] = [];
  for (const build of builds) {
    const one = results.find((r) => r.out.build === build && r.out.threads === 1)?.out;
    for (const r of results.filter((x) => x.out.build === build && x.out.threads > 1)) if (one) scaling.push({ build, one, many: r.out });
  }
  for (const s of scaling) headers.push(`${s.build} ${s.many.threads}t/1t`);
  for (const tr of torchRuns) headers.push(`torch@${tr.threads} ms`, `${builds[builds.length - 1]}/torch@${tr.threads}`);
  const ids = results[0]?.out.rows.map((r) => r.id) ?? [];
  const table = ids.map((id) => {
    const cells = [id];
    for (const r of results) {
      const row = r.out.rows.find((x) => x.id === id);
      if (!row) { cells.push('-', '-', '-'); continue; }
      const gflops = row.flops > 0 ? row.flops / row.bestMs / 1e6 : null;
      cells.push(`${row.bestMs.toFixed(3)}${row.clean === 0 ? '?' : ''}`, gflops === null ? '' : gflops.toFixed(1), gflops === null ? '' : `${(100 * gflops / row.peakGflops).toFixed(0)} %${row.peakClean && row.clean > 0 ? '' : '?'}`);
    }
    for (const s of scaling) {
      const a = s.one.rows.find((x) => x.id === id);
      const b = s.many.rows.find((x) => x.id === id);
      cells.push(a && b ? `${(a.bestMs / b.bestMs).toFixed(2)}x${b.bestMs > a.bestMs * 1.05 ? ' SLOWER' : ''}` : '-');
    }
    for (const tr of torchRuns) {
      const t = tr.rows.find((x) => x.id === id);
      const ours = results.filter((r) => r.out.build === builds[builds.length - 1] && r.out.threads === tr.threads)[0]?.out.rows.find((x) => x.id === id);
      cells.push(t ? `${t.bestMs.toFixed(3)}${t.clean === 0 ? '?' : ''}` : '', t && ours ? formatRatio(ours.bestMs, t.bestMs) : '');
    }
    return cells;
  });
  console.log('');
  console.log(formatTable(headers, table));
  console.log('ms = fastest call of the batches that ran with no run-queue wait (? = none did: disturbed, take with salt); % peak = GFLOP/s over the peak loop measured in the same process just before the row ' +
    '(1-thread peak at 1 thread, all-thread peak otherwise); Nt/1t = speed-up of N threads over 1 (SLOWER: more than 5 % slower)' +
    (torchRuns.length > 0 ? `; torch = PyTorch ${torchVersion}'s own kernel for the row, ours/torch below 1: we are faster` : ''));
  if (json) console.log(JSON.stringify(results));
}

runAsWorker<KernelsWorkerConfig>(import.meta.url, 'kernels', worker, (error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
