import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { ReferenceBackend, createReferenceBackend } from '../../src/kernels/ref/backend.js';
import {
  convOutputSize, makeConvGeometry, makePoolGeometry,
  type BatchNormGeometry, type ConvGeometry, type KernelBackend, type PoolGeometry,
} from '../../src/kernels/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { Random } from '../../src/tensor/random.js';

const k: KernelBackend = createReferenceBackend();

// ------------------------------------------------------------------ helpers

function randn(rng: Random, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** A buffer full of NaN, to prove that kernels overwrite their outputs. */
function garbage(n: number): Float32Array {
  return new Float32Array(n).fill(Number.NaN);
}

/** Elementwise |a - e| <= atol + rtol * |e|. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const ok = Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) assert.fail(`${what}[${i}]: got ${a}, expected ${e}`);
  }
}

/** Gradient comparison: relative to the largest gradient, plus per-element relative. */
function assertGradClose(analytic: ArrayLike<number>, numeric: ArrayLike<number>, what: string, rtol = 1e-2): void {
  let scale = 0;
  for (let i = 0; i < numeric.length; i++) scale = Math.max(scale, Math.abs(numeric[i]));
  assert.ok(scale > 0, `${what}: numeric gradient is identically zero (test is vacuous)`);
  assertClose(analytic, numeric, rtol, rtol * 1e-1 * scale, what);
}

function weightedSum(y: Float32Array, r: Float32Array): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * r[i];
  return s;
}

/**
 * Float64 central differences of loss() with respect to every element of `param`
 * (a float32 buffer that loss() reads). The actual float32 step is used as denominator.
 */
function numericGrad(param: Float32Array, loss: () => number, h = 1e-2): Float64Array {
  const grad = new Float64Array(param.length);
  for (let i = 0; i < param.length; i++) {
    const orig = param[i];
    param[i] = orig + h;
    const plus = param[i];
    const lp = loss();
    param[i] = orig - h;
    const minus = param[i];
    const lm = loss();
    param[i] = orig;
    grad[i] = (lp - lm) / (plus - minus);
  }
  return grad;
}

/** Independent naive convolution: one output element at a time, straight from the definition. */
function naiveConv(x: Float32Array, w: Float32Array, g: ConvGeometry): Float64Array {
  const y = new Float64Array(g.batch * g.outChannels * g.outH * g.outW);
  const cinG = g.inChannels / g.groups;
  const coutG = g.outChannels / g.groups;
  for (let n = 0; n < g.batch; n++) {
    for (let co = 0; co < g.outChannels; co++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          let s = 0;
          for (let j = 0; j < cinG; j++) {
            const ci = Math.floor(co / coutG) * cinG + j;
            for (let kh = 0; kh < g.kernelH; kh++) {
              for (let kw = 0; kw < g.kernelW; kw++) {
                const ih = oh * g.strideH + kh * g.dilationH - g.padH;
                const iw = ow * g.strideW + kw * g.dilationW - g.padW;
                if (ih < 0 || iw < 0 || ih >= g.inH || iw >= g.inW) continue;
                s += x[((n * g.inChannels + ci) * g.inH + ih) * g.inW + iw]
                  * w[((co * cinG + j) * g.kernelH + kh) * g.kernelW + kw];
              }
            }
          }
          y[((n * g.outChannels + co) * g.outH + oh) * g.outW + ow] = s;
        }
      }
    }
  }
  return y;
}

function convSizes(g: ConvGeometry): { x: number; w: number; y: number } {
  return {
    x: g.batch * g.inChannels * g.inH * g.inW,
    w: g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW,
    y: g.batch * g.outChannels * g.outH * g.outW,
  };
}

/** A pool input whose values are all distinct and at least 0.1 apart (no ties within any FD step). */
function distinctValues(rng: Random, n: number): Float32Array {
  const perm = rng.permutation(n);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (perm[i] - n / 2) * 0.1;
  return a;
}

function poolSizes(g: PoolGeometry): { x: number; y: number } {
  return { x: g.batch * g.channels * g.inH * g.inW, y: g.batch * g.channels * g.outH * g.outW };
}

// ------------------------------------------------------------------ backend basics

