/**
 * Every WGSL kernel of the WebGPU backend against its reference twin (src/kernels/ref), on
 * SwiftShader (Dawn's Vulkan backend over the CPU Vulkan driver inside Debian's chromium),
 * plus bitwise self-consistency (every case runs twice: same bits) and the runtime's
 * promises (limits requested, pipelines cached, batched submissions, pool reuse only after
 * the device is done).
 *
 * Tolerances. The reference sums in float64 and rounds once; the kernels sum in float32
 * (WGSL has no f64), in a fixed order. A float32 sum of K terms in any fixed order is off by
 * at most gamma_K * sum|term| (gamma_K ~ K u, u = 2^-24; Higham, Accuracy and Stability,
 * 4.2), whatever the order and whether the compiler fuses a multiply-add. So each output i
 * is compared with |gpu_i - ref_i| <= (depth + 2) u mag_i, where mag_i = sum|term| is
 * computed by running the reference kernel on the absolute values of the inputs, and depth
 * is the longest chain of float32 additions behind one output in that kernel (stated at each
 * use; +2 covers the reference's own final rounding and a product's). Kernels that only
 * select, copy, or do one correctly rounded operation per element must match bitwise.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  makeConvGeometry, makePoolGeometry,
  type BatchNormGeometry, type ConvGeometry, type PoolGeometry,
} from '../../src/kernels/backend.js';
import { ReferenceBackend } from '../../src/kernels/ref/backend.js';
import { SWIFTSHADER_ICD } from '../../src/kernels/webgpu/device.js';
import { createWebGpuBackend, type GpuBuffer, type WebGpuBackend, type WebGpuBackendOptions } from '../../src/kernels/webgpu/backend.js';
import { DOT_CHUNK } from '../../src/kernels/webgpu/wgsl/reduce.js';
import { Random } from '../../src/tensor/random.js';

const U = 2 ** -24;
const ref = new ReferenceBackend();
let gpu: WebGpuBackend;

/**
 * The adapter: SwiftShader through Vulkan unless the caller chose a Vulkan driver;
 * PCDARTS_WEBGPU_TEST_ADAPTER=llvmpipe runs the same tests on Mesa's llvmpipe through OpenGL ES
 * in compatibility mode (not in the default suite: a second software rasteriser adds time, not
 * coverage the first lacks, except other limits).
 */
function testBackendOptions(): WebGpuBackendOptions {
  if (process.env.PCDARTS_WEBGPU_TEST_ADAPTER === 'llvmpipe') {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    return { dawnOptions: ['backend=opengles'], featureLevel: 'compatibility' };
  }
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  return {};
}

before(async () => {
  gpu = await createWebGpuBackend(testBackendOptions());
});
after(() => gpu?.dispose());

// ------------------------------------------------------------------ helpers

function randn(rng: Random, n: number, scale = 1, shift = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale + shift;
  return a;
}

/** Small integers: pools see many ties. */
function ints(rng: Random, n: number, range: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(range) - Math.floor(range / 2);
  return a;
}

const abs = (a: Float32Array): Float32Array => a.map(Math.abs);

/** `inputs` uploaded, `outputs` allocated (NaN-filled unless given initial values), `call` recorded, outputs read back. */
async function onGpu(inputs: Float32Array[], outputs: (number | Float32Array)[],
  call: (ins: GpuBuffer[], outs: GpuBuffer[]) => void): Promise<Float32Array[]> {
  const ins = inputs.map((a) => gpu.fromArray(a));
  const outs = outputs.map((o) => gpu.fromArray(typeof o === 'number' ? new Float32Array(o).fill(Number.NaN) : o));
  call(ins, outs);
  const results = await Promise.all(outs.map((o) => gpu.read(o)));
  for (const b of [...ins, ...outs]) gpu.free(b);
  return results;
}

/** Runs `onGpu` twice from the same inputs and asserts the two results are the same bits. */
async function twice(inputs: Float32Array[], outputs: (number | Float32Array)[],
  call: (ins: GpuBuffer[], outs: GpuBuffer[]) => void, what: string): Promise<Float32Array[]> {
  const first = await onGpu(inputs, outputs, call);
  const second = await onGpu(inputs, outputs, call);
  first.forEach((a, i) => assertBitwise(a, second[i], `${what} (second run, output ${i})`));
  return first;
}

