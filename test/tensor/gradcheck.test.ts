/**
 * Finite-difference gradient checks of every differentiable operation through the autograd
 * engine, on each registered backend. loss = sum(y * r) for a fixed random r; analytic
 * gradients from backward() are compared with central differences of the forward pass.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import '../../src/kernels/wasm/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import * as ops from '../../src/tensor/ops.js';
import { Random } from '../../src/tensor/random.js';
import { fromArray, tidy, type Shape, type Tensor } from '../../src/tensor/tensor.js';

interface Input {
  shape: Shape;
  /** Values; random normal when absent. */
  values?: Float32Array;
  /** Whether the gradient of this input is checked (default true). */
  grad?: boolean;
}

function randomValues(n: number, random: Random, minAbs = 0): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x = random.normal();
    if (minAbs > 0 && Math.abs(x) < minAbs) x = x < 0 ? x - minAbs : x + minAbs;
    v[i] = x;
  }
  return v;
}

/** Distinct values (spacing >= 0.05 after shuffling) so max pooling has no near ties. */
function distinctValues(n: number, random: Random): Float32Array {
  const v = new Float32Array(n);
  const order = random.permutation(n);
  for (let i = 0; i < n; i++) v[i] = (order[i] - n / 2) * 0.05;
  return v;
}

function gradCheck(name: string, inputs: Input[], fn: (xs: Tensor[]) => Tensor, options: { step?: number; tolerance?: number } = {}): void {
  const random = new Random(7);
  const step = options.step ?? 1e-2;
  const tolerance = options.tolerance ?? 2e-2;
  const values = inputs.map((input) => input.values ?? randomValues(input.shape.reduce((a, b) => a * b, 1), random));
  let upstream: Float32Array | null = null;

  const lossAt = (vals: Float32Array[]): number => noGrad(() => tidy(() => {
    const y = fn(vals.map((v, i) => fromArray(v, inputs[i].shape)));
    if (!upstream) upstream = randomValues(y.numel, random);
    let s = 0;
    for (let i = 0; i < y.numel; i++) s += y.data[i] * upstream[i];
    return s;
  }));
  lossAt(values); // fixes upstream

  const analytic = tidy(() => {
    const leaves = values.map((v, i) => fromArray(v, inputs[i].shape, inputs[i].grad !== false));
    const y = fn(leaves);
    backward(ops.dotConstant(y, upstream as unknown as Float32Array));
    const grads = leaves.map((t) => (t.grad ? Float64Array.from(t.grad.data.subarray(0, t.numel)) : new Float64Array(t.numel)));
    for (const t of leaves) t.grad?.dispose();
    return grads;
  });

  inputs.forEach((input, k) => {
    if (input.grad === false) return;
    const numeric = new Float64Array(values[k].length);
    for (let i = 0; i < values[k].length; i++) {
      const original = values[k][i];
      values[k][i] = original + step;
      const plusStep = values[k][i] - original;
      const up = lossAt(values);
      values[k][i] = original - step;
      const minusStep = original - values[k][i];
      const down = lossAt(values);
      values[k][i] = original;
      numeric[i] = (up - down) / (plusStep + minusStep);
    }
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < numeric.length; i++) {
      diff += (numeric[i] - analytic[k][i]) ** 2;
      norm += numeric[i] ** 2;
    }
    const rel = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-6);
    assert.ok(rel < tolerance, `${name}: input ${k} gradient differs from finite differences (relative L2 ${rel.toExponential(2)})`);
  });
}

