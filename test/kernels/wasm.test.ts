/**
 * The wasm SIMD backend against the reference backend on awkward shapes, thread-count
 * invariance (bitwise), and the shared-memory allocator.
 *
 * The backend under test runs with 2 threads and a zero parallel threshold, so that even
 * tiny shapes are split between the main thread and a worker.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  makeConvGeometry, makePoolGeometry,
  type BatchNormGeometry, type ConvGeometry, type KernelBackend, type PoolGeometry,
} from '../../src/kernels/backend.js';
import { ReferenceBackend } from '../../src/kernels/ref/backend.js';
import { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { Random } from '../../src/tensor/random.js';

const wasm = new WasmBackend({ threads: 2, parallelThresholdNs: 0 });
const ref = new ReferenceBackend();
after(() => wasm.dispose());

// ------------------------------------------------------------------ helpers

function randn(rng: Random, n: number, scale = 1, shift = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale + shift;
  return a;
}

/** A copy of `data` in memory of backend `be`. */
function on(be: KernelBackend, data: Float32Array): Float32Array {
  const a = be.alloc(data.length);
  a.set(data);
  return a;
}

/** A buffer of backend `be` full of NaN: proves that kernels overwrite their outputs. */
function garbage(be: KernelBackend, n: number): Float32Array {
  return be.alloc(n).fill(Number.NaN);
}

function relL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Number.isFinite(actual[i])) assert.fail(`${what}[${i}] is ${actual[i]} (expected ${expected[i]})`);
  }
  const err = relL2(actual, expected);
  assert.ok(err <= tol, `${what}: relative L2 error ${err.toExponential(2)} > ${tol}`);
}