function assertBitwise(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const ua = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const ue = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ue[i]) assert.fail(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (bits differ)`);
  }
}

/** |actual - expected| <= (depth + 2) u mag elementwise (see the header). */
function assertWithin(actual: Float32Array, expected: Float32Array, mag: ArrayLike<number>, depth: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const c = (depth + 2) * U;
  for (let i = 0; i < expected.length; i++) {
    const tol = c * mag[i] + 1e-38;
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol)) {
      assert.fail(`${what}[${i}]: ${actual[i]} vs reference ${expected[i]} (error ${err.toExponential(2)} > ${tol.toExponential(2)})`);
    }
  }
}

function refOut(n: number): Float32Array {
  return ref.alloc(n).fill(Number.NaN);
}

// ------------------------------------------------------------------ setup and runtime

describe('webgpu device and runtime', () => {
  it('gets a full adapter and requests its limits, not the defaults', () => {
    const s = gpu.summary;
    assert.ok(s.limits.maxStorageBuffersPerShaderStage >= 8, JSON.stringify(s.limits));
    // The WebGPU default is 8 storage buffers per stage and 128 MiB per binding; SwiftShader offers 12 and 1 GiB.
    assert.equal(gpu.device.limits.maxStorageBuffersPerShaderStage, s.limits.maxStorageBuffersPerShaderStage);
    if (/swiftshader/i.test(s.architecture)) {
      assert.ok(s.software && !s.discrete);
      assert.ok(gpu.device.limits.maxStorageBuffersPerShaderStage > 8);
      assert.ok(gpu.device.limits.maxStorageBufferBindingSize > 128 * 2 ** 20);
    }
  });

  it('reuses a freed buffer only after the device finished the work recorded before the free', async () => {
    const a = gpu.alloc(1000);
    gpu.fill(a, 1, 1000);
    gpu.free(a);
    const b = gpu.alloc(1000);
    assert.notEqual(b.buffer, a.buffer, 'a buffer freed with work in flight was handed out again');
    await gpu.sync();
    const c = gpu.alloc(1000);
    assert.equal(c.buffer, a.buffer, 'the pool did not get the buffer back after the work finished');
    gpu.free(b);
    gpu.free(c);
    assert.throws(() => gpu.fill(c, 0, 1), /was freed/);
  });

  it('counts live and peak bytes by size class, synchronously (what the activation budget reads)', () => {
    const before = gpu.memoryStats();
    gpu.resetPeak();
    const a = gpu.alloc(1000); // 4000 bytes: the 4096-byte class
    const b = gpu.alloc(5000); // 20000 bytes: the 24576-byte class (1.5 * 2^14)
    assert.equal(gpu.memoryStats().liveBytes - before.liveBytes, 4096 + 24576);
    gpu.free(b);
    gpu.free(b); // twice: no effect
    const after = gpu.memoryStats();
    assert.equal(after.liveBytes - before.liveBytes, 4096);
    assert.equal(after.peakBytes - before.liveBytes, 4096 + 24576);
    assert.ok(after.reservedBytes >= after.liveBytes);
    gpu.resetPeak();
    assert.equal(gpu.memoryStats().peakBytes, gpu.memoryStats().liveBytes);
    gpu.free(a);
  });

  it('caches pipelines and submits recorded kernels in batches', async () => {
    const x = gpu.fromArray(new Float32Array(64).fill(2));
    const y = gpu.alloc(64);
    gpu.relu(x, y, 64);
    await gpu.sync();
    const pipelines = gpu.runtime.pipelineCount;
    const dispatches = gpu.runtime.dispatchCount;
    const submits = gpu.runtime.submitCount;
    for (let i = 0; i < 600; i++) gpu.axpy(0.5, x, y, 64);
    const out = await gpu.read(y);
    assert.equal(out[0], 2 + 600 * 1);
    assert.equal(gpu.runtime.pipelineCount, pipelines + 1, 'axpy compiled more than once');
    assert.equal(gpu.runtime.dispatchCount - dispatches, 600);
    const submitted = gpu.runtime.submitCount - submits;
    assert.ok(submitted >= 3 && submitted <= 4, `600 dispatches went out in ${submitted} submissions (batches of 256)`);
    gpu.free(x);
    gpu.free(y);
  });

  it('orders uploads, copies, fills and reads after the kernels recorded before them', async () => {
    const a = gpu.fromArray(Float32Array.from([1, 2, 3, 4, 5, 6]));
    const b = gpu.allocZeros(8);
    gpu.scale(a, 2, a, 6); // in place
    gpu.copy(a, b, 4, 1, 2); // b[2..6) = a[1..5)
    gpu.upload(a, Float32Array.from([-1, -1]), 4); // after the scale: a = 2 4 6 8 -1 -1
    gpu.fill(b, 7, 1, 7);
    assert.deepEqual([...await gpu.read(b)], [0, 0, 4, 6, 8, 10, 0, 7]);
    assert.deepEqual([...await gpu.read(a, 3, 3)], [8, -1, -1]);
    gpu.free(a);
    gpu.free(b);
  });

  it('rejects wrong sizes, freed buffers and a written buffer bound twice', () => {
    const a = gpu.alloc(4);
    assert.throws(() => gpu.relu(a, a, 4), /writes binding 2 that binding 1 also binds/);
    assert.throws(() => gpu.relu(a, gpu.alloc(3), 4), /relu y has 3 elements, needs 4/);
    gpu.free(a);
  });

  it('gives the same bits when kernels with many inputs split them over more dispatches', async () => {
    // 4 storage buffers per kernel: one input per weighted-sum or dot dispatch, three per gather
    const narrow = await createWebGpuBackend({ ...testBackendOptions(), maxStorageBuffers: 4 });
    try {
      const r = new Random(77);
      const n = 300;
      const xs = Array.from({ length: 5 }, () => randn(r, n));
      const w = [0.1, -0.7, 0.3, 1.5, -0.2].map(Math.fround);
      const wBuf = Float32Array.from([5, ...w]);
      const map = Int32Array.from([4, 1, 0, 0, -1, 0, 2, 2, 1, 0, 3, 1, 4, 0]);
      const channels = [2, 1, 3, 2, 2];
      const sources = channels.map((c) => randn(r, 2 * c * 15));
      const initial = randn(r, 2 * 7 * 15);
      const run = async (be: WebGpuBackend): Promise<Float32Array[]> => {
        const up = (a: Float32Array): GpuBuffer => be.fromArray(a);
        const [xb, wb, sb] = [xs.map(up), up(wBuf), sources.map(up)];
        const outs = [be.alloc(n), be.alloc(n), be.alloc(2 * 7 * 15), up(initial), be.fromArray(new Float32Array(8).fill(0.25))];
        const many = xs.map(() => be.alloc(n));
        be.weightedSum(xb, w, outs[0], n);
        be.weightedSum(xb, { buffer: wb, indices: [1, 2, 3, 4, 5] }, outs[1], n);
        be.gatherChannels(sb, channels, outs[2], 7, map, 2, 15);
        be.gatherChannels(sb, channels, outs[3], 7, map, 2, 15, true);
        be.dots(xb[0], xb, n, outs[4], [3, 0, 3, 7, 1], true);
        be.scaleMany(xb[1], { buffer: wb, indices: [5, 4, 3, 2, 1] }, many, n);
        const values = await Promise.all([...outs, ...many].map((b) => be.read(b)));
        for (const b of [...xb, wb, ...sb, ...outs, ...many]) be.free(b);
        return values;
      };
      const wide = await run(gpu);
      const split = await run(narrow);
      assert.ok(narrow.runtime.maxBuffers === 3 && gpu.runtime.maxBuffers > 6);
      wide.forEach((v, i) => assertBitwise(split[i], v, `output ${i} split over more dispatches`));
    } finally {
      narrow.dispose();
    }
  });

  it('fails reads with the reason once the device is lost', async () => {
    const other = await createWebGpuBackend(testBackendOptions());
    const b = other.fromArray(Float32Array.of(1, 2));
    assert.deepEqual([...await other.read(b)], [1, 2]);
    other.device.destroy(); // as a driver reset would: not through dispose()
    await assert.rejects(async () => {
      await other.device.lost;
      await other.read(b);
    }, /device lost \(destroyed\)/);
  });

  it('never loads dawn.node when the library is imported, only when a device is requested', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const script = `
      const { readFileSync } = await import('node:fs');
      const mapped = () => readFileSync('/proc/self/maps', 'utf8').includes('dawn.node');
      await import('./src/index.js');
      const webgpu = await import('./src/kernels/webgpu/index.js');
      const before = mapped();
      const backend = await webgpu.createWebGpuBackend();
      const afterCreate = mapped();
      backend.dispose();
      console.log(JSON.stringify({ before, afterCreate }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root, encoding: 'utf8', env: { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop() as string), { before: false, afterCreate: true });
  });
});