for (const backend of ['ref', 'wasm']) {
  describe(`gradient checks (${backend} backend)`, () => {
    test('setup', () => {
      setBackend(backend, { threads: 2 });
    });

    const convCases: [string, Shape, Shape, ops.Conv2dOptions][] = [
      ['dense 3x3 pad 1', [2, 3, 6, 5], [4, 3, 3, 3], { padding: 1 }],
      ['stride 2', [2, 3, 7, 7], [2, 3, 3, 3], { stride: 2, padding: 1 }],
      ['dilation 2', [1, 2, 7, 6], [3, 2, 3, 3], { padding: 2, dilation: 2 }],
      ['depthwise 5x5 dilated', [2, 3, 9, 9], [3, 1, 5, 5], { padding: 4, dilation: 2, groups: 3 }],
      ['grouped 1x1 stride 2', [2, 4, 6, 6], [6, 2, 1, 1], { stride: 2, groups: 2 }],
      ['2x2 no pad', [2, 3, 5, 5], [4, 3, 2, 2], {}],
    ];
    for (const [label, xShape, wShape, options] of convCases) {
      test(`conv2d ${label}`, () => {
        gradCheck(`conv2d ${label}`, [{ shape: xShape }, { shape: wShape }], ([x, w]) => ops.conv2d(x, w, options));
      });
    }

    for (const affine of [true, false]) {
      test(`batchNorm2d train ${affine ? 'affine' : 'plain'}`, () => {
        gradCheck('batchNorm2d train', [{ shape: [3, 2, 3, 4] }, { shape: [2] }, { shape: [2] }], ([x, g, b]) => ops.batchNorm2d(x, {
          weight: affine ? g : null, bias: affine ? b : null, runningMean: null, runningVar: null, training: true,
        }), { tolerance: 3e-2 });
      });
      test(`batchNorm2d eval ${affine ? 'affine' : 'plain'}`, () => {
        const mean = fromArray([0.1, -0.2], [2]);
        const variance = fromArray([0.5, 1.7], [2]);
        gradCheck('batchNorm2d eval', [{ shape: [2, 2, 3, 3] }, { shape: [2] }, { shape: [2] }], ([x, g, b]) => ops.batchNorm2d(x, {
          weight: affine ? g : null, bias: affine ? b : null, runningMean: mean, runningVar: variance, training: false,
        }));
        mean.dispose();
        variance.dispose();
      });
    }

    test('relu', () => {
      gradCheck('relu', [{ shape: [2, 3, 4, 4], values: randomValues(96, new Random(3), 0.05) }], ([x]) => ops.relu(x));
    });
    test('add, sum, mulScalar', () => {
      gradCheck('add', [{ shape: [2, 3] }, { shape: [2, 3] }], ([a, b]) => ops.add(a, b));
      gradCheck('sum', [{ shape: [2, 3] }, { shape: [2, 3] }, { shape: [2, 3] }], ([a, b, c]) => ops.sum([a, b, c, a]));
      gradCheck('mulScalar', [{ shape: [5] }], ([a]) => ops.mulScalar(a, -1.5));
    });
    test('weightedSum (gradient into the weights)', () => {
      gradCheck('weightedSum', [{ shape: [8] }, { shape: [2, 2, 3, 3] }, { shape: [2, 2, 3, 3] }, { shape: [2, 2, 3, 3] }],
        ([w, a, b, c]) => ops.weightedSum([a, b, c, a], w, [1, 4, 7, 0]));
    });
    test('mulPerSample (drop path)', () => {
      gradCheck('mulPerSample', [{ shape: [3, 2, 2, 2] }], ([x]) => ops.mulPerSample(x, Float32Array.of(0, 1.25, 1.25)));
    });

    const poolCases: [string, ops.PoolOptions, Shape][] = [
      ['3x3 s1 p1', { kernel: 3, stride: 1, padding: 1 }, [2, 2, 5, 6]],
      ['3x3 s2 p1', { kernel: 3, stride: 2, padding: 1 }, [2, 2, 7, 6]],
      ['2x2 s2', { kernel: 2, stride: 2 }, [2, 2, 6, 6]],
      ['5x5 s3 (CIFAR auxiliary head)', { kernel: 5, stride: 3 }, [2, 2, 8, 8]],
      ['5x5 s2 (ImageNet auxiliary head)', { kernel: 5, stride: 2 }, [1, 2, 7, 7]],
      ['7x7 global', { kernel: 7, stride: 1 }, [2, 2, 7, 7]],
    ];
    for (const [label, options, shape] of poolCases) {
      const n = shape.reduce((a, b) => a * b, 1);
      test(`maxPool2d ${label}`, () => {
        gradCheck(`maxPool2d ${label}`, [{ shape, values: distinctValues(n, new Random(5)) }], ([x]) => ops.maxPool2d(x, options), { step: 1e-3 });
      });
      test(`avgPool2d ${label}`, () => {
        gradCheck(`avgPool2d ${label}`, [{ shape }], ([x]) => ops.avgPool2d(x, options));
      });
    }
    test('globalAvgPool', () => {
      gradCheck('globalAvgPool', [{ shape: [2, 3, 4, 5] }], ([x]) => ops.globalAvgPool(x));
    });
    test('linear (with and without bias)', () => {
      gradCheck('linear', [{ shape: [3, 5] }, { shape: [4, 5] }, { shape: [4] }], ([x, w, b]) => ops.linear(x, w, b));
      gradCheck('linear no bias', [{ shape: [2, 5, 1, 1] }, { shape: [3, 5] }], ([x, w]) => ops.linear(x, w, null));
    });
    test('reshape, concat, slice, channel shuffle, crop', () => {
      gradCheck('reshape', [{ shape: [2, 3, 1, 1] }], ([x]) => ops.reshape(x, [2, 3]));
      gradCheck('concatChannels', [{ shape: [2, 1, 3, 3] }, { shape: [2, 3, 3, 3] }], ([a, b]) => ops.concatChannels([a, b, a]));
      gradCheck('sliceChannels', [{ shape: [2, 5, 2, 3] }], ([x]) => ops.sliceChannels(x, 1, 3));
      gradCheck('channelShuffle', [{ shape: [2, 6, 2, 2] }], ([x]) => ops.channelShuffle(x, 3));
      gradCheck('gatherChannels', [{ shape: [2, 2, 2, 3] }, { shape: [2, 3, 2, 3] }],
        ([a, b]) => ops.gatherChannels([a, b], Int32Array.from([1, 2, -1, 0, 0, 1, 1, 0])));
      // Gathers that add into a gradient accumulated before them (the pending gradient).
      gradCheck('channelShuffle + x', [{ shape: [2, 4, 2, 2] }], ([x]) => ops.add(ops.channelShuffle(x, 2), x));
      gradCheck('overlapping slices', [{ shape: [2, 3, 2, 2] }],
        ([x]) => ops.add(ops.sliceChannels(x, 1, 2), ops.relu(ops.sliceChannels(x, 0, 2))));
      gradCheck('cropTopLeft', [{ shape: [2, 2, 4, 5] }], ([x]) => ops.cropTopLeft(x, 1));
    });
    test('softmax, log-softmax, segment softmax', () => {
      gradCheck('softmax', [{ shape: [3, 8] }], ([x]) => ops.softmax(x));
      gradCheck('logSoftmax', [{ shape: [3, 5] }], ([x]) => ops.logSoftmax(x));
      gradCheck('softmaxSegments', [{ shape: [14] }], ([x]) => ops.softmaxSegments(x, [2, 3, 4, 5]));
    });
    test('cross-entropy with and without label smoothing', () => {
      const labels = Int32Array.of(0, 3, 2);
      gradCheck('crossEntropy', [{ shape: [3, 4] }], ([x]) => ops.crossEntropy(x, labels));
      gradCheck('crossEntropy smoothed', [{ shape: [3, 4] }], ([x]) => ops.crossEntropy(x, labels, { labelSmoothing: 0.1 }));
    });
    test('a composite: relu -> depthwise -> pointwise -> BN -> global pool -> linear -> CE', () => {
      const labels = Int32Array.of(1, 0);
      gradCheck('composite', [{ shape: [2, 4, 6, 6], values: randomValues(288, new Random(11), 0.05) }, { shape: [4, 1, 3, 3] }, { shape: [4, 4, 1, 1] }, { shape: [3, 4] }],
        ([x, dw, pw, fc]) => {
          const h = ops.conv2d(ops.conv2d(ops.relu(x), dw, { padding: 1, groups: 4 }), pw);
          const n = ops.batchNorm2d(h, { weight: null, bias: null, runningMean: null, runningVar: null, training: true });
          return ops.crossEntropy(ops.linear(ops.globalAvgPool(n), fc, null), labels);
        }, { tolerance: 3e-2 });
    });
  });
}
