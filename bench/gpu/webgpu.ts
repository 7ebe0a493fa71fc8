/**
 * The WebGPU side of bench/gpu/run.sh: adapter probe, GEMM GFLOP/s, cost per dispatch, and
 * convolution forward / backward at the PC-DARTS search shapes (bench/gpu/shapes.json).
 *
 *   node dist/bench/gpu/webgpu.js [--allow-software] [--quick] [--json FILE] [--shapes FILE]
 *
 * Without --allow-software it stops (exit 3) unless the adapter is a discrete GPU. Every
 * measured kernel is first checked against the reference backend on a slice of its output
 * (sample 0 of a convolution, two rows of a GEMM), so a figure is never of a wrong result.
 * Timing: kernels are recorded `reps` times, submitted, and the wall time until the device
 * is idle again is divided by `reps`; the median of `trials` such windows is reported.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

import { makeConvGeometry, type ConvGeometry } from '../../src/kernels/backend.js';
import { ReferenceBackend } from '../../src/kernels/ref/backend.js';
import { createWebGpuBackend, type GpuBuffer, type WebGpuBackend } from '../../src/kernels/webgpu/backend.js';
import { Random } from '../../src/tensor/random.js';

interface ConvShape {
  name: string; batch: number; inChannels: number; outChannels: number; size: number;
  kernel: number; stride: number; padding: number; dilation: number; groups: number;
}

interface Shapes {
  gemm: number[];
  quickGemm: number[];
  quickBatch: number;
  conv: ConvShape[];
}

interface Options {
  allowSoftware: boolean;
  quick: boolean;
  json: string | null;
  shapes: string;
}

function parse(argv: readonly string[]): Options {
  const o: Options = { allowSoftware: false, quick: false, json: null, shapes: new URL('../../../bench/gpu/shapes.json', import.meta.url).pathname };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--allow-software') o.allowSoftware = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--json' || a === '--shapes') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a}: expected a file name`);
      if (a === '--json') o.json = v;
      else o.shapes = v;
    } else throw new UsageError(`unknown option '${a}' (known: --allow-software, --quick, --json FILE, --shapes FILE)`);
  }
  return o;
}

class UsageError extends Error {}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median milliseconds of one `record()` over `trials` windows of `reps` calls (after one warm-up window). */
async function time(gpu: WebGpuBackend, record: () => void, reps: number, trials: number): Promise<{ ms: number; fastestMs: number }> {
  for (let i = 0; i < Math.min(reps, 3); i++) record();
  await gpu.sync();
  const samples: number[] = [];
  for (let t = 0; t < trials; t++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) record();
    await gpu.sync();
    samples.push((performance.now() - start) / reps);
  }
  return { ms: median(samples), fastestMs: Math.min(...samples) };
}