// ------------------------------------------------------------------ convolution

type ConvCase = Parameters<typeof makeConvGeometry>[0];

const convCases: ConvCase[] = [
  // dense: padding, odd sizes, dilation, stride, even kernels
  { batch: 2, inChannels: 3, inH: 7, inW: 9, outChannels: 5, kernel: 3, padding: 1 },
  { batch: 1, inChannels: 5, inH: 11, inW: 6, outChannels: 7, kernel: 3, padding: 0 },
  { batch: 2, inChannels: 6, inH: 13, inW: 17, outChannels: 9, kernel: 3, padding: 2, dilation: 2 },
  { batch: 2, inChannels: 4, inH: 12, inW: 10, outChannels: 6, kernel: 5, padding: 4, dilation: 2 },
  { batch: 2, inChannels: 3, inH: 8, inW: 7, outChannels: 5, kernel: 2, padding: 1 },
  { batch: 2, inChannels: 5, inH: 11, inW: 9, outChannels: 6, kernel: 3, padding: 1, stride: 2 },
  { batch: 1, inChannels: 3, inH: 10, inW: 10, outChannels: 3, kernel: 5, padding: 2, stride: 2 },
  { batch: 2, inChannels: 3, inH: 6, inW: 7, outChannels: 4, kernel: 3, padding: 3 },
  { batch: 2, inChannels: 3, inH: 5, inW: 9, outChannels: 4, kernel: [1, 3], padding: 1 },
  // 1x1, strided 1x1 (factorized reduce), 1x1 planes
  { batch: 3, inChannels: 17, inH: 8, inW: 8, outChannels: 16, kernel: 1 },
  { batch: 2, inChannels: 6, inH: 9, inW: 11, outChannels: 3, kernel: 1, stride: 2 },
  { batch: 2, inChannels: 3, inH: 1, inW: 1, outChannels: 4, kernel: 3, padding: 1 },
  // taller products: the 32-row and 64-row tiles, with partial tiles
  { batch: 1, inChannels: 8, inH: 6, inW: 5, outChannels: 24, kernel: 3, padding: 1 },
  { batch: 1, inChannels: 5, inH: 9, inW: 7, outChannels: 70, kernel: 1 },
  // grouped (not depthwise), channel multiplier
  { batch: 2, inChannels: 6, inH: 9, inW: 7, outChannels: 4, kernel: 3, padding: 1, groups: 2 },
  { batch: 1, inChannels: 4, inH: 9, inW: 11, outChannels: 6, kernel: 1, stride: 2, groups: 2 },
  { batch: 2, inChannels: 3, inH: 7, inW: 6, outChannels: 6, kernel: 3, padding: 1, groups: 3 },
  // depthwise
  { batch: 2, inChannels: 5, inH: 9, inW: 13, outChannels: 5, kernel: 3, padding: 1, groups: 5 },
  { batch: 2, inChannels: 3, inH: 11, inW: 10, outChannels: 3, kernel: 3, padding: 1, stride: 2, groups: 3 },
  { batch: 2, inChannels: 6, inH: 9, inW: 11, outChannels: 6, kernel: 5, padding: 4, dilation: 2, stride: 2, groups: 6 },
  { batch: 2, inChannels: 4, inH: 10, inW: 12, outChannels: 4, kernel: 3, padding: 2, dilation: 2, groups: 4 },
  { batch: 2, inChannels: 3, inH: 6, inW: 5, outChannels: 3, kernel: 2, padding: 0, groups: 3 },
  { batch: 2, inChannels: 3, inH: 6, inW: 9, outChannels: 3, kernel: 3, padding: 4, groups: 3 },
  // a weight gradient long enough to be split over k (2 x 48 x 48 = 4608 > 4096 positions)
  { batch: 2, inChannels: 2, inH: 48, inW: 48, outChannels: 3, kernel: 3, padding: 1 },
];