function assertBitwise(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]} (bits differ)`);
  }
}

/** Pulls the result out of wasm memory (a view would change if the test frees it). */
function copy(a: Float32Array): Float32Array {
  return Float32Array.from(a);
}

function convCounts(g: ConvGeometry): { x: number; w: number; y: number } {
  return {
    x: g.batch * g.inChannels * g.inH * g.inW,
    w: g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW,
    y: g.batch * g.outChannels * g.outH * g.outW,
  };
}

// ------------------------------------------------------------------ convolution

type ConvCase = Parameters<typeof makeConvGeometry>[0];

const convCases: ConvCase[] = [
  // dense
  { batch: 2, inChannels: 3, inH: 7, inW: 9, outChannels: 5, kernel: 3, padding: 1 },
  { batch: 1, inChannels: 5, inH: 11, inW: 6, outChannels: 7, kernel: 3, padding: 0 },
  { batch: 3, inChannels: 6, inH: 13, inW: 37, outChannels: 9, kernel: 3, padding: 2, dilation: 2 },
  { batch: 2, inChannels: 4, inH: 12, inW: 10, outChannels: 6, kernel: 5, padding: 4, dilation: 2 },
  { batch: 2, inChannels: 3, inH: 9, inW: 9, outChannels: 4, kernel: 5, padding: 2 },
  { batch: 2, inChannels: 3, inH: 8, inW: 7, outChannels: 5, kernel: 2, padding: 0 },
  { batch: 2, inChannels: 3, inH: 8, inW: 7, outChannels: 5, kernel: 2, padding: 1 },
  { batch: 2, inChannels: 5, inH: 11, inW: 9, outChannels: 6, kernel: 3, padding: 1, stride: 2 },
  { batch: 1, inChannels: 3, inH: 10, inW: 10, outChannels: 3, kernel: 5, padding: 2, stride: 2 },
  // padding wider than the kernel reach (the transposed pass crops instead of padding)
  { batch: 2, inChannels: 3, inH: 6, inW: 7, outChannels: 4, kernel: 3, padding: 3 },
  { batch: 2, inChannels: 3, inH: 6, inW: 7, outChannels: 4, kernel: 1, padding: 1 },
  // 1x1 (pointwise), strided 1x1 (factorized reduce), 1x1 planes
  { batch: 2, inChannels: 5, inH: 7, inW: 5, outChannels: 7, kernel: 1 },
  { batch: 3, inChannels: 17, inH: 16, inW: 16, outChannels: 16, kernel: 1 },
  { batch: 2, inChannels: 6, inH: 9, inW: 11, outChannels: 3, kernel: 1, stride: 2 },
  { batch: 2, inChannels: 6, inH: 1, inW: 1, outChannels: 5, kernel: 1 },
  { batch: 2, inChannels: 3, inH: 1, inW: 1, outChannels: 4, kernel: 3, padding: 1 },
  // grouped
  { batch: 2, inChannels: 6, inH: 9, inW: 7, outChannels: 4, kernel: 3, padding: 1, groups: 2 },
  { batch: 1, inChannels: 4, inH: 9, inW: 11, outChannels: 6, kernel: 1, stride: 2, groups: 2 },
  // depthwise
  { batch: 2, inChannels: 5, inH: 9, inW: 13, outChannels: 5, kernel: 3, padding: 1, groups: 5 },
  { batch: 1, inChannels: 7, inH: 32, inW: 33, outChannels: 7, kernel: 3, padding: 1, groups: 7 },
  { batch: 2, inChannels: 3, inH: 11, inW: 10, outChannels: 3, kernel: 3, padding: 1, stride: 2, groups: 3 },
  { batch: 2, inChannels: 6, inH: 9, inW: 11, outChannels: 6, kernel: 5, padding: 4, dilation: 2, stride: 2, groups: 6 },
  { batch: 2, inChannels: 4, inH: 10, inW: 12, outChannels: 4, kernel: 3, padding: 2, dilation: 2, groups: 4 },
  { batch: 2, inChannels: 4, inH: 13, inW: 9, outChannels: 4, kernel: 5, padding: 2, groups: 4 },
  { batch: 2, inChannels: 3, inH: 6, inW: 5, outChannels: 3, kernel: 2, padding: 0, groups: 3 },
  { batch: 2, inChannels: 3, inH: 1, inW: 1, outChannels: 3, kernel: 3, padding: 1, groups: 3 },
  { batch: 2, inChannels: 3, inH: 8, inW: 8, outChannels: 3, kernel: 3, padding: 0, groups: 3 },
  { batch: 2, inChannels: 3, inH: 6, inW: 9, outChannels: 3, kernel: 3, padding: 4, groups: 3 },
  // channel multiplier (groups = inChannels, 2 outputs per group): the general grouped path
  { batch: 2, inChannels: 3, inH: 7, inW: 6, outChannels: 6, kernel: 3, padding: 1, groups: 3 },
];

function describeConv(p: ConvCase): string {
  return `N${p.batch} C${p.inChannels}->${p.outChannels} ${p.inH}x${p.inW} k${JSON.stringify(p.kernel)} ` +
    `s${p.stride ?? 1} p${p.padding ?? 0} d${p.dilation ?? 1} g${p.groups ?? 1}`;
}

describe('wasm conv2d matches the reference', () => {
  for (const [i, p] of convCases.entries()) {
    it(describeConv(p), () => {
      const rng = new Random(100 + i);
      const g = makeConvGeometry(p);
      const n = convCounts(g);
      const x = randn(rng, n.x);
      const w = randn(rng, n.w, 0.5);
      const gy = randn(rng, n.y);

      const y = garbage(wasm, n.y);
      wasm.conv2d(on(wasm, x), on(wasm, w), y, g);
      const yRef = new Float32Array(n.y);
      ref.conv2d(x, w, yRef, g);
      assertNear(y, yRef, 1e-5, 'y');

      const gx = garbage(wasm, n.x);
      wasm.conv2dGradInput(on(wasm, gy), on(wasm, w), gx, g);
      const gxRef = new Float32Array(n.x);
      ref.conv2dGradInput(gy, w, gxRef, g);
      assertNear(gx, gxRef, 1e-5, 'gradX');

      const gw = garbage(wasm, n.w);
      wasm.conv2dGradWeight(on(wasm, x), on(wasm, gy), gw, g);
      const gwRef = new Float32Array(n.w);
      ref.conv2dGradWeight(x, gy, gwRef, g);
      assertNear(gw, gwRef, 1e-5, 'gradW');
    });
  }

  it('larger reductions (N16 C8 24x24, dense and depthwise)', () => {
    const rng = new Random(7);
    for (const groups of [1, 8]) {
      const g = makeConvGeometry({ batch: 16, inChannels: 8, inH: 24, inW: 24, outChannels: 8, kernel: 3, padding: 1, groups });
      const n = convCounts(g);
      const x = randn(rng, n.x);
      const gy = randn(rng, n.y);
      const gw = garbage(wasm, n.w);
      wasm.conv2dGradWeight(on(wasm, x), on(wasm, gy), gw, g);
      const gwRef = new Float32Array(n.w);
      ref.conv2dGradWeight(x, gy, gwRef, g);
      assertNear(gw, gwRef, 1e-4, `gradW groups ${groups}`);
    }
  });
});

// ------------------------------------------------------------------ batch norm

/**
 * The depthwise 3x3/stride 1/pad 1 window in float32, summed in the order of the SIMD
 * window pass (taps in pairs within 16-output passes, even/odd taps on the tail vectors).
 * `fused`: the relaxed-SIMD build, whose multiply-adds round once (fma below: the float32
 * product is exact in float64, so only the sum is rounded, to float64 and then to float32;
 * that double rounding differs from one rounding in about 2^-29 of cases, none in these data).
 */
function dw3x3Exact(x: Float32Array, w: Float32Array, N: number, C: number, H: number, W: number, fused: boolean): Float32Array {
  const f = Math.fround;
  const fma = (a: number, b: number, c: number): number => (fused ? f(a * b + c) : f(f(a * b) + c));
  const y = new Float32Array(N * C * H * W);
  const nv = (W + 3) >> 2;
  const nPaired = nv & ~3;
  for (let p = 0; p < N * C; p++) {
    const c = p % C;
    const at = (r: number, q: number): number => (r < 0 || r >= H || q < 0 || q >= W ? 0 : x[p * H * W + r * W + q]);
    for (let oh = 0; oh < H; oh++) {
      for (let ow = 0; ow < W; ow++) {
        const wk = (k: number): number => w[c * 9 + k];
        const xk = (k: number): number => at(oh - 1 + Math.floor(k / 3), ow - 1 + (k % 3));
        const t = (k: number): number => f(wk(k) * xk(k));
        const pair = (k: number): number => fma(wk(k), xk(k), t(k + 1));
        let s: number;
        if ((ow >> 2) < nPaired) {
          s = pair(0);
          for (let k = 2; k < 8; k += 2) s = f(s + pair(k));
          s = fma(wk(8), xk(8), s);
        } else {
          let a = t(0);
          for (let k = 2; k <= 8; k += 2) a = fma(wk(k), xk(k), a);
          let b = t(1);
          for (let k = 3; k < 8; k += 2) b = fma(wk(k), xk(k), b);
          s = f(a + b);
        }
        y[p * H * W + oh * W + ow] = s;
      }
    }
  }
  return y;
}

describe('wasm depthwise 3x3 stride-1 fast path', () => {
  it(`matches the reference and the SIMD summation order bit for bit (${wasm.build} build; widths 1..33, heights 1..5)`, () => {
    const rng = new Random(33);
    for (const H of [1, 2, 3, 5]) {
      for (const W of [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 19, 20, 31, 32, 33]) {
        const N = 2;
        const C = 3;
        const g = makeConvGeometry({ batch: N, inChannels: C, inH: H, inW: W, outChannels: C, kernel: 3, padding: 1, groups: C });
        const n = convCounts(g);
        const x = randn(rng, n.x);
        const w = randn(rng, n.w, 0.5);
        const what = `${H}x${W}`;
        const y = garbage(wasm, n.y);
        wasm.conv2d(on(wasm, x), on(wasm, w), y, g);
        const yRef = new Float32Array(n.y);
        ref.conv2d(x, w, yRef, g);
        assertNear(y, yRef, 1e-6, `y ${what}`);
        const yExact = dw3x3Exact(x, w, N, C, H, W, wasm.build === 'relaxed-simd');
        for (let i = 0; i < n.y; i++) {
          if (y[i] !== yExact[i]) assert.fail(`y ${what}[${i}] = ${y[i]}, expected ${yExact[i]}`);
        }
        const gy = randn(rng, n.y);
        const gx = garbage(wasm, n.x);
        wasm.conv2dGradInput(on(wasm, gy), on(wasm, w), gx, g);
        const gxRef = new Float32Array(n.x);
        ref.conv2dGradInput(gy, w, gxRef, g);
        assertNear(gx, gxRef, 1e-6, `gradX ${what}`);
        // gradX = the same window with the flipped kernel
        const wf = new Float32Array(n.w);
        for (let c = 0; c < C; c++) for (let k = 0; k < 9; k++) wf[c * 9 + k] = w[c * 9 + 8 - k];
        const gxExact = dw3x3Exact(gy, wf, N, C, H, W, wasm.build === 'relaxed-simd');
        for (let i = 0; i < n.x; i++) {
          if (gx[i] !== gxExact[i]) assert.fail(`gradX ${what}[${i}] = ${gx[i]}, expected ${gxExact[i]}`);
        }
      }
    }
  });
});

describe('wasm batch norm matches the reference', () => {
  const shapes: BatchNormGeometry[] = [
    { batch: 1, channels: 3, spatial: 1 },
    { batch: 2, channels: 5, spatial: 63 },
    { batch: 4, channels: 6, spatial: 33 },
    { batch: 3, channels: 4, spatial: 1024 + 7 },
  ];
  for (const [i, g] of shapes.entries()) {
    for (const affine of [true, false]) {
      it(`N${g.batch} C${g.channels} S${g.spatial} affine=${affine}`, () => {
        const rng = new Random(200 + i);
        const numel = g.batch * g.channels * g.spatial;
        // A large mean relative to the spread checks the two-pass variance.
        const x = randn(rng, numel, 0.3, 4);
        const gy = randn(rng, numel);
        const gamma = affine ? randn(rng, g.channels, 0.5, 1) : null;
        const beta = affine ? randn(rng, g.channels) : null;
        const wGamma = gamma && on(wasm, gamma);
        const wBeta = beta && on(wasm, beta);
        const wx = on(wasm, x);
        const wgy = on(wasm, gy);

        const y = garbage(wasm, numel);
        const mean = garbage(wasm, g.channels);
        const inv = garbage(wasm, g.channels);
        wasm.batchNormTrain(wx, wGamma, wBeta, 1e-5, y, mean, inv, g);
        const yRef = new Float32Array(numel);
        const meanRef = new Float32Array(g.channels);
        const invRef = new Float32Array(g.channels);
        ref.batchNormTrain(x, gamma, beta, 1e-5, yRef, meanRef, invRef, g);
        assertNear(mean, meanRef, 1e-6, 'mean');
        assertNear(inv, invRef, 1e-5, 'invStd');
        assertNear(y, yRef, 1e-5, 'y');

        const ya = garbage(wasm, numel);
        wasm.batchNormApply(wx, mean, inv, wGamma, wBeta, ya, g);
        const yaRef = new Float32Array(numel);
        ref.batchNormApply(x, meanRef, invRef, gamma, beta, yaRef, g);
        assertNear(ya, yaRef, 1e-5, 'apply y');

        for (const withGrads of [true, false]) {
          const gx = garbage(wasm, numel);
          const gg = withGrads ? garbage(wasm, g.channels) : null;
          const gb = withGrads ? garbage(wasm, g.channels) : null;
          wasm.batchNormTrainBackward(wgy, wx, mean, inv, wGamma, gx, gg, gb, g);
          const gxRef = new Float32Array(numel);
          const ggRef = new Float32Array(g.channels);
          const gbRef = new Float32Array(g.channels);
          ref.batchNormTrainBackward(gy, x, meanRef, invRef, gamma, gxRef, ggRef, gbRef, g);
          assertNear(gx, gxRef, 1e-4, 'train gradX');
          if (gg && gb) {
            assertNear(gg, ggRef, 1e-5, 'train gradGamma');
            assertNear(gb, gbRef, 1e-5, 'train gradBeta');
          }

          const gxa = garbage(wasm, numel);
          const gga = withGrads ? garbage(wasm, g.channels) : null;
          const gba = withGrads ? garbage(wasm, g.channels) : null;
          wasm.batchNormApplyBackward(wgy, wx, mean, inv, wGamma, gxa, gga, gba, g);
          const gxaRef = new Float32Array(numel);
          ref.batchNormApplyBackward(gy, x, meanRef, invRef, gamma, gxaRef, ggRef, gbRef, g);
          assertNear(gxa, gxaRef, 1e-5, 'apply gradX');
          if (gga && gba) {
            assertNear(gga, ggRef, 1e-5, 'apply gradGamma');
            assertNear(gba, gbRef, 1e-5, 'apply gradBeta');
          }
        }
      });
    }
  }
});

describe('wasm batch norm keeps float32 accuracy when |mean| >> std', () => {
  // x = offset + 0.01 N(0, 1): a float32-rounded mean, or a mean summed in float32, is off
  // by ~ulp(offset), which (x - mean) * invStd magnifies by |mean| / std (1e4 at offset 100:
  // errors of ~1e-3 in y ~ N(0, 1)). The corrected two-pass statistics and the split mean
  // keep y within a few float32 ulps of the float64 reference.
  const shapes: BatchNormGeometry[] = [
    { batch: 8, channels: 3, spatial: 1024 + 5 },
    { batch: 8, channels: 4, spatial: 4 },
    { batch: 64, channels: 2, spatial: 1 },
  ];
  for (const [i, g] of shapes.entries()) {
    for (const offset of [1, 100, -3000]) {
      it(`N${g.batch} C${g.channels} S${g.spatial} x = ${offset} + 0.01 N(0, 1)`, () => {
        const rng = new Random(250 + 7 * i + offset);
        const numel = g.batch * g.channels * g.spatial;
        const x = randn(rng, numel, 0.01, offset);
        const gamma = randn(rng, g.channels, 0.5, 1);
        const beta = randn(rng, g.channels);
        const y = garbage(wasm, numel);
        const mean = garbage(wasm, g.channels);
        const inv = garbage(wasm, g.channels);
        wasm.batchNormTrain(on(wasm, x), on(wasm, gamma), on(wasm, beta), 1e-5, y, mean, inv, g);
        const yRef = new Float32Array(numel);
        const meanRef = new Float32Array(g.channels);
        const invRef = new Float32Array(g.channels);
        ref.batchNormTrain(x, gamma, beta, 1e-5, yRef, meanRef, invRef, g);
        assertNear(mean, meanRef, 1e-7, 'mean');
        assertNear(inv, invRef, 1e-6, 'invStd');
        let worst = 0;
        for (let k = 0; k < numel; k++) worst = Math.max(worst, Math.abs(y[k] - yRef[k]));
        assert.ok(worst <= 1e-6, `max |y - yRef| = ${worst.toExponential(2)} > 1e-6`);
      });
    }
  }
});

// ------------------------------------------------------------------ elementwise

describe('wasm elementwise kernels match the reference', () => {
  for (const n of [0, 1, 3, 17, 1000, 100_003]) {
    it(`n = ${n}`, () => {
      const rng = new Random(300 + n);
      const a = randn(rng, n);
      const b = randn(rng, n);
      if (n > 3) {
        a[0] = 0;
        a[1] = -0;
        a[2] = 1e-30;
      }
      const wa = on(wasm, a);
      const wb = on(wasm, b);

      const r = garbage(wasm, n);
      wasm.relu(wa, r, n);
      const rRef = new Float32Array(n);
      ref.relu(a, rRef, n);
      assertBitwise(r, rRef, 'relu');

      const gx = garbage(wasm, n);
      wasm.reluBackward(wb, wa, gx, n);
      const gxRef = new Float32Array(n);
      ref.reluBackward(b, a, gxRef, n);
      assertBitwise(gx, gxRef, 'reluBackward');

      const s = garbage(wasm, n);
      wasm.add(wa, wb, s, n);
      const sRef = new Float32Array(n);
      ref.add(a, b, sRef, n);
      assertBitwise(s, sRef, 'add');

      const y = on(wasm, b);
      wasm.axpy(0.37, wa, y, n);
      const yRef = Float32Array.from(b);
      ref.axpy(0.37, a, yRef, n);
      assertNear(y, yRef, 1e-6, 'axpy');

      const sc = on(wasm, a);
      wasm.scale(sc, -1.5, sc, n); // out aliases x
      const scRef = Float32Array.from(a);
      ref.scale(scRef, -1.5, scRef, n);
      assertNear(sc, scRef, 1e-7, 'scale');

      const d = wasm.dot(wa, wb, n);
      const dRef = ref.dot(a, b, n);
      assert.ok(Math.abs(d - dRef) <= 1e-9 * (1 + Math.abs(dRef)), `dot ${d} vs ${dRef}`);
    });
  }
});

describe('wasm gatherChannels matches the reference', () => {
  for (const plane of [1, 7, 64, 300]) {
    it(`plane ${plane}: shuffled join of two sources with zero channels`, () => {
      const rng = new Random(450 + plane);
      const batch = 3;
      const a = randn(rng, batch * 2 * plane);
      const b = randn(rng, batch * 5 * plane);
      // 8 output channels: some from a, some from b, two zero, in a scrambled order.
      const map = Int32Array.from([1, 4, 0, 1, -1, 0, 1, 0, 1, 2, 0, 0, -1, 0, 1, 3]);
      const dst = garbage(wasm, batch * 8 * plane);
      wasm.gatherChannels([on(wasm, a), on(wasm, b)], [2, 5], dst, 8, map, batch, plane);
      const dstRef = new Float32Array(batch * 8 * plane).fill(Number.NaN);
      ref.gatherChannels([a, b], [2, 5], dstRef, 8, map, batch, plane);
      assertBitwise(dst, dstRef, 'dst');
      // Accumulating: adds the read planes, leaves the -1 channels as they were.
      const base = randn(rng, batch * 8 * plane);
      const acc = on(wasm, base);
      wasm.gatherChannels([on(wasm, a), on(wasm, b)], [2, 5], acc, 8, map, batch, plane, true);
      const accRef = Float32Array.from(base);
      ref.gatherChannels([a, b], [2, 5], accRef, 8, map, batch, plane, true);
      assertBitwise(acc, accRef, 'accumulated');
      assert.equal(accRef[(1 * 8 + 2) * plane], base[(1 * 8 + 2) * plane], 'a -1 channel is left alone');
      // Spot-check the reference itself: sample 2, channel 0 is b's channel 4; channel 2 is zero.
      assert.equal(dstRef[(2 * 8 + 0) * plane], b[(2 * 5 + 4) * plane]);
      assert.equal(dstRef[(2 * 8 + 2) * plane + plane - 1], 0);
    });
  }
  it('rejects a map reading outside a source', () => {
    const x = on(wasm, new Float32Array(4));
    assert.throws(() => wasm.gatherChannels([x], [2], garbage(wasm, 4), 2, Int32Array.from([0, 0, 0, 2]), 1, 2), /outside the sources/);
    assert.throws(() => ref.gatherChannels([new Float32Array(4)], [2], new Float32Array(4), 2, Int32Array.from([1, 0, 0, 1]), 1, 2), /outside the sources/);
  });
});

describe('wasm cropPlanes matches the reference', () => {
  for (const [h, w, offset] of [[4, 4, 1], [9, 7, 1], [32, 32, 1], [6, 300, 2]]) {
    it(`${h}x${w} offset ${offset}, forward and adjoint`, () => {
      const rng = new Random(480 + h + w);
      const planes = 5;
      const cropped = planes * (h - offset) * (w - offset);
      const x = randn(rng, planes * h * w);
      const y = garbage(wasm, cropped);
      wasm.cropPlanes(on(wasm, x), y, planes, h, w, offset, false);
      const yRef = new Float32Array(cropped);
      ref.cropPlanes(x, yRef, planes, h, w, offset, false);
      assertBitwise(y, yRef, 'crop');
      assert.equal(yRef[0], x[offset * w + offset]);
      const gy = randn(rng, cropped);
      const gx = garbage(wasm, planes * h * w);
      wasm.cropPlanes(on(wasm, gy), gx, planes, h, w, offset, true);
      const gxRef = new Float32Array(planes * h * w).fill(Number.NaN);
      ref.cropPlanes(gy, gxRef, planes, h, w, offset, true);
      assertBitwise(gx, gxRef, 'adjoint');
      assert.equal(gxRef[offset - 1], 0);
    });
  }
});

describe('wasm scaleSamples matches the reference', () => {
  for (const per of [1, 7, 4099]) {
    it(`per-sample length ${per}`, () => {
      const rng = new Random(490 + per);
      const batch = 37;
      const x = randn(rng, batch * per);
      const factors = Float32Array.from({ length: batch }, (_, i) => (i % 3 === 0 ? 0 : 1 / 0.7));
      const out = garbage(wasm, batch * per);
      wasm.scaleSamples(on(wasm, x), factors, out, per);
      const outRef = new Float32Array(batch * per);
      ref.scaleSamples(x, factors, outRef, per);
      assertBitwise(out, outRef, 'scaleSamples');
      assert.ok(outRef.subarray(0, per).every((v) => v === 0), 'sample 0 dropped');
    });
  }
});

describe('wasm weightedSum and dots', () => {
  for (const n of [1, 13, 4096 * 3 + 5, 100_003]) {
    it(`n = ${n}: weightedSum is bitwise scale + axpys and the reference; dots is bitwise dot; scaleMany is bitwise scale`, () => {
      const rng = new Random(470 + n);
      const xs = Array.from({ length: 7 }, () => randn(rng, n));
      const weights = [0.31, -1.7, 0.05, 2.5, 0.125, -0.6, 0.9].map(Math.fround);
      const wxs = xs.map((x) => on(wasm, x));
      const out = garbage(wasm, n);
      wasm.weightedSum(wxs, weights, out, n);
      const chain = garbage(wasm, n);
      wasm.scale(wxs[0], weights[0], chain, n);
      for (let i = 1; i < 7; i++) wasm.axpy(weights[i], wxs[i], chain, n);
      assertBitwise(out, chain, 'weightedSum vs scale + axpy');
      const outRef = new Float32Array(n);
      ref.weightedSum(xs, weights, outRef, n);
      assertBitwise(out, outRef, 'weightedSum vs reference');

      const gy = on(wasm, randn(rng, n));
      const products = wasm.dots(gy, wxs, n);
      wxs.forEach((x, i) => assert.equal(products[i], wasm.dot(gy, x, n), `dots[${i}]`));
      const outs = weights.map(() => garbage(wasm, n));
      wasm.scaleMany(gy, weights, outs, n);
      outs.forEach((out, k) => {
        const single = garbage(wasm, n);
        wasm.scale(gy, weights[k], single, n);
        assertBitwise(out, single, `scaleMany[${k}] vs scale`);
      });
      const productsRef = ref.dots(gy, xs, n);
      productsRef.forEach((p, i) => assert.ok(Math.abs(products[i] - p) <= 1e-9 * (1 + Math.abs(p)), `dots[${i}] vs reference`));
    });
  }
});

// ------------------------------------------------------------------ pooling

describe('wasm pooling matches the reference', () => {
  const cases = [
    { batch: 2, channels: 3, inH: 7, inW: 9, kernel: 3, stride: 1, padding: 1 },
    { batch: 2, channels: 3, inH: 8, inW: 11, kernel: 3, stride: 2, padding: 1 },
    { batch: 1, channels: 5, inH: 9, inW: 9, kernel: 2, stride: 2, padding: 0 },
    { batch: 2, channels: 2, inH: 11, inW: 13, kernel: 5, stride: 1, padding: 2 },
    { batch: 2, channels: 2, inH: 12, inW: 37, kernel: 3, stride: 1, padding: 0 },
    { batch: 2, channels: 3, inH: 1, inW: 1, kernel: 3, stride: 1, padding: 1 },
    { batch: 1, channels: 4, inH: 5, inW: 6, kernel: 3, stride: 3, padding: 1 },
    // The separable 3x3/s1/p1 max pool: one row, two rows, a width of exactly one vector, wide rows.
    { batch: 2, channels: 3, inH: 1, inW: 5, kernel: 3, stride: 1, padding: 1 },
    { batch: 1, channels: 2, inH: 2, inW: 4, kernel: 3, stride: 1, padding: 1 },
    { batch: 2, channels: 2, inH: 32, inW: 32, kernel: 3, stride: 1, padding: 1 },
    { batch: 1, channels: 3, inH: 6, inW: 301, kernel: 3, stride: 1, padding: 1 },
    // Stride 1 (the gather path of the backward): even windows, padding up to kernel - 1.
    { batch: 2, channels: 2, inH: 7, inW: 10, kernel: 2, stride: 1, padding: 1 },
    { batch: 2, channels: 2, inH: 6, inW: 7, kernel: 2, stride: 1, padding: 0 },
    { batch: 1, channels: 3, inH: 9, inW: 14, kernel: 3, stride: 1, padding: 2 },
    { batch: 1, channels: 2, inH: 3, inW: 3, kernel: 5, stride: 1, padding: 4 },
  ];
  /**
   * Max-pool input gradient in float32, routed in PyTorch's order: each gy, in output order,
   * added to the first maximum of its window (NaN never wins; an all -inf window routes to
   * its first in-bounds cell). Both wasm paths (gather at stride 1, scatter otherwise) must
   * give exactly these bits.
   */
  function maxPoolBackwardExact(x: Float32Array, gy: Float32Array, g: PoolGeometry): Float32Array {
    const gx = new Float32Array(g.batch * g.channels * g.inH * g.inW);
    for (let p = 0; p < g.batch * g.channels; p++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          let best = -Infinity;
          let at = -1;
          for (let kh = 0; kh < g.kernelH; kh++) {
            for (let kw = 0; kw < g.kernelW; kw++) {
              const ih = oh * g.strideH - g.padH + kh;
              const iw = ow * g.strideW - g.padW + kw;
              if (ih < 0 || ih >= g.inH || iw < 0 || iw >= g.inW) continue;
              const i = (p * g.inH + ih) * g.inW + iw;
              if (at < 0) at = i; // the first in-bounds cell, unless something beats -inf
              if (x[i] > best) {
                best = x[i];
                at = i;
              }
            }
          }
          if (at >= 0) gx[at] = Math.fround(gx[at] + gy[(p * g.outH + oh) * g.outW + ow]);
        }
      }
    }
    return gx;
  }
  for (const [i, p] of cases.entries()) {
    it(`${p.inH}x${p.inW} k${p.kernel} s${p.stride} p${p.padding}`, () => {
      const rng = new Random(500 + i);
      const g: PoolGeometry = makePoolGeometry(p);
      const nx = g.batch * g.channels * g.inH * g.inW;
      const ny = g.batch * g.channels * g.outH * g.outW;
      // Few distinct values: plenty of ties for the first-maximum rule.
      const x = new Float32Array(nx);
      for (let j = 0; j < nx; j++) x[j] = rng.int(4) - 2;
      for (let j = 0; j < nx; j += 7) x[j] = -Infinity; // windows of -inf and partly -inf windows
      const gy = randn(rng, ny);
      const wx = on(wasm, x);
      const wgy = on(wasm, gy);

      const y = garbage(wasm, ny);
      wasm.maxPool2d(wx, y, g);
      const yRef = new Float32Array(ny);
      ref.maxPool2d(x, yRef, g);
      assertBitwise(y, yRef, 'max y');

      const gx = garbage(wasm, nx);
      wasm.maxPool2dBackward(wx, wgy, gx, g);
      const gxRef = new Float32Array(nx);
      ref.maxPool2dBackward(x, gy, gxRef, g);
      assertNear(gx, gxRef, 1e-6, 'max gradX');
      assertBitwise(gx, maxPoolBackwardExact(x, gy, g), 'max gradX in float32, PyTorch order');

      const xs = randn(rng, nx);
      const ya = garbage(wasm, ny);
      wasm.avgPool2d(on(wasm, xs), ya, g);
      const yaRef = new Float32Array(ny);
      ref.avgPool2d(xs, yaRef, g);
      assertNear(ya, yaRef, 1e-6, 'avg y');

      const gxa = garbage(wasm, nx);
      wasm.avgPool2dBackward(wgy, gxa, g);
      const gxaRef = new Float32Array(nx);
      ref.avgPool2dBackward(gy, gxaRef, g);
      assertNear(gxa, gxaRef, 1e-6, 'avg gradX');
    });
  }
});

// ------------------------------------------------------------------ linear

describe('wasm linear matches the reference', () => {
  const cases = [[1, 1, 1], [7, 5, 3], [33, 17, 10], [64, 64, 10], [5, 256, 7]];
  for (const [rows, inF, outF] of cases) {
    for (const withBias of [true, false]) {
      it(`${rows}x${inF} -> ${outF} bias=${withBias}`, () => {
        const rng = new Random(600 + rows * 31 + inF);
        const x = randn(rng, rows * inF);
        const w = randn(rng, outF * inF, 0.3);
        const b = withBias ? randn(rng, outF) : null;
        const gy = randn(rng, rows * outF);
        const wx = on(wasm, x);
        const ww = on(wasm, w);
        const wgy = on(wasm, gy);

        const y = garbage(wasm, rows * outF);
        wasm.linear(wx, ww, b && on(wasm, b), y, rows, inF, outF);
        const yRef = new Float32Array(rows * outF);
        ref.linear(x, w, b, yRef, rows, inF, outF);
        assertNear(y, yRef, 1e-5, 'y');

        const gx = garbage(wasm, rows * inF);
        wasm.linearGradInput(wgy, ww, gx, rows, inF, outF);
        const gxRef = new Float32Array(rows * inF);
        ref.linearGradInput(gy, w, gxRef, rows, inF, outF);
        assertNear(gx, gxRef, 1e-5, 'gradX');

        const gw = garbage(wasm, outF * inF);
        const gb = withBias ? garbage(wasm, outF) : null;
        wasm.linearGradWeight(wx, wgy, gw, gb, rows, inF, outF);
        const gwRef = new Float32Array(outF * inF);
        const gbRef = new Float32Array(outF);
        ref.linearGradWeight(x, gy, gwRef, withBias ? gbRef : null, rows, inF, outF);
        assertNear(gw, gwRef, 1e-5, 'gradW');
        if (gb) assertNear(gb, gbRef, 1e-6, 'gradB');
      });
    }
  }
});

// ------------------------------------------------------------------ thread-count invariance

describe('wasm results do not depend on the thread count', () => {
  it('bitwise identical with 1 and 2 threads on [64, 16, 32, 32]', () => {
    const one = new WasmBackend({ threads: 1 });
    const two = new WasmBackend({ threads: 2, parallelThresholdNs: 0 });
    try {
      const rng = new Random(700);
      const shape = { batch: 64, inChannels: 16, inH: 32, inW: 32, outChannels: 16 };
      const numel = 64 * 16 * 32 * 32;
      const x = randn(rng, numel);
      const gy = randn(rng, numel);
      const w = randn(rng, 16 * 16 * 9, 0.2);
      const run = (be: KernelBackend): Float32Array[] => {
        const bx = on(be, x);
        const bgy = on(be, gy);
        const bw = on(be, w);
        const out: Float32Array[] = [];
        for (const extra of [
          { kernel: 3, padding: 1 }, { kernel: 1 }, { kernel: 3, padding: 1, groups: 16 },
          { kernel: 5, padding: 4, dilation: 2, stride: 2, groups: 16 },
        ]) {
          const g = makeConvGeometry({ ...shape, ...extra });
          const n = convCounts(g);
          const gw = be.alloc(n.w);
          be.conv2dGradWeight(bx, bgy, gw, g);
          out.push(copy(gw));
          const y = be.alloc(n.y);
          be.conv2d(bx, bw, y, g);
          out.push(copy(y));
          const gx = be.alloc(n.x);
          be.conv2dGradInput(bgy, bw, gx, g);
          out.push(copy(gx));
        }
        const bn = { batch: 64, channels: 16, spatial: 1024 };
        const y = be.alloc(numel);
        const mean = be.alloc(16);
        const inv = be.alloc(16);
        be.batchNormTrain(bx, null, null, 1e-5, y, mean, inv, bn);
        const gx = be.alloc(numel);
        const gg = be.alloc(16);
        const gb = be.alloc(16);
        be.batchNormTrainBackward(bgy, bx, mean, inv, null, gx, gg, gb, bn);
        out.push(copy(y), copy(mean), copy(inv), copy(gx), copy(gg), copy(gb));
        out.push(Float32Array.of(be.dot(bx, bgy, numel)));
        const lw = be.alloc(10 * 16 * 1024);
        be.linearGradWeight(bx.subarray(0, 64 * 16 * 1024), bgy.subarray(0, 64 * 10), lw, null, 64, 16 * 1024, 10);
        out.push(copy(lw));
        return out;
      };
      const a = run(one);
      const b = run(two);
      for (let i = 0; i < a.length; i++) assertBitwise(a[i], b[i], `result ${i}`);
    } finally {
      one.dispose();
      two.dispose();
    }
  });
});

// ------------------------------------------------------------------ allocator

describe('wasm allocator', () => {
  it('hands out aligned, disjoint views and reuses freed blocks of the same size', () => {
    const be = new WasmBackend({ threads: 1 });
    const a = be.alloc(1000);
    const b = be.alloc(1000);
    const c = be.alloc(3);
    for (const v of [a, b, c]) assert.equal(v.byteOffset % 64, 0);
    assert.equal(a.length, 1000);
    assert.equal(c.length, 3);
    a.fill(1);
    b.fill(2);
    c.fill(3);
    assert.ok(a.every((v) => v === 1) && b.every((v) => v === 2) && c.every((v) => v === 3));
    const offset = b.byteOffset;
    be.free(b);
    const d = be.alloc(1000);
    assert.equal(d.byteOffset, offset, 'same-size allocation reuses the freed block');
    const e = be.alloc(1001); // same 256-byte size class
    assert.notEqual(e.byteOffset, offset);
    be.free(e);
    const f = be.alloc(1010);
    assert.equal(f.byteOffset, e.byteOffset, 'rounded size classes are reused');
    be.dispose();
  });

  it('allocZeros zero-fills a reused block', () => {
    const be = new WasmBackend({ threads: 1 });
    const a = be.alloc(500).fill(7);
    be.free(a);
    const z = be.allocZeros(500);
    assert.equal(z.byteOffset, a.byteOffset);
    assert.ok(z.every((v) => v === 0));
    be.dispose();
  });

  it('tracks live, peak and reserved bytes', () => {
    const be = new WasmBackend({ threads: 1 });
    const base = be.memoryStats();
    const a = be.alloc(1024); // 4096 bytes
    const b = be.alloc(10); // rounded to 256 bytes
    let s = be.memoryStats();
    assert.equal(s.liveBytes - base.liveBytes, 4096 + 256);
    assert.ok(s.peakBytes >= s.liveBytes);
    assert.ok(s.reservedBytes >= s.liveBytes);
    be.free(a);
    s = be.memoryStats();
    assert.equal(s.liveBytes - base.liveBytes, 256);
    assert.equal(s.peakBytes - base.liveBytes, 4096 + 256);
    be.resetPeak();
    assert.equal(be.memoryStats().peakBytes, be.memoryStats().liveBytes);
    // Freeing twice, or freeing a foreign array, is ignored.
    be.free(a);
    be.free(new Float32Array(4));
    assert.equal(be.memoryStats().liveBytes - base.liveBytes, 256);
    be.free(b);
    be.dispose();
  });

  it('a stale second free does not release the block now owned by someone else', () => {
    const be = new WasmBackend({ threads: 1 });
    const a = be.alloc(100);
    be.free(a);
    const b = be.alloc(100);
    assert.equal(b.byteOffset, a.byteOffset);
    be.free(a); // stale
    const c = be.alloc(100);
    assert.notEqual(c.byteOffset, b.byteOffset);
    be.dispose();
  });

  it('merges freed neighbours and splits larger blocks (best fit), so mixed sizes reuse memory', () => {
    const be = new WasmBackend({ threads: 1 });
    const keep = be.alloc(64);
    const a = be.alloc(1024); // 4096 bytes each
    const b = be.alloc(1024);
    const c = be.alloc(1024);
    const fence = be.alloc(64); // keeps c's right neighbour in use
    be.free(a);
    be.free(b);
    // a and b merged: a block of 2048 floats fits exactly where a was.
    const ab = be.alloc(2048);
    assert.equal(ab.byteOffset, a.byteOffset);
    be.free(ab);
    // A smaller request splits the merged block; the rest serves the next one.
    const small = be.alloc(256);
    assert.equal(small.byteOffset, a.byteOffset);
    const rest = be.alloc(1024);
    assert.equal(rest.byteOffset, a.byteOffset + 1024);
    // Freeing everything above `keep` lowers the bump pointer back to it.
    for (const v of [small, rest, c, fence]) be.free(v);
    const again = be.alloc(4096);
    assert.equal(again.byteOffset, a.byteOffset);
    be.free(again);
    be.free(keep);
    be.dispose();
  });

  it('grows the memory; old views keep their contents and kernels see new blocks', () => {
    const be = new WasmBackend({ threads: 2, parallelThresholdNs: 0 });
    const reserved = be.memoryStats().reservedBytes;
    const small = be.alloc(1000);
    for (let i = 0; i < 1000; i++) small[i] = i;
    const big = be.alloc(reserved / 4 + 1_000_000); // more than is reserved now
    assert.ok(be.memoryStats().reservedBytes > reserved, 'memory grew');
    assert.equal(big.length, reserved / 4 + 1_000_000);
    for (let i = 0; i < 1000; i++) assert.equal(small[i], i);
    big.fill(-1);
    const out = be.alloc(big.length);
    be.relu(big, out, big.length); // both threads read and write the grown region
    assert.ok(out.every((v) => v === 0));
    be.scale(small, 2, small, 1000);
    assert.equal(small[999], 1998);
    be.dispose();
  });

  it('rejects buffers it did not allocate, and short buffers', () => {
    const be = new WasmBackend({ threads: 1 });
    assert.throws(() => be.relu(new Float32Array(8), be.alloc(8), 8), /not allocated by this backend/);
    assert.throws(() => be.relu(wasm.alloc(8), be.alloc(8), 8), /not allocated by this backend/);
    assert.throws(() => be.relu(be.alloc(4), be.alloc(8), 8), /needs 8/);
    be.dispose();
  });

  it('keeps working on the calling thread after dispose', () => {
    const be = new WasmBackend({ threads: 2, parallelThresholdNs: 0 });
    be.dispose();
    const x = on(be, Float32Array.of(-1, 2, -3, 4, 5));
    const y = be.alloc(5);
    be.relu(x, y, 5);
    assert.deepEqual(Array.from(y), [0, 2, 0, 4, 5]);
  });
});