function randn(rng: Random, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** Relative L2 distance of a slice from its reference (0 when both are zero). */
function relError(actual: Float32Array, expected: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

const CHECK_TOLERANCE = 1e-4;

function checked(what: string, err: number): number {
  if (!(err <= CHECK_TOLERANCE)) throw new Error(`${what}: the kernel's result is off the reference by ${err.toExponential(2)} (relative L2); not timing a wrong kernel`);
  return err;
}

async function gemmRow(gpu: WebGpuBackend, ref: ReferenceBackend, n: number, quick: boolean) {
  const rng = new Random(n);
  const x = randn(rng, n * n);
  const w = randn(rng, n * n);
  const xb = gpu.fromArray(x);
  const wb = gpu.fromArray(w);
  const yb = gpu.alloc(n * n);
  gpu.linear(xb, wb, null, yb, n, n, n);
  const rows = 2;
  const got = await gpu.read(yb, rows * n);
  const want = new Float32Array(rows * n);
  ref.linear(x.subarray(0, rows * n), w, null, want, rows, n, n);
  const err = checked(`gemm ${n}`, relError(got, want));
  const flops = 2 * n * n * n;
  const reps = quick ? 1 : Math.max(1, Math.min(50, Math.round(2e11 / flops)));
  const t = await time(gpu, () => gpu.linear(xb, wb, null, yb, n, n, n), reps, quick ? 1 : 5);
  for (const b of [xb, wb, yb]) gpu.free(b);
  return { m: n, n, k: n, ms: t.ms, fastestMs: t.fastestMs, gflops: flops / (t.ms * 1e6), checkError: err };
}

async function dispatchCost(gpu: WebGpuBackend, quick: boolean) {
  const b = gpu.alloc(256);
  const reps = quick ? 200 : 5000;
  const t = await time(gpu, () => gpu.fill(b, 1, 1), reps, quick ? 1 : 5);
  // a host round trip: record one kernel, submit, read one float back
  const rt: number[] = [];
  for (let i = 0; i < (quick ? 3 : 50); i++) {
    const start = performance.now();
    gpu.fill(b, i, 1);
    const v = await gpu.read(b, 1);
    rt.push(performance.now() - start);
    if (v[0] !== i) throw new Error(`dispatch check: read ${v[0]}, wrote ${i}`);
  }
  gpu.free(b);
  return { usPerDispatch: t.ms * 1000, fastestUsPerDispatch: t.fastestMs * 1000, readRoundTripMs: median(rt) };
}

function geometry(s: ConvShape, batch: number): ConvGeometry {
  return makeConvGeometry({
    batch, inChannels: s.inChannels, inH: s.size, inW: s.size, outChannels: s.outChannels,
    kernel: s.kernel, stride: s.stride, padding: s.padding, dilation: s.dilation, groups: s.groups,
  });
}

async function convRow(gpu: WebGpuBackend, ref: ReferenceBackend, s: ConvShape, batch: number, quick: boolean) {
  const g = geometry(s, batch);
  const one = geometry(s, 1);
  const rng = new Random(7);
  const nx = g.batch * g.inChannels * g.inH * g.inW;
  const nw = g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  const ny = g.batch * g.outChannels * g.outH * g.outW;
  const x = randn(rng, nx);
  const w = randn(rng, nw, 0.3);
  const gy = randn(rng, ny);
  const [xb, wb, gyb] = [x, w, gy].map((a) => gpu.fromArray(a));
  const yb = gpu.alloc(ny);
  const gxb = gpu.alloc(nx);
  const gwb = gpu.alloc(nw);
  // check sample 0 of the forward pass and of the input gradient against the reference
  gpu.conv2d(xb, wb, yb, g);
  gpu.conv2dGradInput(gyb, wb, gxb, g);
  gpu.conv2dGradWeight(xb, gyb, gwb, g);
  const y0 = await gpu.read(yb, ny / batch);
  const gx0 = await gpu.read(gxb, nx / batch);
  const wantY = new Float32Array(ny / batch);
  ref.conv2d(x.subarray(0, nx / batch), w, wantY, one);
  const wantGx = new Float32Array(nx / batch);
  ref.conv2dGradInput(gy.subarray(0, ny / batch), w, wantGx, one);
  const checks: Record<string, number> = {
    forward: checked(`${s.name} forward`, relError(y0, wantY)),
    gradInput: checked(`${s.name} gradInput`, relError(gx0, wantGx)),
  };
  if (quick) {
    const gw = await gpu.read(gwb);
    const wantGw = new Float32Array(nw);
    ref.conv2dGradWeight(x, gy, wantGw, g);
    checks.gradWeight = checked(`${s.name} gradWeight`, relError(gw, wantGw));
  }
  const flops = 2 * g.batch * g.outChannels * g.outH * g.outW * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  const reps = quick ? 1 : Math.max(2, Math.min(100, Math.round(2e10 / flops)));
  const trials = quick ? 1 : 5;
  const fwd = await time(gpu, () => gpu.conv2d(xb, wb, yb, g), reps, trials);
  const gin = await time(gpu, () => gpu.conv2dGradInput(gyb, wb, gxb, g), reps, trials);
  const gwt = await time(gpu, () => gpu.conv2dGradWeight(xb, gyb, gwb, g), reps, trials);
  for (const b of [xb, wb, gyb, yb, gxb, gwb]) gpu.free(b);
  const row = (t: { ms: number; fastestMs: number }) => ({ ms: t.ms, fastestMs: t.fastestMs, gflops: flops / (t.ms * 1e6) });
  return { name: s.name, batch, shape: { ...s, batch }, flops, forward: row(fwd), gradInput: row(gin), gradWeight: row(gwt), checkError: checks };
}

async function main(argv: readonly string[]): Promise<number> {
  const o = parse(argv);
  const shapes = JSON.parse(readFileSync(o.shapes, 'utf8')) as Shapes;
  let gpu: WebGpuBackend;
  try {
    gpu = await createWebGpuBackend({ powerPreference: 'high-performance' });
  } catch (error) {
    console.error(`bench/gpu: ${(error as Error).message}`);
    return 3;
  }
  const s = gpu.summary;
  console.error(`adapter: ${s.vendor} ${s.architecture} ${s.description} (${s.software ? 'software' : s.discrete ? 'discrete GPU' : 'hardware, not known to be discrete'})`);
  if (!s.discrete && !o.allowSoftware) {
    gpu.dispose();
    console.error('bench/gpu: no discrete GPU adapter; stopping (pass --allow-software for a smoke run on SwiftShader or llvmpipe, whose figures mean nothing)');
    return 3;
  }
  const ref = new ReferenceBackend();
  const result: Record<string, unknown> = {
    side: 'webgpu',
    smoke: o.quick || !s.discrete,
    adapter: s,
    host: { platform: process.platform, arch: process.arch, node: process.version, cpus: os.cpus().length, loadavg: os.loadavg() },
  };
  result.dispatch = await dispatchCost(gpu, o.quick);
  console.error(`dispatch: ${(result.dispatch as { usPerDispatch: number }).usPerDispatch.toFixed(2)} us`);
  const gemm = [];
  for (const n of o.quick ? shapes.quickGemm : shapes.gemm) {
    const r = await gemmRow(gpu, ref, n, o.quick);
    console.error(`gemm ${n}: ${r.gflops.toFixed(1)} GFLOP/s`);
    gemm.push(r);
  }
  result.gemm = gemm;
  const conv = [];
  for (const shape of shapes.conv) {
    const r = await convRow(gpu, ref, shape, o.quick ? shapes.quickBatch : shape.batch, o.quick);
    console.error(`${r.name} b${r.batch}: fwd ${r.forward.ms.toFixed(3)} ms, gradInput ${r.gradInput.ms.toFixed(3)} ms, gradWeight ${r.gradWeight.ms.toFixed(3)} ms`);
    conv.push(r);
  }
  result.conv = conv;
  result.peakDeviceBytes = gpu.memoryStats().peakBytes;
  result.pipelines = gpu.runtime.pipelineCount;
  gpu.dispose();
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (o.json) writeFileSync(o.json, text);
  else process.stdout.write(text);
  return 0;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (error: unknown) => {
  console.error(`bench/gpu: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
});