describe('ReferenceBackend basics', () => {
  it('has name ref, one thread, and registers itself', () => {
    assert.equal(k.name, 'ref');
    assert.equal(k.threads, 1);
    const active = setBackend('ref');
    assert.ok(active instanceof ReferenceBackend);
  });

  it('tracks live and peak bytes', () => {
    const b = new ReferenceBackend();
    const a = b.alloc(100);
    const z = b.allocZeros(50);
    assert.ok(z.every((v) => v === 0));
    assert.equal(b.memoryStats().liveBytes, 600);
    assert.equal(b.memoryStats().peakBytes, 600);
    b.free(a);
    assert.equal(b.memoryStats().liveBytes, 200);
    assert.equal(b.memoryStats().peakBytes, 600);
    b.free(a); // double free is ignored
    assert.equal(b.memoryStats().liveBytes, 200);
    b.resetPeak();
    assert.equal(b.memoryStats().peakBytes, 200);
    b.free(z);
    assert.equal(b.memoryStats().liveBytes, 0);
  });
});

// ------------------------------------------------------------------ convolution forward

describe('conv2d forward', () => {
  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]); // 1x1x3x3
  const w = Float32Array.from([1, 2, 3, 4]); // 1x1x2x2

  it('matches a hand-computed 2x2 example', () => {
    const g = makeConvGeometry({ batch: 1, inChannels: 1, inH: 3, inW: 3, outChannels: 1, kernel: 2 });
    const y = garbage(4);
    k.conv2d(x, w, y, g);
    // y[0,0] = 1*1 + 2*2 + 3*4 + 4*5, etc.
    assert.deepEqual(Array.from(y), [37, 47, 67, 77]);
  });

  it('matches a hand-computed padded example', () => {
    const g = makeConvGeometry({ batch: 1, inChannels: 1, inH: 3, inW: 3, outChannels: 1, kernel: 2, padding: 1 });
    assert.equal(g.outH, 4);
    const y = garbage(16);
    k.conv2d(x, w, y, g);
    assert.equal(y[0], 4 * 1); // only w[1,1] * x[0,0] is inside
    assert.equal(y[3], 3 * 3); // only w[1,0] * x[0,2]
    assert.equal(y[12], 2 * 7); // only w[0,1] * x[2,0]
    assert.equal(y[15], 1 * 9); // only w[0,0] * x[2,2]
    assert.equal(y[5], 37); // interior equals the unpadded output
  });

  const rng = new Random(1);
  const cases: Array<[string, ConvGeometry]> = [
    ['3x3 pad 1', makeConvGeometry({ batch: 2, inChannels: 3, inH: 6, inW: 5, outChannels: 4, kernel: 3, padding: 1 })],
    ['grouped (2 groups)', makeConvGeometry({ batch: 2, inChannels: 4, inH: 5, inW: 5, outChannels: 6, kernel: 3, padding: 1, groups: 2 })],
    ['depthwise 3x3', makeConvGeometry({ batch: 2, inChannels: 4, inH: 6, inW: 6, outChannels: 4, kernel: 3, padding: 1, groups: 4 })],
    ['depthwise 5x5 dilation 2', makeConvGeometry({ batch: 1, inChannels: 3, inH: 9, inW: 8, outChannels: 3, kernel: 5, padding: 4, dilation: 2, groups: 3 })],
    ['dilated 3x3 d2 p2', makeConvGeometry({ batch: 2, inChannels: 2, inH: 7, inW: 7, outChannels: 3, kernel: 3, padding: 2, dilation: 2 })],
    ['strided 3x3 s2 p1', makeConvGeometry({ batch: 2, inChannels: 3, inH: 7, inW: 8, outChannels: 2, kernel: 3, stride: 2, padding: 1 })],
    ['1x1 s2', makeConvGeometry({ batch: 2, inChannels: 3, inH: 6, inW: 6, outChannels: 5, kernel: 1, stride: 2 })],
    ['1x3 kernel', makeConvGeometry({ batch: 1, inChannels: 2, inH: 4, inW: 6, outChannels: 2, kernel: [1, 3], padding: 1 })],
    ['asymmetric stride/pad/dilation', (() => {
      const base = { batch: 1, inChannels: 2, inH: 8, inW: 9, outChannels: 2, kernelH: 3, kernelW: 2,
        strideH: 2, strideW: 1, padH: 1, padW: 2, dilationH: 1, dilationW: 3, groups: 1 };
      return {
        ...base,
        outH: convOutputSize(base.inH, base.kernelH, base.strideH, base.padH, base.dilationH),
        outW: convOutputSize(base.inW, base.kernelW, base.strideW, base.padW, base.dilationW),
      };
    })()],
  ];
  for (const [name, g] of cases) {
    it(`matches the naive formula: ${name}`, () => {
      const s = convSizes(g);
      const xx = randn(rng, s.x);
      const ww = randn(rng, s.w);
      const y = garbage(s.y);
      k.conv2d(xx, ww, y, g);
      assertClose(y, naiveConv(xx, ww, g), 1e-5, 1e-5, name);
    });
  }

  it('handles the test-size shape [8,16,16,16] quickly', () => {
    const g = makeConvGeometry({ batch: 8, inChannels: 16, inH: 16, inW: 16, outChannels: 16, kernel: 3, padding: 1 });
    const s = convSizes(g);
    const xx = randn(rng, s.x);
    const ww = randn(rng, s.w);
    const y = garbage(s.y);
    const t0 = performance.now();
    k.conv2d(xx, ww, y, g);
    k.conv2dGradInput(y, ww, garbage(s.x), g);
    k.conv2dGradWeight(xx, y, garbage(s.w), g);
    assert.ok(performance.now() - t0 < 5000);
    // Spot check a few outputs against the naive formula.
    const ref = naiveConv(xx, ww, g);
    for (const i of [0, 17, 1000, s.y - 1]) assertClose([y[i]], [ref[i]], 1e-5, 1e-4, `y[${i}]`);
  });
});

