/**
 * Child process of builds.test.ts (not a test file itself): runs the same kernels on both
 * wasm builds in one process (so it needs a runtime with relaxed SIMD: Node 22+, or Node 20
 * with --experimental-wasm-relaxed-simd) and prints, per kernel, how many output elements
 * differ bitwise between the builds and each build's relative L2 error against the float64
 * reference backend. One JSON line on stdout.
 */
import { makeConvGeometry, type ConvGeometry, type KernelBackend } from '../../src/kernels/backend.js';
import { ReferenceBackend } from '../../src/kernels/ref/backend.js';
import { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { Random } from '../../src/tensor/random.js';

const ref = new ReferenceBackend();
const builds = {
  simd: new WasmBackend({ threads: 2, parallelThresholdNs: 0, build: 'simd' }),
  relaxed: new WasmBackend({ threads: 2, parallelThresholdNs: 0, build: 'relaxed-simd' }),
};

function randn(rng: Random, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function on(be: KernelBackend, data: Float32Array): Float32Array {
  const a = be.alloc(data.length);
  a.set(data);
  return a;
}

function relL2(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < e.length; i++) {
    num += (a[i] - e[i]) ** 2;
    den += e[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

interface Row { kernel: string; n: number; differ: number; errSimd: number; errRelaxed: number }
const rows: Row[] = [];

function compare(kernel: string, outSize: number, call: (be: KernelBackend, out: Float32Array) => void): void {
  const expected = new Float32Array(outSize);
  call(ref, expected);
  const outs = Object.values(builds).map((be) => {
    const out = be.alloc(outSize);
    call(be, out);
    return Float32Array.from(out);
  });
  const [s, r] = outs;
  const us = new Uint32Array(s.buffer);
  const ur = new Uint32Array(r.buffer);
  let differ = 0;
  for (let i = 0; i < outSize; i++) if (us[i] !== ur[i]) differ++;
  rows.push({ kernel, n: outSize, differ, errSimd: relL2(s, expected), errRelaxed: relL2(r, expected) });
}

const rng = new Random(5);
const cases: [string, ConvGeometry][] = [
  ['conv 3x3 C12->20', makeConvGeometry({ batch: 4, inChannels: 12, inH: 16, inW: 16, outChannels: 20, kernel: 3, padding: 1 })],
  ['conv 1x1 C24->16', makeConvGeometry({ batch: 4, inChannels: 24, inH: 16, inW: 16, outChannels: 16, kernel: 1 })],
  ['depthwise 3x3', makeConvGeometry({ batch: 4, inChannels: 8, inH: 16, inW: 16, outChannels: 8, kernel: 3, padding: 1, groups: 8 })],
  ['depthwise 5x5 dil 2', makeConvGeometry({ batch: 4, inChannels: 8, inH: 16, inW: 16, outChannels: 8, kernel: 5, padding: 4, dilation: 2, groups: 8 })],
];
for (const [name, g] of cases) {
  const nx = g.batch * g.inChannels * g.inH * g.inW;
  const nw = g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  const ny = g.batch * g.outChannels * g.outH * g.outW;
  const x = randn(rng, nx);
  const w = randn(rng, nw);
  const gy = randn(rng, ny);
  const input = (be: KernelBackend, data: Float32Array): Float32Array => (be === ref ? data : on(be, data));
  compare(`${name} forward`, ny, (be, out) => be.conv2d(input(be, x), input(be, w), out, g));
  compare(`${name} gradInput`, nx, (be, out) => be.conv2dGradInput(input(be, gy), input(be, w), out, g));
  compare(`${name} gradWeight`, nw, (be, out) => be.conv2dGradWeight(input(be, x), input(be, gy), out, g));
}
{
  const rows_ = 32;
  const inF = 100;
  const outF = 10;
  const x = randn(rng, rows_ * inF);
  const w = randn(rng, outF * inF);
  const input = (be: KernelBackend, data: Float32Array): Float32Array => (be === ref ? data : on(be, data));
  compare('linear forward', rows_ * outF, (be, out) => be.linear(input(be, x), input(be, w), null, out, rows_, inF, outF));
}
for (const be of Object.values(builds)) be.dispose();
process.stdout.write(`${JSON.stringify({ builds: Object.values(builds).map((b) => b.build), rows })}\n`);
