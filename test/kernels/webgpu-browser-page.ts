/**
 * Runs in a browser page (bundled by test/kernels/webgpu-browser.test.ts with esbuild): WGSL
 * kernels on `navigator.gpu` against the reference backend, each case twice. Exposes
 * `runKernels()` on window; everything it imports must bundle for the browser.
 */
import { makeConvGeometry, makePoolGeometry } from '../../src/kernels/backend.js';
import { ReferenceBackend } from '../../src/kernels/ref/backend.js';
import { createWebGpuBackend, type GpuBuffer, type WebGpuBackend } from '../../src/kernels/webgpu/backend.js';
import { Random } from '../../src/tensor/random.js';

export interface CaseResult {
  name: string;
  /** Relative L2 distance from the reference. */
  error: number;
  /** The second run gave the same bits. */
  sameBits: boolean;
}

function randn(rng: Random, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

async function compare(gpu: WebGpuBackend, name: string, inputs: Float32Array[], outputs: number,
  call: (ins: GpuBuffer[], out: GpuBuffer) => void, expected: Float32Array): Promise<CaseResult> {
  const runs: Float32Array[] = [];
  for (let r = 0; r < 2; r++) {
    const ins = inputs.map((a) => gpu.fromArray(a));
    const out = gpu.alloc(outputs);
    call(ins, out);
    runs.push(await gpu.read(out));
    for (const b of [...ins, out]) gpu.free(b);
  }
  return { name, error: relL2(runs[0], expected), sameBits: sameBits(runs[0], runs[1]) };
}

async function runKernels(): Promise<{ adapter: string; navigatorGpu: boolean; cases: CaseResult[] }> {
  const navigatorGpu = Boolean((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu);
  const gpu = await createWebGpuBackend();
  const ref = new ReferenceBackend();
  const rng = new Random(3);
  const cases: CaseResult[] = [];

  const conv = makeConvGeometry({ batch: 2, inChannels: 4, inH: 9, inW: 7, outChannels: 6, kernel: 3, padding: 2, dilation: 2, groups: 2 });
  const x = randn(rng, 2 * 4 * 9 * 7);
  const w = randn(rng, 6 * 2 * 9);
  const gy = randn(rng, 2 * 6 * conv.outH * conv.outW);
  const want = (f: (out: Float32Array) => void, n: number): Float32Array => {
    const out = new Float32Array(n);
    f(out);
    return out;
  };
  cases.push(await compare(gpu, 'conv2d grouped dilated', [x, w], gy.length, ([a, b], o) => gpu.conv2d(a, b, o, conv),
    want((o) => ref.conv2d(x, w, o, conv), gy.length)));
  cases.push(await compare(gpu, 'conv2dGradWeight', [x, gy], w.length, ([a, b], o) => gpu.conv2dGradWeight(a, b, o, conv),
    want((o) => ref.conv2dGradWeight(x, gy, o, conv), w.length)));
  const dw = makeConvGeometry({ batch: 2, inChannels: 4, inH: 9, inW: 7, outChannels: 4, kernel: 3, padding: 1, stride: 2, groups: 4 });
  const gyd = randn(rng, 2 * 4 * dw.outH * dw.outW);
  const wd = randn(rng, 4 * 9);
  cases.push(await compare(gpu, 'depthwise conv2dGradInput s2', [gyd, wd], x.length, ([a, b], o) => gpu.conv2dGradInput(a, b, o, dw),
    want((o) => ref.conv2dGradInput(gyd, wd, o, dw), x.length)));

  const bn = { batch: 2, channels: 4, spatial: 63 };
  const mean = new Float32Array(4);
  const inv = new Float32Array(4);
  cases.push(await compare(gpu, 'batchNormTrain', [x], x.length, ([a], o) => {
    const m = gpu.alloc(4);
    const s = gpu.alloc(4);
    gpu.batchNormTrain(a, null, null, 1e-5, o, m, s, bn);
    gpu.free(m);
    gpu.free(s);
  }, want((o) => ref.batchNormTrain(x, null, null, 1e-5, o, mean, inv, bn), x.length)));

  const pool = makePoolGeometry({ batch: 2, channels: 4, inH: 9, inW: 7, kernel: 3, stride: 2, padding: 1 });
  const ties = Float32Array.from({ length: x.length }, () => rng.int(3));
  const gyp = randn(rng, 2 * 4 * pool.outH * pool.outW);
  cases.push(await compare(gpu, 'maxPool2dBackward with ties', [ties, gyp], x.length, ([a, b], o) => gpu.maxPool2dBackward(a, b, o, pool),
    want((o) => ref.maxPool2dBackward(ties, gyp, o, pool), x.length)));

  const map = Int32Array.from([1, 0, 0, 3, -1, 0, 0, 1, 1, 1, 0, 0]);
  const srcA = randn(rng, 2 * 4 * 10);
  const srcB = randn(rng, 2 * 2 * 10);
  cases.push(await compare(gpu, 'gatherChannels', [srcA, srcB], 2 * 6 * 10,
    ([a, b], o) => gpu.gatherChannels([a, b], [4, 2], o, 6, map, 2, 10),
    want((o) => ref.gatherChannels([srcA, srcB], [4, 2], o, 6, map, 2, 10), 2 * 6 * 10)));

  const long = randn(rng, 9000);
  const long2 = randn(rng, 9000);
  cases.push(await compare(gpu, 'dot', [long, long2], 1, ([a, b], o) => gpu.dot(a, b, 9000, o),
    Float32Array.of(ref.dot(long, long2, 9000))));

  const adapter = `${gpu.summary.vendor} ${gpu.summary.architecture} ${gpu.summary.description}`.trim();
  gpu.dispose();
  return { adapter, navigatorGpu, cases };
}

(globalThis as unknown as { runKernels: typeof runKernels }).runKernels = runKernels;