// ------------------------------------------------------------------ convolution gradients

describe('conv2d gradients (finite differences)', () => {
  const rng = new Random(2);
  const cases: Array<[string, ConvGeometry]> = [
    ['groups=1 3x3 pad 1', makeConvGeometry({ batch: 2, inChannels: 3, inH: 5, inW: 5, outChannels: 2, kernel: 3, padding: 1 })],
    ['depthwise 3x3 pad 1', makeConvGeometry({ batch: 2, inChannels: 3, inH: 5, inW: 6, outChannels: 3, kernel: 3, padding: 1, groups: 3 })],
    ['stride 2 pad 1', makeConvGeometry({ batch: 2, inChannels: 2, inH: 7, inW: 6, outChannels: 3, kernel: 3, stride: 2, padding: 1 })],
    ['dilation 2 pad 2', makeConvGeometry({ batch: 1, inChannels: 2, inH: 7, inW: 7, outChannels: 2, kernel: 3, padding: 2, dilation: 2 })],
    ['depthwise 5x5 dilation 2 pad 4', makeConvGeometry({ batch: 1, inChannels: 2, inH: 8, inW: 8, outChannels: 2, kernel: 5, padding: 4, dilation: 2, groups: 2 })],
    ['grouped 2 groups, stride 2', makeConvGeometry({ batch: 2, inChannels: 4, inH: 6, inW: 6, outChannels: 4, kernel: 3, stride: 2, padding: 1, groups: 2 })],
  ];
  for (const [name, g] of cases) {
    it(`conv2dGradInput and conv2dGradWeight: ${name}`, () => {
      const s = convSizes(g);
      const x = randn(rng, s.x);
      const w = randn(rng, s.w);
      const r = randn(rng, s.y);
      const y = new Float32Array(s.y);
      const loss = (): number => { k.conv2d(x, w, y, g); return weightedSum(y, r); };

      const gradX = garbage(s.x);
      k.conv2dGradInput(r, w, gradX, g);
      assertGradClose(gradX, numericGrad(x, loss), `${name} gradX`);

      const gradW = garbage(s.w);
      k.conv2dGradWeight(x, r, gradW, g);
      assertGradClose(gradW, numericGrad(w, loss), `${name} gradW`);
    });
  }
});

// ------------------------------------------------------------------ batch norm