function describeConv(p: ConvCase): string {
  return `N${p.batch} C${p.inChannels}->${p.outChannels} ${p.inH}x${p.inW} k${JSON.stringify(p.kernel)} ` +
    `s${p.stride ?? 1} p${p.padding ?? 0} d${p.dilation ?? 1} g${p.groups ?? 1}`;
}

function convCounts(g: ConvGeometry): { x: number; w: number; y: number } {
  return {
    x: g.batch * g.inChannels * g.inH * g.inW,
    w: g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW,
    y: g.batch * g.outChannels * g.outH * g.outW,
  };
}

describe('webgpu conv2d and its gradients match the reference', () => {
  for (const [i, p] of convCases.entries()) {
    it(describeConv(p), async () => {
      const rng = new Random(500 + i);
      const g = makeConvGeometry(p);
      const n = convCounts(g);
      const x = randn(rng, n.x);
      const w = randn(rng, n.w, 0.5);
      const gy = randn(rng, n.y);
      const cinG = g.inChannels / g.groups;
      const coutG = g.outChannels / g.groups;

      // forward: one sequential sum over (ci, kh, kw) per output
      const [y] = await twice([x, w], [n.y], ([xb, wb], [yb]) => gpu.conv2d(xb, wb, yb, g), 'conv2d');
      const yRef = refOut(n.y);
      ref.conv2d(x, w, yRef, g);
      const yMag = refOut(n.y);
      ref.conv2d(abs(x), abs(w), yMag, g);
      assertWithin(y, yRef, yMag, cinG * g.kernelH * g.kernelW, 'conv2d y');

      // gradient of the input: one sequential sum over (co, kh, kw) per input cell
      const [gx] = await twice([gy, w], [n.x], ([gyb, wb], [gxb]) => gpu.conv2dGradInput(gyb, wb, gxb, g), 'conv2dGradInput');
      const gxRef = refOut(n.x);
      ref.conv2dGradInput(gy, w, gxRef, g);
      const gxMag = refOut(n.x);
      ref.conv2dGradInput(abs(gy), abs(w), gxMag, g);
      assertWithin(gx, gxRef, gxMag, coutG * g.kernelH * g.kernelW, 'conv2dGradInput gradX');

      // gradient of the weight: sequential over (n, oh, ow) within a split (or per invocation, then
      // an 8-level tree for depthwise), plus the splits in order: at most batch * positions + 64 additions
      const [gw] = await twice([x, gy], [n.w], ([xb, gyb], [gwb]) => gpu.conv2dGradWeight(xb, gyb, gwb, g), 'conv2dGradWeight');
      const gwRef = refOut(n.w);
      ref.conv2dGradWeight(x, gy, gwRef, g);
      const gwMag = refOut(n.w);
      ref.conv2dGradWeight(abs(x), abs(gy), gwMag, g);
      assertWithin(gw, gwRef, gwMag, g.batch * g.outH * g.outW + 64, 'conv2dGradWeight gradW');
    });
  }
});

// ------------------------------------------------------------------ batch norm

const bnCases: BatchNormGeometry[] = [
  { batch: 2, channels: 3, spatial: 35 },
  { batch: 4, channels: 5, spatial: 1 },
  { batch: 3, channels: 2, spatial: 300 }, // more positions than invocations per workgroup
  { batch: 1, channels: 7, spatial: 64 },
];

/** The longest chain of float32 additions of a per-channel sum: each invocation's share, then the 8-level tree. */
const bnDepth = (g: BatchNormGeometry): number => g.batch * Math.ceil(g.spatial / 256) + 8;