describe('batch norm', () => {
  const rng = new Random(3);
  const g: BatchNormGeometry = { batch: 3, channels: 2, spatial: 4 };
  const numel = g.batch * g.channels * g.spatial;

  function at(n: number, c: number, i: number): number {
    return (n * g.channels + c) * g.spatial + i;
  }

  it('train forward writes biased statistics and normalises', () => {
    const x = randn(rng, numel, 2);
    for (let i = 0; i < numel; i++) x[i] += 0.5;
    const gamma = Float32Array.from([1.5, -0.5]);
    const beta = Float32Array.from([0.25, 2]);
    const y = garbage(numel);
    const mean = garbage(2);
    const invStd = garbage(2);
    k.batchNormTrain(x, gamma, beta, 1e-5, y, mean, invStd, g);
    for (let c = 0; c < g.channels; c++) {
      const vals: number[] = [];
      for (let n = 0; n < g.batch; n++) for (let i = 0; i < g.spatial; i++) vals.push(x[at(n, c, i)]);
      const mu = vals.reduce((a, b) => a + b, 0) / vals.length;
      const variance = vals.reduce((a, b) => a + (b - mu) ** 2, 0) / vals.length;
      assertClose([mean[c]], [mu], 1e-6, 1e-6, `mean[${c}]`);
      assertClose([invStd[c]], [1 / Math.sqrt(variance + 1e-5)], 1e-6, 0, `invStd[${c}]`);
      for (let n = 0; n < g.batch; n++) {
        for (let i = 0; i < g.spatial; i++) {
          const expected = (x[at(n, c, i)] - mu) / Math.sqrt(variance + 1e-5) * gamma[c] + beta[c];
          assertClose([y[at(n, c, i)]], [expected], 1e-5, 1e-5, `y`);
        }
      }
    }
    // affine = false: zero mean, unit (biased) variance up to eps.
    k.batchNormTrain(x, null, null, 1e-5, y, mean, invStd, g);
    for (let c = 0; c < g.channels; c++) {
      let s = 0; let s2 = 0;
      for (let n = 0; n < g.batch; n++) for (let i = 0; i < g.spatial; i++) { s += y[at(n, c, i)]; s2 += y[at(n, c, i)] ** 2; }
      assertClose([s / 12, s2 / 12], [0, 1], 1e-4, 1e-5, `normalised channel ${c}`);
    }
  });

  it('apply uses the given statistics', () => {
    const x = randn(rng, numel);
    const mean = Float32Array.from([0.5, -1]);
    const invStd = Float32Array.from([2, 0.25]);
    const gamma = Float32Array.from([3, 1]);
    const beta = Float32Array.from([0, 1]);
    const y = garbage(numel);
    k.batchNormApply(x, mean, invStd, gamma, beta, y, g);
    const expected = new Float64Array(numel);
    for (let n = 0; n < g.batch; n++) for (let c = 0; c < 2; c++) for (let i = 0; i < g.spatial; i++) {
      expected[at(n, c, i)] = (x[at(n, c, i)] - mean[c]) * invStd[c] * gamma[c] + beta[c];
    }
    assertClose(y, expected, 1e-6, 1e-6, 'apply affine');
    k.batchNormApply(x, mean, invStd, null, null, y, g);
    for (let n = 0; n < g.batch; n++) for (let c = 0; c < 2; c++) for (let i = 0; i < g.spatial; i++) {
      expected[at(n, c, i)] = (x[at(n, c, i)] - mean[c]) * invStd[c];
    }
    assertClose(y, expected, 1e-6, 1e-6, 'apply plain');
  });

  for (const affine of [true, false]) {
    it(`batchNormTrainBackward matches finite differences (affine=${affine})`, () => {
      const x = randn(rng, numel, 1.5);
      const gamma = affine ? Float32Array.from([1.3, -0.7]) : null;
      const beta = affine ? Float32Array.from([0.2, -0.4]) : null;
      const r = randn(rng, numel);
      const y = new Float32Array(numel);
      const mean = new Float32Array(2);
      const invStd = new Float32Array(2);
      const loss = (): number => { k.batchNormTrain(x, gamma, beta, 1e-5, y, mean, invStd, g); return weightedSum(y, r); };
      loss(); // statistics of the unperturbed x
      const savedMean = Float32Array.from(mean);
      const savedInv = Float32Array.from(invStd);

      const gradX = garbage(numel);
      const gradGamma = affine ? garbage(2) : null;
      const gradBeta = affine ? garbage(2) : null;
      k.batchNormTrainBackward(r, x, savedMean, savedInv, gamma, gradX, gradGamma, gradBeta, g);
      assertGradClose(gradX, numericGrad(x, loss), `train gradX affine=${affine}`);
      if (gamma && beta && gradGamma && gradBeta) {
        assertGradClose(gradGamma, numericGrad(gamma, loss), 'train gradGamma');
        assertGradClose(gradBeta, numericGrad(beta, loss), 'train gradBeta');
      }
      // gradX sums to zero per channel: shifting a channel by a constant does not change y.
      for (let c = 0; c < 2; c++) {
        let s = 0;
        for (let n = 0; n < g.batch; n++) for (let i = 0; i < g.spatial; i++) s += gradX[at(n, c, i)];
        assert.ok(Math.abs(s) < 1e-4, `gradX channel ${c} sums to ${s}`);
      }
    });
  }

  it('batchNormTrainBackward with null gradGamma/gradBeta still writes gradX', () => {
    const x = randn(rng, numel);
    const gamma = Float32Array.from([2, 3]);
    const y = new Float32Array(numel);
    const mean = new Float32Array(2);
    const invStd = new Float32Array(2);
    k.batchNormTrain(x, gamma, null, 1e-5, y, mean, invStd, g);
    const r = randn(rng, numel);
    const a = garbage(numel);
    const b = garbage(numel);
    k.batchNormTrainBackward(r, x, mean, invStd, gamma, a, null, null, g);
    k.batchNormTrainBackward(r, x, mean, invStd, gamma, b, new Float32Array(2), new Float32Array(2), g);
    assert.deepEqual(a, b);
  });

  for (const affine of [true, false]) {
    it(`batchNormApplyBackward matches finite differences (affine=${affine})`, () => {
      const x = randn(rng, numel);
      const mean = Float32Array.from([0.3, -0.2]);
      const invStd = Float32Array.from([1.7, 0.6]);
      const gamma = affine ? Float32Array.from([0.8, -1.1]) : null;
      const beta = affine ? Float32Array.from([0.5, 0.1]) : null;
      const r = randn(rng, numel);
      const y = new Float32Array(numel);
      const loss = (): number => { k.batchNormApply(x, mean, invStd, gamma, beta, y, g); return weightedSum(y, r); };
      const gradX = garbage(numel);
      const gradGamma = affine ? garbage(2) : null;
      const gradBeta = affine ? garbage(2) : null;
      k.batchNormApplyBackward(r, x, mean, invStd, gamma, gradX, gradGamma, gradBeta, g);
      assertGradClose(gradX, numericGrad(x, loss), `apply gradX affine=${affine}`);
      if (gamma && beta && gradGamma && gradBeta) {
        assertGradClose(gradGamma, numericGrad(gamma, loss), 'apply gradGamma');
        assertGradClose(gradBeta, numericGrad(beta, loss), 'apply gradBeta');
      }
    });
  }
});