describe('webgpu batch norm matches the reference', () => {
  for (const [i, g] of bnCases.entries()) {
    for (const affine of [true, false]) {
      it(`N${g.batch} C${g.channels} S${g.spatial} ${affine ? 'affine' : 'no affine'}`, async () => {
        const rng = new Random(900 + i);
        const numel = g.batch * g.channels * g.spatial;
        const c = g.channels;
        const x = randn(rng, numel, 2, 0.5);
        const gamma = affine ? randn(rng, c, 0.5, 1) : null;
        const beta = affine ? randn(rng, c) : null;
        const gy = randn(rng, numel);
        const depth = bnDepth(g);
        const perChannel = (i: number): number => Math.floor(i / g.spatial) % c;

        // train-mode forward: statistics, then y
        const ins = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
        const [y, mean, invStd] = await twice(ins, [numel, c, c], ([xb, ...gb], [yb, mb, ib]) =>
          gpu.batchNormTrain(xb, gamma ? gb[0] : null, beta ? gb[1] : null, 1e-5, yb, mb, ib, g), 'batchNormTrain');
        const [yRef, meanRef, invRef] = [refOut(numel), refOut(c), refOut(c)];
        ref.batchNormTrain(x, gamma, beta, 1e-5, yRef, meanRef, invRef, g);
        const meanAbs = new Float64Array(c);
        for (let j = 0; j < numel; j++) meanAbs[perChannel(j)] += Math.abs(x[j]) / (g.batch * g.spatial);
        // mean: a sum of |x| / M; invStd: the variance's relative error (depth u, halved by the root) plus the root and division
        assertWithin(mean, meanRef, meanAbs, depth, 'batchNormTrain mean');
        assertWithin(invStd, invRef, invRef.map((v) => v * 2), depth + 4, 'batchNormTrain invStd');
        // y = (x - mean) invStd gamma + beta: the mean's error scaled by invStd |gamma|, invStd's relative error on |x - mean|
        const yMag = new Float64Array(numel);
        for (let j = 0; j < numel; j++) {
          const ch = perChannel(j);
          const k = invRef[ch] * Math.abs(gamma ? gamma[ch] : 1);
          yMag[j] = k * (2 * Math.abs(x[j] - meanRef[ch]) + Math.abs(x[j]) + 2 * meanAbs[ch]) + Math.abs(beta ? beta[ch] : 0);
        }
        assertWithin(y, yRef, yMag, depth + 4, 'batchNormTrain y');

        // eval-mode forward with the reference's statistics: elementwise, a few roundings
        const statIns = [x, meanRef, invRef, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
        const [ya] = await twice(statIns, [numel], ([xb, mb, ib, ...gb], [yb]) =>
          gpu.batchNormApply(xb, mb, ib, gamma ? gb[0] : null, beta ? gb[1] : null, yb, g), 'batchNormApply');
        const yaRef = refOut(numel);
        ref.batchNormApply(x, meanRef, invRef, gamma, beta, yaRef, g);
        const yaMag = new Float64Array(numel);
        for (let j = 0; j < numel; j++) {
          const ch = perChannel(j);
          yaMag[j] = invRef[ch] * Math.abs(gamma ? gamma[ch] : 1) * (Math.abs(x[j]) + Math.abs(meanRef[ch])) + Math.abs(beta ? beta[ch] : 0);
        }
        assertWithin(ya, yaRef, yaMag, 3, 'batchNormApply y');

        // backward, train mode and fixed statistics, with and without the affine gradients
        for (const train of [true, false]) {
          const kernel = train ? 'batchNormTrainBackward' : 'batchNormApplyBackward';
          const bIns = [gy, x, meanRef, invRef, ...(gamma ? [gamma] : [])];
          const [gx, gg, gb] = await twice(bIns, [numel, c, c], ([gyb, xb, mb, ib, ...gam], [gxb, ggb, gbb]) =>
            gpu[kernel](gyb, xb, mb, ib, gamma ? gam[0] : null, gxb, affine ? ggb : null, affine ? gbb : null, g), kernel);
          const [gxRef, ggRef, gbRef] = [refOut(numel), refOut(c), refOut(c)];
          ref[kernel](gy, x, meanRef, invRef, gamma, gxRef, ggRef, gbRef, g);
          // sums of |gy| and |gy xhat| per channel bound the errors of the two reductions
          const sumAbs = new Float64Array(c);
          const sumAbsXhat = new Float64Array(c);
          for (let j = 0; j < numel; j++) {
            const ch = perChannel(j);
            sumAbs[ch] += Math.abs(gy[j]);
            sumAbsXhat[ch] += Math.abs(gy[j] * (x[j] - meanRef[ch]) * invRef[ch]);
          }
          if (affine) {
            assertWithin(gb, gbRef, sumAbs, depth, `${kernel} gradBeta`);
            assertWithin(gg, ggRef, sumAbsXhat.map((v) => v * 2), depth, `${kernel} gradGamma`);
          }
          const m = g.batch * g.spatial;
          const gxMag = new Float64Array(numel);
          for (let j = 0; j < numel; j++) {
            const ch = perChannel(j);
            const k = invRef[ch] * Math.abs(gamma ? gamma[ch] : 1);
            const xhat = Math.abs((x[j] - meanRef[ch]) * invRef[ch]);
            gxMag[j] = train
              ? k * (Math.abs(gy[j]) + sumAbs[ch] / m + 2 * xhat * sumAbsXhat[ch] / m) * 2
              : k * Math.abs(gy[j]);
          }
          assertWithin(gx, gxRef, gxMag, train ? depth + 4 : 2, `${kernel} gradX`);
        }
      });
    }
  }
});

// ------------------------------------------------------------------ pooling

type PoolCase = Parameters<typeof makePoolGeometry>[0];

const poolCases: PoolCase[] = [
  { batch: 2, channels: 3, inH: 7, inW: 9, kernel: 3, stride: 1, padding: 1 },
  { batch: 2, channels: 3, inH: 8, inW: 7, kernel: 3, stride: 2, padding: 1 },
  { batch: 1, channels: 4, inH: 9, inW: 9, kernel: 2, stride: 2, padding: 0 },
  { batch: 2, channels: 2, inH: 11, inW: 6, kernel: 3, stride: 2, padding: 0 },
  { batch: 1, channels: 2, inH: 1, inW: 5, kernel: 3, stride: 1, padding: 1 },
  { batch: 1, channels: 3, inH: 8, inW: 8, kernel: 5, stride: 3, padding: 2 },
  { batch: 2, channels: 5, inH: 8, inW: 8, kernel: 8, stride: 8, padding: 0 }, // the classifier's global pool
];

describe('webgpu pooling matches the reference', () => {
  for (const [i, p] of poolCases.entries()) {
    const g: PoolGeometry = makePoolGeometry(p);
    const nIn = g.batch * g.channels * g.inH * g.inW;
    const nOut = g.batch * g.channels * g.outH * g.outW;
    const label = `N${p.batch} C${p.channels} ${p.inH}x${p.inW} k${p.kernel} s${p.stride} p${p.padding}`;
    for (const values of ['normal', 'ties'] as const) {
      it(`max ${label} (${values})`, async () => {
        const rng = new Random(1300 + i);
        const x = values === 'ties' ? ints(rng, nIn, 3) : randn(rng, nIn);
        const gy = randn(rng, nOut);
        // forward selects: bitwise
        const [y] = await twice([x], [nOut], ([xb], [yb]) => gpu.maxPool2d(xb, yb, g), 'maxPool2d');
        const yRef = refOut(nOut);
        ref.maxPool2d(x, yRef, g);
        assertBitwise(y, yRef, 'maxPool2d y');
        // backward: the first maximum of each window (row-major) gets its gradient; a cell adds at most ceil(k/s)^2 of them
        const [gx] = await twice([x, gy], [nIn], ([xb, gyb], [gxb]) => gpu.maxPool2dBackward(xb, gyb, gxb, g), 'maxPool2dBackward');
        const gxRef = refOut(nIn);
        ref.maxPool2dBackward(x, gy, gxRef, g);
        const gxMag = refOut(nIn);
        ref.maxPool2dBackward(x, abs(gy), gxMag, g);
        assertWithin(gx, gxRef, gxMag, Math.ceil(g.kernelH / g.strideH) * Math.ceil(g.kernelW / g.strideW), 'maxPool2dBackward gradX');
      });
    }
    it(`avg ${label}`, async () => {
      const rng = new Random(1400 + i);
      const x = randn(rng, nIn);
      const gy = randn(rng, nOut);
      // forward: a row-major sum of at most k^2 cells and one division
      const [y] = await twice([x], [nOut], ([xb], [yb]) => gpu.avgPool2d(xb, yb, g), 'avgPool2d');
      const yRef = refOut(nOut);
      ref.avgPool2d(x, yRef, g);
      const yMag = refOut(nOut);
      ref.avgPool2d(abs(x), yMag, g);
      assertWithin(y, yRef, yMag, g.kernelH * g.kernelW + 1, 'avgPool2d y');
      // backward: at most ceil(k/s)^2 shares of one division each
      const [gx] = await twice([gy], [nIn], ([gyb], [gxb]) => gpu.avgPool2dBackward(gyb, gxb, g), 'avgPool2dBackward');
      const gxRef = refOut(nIn);
      ref.avgPool2dBackward(gy, gxRef, g);
      const gxMag = refOut(nIn);
      ref.avgPool2dBackward(abs(gy), gxMag, g);
      assertWithin(gx, gxRef, gxMag, Math.ceil(g.kernelH / g.strideH) * Math.ceil(g.kernelW / g.strideW) + 1, 'avgPool2dBackward gradX');
    });
  }
});

// ------------------------------------------------------------------ dense

describe('webgpu linear and its gradients match the reference', () => {
  const cases = [
    { rows: 5, inF: 37, outF: 10, bias: true },
    { rows: 3, inF: 256, outF: 10, bias: false },
    { rows: 70, inF: 20, outF: 33, bias: true },
    // more rows than one split of the weight gradient holds (4096)
    { rows: 4200, inF: 3, outF: 2, bias: true },
  ];
  for (const [i, c] of cases.entries()) {
    it(`rows ${c.rows} in ${c.inF} out ${c.outF}${c.bias ? ' bias' : ''}`, async () => {
      const rng = new Random(1700 + i);
      const x = randn(rng, c.rows * c.inF);
      const w = randn(rng, c.outF * c.inF, 0.3);
      const b = c.bias ? randn(rng, c.outF) : null;
      const gy = randn(rng, c.rows * c.outF);
      const [y] = await twice([x, w, ...(b ? [b] : [])], [c.rows * c.outF], ([xb, wb, bb], [yb]) =>
        gpu.linear(xb, wb, b ? bb : null, yb, c.rows, c.inF, c.outF), 'linear');
      const yRef = refOut(c.rows * c.outF);
      ref.linear(x, w, b, yRef, c.rows, c.inF, c.outF);
      const yMag = refOut(c.rows * c.outF);
      ref.linear(abs(x), abs(w), b ? abs(b) : null, yMag, c.rows, c.inF, c.outF);
      assertWithin(y, yRef, yMag, c.inF + 1, 'linear y');

      const [gx] = await twice([gy, w], [c.rows * c.inF], ([gyb, wb], [gxb]) =>
        gpu.linearGradInput(gyb, wb, gxb, c.rows, c.inF, c.outF), 'linearGradInput');
      const gxRef = refOut(c.rows * c.inF);
      ref.linearGradInput(gy, w, gxRef, c.rows, c.inF, c.outF);
      const gxMag = refOut(c.rows * c.inF);
      ref.linearGradInput(abs(gy), abs(w), gxMag, c.rows, c.inF, c.outF);
      assertWithin(gx, gxRef, gxMag, c.outF, 'linearGradInput gradX');

      const [gw, gb] = await twice([x, gy], [c.outF * c.inF, c.outF], ([xb, gyb], [gwb, gbb]) =>
        gpu.linearGradWeight(xb, gyb, gwb, c.bias ? gbb : null, c.rows, c.inF, c.outF), 'linearGradWeight');
      const [gwRef, gbRef] = [refOut(c.outF * c.inF), refOut(c.outF)];
      ref.linearGradWeight(x, gy, gwRef, gbRef, c.rows, c.inF, c.outF);
      const [gwMag, gbMag] = [refOut(c.outF * c.inF), refOut(c.outF)];
      ref.linearGradWeight(abs(x), abs(gy), gwMag, gbMag, c.rows, c.inF, c.outF);
      assertWithin(gw, gwRef, gwMag, c.rows + 64, 'linearGradWeight gradW');
      if (c.bias) assertWithin(gb, gbRef, gbMag, c.rows, 'linearGradWeight gradB');
    });
  }
});

// ------------------------------------------------------------------ elementwise

describe('webgpu elementwise kernels match the reference', () => {
  const n = 1000 + 37; // several workgroups and a partial one
  const rng = new Random(2000);
  const a = randn(rng, n);
  a[3] = 0;
  a[4] = -0;
  const b = randn(rng, n);

  it('relu and its backward are bitwise the reference (including 0 and -0)', async () => {
    const [y] = await twice([a], [n], ([ab], [yb]) => gpu.relu(ab, yb, n), 'relu');
    const yRef = refOut(n);
    ref.relu(a, yRef, n);
    assertBitwise(y, yRef, 'relu');
    const [gx] = await twice([b, a], [n], ([gyb, xb], [gxb]) => gpu.reluBackward(gyb, xb, gxb, n), 'reluBackward');
    const gxRef = refOut(n);
    ref.reluBackward(b, a, gxRef, n);
    assertBitwise(gx, gxRef, 'reluBackward');
  });

  it('add, scale, scaleMany and scaleSamples are bitwise (one correctly rounded operation per element)', async () => {
    const [sum] = await twice([a, b], [n], ([ab, bb], [ob]) => gpu.add(ab, bb, ob, n), 'add');
    const sumRef = refOut(n);
    ref.add(a, b, sumRef, n);
    assertBitwise(sum, sumRef, 'add');

    const alpha = Math.fround(-0.7);
    const [scaled, inPlace] = await twice([a], [n, a], ([ab], [ob, ib]) => {
      gpu.scale(ab, alpha, ob, n);
      gpu.scale(ib, alpha, ib, n);
    }, 'scale');
    const scaledRef = refOut(n);
    ref.scale(a, alpha, scaledRef, n);
    assertBitwise(scaled, scaledRef, 'scale');
    assertBitwise(inPlace, scaledRef, 'scale in place');

    // 12 outputs: more than one dispatch binds, so the outputs are chunked; host and device factors
    const alphas = Array.from({ length: 12 }, (_, k) => Math.fround((k - 5) * 0.37));
    const weights = Float32Array.from([9, ...alphas]);
    const outs = await twice([a, weights], alphas.map(() => n), ([ab, wb], obs) => {
      gpu.scaleMany(ab, alphas.slice(0, 6), obs.slice(0, 6), n);
      gpu.scaleMany(ab, { buffer: wb, indices: alphas.slice(6).map((_, k) => 7 + k) }, obs.slice(6), n);
    }, 'scaleMany');
    alphas.forEach((al, k) => {
      const r = refOut(n);
      ref.scale(a, al, r, n);
      assertBitwise(outs[k], r, `scaleMany output ${k}`);
    });
    const outs12 = await twice([a], alphas.map(() => n), ([ab], obs) => gpu.scaleMany(ab, alphas, obs, n), 'scaleMany 12');
    alphas.forEach((al, k) => {
      const r = refOut(n);
      ref.scale(a, al, r, n);
      assertBitwise(outs12[k], r, `scaleMany (one call) output ${k}`);
    });

    const per = 61;
    const samples = Math.floor(n / per);
    const factors = Float32Array.from({ length: samples }, (_, s) => (s % 3 === 0 ? 0 : 1 / 0.7));
    const [ss, ssInPlace] = await twice([factors, a], [samples * per, a.slice(0, samples * per)], ([fb, ab], [ob, ib]) => {
      gpu.scaleSamples(ab, fb, ob, per, samples);
      gpu.scaleSamples(ib, fb, ib, per, samples);
    }, 'scaleSamples');
    const ssRef = refOut(samples * per);
    ref.scaleSamples(a, factors, ssRef, per);
    assertBitwise(ss, ssRef, 'scaleSamples');
    assertBitwise(ssInPlace, ssRef, 'scaleSamples in place');
  });

  it('axpy with a host or a device factor: y + alpha x rounded at most twice', async () => {
    const alpha = 0.3; // not a float32: the kernel uses its float32 rounding
    const [y1, y2] = await twice([a, Float32Array.from([0, alpha])], [b, b], ([ab, sb], [y1b, y2b]) => {
      gpu.axpy(alpha, ab, y1b, n);
      gpu.axpy({ buffer: sb, index: 1 }, ab, y2b, n);
    }, 'axpy');
    const yRef = Float32Array.from(b);
    ref.axpy(alpha, a, yRef, n);
    const mag = Float64Array.from(b, (v, i) => Math.abs(v) + 2 * Math.abs(alpha * a[i]));
    assertWithin(y1, yRef, mag, 1, 'axpy');
    assertBitwise(y2, y1, 'axpy with a device factor');
    // a device scale factor reads the same value as a host one
    const [s1] = await twice([a, Float32Array.from([alpha])], [n], ([ab, sb], [ob]) => gpu.scale(ab, { buffer: sb, index: 0 }, ob, n), 'scale device');
    const sRef = refOut(n);
    ref.scale(a, Math.fround(alpha), sRef, n);
    assertBitwise(s1, sRef, 'scale with a device factor');
  });

  it('dot and dots: fixed-order chunked sums, within float32 bounds of the float64 reference', async () => {
    for (const len of [1, 255, DOT_CHUNK, DOT_CHUNK + 1, 3 * DOT_CHUNK + 77]) {
      const r = new Random(len);
      const x = randn(r, len);
      const bs = Array.from({ length: 11 }, () => randn(r, len)); // more than one dispatch binds
      const at = [4, 0, 7, 7, 2, 9, 1, 3, 5, 6, 8]; // 7 twice: added in order
      const initial = Float32Array.from({ length: 10 }, (_, k) => k * 0.5);
      const [single, set, added] = await twice([x, ...bs], [3, 10, initial], ([xb, ...bbs], [sb, setb, addb]) => {
        gpu.dot(xb, bbs[0], len, sb, 2);
        gpu.dots(xb, bbs.slice(0, 10), len, setb, at.slice(0, 10).map((_, k) => k));
        gpu.dots(xb, bbs, len, addb, at, true);
      }, `dots ${len}`);
      // each invocation adds 16 products, then an 8-level tree, then the chunks (one each, 8-level tree)
      const depth = 16 + 8 + Math.ceil(len / DOT_CHUNK) + 8;
      const dotRef = bs.map((bv) => ref.dot(x, bv, len));
      const magRef = bs.map((bv) => ref.dot(abs(x), abs(bv), len));
      assertWithin(single.subarray(2, 3), Float32Array.of(dotRef[0]), [magRef[0]], depth, `dot ${len}`);
      assertWithin(set, Float32Array.from(dotRef.slice(0, 10)), magRef.slice(0, 10), depth, `dots ${len}`);
      const expected = Float64Array.from(initial);
      const expectedMag = Float64Array.from(initial);
      at.forEach((t, k) => {
        expected[t] += dotRef[k];
        expectedMag[t] += magRef[k];
      });
      assertWithin(added, Float32Array.from(expected), expectedMag, depth + 2, `dots accumulate ${len}`);
    }
  });

  it('weightedSum: ((w0 x0 + w1 x1) + w2 x2) + ... in float32, host and device weights, chunked inputs', async () => {
    for (const count of [1, 2, 8, 14]) {
      const r = new Random(2100 + count);
      const xs = Array.from({ length: count }, () => randn(r, n));
      const w = Array.from({ length: count }, () => Math.fround(r.uniform()));
      const wBuf = Float32Array.from([0, 0, ...w]);
      const [host, device] = await twice([wBuf, ...xs], [n, n], ([wb, ...xbs], [hb, db]) => {
        gpu.weightedSum(xbs, w, hb, n);
        gpu.weightedSum(xbs, { buffer: wb, indices: w.map((_, k) => k + 2) }, db, n);
      }, `weightedSum ${count}`);
      const outRef = refOut(n);
      ref.weightedSum(xs, w, outRef, n);
      const magRef = refOut(n);
      ref.weightedSum(xs.map(abs), w, magRef, n);
      // the reference rounds every product and sum to float32 as the kernel does; a fused multiply-add may skip a rounding
      assertWithin(host, outRef, magRef, count, `weightedSum ${count}`);
      assertBitwise(device, host, `weightedSum ${count} with device weights`);
    }
  });
});

// ------------------------------------------------------------------ channel plumbing

describe('webgpu channel plumbing is bitwise the reference', () => {
  it('cropPlanes forward and backward', async () => {
    for (const [planes, h, w, offset] of [[6, 7, 5, 1], [2, 4, 4, 2], [3, 1, 3, 0]] as const) {
      const r = new Random(planes * 100 + h);
      const full = randn(r, planes * h * w);
      const cropped = randn(r, planes * (h - offset) * (w - offset));
      const [fwd, bwd] = await twice([full, cropped], [cropped.length, full.length], ([fb, cb], [ob, bb]) => {
        gpu.cropPlanes(fb, ob, planes, h, w, offset, false);
        gpu.cropPlanes(cb, bb, planes, h, w, offset, true);
      }, 'cropPlanes');
      const [fwdRef, bwdRef] = [refOut(cropped.length), refOut(full.length)];
      ref.cropPlanes(full, fwdRef, planes, h, w, offset, false);
      ref.cropPlanes(cropped, bwdRef, planes, h, w, offset, true);
      assertBitwise(fwd, fwdRef, 'cropPlanes');
      assertBitwise(bwd, bwdRef, 'cropPlanes backward');
    }
  });

  it('gatherChannels: shuffle, concat, zero planes, accumulate, more sources than one dispatch binds', async () => {
    const batch = 3;
    const plane = 10;
    const r = new Random(2400);
    const cases: { channels: number[]; map: number[]; }[] = [
      // channel shuffle of one 6-channel source
      { channels: [6], map: [0, 0, 0, 3, 0, 1, 0, 4, 0, 2, 0, 5] },
      // concat of 4 sources with zero planes in between
      { channels: [2, 1, 3, 2], map: [0, 0, 0, 1, -1, 0, 1, 0, 2, 0, 2, 1, 2, 2, -1, 0, 3, 1, 3, 0] },
      // 13 sources of one channel, read backwards (more sources than one dispatch binds)
      { channels: new Array(13).fill(1), map: Array.from({ length: 13 }, (_, d) => [12 - d, 0]).flat() },
    ];
    for (const [ci, c] of cases.entries()) {
      const sources = c.channels.map((ch) => randn(r, batch * ch * plane));
      const dstC = c.map.length / 2;
      const map = Int32Array.from(c.map);
      const initial = randn(r, batch * dstC * plane);
      const [set, acc] = await twice(sources, [batch * dstC * plane, initial], (sbs, [db, ab]) => {
        gpu.gatherChannels(sbs, c.channels, db, dstC, map, batch, plane);
        gpu.gatherChannels(sbs, c.channels, ab, dstC, map, batch, plane, true);
      }, `gather ${ci}`);
      const setRef = refOut(batch * dstC * plane);
      ref.gatherChannels(sources, c.channels, setRef, dstC, map, batch, plane);
      const accRef = Float32Array.from(initial);
      ref.gatherChannels(sources, c.channels, accRef, dstC, map, batch, plane, true);
      assertBitwise(set, setRef, `gatherChannels case ${ci}`);
      assertBitwise(acc, accRef, `gatherChannels accumulate case ${ci}`);
    }
  });
});