// ------------------------------------------------------------------ pooling

describe('max pool', () => {
  const rng = new Random(4);

  it('padding never wins', () => {
    const g = makePoolGeometry({ batch: 1, channels: 1, inH: 3, inW: 3, kernel: 3, stride: 1, padding: 1 });
    const x = Float32Array.from([-9, -8, -7, -6, -5, -4, -3, -2, -1]);
    const y = garbage(9);
    k.maxPool2d(x, y, g);
    assert.deepEqual(Array.from(y), [-5, -4, -4, -2, -1, -1, -2, -1, -1]);
  });

  const configs: Array<[number, number, number]> = [[3, 1, 1], [3, 2, 1], [2, 2, 0]];
  for (const [kernel, stride, padding] of configs) {
    it(`maxPool2dBackward matches finite differences (${kernel}x${kernel} s${stride} p${padding})`, () => {
      const g = makePoolGeometry({ batch: 2, channels: 2, inH: 6, inW: 7, kernel, stride, padding });
      const s = poolSizes(g);
      const x = distinctValues(rng, s.x);
      const r = randn(rng, s.y);
      const y = new Float32Array(s.y);
      const loss = (): number => { k.maxPool2d(x, y, g); return weightedSum(y, r); };
      const gradX = garbage(s.x);
      k.maxPool2dBackward(x, r, gradX, g);
      assertGradClose(gradX, numericGrad(x, loss, 1e-2), `maxpool ${kernel}/${stride}/${padding}`);
    });
  }

  it('routes ties to the first maximum in row-major window order', () => {
    // 2x2 s2: every window all-equal -> gradient to its top-left cell.
    const g = makePoolGeometry({ batch: 1, channels: 1, inH: 4, inW: 4, kernel: 2, stride: 2, padding: 0 });
    const x = new Float32Array(16).fill(1);
    const gy = Float32Array.from([1, 2, 3, 4]);
    const gx = garbage(16);
    k.maxPool2dBackward(x, gy, gx, g);
    assert.deepEqual(Array.from(gx), [1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);

    // 3x3 s1 p1 on a constant plane: window (oh, ow) routes to its first in-bounds cell.
    const g3 = makePoolGeometry({ batch: 1, channels: 1, inH: 4, inW: 4, kernel: 3, stride: 1, padding: 1 });
    const gy3 = new Float32Array(16).fill(1);
    const gx3 = garbage(16);
    k.maxPool2dBackward(x, gy3, gx3, g3);
    const expected = new Float64Array(16);
    for (let oh = 0; oh < 4; oh++) for (let ow = 0; ow < 4; ow++) expected[Math.max(oh - 1, 0) * 4 + Math.max(ow - 1, 0)] += 1;
    assert.deepEqual(Array.from(gx3), Array.from(expected));

    // A later equal value does not win, a later strictly greater one does.
    const g1 = makePoolGeometry({ batch: 1, channels: 1, inH: 2, inW: 2, kernel: 2, stride: 2, padding: 0 });
    const gx1 = garbage(4);
    k.maxPool2dBackward(Float32Array.from([0, 5, 5, 3]), Float32Array.from([7]), gx1, g1);
    assert.deepEqual(Array.from(gx1), [0, 7, 0, 0]);
    k.maxPool2dBackward(Float32Array.from([5, 5, 6, 6]), Float32Array.from([7]), gx1, g1);
    assert.deepEqual(Array.from(gx1), [0, 0, 7, 0]);
  });

  it('routes all -inf windows to the first in-bounds cell', () => {
    const g = makePoolGeometry({ batch: 1, channels: 1, inH: 2, inW: 2, kernel: 3, stride: 1, padding: 1 });
    const x = new Float32Array(4).fill(-Infinity);
    const y = garbage(4);
    k.maxPool2d(x, y, g);
    assert.ok(y.every((v) => v === -Infinity));
    const gx = garbage(4);
    k.maxPool2dBackward(x, Float32Array.from([1, 1, 1, 1]), gx, g);
    assert.deepEqual(Array.from(gx), [4, 0, 0, 0]);
  });
});

describe('avg pool', () => {
  const rng = new Random(5);

  it('divides by the cells inside the input (count_include_pad=False)', () => {
    const g = makePoolGeometry({ batch: 1, channels: 1, inH: 4, inW: 4, kernel: 3, stride: 1, padding: 1 });
    const x = Float32Array.from({ length: 16 }, (_, i) => i);
    const y = garbage(16);
    k.avgPool2d(x, y, g);
    assert.equal(y[0], (0 + 1 + 4 + 5) / 4); // corner: 4 cells
    assert.equal(y[1], (0 + 1 + 2 + 4 + 5 + 6) / 6); // edge: 6 cells
    assert.equal(y[5], (0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9); // interior: 9 cells
    assert.equal(y[15], (10 + 11 + 14 + 15) / 4);
    // Backward: the corner output spreads 1/4 over its 4 cells.
    const gy = new Float32Array(16);
    gy[0] = 1;
    const gx = garbage(16);
    k.avgPool2dBackward(gy, gx, g);
    const expected = new Array<number>(16).fill(0);
    expected[0] = expected[1] = expected[4] = expected[5] = 0.25;
    assert.deepEqual(Array.from(gx), expected);
  });

  const configs: Array<[number, number, number]> = [[3, 1, 1], [3, 2, 1], [2, 2, 0], [5, 3, 0]];
  for (const [kernel, stride, padding] of configs) {
    it(`avgPool2dBackward matches finite differences (${kernel}x${kernel} s${stride} p${padding})`, () => {
      const g = makePoolGeometry({ batch: 2, channels: 2, inH: 8, inW: 7, kernel, stride, padding });
      const s = poolSizes(g);
      const x = randn(rng, s.x);
      const r = randn(rng, s.y);
      const y = new Float32Array(s.y);
      const loss = (): number => { k.avgPool2d(x, y, g); return weightedSum(y, r); };
      const gradX = garbage(s.x);
      k.avgPool2dBackward(r, gradX, g);
      assertGradClose(gradX, numericGrad(x, loss), `avgpool ${kernel}/${stride}/${padding}`);
    });
  }
});

// ------------------------------------------------------------------ dense

describe('linear', () => {
  const rng = new Random(6);
  const rows = 3; const inF = 5; const outF = 4;

  it('forward matches the definition, with and without bias', () => {
    const x = randn(rng, rows * inF);
    const w = randn(rng, outF * inF);
    const b = randn(rng, outF);
    const y = garbage(rows * outF);
    for (const bias of [b, null]) {
      k.linear(x, w, bias, y, rows, inF, outF);
      const expected = new Float64Array(rows * outF);
      for (let m = 0; m < rows; m++) for (let n = 0; n < outF; n++) {
        let s = bias ? bias[n] : 0;
        for (let kk = 0; kk < inF; kk++) s += x[m * inF + kk] * w[n * inF + kk];
        expected[m * outF + n] = s;
      }
      assertClose(y, expected, 1e-6, 1e-6, `linear bias=${bias !== null}`);
    }
  });

  it('backwards match finite differences', () => {
    const x = randn(rng, rows * inF);
    const w = randn(rng, outF * inF);
    const b = randn(rng, outF);
    const r = randn(rng, rows * outF);
    const y = new Float32Array(rows * outF);
    const loss = (): number => { k.linear(x, w, b, y, rows, inF, outF); return weightedSum(y, r); };
    const gradX = garbage(rows * inF);
    k.linearGradInput(r, w, gradX, rows, inF, outF);
    assertGradClose(gradX, numericGrad(x, loss), 'linear gradX');
    const gradW = garbage(outF * inF);
    const gradB = garbage(outF);
    k.linearGradWeight(x, r, gradW, gradB, rows, inF, outF);
    assertGradClose(gradW, numericGrad(w, loss), 'linear gradW');
    assertGradClose(gradB, numericGrad(b, loss), 'linear gradB');
    const gradW2 = garbage(outF * inF);
    k.linearGradWeight(x, r, gradW2, null, rows, inF, outF);
    assert.deepEqual(gradW2, gradW);
  });
});

// ------------------------------------------------------------------ elementwise

describe('elementwise', () => {
  const rng = new Random(7);

  it('relu and reluBackward (finite differences away from 0, mask x > 0)', () => {
    const n = 40;
    const x = randn(rng, n);
    for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 0.05) x[i] = x[i] < 0 ? -0.5 : 0.5;
    const r = randn(rng, n);
    const y = new Float32Array(n);
    const loss = (): number => { k.relu(x, y, n); return weightedSum(y, r); };
    loss();
    for (let i = 0; i < n; i++) assert.equal(y[i], Math.max(x[i], 0));
    const gradX = garbage(n);
    k.reluBackward(r, x, gradX, n);
    assertGradClose(gradX, numericGrad(x, loss), 'relu gradX');
    // Using the ReLU output as mask gives the same result; x == 0 passes no gradient.
    const gradX2 = garbage(n);
    k.reluBackward(r, y, gradX2, n);
    assert.deepEqual(gradX2, gradX);
    const g0 = garbage(2);
    k.reluBackward(Float32Array.from([3, 3]), Float32Array.from([0, -0]), g0, 2);
    assert.deepEqual(Array.from(g0), [0, 0]);
  });

  it('add, axpy, scale (aliasing), dot', () => {
    const a = Float32Array.from([1, 2, 3, 4]);
    const b = Float32Array.from([10, 20, 30, 40]);
    const out = garbage(4);
    k.add(a, b, out, 4);
    assert.deepEqual(Array.from(out), [11, 22, 33, 44]);
    k.axpy(0.5, b, out, 4);
    assert.deepEqual(Array.from(out), [16, 32, 48, 64]);
    k.scale(out, 0.25, out, 4);
    assert.deepEqual(Array.from(out), [4, 8, 12, 16]);
    // add only touches the first n elements
    const partial = Float32Array.from([0, 0, 0, 99]);
    k.add(a, b, partial, 3);
    assert.deepEqual(Array.from(partial), [11, 22, 33, 99]);
    assert.equal(k.dot(a, b, 4), 300);
    // float64 accumulation: 1e5 terms of (1/3)^2 in float32 would drift in a float32 sum.
    const n = 100000;
    const t = new Float32Array(n).fill(1 / 3);
    const third = Math.fround(1 / 3);
    assertClose([k.dot(t, t, n)], [n * third * third], 1e-12, 0, 'dot');
  });
});
