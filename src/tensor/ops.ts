/**
 * Differentiable operations. Each op computes its forward with the active kernel backend
 * and, when an input requires grad, records a node whose backward uses the same backend.
 * Ops save as little as possible: ReLU keeps only its output, max pool recomputes its
 * argmax from the input, average pool keeps nothing.
 */
import {
  type BatchNormGeometry, type ConvGeometry, type PoolGeometry, makeConvGeometry, makePoolGeometry,
} from '../kernels/backend.js';
import { kernels } from '../kernels/registry.js';
import { isRecomputing, needsGrad, record } from './autograd.js';
import { Tensor, empty, shapeSize, shapeToString, zeros, type Shape } from './tensor.js';

function expectRank(name: string, t: Tensor, rank: number): void {
  if (t.shape.length !== rank) {
    throw new Error(`${name}: expected a rank-${rank} tensor, got ${shapeToString(t.shape)}`);
  }
}

function expectSameShape(name: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${name}: shapes ${shapeToString(a.shape)} and ${shapeToString(b.shape)} differ`);
  }
}

// ---------------------------------------------------------------------------------------
// Convolution

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

/** 2-D convolution without bias; weight is [outC, inC/groups, kH, kW]. */
export function conv2d(x: Tensor, weight: Tensor, options: Conv2dOptions = {}): Tensor {
  expectRank('conv2d input', x, 4);
  expectRank('conv2d weight', weight, 4);
  const [n, c, h, w] = x.shape;
  const groups = options.groups ?? 1;
  const [outC, inPerGroup, kH, kW] = weight.shape;
  if (inPerGroup * groups !== c) {
    throw new Error(`conv2d: weight ${shapeToString(weight.shape)} with groups ${groups} expects ${inPerGroup * groups} input channels, got ${c}`);
  }
  const geometry = makeConvGeometry({
    batch: n, inChannels: c, inH: h, inW: w, outChannels: outC, kernel: [kH, kW],
    stride: options.stride, padding: options.padding, dilation: options.dilation, groups,
  });
  const y = empty([n, outC, geometry.outH, geometry.outW]);
  kernels().conv2d(x.data, weight.data, y.data, geometry);
  if (!needsGrad(x, weight)) return y;
  return record(y, {
    name: 'conv2d',
    inputs: [x, weight],
    // x is only read for the weight's gradient (not needed while weights are frozen).
    saved: weight.requiresGrad ? [x] : [],
    backward: (gy) => conv2dBackward(x, weight, gy, geometry),
  });
}

function conv2dBackward(x: Tensor, weight: Tensor, gy: Tensor, g: ConvGeometry): (Tensor | null)[] {
  const k = kernels();
  let gx: Tensor | null = null;
  let gw: Tensor | null = null;
  if (x.requiresGrad) {
    gx = empty(x.shape);
    k.conv2dGradInput(gy.data, weight.data, gx.data, g);
  }
  if (weight.requiresGrad) {
    gw = empty(weight.shape);
    k.conv2dGradWeight(x.data, gy.data, gw.data, g);
  }
  return [gx, gw];
}

// ---------------------------------------------------------------------------------------
// Batch norm

export interface BatchNormOptions {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  /** Train mode: normalise with batch statistics and update the running ones. */
  training: boolean;
  /** In train mode, whether the running statistics are updated (not while recomputing a checkpoint). */
  updateRunningStats?: boolean;
  momentum?: number;
  eps?: number;
}

/** BatchNorm2d as PyTorch (spec section 1): biased variance to normalise, unbiased in the running average. */
export function batchNorm2d(x: Tensor, options: BatchNormOptions): Tensor {
  expectRank('batchNorm2d input', x, 4);
  const [n, c, h, w] = x.shape;
  const eps = options.eps ?? 1e-5;
  const momentum = options.momentum ?? 0.1;
  const geometry: BatchNormGeometry = { batch: n, channels: c, spatial: h * w };
  const k = kernels();
  const { weight, bias, runningMean, runningVar } = options;
  for (const [label, t] of [['weight', weight], ['bias', bias], ['running_mean', runningMean], ['running_var', runningVar]] as const) {
    if (t && t.numel !== c) throw new Error(`batchNorm2d: ${label} has ${t.numel} elements, input has ${c} channels`);
  }
  const y = empty(x.shape);
  const mean = k.alloc(c);
  const invStd = k.alloc(c);
  const useBatchStats = options.training || runningMean === null || runningVar === null;
  if (useBatchStats) {
    k.batchNormTrain(x.data, weight?.data ?? null, bias?.data ?? null, eps, y.data, mean, invStd, geometry);
    if (options.training && options.updateRunningStats !== false && runningMean && runningVar) {
      const count = n * h * w;
      const rm = runningMean.data;
      const rv = runningVar.data;
      for (let ch = 0; ch < c; ch++) {
        const biasedVar = 1 / (invStd[ch] * invStd[ch]) - eps;
        const unbiasedVar = count > 1 ? biasedVar * count / (count - 1) : biasedVar;
        rm[ch] = (1 - momentum) * rm[ch] + momentum * mean[ch];
        rv[ch] = (1 - momentum) * rv[ch] + momentum * unbiasedVar;
      }
    }
  } else {
    const rm = (runningMean as Tensor).data;
    const rv = (runningVar as Tensor).data;
    for (let ch = 0; ch < c; ch++) {
      mean[ch] = rm[ch];
      invStd[ch] = 1 / Math.sqrt(rv[ch] + eps);
    }
    k.batchNormApply(x.data, mean, invStd, weight?.data ?? null, bias?.data ?? null, y.data, geometry);
  }
  const release = (): void => {
    k.free(mean);
    k.free(invStd);
  };
  if (!needsGrad(x, weight, bias)) {
    release();
    return y;
  }
  // Without gamma and beta the normalised value is the output itself, so backward reads y
  // (which the next op or the MixedOp sum usually keeps anyway) instead of holding x.
  const fromOutput = useBatchStats && weight === null && bias === null;
  // With fixed statistics x is only needed for gamma's gradient.
  const needsInput = useBatchStats ? !fromOutput : Boolean(weight?.requiresGrad);
  return record(y, {
    name: 'batchNorm2d',
    inputs: [x, weight, bias],
    saved: fromOutput ? [y] : needsInput ? [x] : [],
    backward: (gy) => {
      const gx = empty(x.shape); // the kernels always produce it; unused ones are freed by the engine
      if (fromOutput) {
        // gx = invStd (gy - mean(gy) - y mean(gy y)): the train-mode kernel with mean 0, invStd 1, gamma = invStd.
        const zeroMean = k.allocZeros(c);
        const ones = k.alloc(c);
        ones.fill(1);
        k.batchNormTrainBackward(gy.data, y.data, zeroMean, ones, invStd, gx.data, null, null, geometry);
        k.free(zeroMean);
        k.free(ones);
        return [gx, null, null];
      }
      const gGamma = weight?.requiresGrad ? empty(weight.shape) : null;
      const gBeta = bias?.requiresGrad ? empty(bias.shape) : null;
      const kernel = useBatchStats ? k.batchNormTrainBackward : k.batchNormApplyBackward;
      // x is only read for gamma's gradient when the statistics are fixed.
      kernel.call(k, gy.data, needsInput ? x.data : gy.data, mean, invStd, weight?.data ?? null, gx.data,
        gGamma?.data ?? null, gBeta?.data ?? null, geometry);
      return [gx, gGamma, gBeta];
    },
    release,
  });
}

// ---------------------------------------------------------------------------------------
// Elementwise

export function relu(x: Tensor): Tensor {
  const y = empty(x.shape);
  kernels().relu(x.data, y.data, x.numel);
  if (!needsGrad(x)) return y;
  // The output carries the same mask as the input, and it is alive anyway.
  return record(y, {
    name: 'relu',
    inputs: [x],
    saved: [y],
    backward: (gy) => {
      const gx = empty(x.shape);
      kernels().reluBackward(gy.data, y.data, gx.data, x.numel);
      return [gx];
    },
  });
}

/**
 * The forward code is done with y = relu(x). When backward nodes hold y and x is held anyway,
 * y is evicted (recomputed from x by one ReLU pass when backward first reads it) instead of
 * kept; otherwise it is dropped as usual. Not inside a recomputed segment, whose backward
 * follows at once.
 */
export function releaseRelu(y: Tensor, x: Tensor): void {
  if (y.saveRefs > 0 && x.saveRefs > 0 && !x.isDisposed && !isRecomputing()) {
    y.evict((out) => kernels().relu(x.data, out, x.numel), [x]);
  } else {
    y.drop();
  }
}

export function add(a: Tensor, b: Tensor): Tensor {
  expectSameShape('add', a, b);
  const y = empty(a.shape);
  kernels().add(a.data, b.data, y.data, a.numel);
  if (!needsGrad(a, b)) return y;
  return record(y, { name: 'add', inputs: [a, b], backward: (gy) => [gy, gy] });
}

/** Sum of tensors of one shape (one node, one output buffer). */
export function sum(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new Error('sum: no tensors');
  for (const x of xs) expectSameShape('sum', xs[0], x);
  const k = kernels();
  const y = empty(xs[0].shape);
  y.data.set(xs[0].data.subarray(0, y.numel));
  for (let i = 1; i < xs.length; i++) k.axpy(1, xs[i].data, y.data, y.numel);
  if (!needsGrad(...xs)) return y;
  return record(y, { name: 'sum', inputs: xs, backward: (gy) => xs.map(() => gy) });
}

/** x times a constant. */
export function mulScalar(x: Tensor, factor: number): Tensor {
  const y = empty(x.shape);
  kernels().scale(x.data, factor, y.data, x.numel);
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'mulScalar',
    inputs: [x],
    backward: (gy) => {
      const gx = empty(x.shape);
      kernels().scale(gy.data, factor, gx.data, x.numel);
      return [gx];
    },
  });
}

/**
 * y = sum_i weights[indices[i]] * xs[i]: the MixedOp and node sums, where the weights are
 * softmax outputs and the gradient flows into them (d/dw[idx] = <gy, x_i>).
 */
export function weightedSum(xs: readonly Tensor[], weights: Tensor, indices: readonly number[]): Tensor {
  if (xs.length === 0 || xs.length !== indices.length) {
    throw new Error(`weightedSum: ${xs.length} tensors and ${indices.length} weight indices`);
  }
  for (const x of xs) expectSameShape('weightedSum', xs[0], x);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= weights.numel) throw new Error(`weightedSum: weight index ${i} outside ${weights.numel}`);
  }
  const k = kernels();
  const n = xs[0].numel;
  const y = empty(xs[0].shape);
  const w = weights.data;
  k.weightedSum(xs.map((x) => x.data), indices.map((i) => w[i]), y.data, n);
  if (!needsGrad(weights, ...xs)) return y;
  return record(y, {
    name: 'weightedSum',
    inputs: [weights, ...xs],
    // The summands are only read for the weights' gradient.
    saved: weights.requiresGrad ? [weights, ...xs] : [weights],
    backward: (gy) => {
      let gw: Tensor | null = null;
      if (weights.requiresGrad) {
        gw = zeros(weights.shape);
        const products = k.dots(gy.data, xs.map((x) => x.data), n);
        for (let i = 0; i < xs.length; i++) gw.data[indices[i]] += products[i];
      }
      const gxs = xs.map((x) => (x.requiresGrad ? empty(x.shape) : null));
      const wanted = gxs.flatMap((g, i) => (g === null ? [] : [i]));
      k.scaleMany(gy.data, wanted.map((i) => weights.data[indices[i]]), wanted.map((i) => (gxs[i] as Tensor).data), n);
      return [gw, ...gxs];
    },
  });
}

/** y[n] = x[n] * factors[n] for every sample n (drop path: factors are 0 or 1/keep). */
export function mulPerSample(x: Tensor, factors: Float32Array): Tensor {
  const batch = x.shape[0];
  if (factors.length !== batch) throw new Error(`mulPerSample: ${factors.length} factors for batch ${batch}`);
  const per = x.numel / batch;
  const k = kernels();
  const y = empty(x.shape);
  k.scaleSamples(x.data, factors, y.data, per);
  if (!needsGrad(x)) return y;
  const saved = Float32Array.from(factors);
  return record(y, {
    name: 'mulPerSample',
    inputs: [x],
    backward: (gy) => {
      const gx = empty(x.shape);
      k.scaleSamples(gy.data, saved, gx.data, per);
      return [gx];
    },
  });
}

// ---------------------------------------------------------------------------------------
// Pooling

export interface PoolOptions {
  kernel: number;
  stride: number;
  padding?: number;
}

function poolGeometry(x: Tensor, o: PoolOptions): PoolGeometry {
  expectRank('pool input', x, 4);
  const [n, c, h, w] = x.shape;
  return makePoolGeometry({ batch: n, channels: c, inH: h, inW: w, kernel: o.kernel, stride: o.stride, padding: o.padding ?? 0 });
}

export function maxPool2d(x: Tensor, options: PoolOptions): Tensor {
  const g = poolGeometry(x, options);
  const y = empty([g.batch, g.channels, g.outH, g.outW]);
  kernels().maxPool2d(x.data, y.data, g);
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'maxPool2d',
    inputs: [x],
    saved: [x],
    backward: (gy) => {
      const gx = empty(x.shape);
      kernels().maxPool2dBackward(x.data, gy.data, gx.data, g);
      return [gx];
    },
  });
}

/** Average pool; padding cells are not counted in the divisor (count_include_pad=False). */
export function avgPool2d(x: Tensor, options: PoolOptions): Tensor {
  const g = poolGeometry(x, options);
  return avgPoolWithGeometry(x, g, [g.batch, g.channels, g.outH, g.outW]);
}

function avgPoolWithGeometry(x: Tensor, g: PoolGeometry, outShape: Shape): Tensor {
  const y = empty(outShape);
  kernels().avgPool2d(x.data, y.data, g);
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'avgPool2d',
    inputs: [x],
    backward: (gy) => {
      const gx = empty(x.shape);
      kernels().avgPool2dBackward(gy.data, gx.data, g);
      return [gx];
    },
  });
}

/** Adaptive average pool to 1x1, flattened: [N, C, H, W] -> [N, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  expectRank('globalAvgPool input', x, 4);
  const [n, c, h, w] = x.shape;
  const g: PoolGeometry = {
    batch: n, channels: c, inH: h, inW: w, kernelH: h, kernelW: w,
    strideH: 1, strideW: 1, padH: 0, padW: 0, outH: 1, outW: 1,
  };
  return avgPoolWithGeometry(x, g, [n, c]);
}

// ---------------------------------------------------------------------------------------
// Dense

/** y = x W^T + b; x is [N, inF] (a rank-4 [N, C, 1, 1] is read as [N, C]). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const rows = x.shape[0];
  const inF = x.numel / rows;
  const [outF, wIn] = weight.shape;
  if (wIn !== inF) throw new Error(`linear: input has ${inF} features, weight ${shapeToString(weight.shape)} expects ${wIn}`);
  const k = kernels();
  const y = empty([rows, outF]);
  k.linear(x.data, weight.data, bias?.data ?? null, y.data, rows, inF, outF);
  if (!needsGrad(x, weight, bias)) return y;
  return record(y, {
    name: 'linear',
    inputs: [x, weight, bias],
    saved: weight.requiresGrad || bias?.requiresGrad ? [x, weight] : [weight],
    backward: (gy) => {
      let gx: Tensor | null = null;
      if (x.requiresGrad) {
        gx = empty(x.shape);
        k.linearGradInput(gy.data, weight.data, gx.data, rows, inF, outF);
      }
      let gw: Tensor | null = null;
      let gb: Tensor | null = null;
      if (weight.requiresGrad || bias?.requiresGrad) {
        gw = empty(weight.shape);
        gb = bias ? empty(bias.shape) : null;
        k.linearGradWeight(x.data, gy.data, gw.data, gb?.data ?? null, rows, inF, outF);
        if (!weight.requiresGrad) { gw.dispose(); gw = null; }
      }
      return [gx, gw, gb];
    },
  });
}

/**
 * The same values under a new autograd node (no copy: it borrows x's storage and holds x
 * until its backward ran). Its gradient reaches x as one sum: the gradients of everything
 * that reads the alias add up first, so the order in which they join x's other gradients
 * does not depend on whether the readers were kept or recomputed.
 */
export function alias(x: Tensor): Tensor {
  if (!needsGrad(x)) return x;
  const y = new Tensor(x.data, x.shape, false, true);
  return record(y, { name: 'alias', inputs: [x], saved: [x], backward: (gy) => [gy] });
}

/** A copy with another shape of the same size (gradient reshaped back). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  if (shapeSize(shape) !== x.numel) throw new Error(`reshape: ${shapeToString(x.shape)} cannot become ${shapeToString(shape)}`);
  const y = empty(shape);
  y.data.set(x.data.subarray(0, x.numel));
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'reshape',
    inputs: [x],
    backward: (gy) => {
      const gx = empty(x.shape);
      gx.data.set(gy.data.subarray(0, gy.numel));
      return [gx];
    },
  });
}

// ---------------------------------------------------------------------------------------
// Channel plumbing

export function concatChannels(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new Error('concatChannels: no tensors');
  const total = xs.reduce((s, x) => s + x.shape[1], 0);
  const map = new Int32Array(2 * total);
  let d = 0;
  xs.forEach((x, s) => {
    for (let c = 0; c < x.shape[1]; c++, d++) {
      map[2 * d] = s;
      map[2 * d + 1] = c;
    }
  });
  return gatherChannels(xs, map, 'concatChannels');
}

/** Channels [start, start + count). */
export function sliceChannels(x: Tensor, start: number, count: number): Tensor {
  expectRank('sliceChannels input', x, 4);
  const c = x.shape[1];
  if (start < 0 || count <= 0 || start + count > c) throw new Error(`sliceChannels: [${start}, ${start + count}) outside ${c} channels`);
  const map = new Int32Array(2 * count);
  for (let d = 0; d < count; d++) map[2 * d + 1] = start + d;
  return gatherChannels([x], map, 'sliceChannels');
}

/**
 * channel_shuffle(x, groups): view channels as (groups, C/groups), transpose, flatten.
 * Output channel j*groups + g is input channel g*(C/groups) + j.
 */
export function channelShuffle(x: Tensor, groups: number): Tensor {
  expectRank('channelShuffle input', x, 4);
  const c = x.shape[1];
  if (c % groups !== 0) throw new Error(`channelShuffle: ${c} channels not divisible by ${groups} groups`);
  return gatherChannels([x], channelShuffleMap(c, groups), 'channelShuffle');
}

/** The gather map of channelShuffle over C channels of one source (see gatherChannels). */
export function channelShuffleMap(channels: number, groups: number): Int32Array {
  const perGroup = channels / groups;
  const map = new Int32Array(2 * channels);
  for (let g = 0; g < groups; g++) {
    for (let j = 0; j < perGroup; j++) map[2 * (j * groups + g) + 1] = g * perGroup + j;
  }
  return map;
}

/**
 * y[:, d] = xs[map[2d]][:, map[2d + 1]]; map[2d] = -1 gives a zero channel. Concatenation,
 * slicing, the channel shuffle and the MixedOp's shuffled join of its mixed and bypass
 * channels are all one gather (one kernel call, one pass over the data). Every source
 * channel may be read at most once, so the backward is a gather as well (zeros where a
 * channel was not read).
 */
export function gatherChannels(xs: readonly Tensor[], map: Int32Array, what = 'gatherChannels'): Tensor {
  if (xs.length === 0) throw new Error(`${what}: no tensors`);
  for (const x of xs) expectRank(`${what} input`, x, 4);
  const [n, , h, w] = xs[0].shape;
  for (const x of xs) {
    if (x.shape[0] !== n || x.shape[2] !== h || x.shape[3] !== w) {
      throw new Error(`${what}: ${shapeToString(x.shape)} does not match ${shapeToString(xs[0].shape)} outside channels`);
    }
  }
  if (map.length % 2 !== 0) throw new Error(`${what}: map has an odd length ${map.length}`);
  const channels = map.length / 2;
  const sourceChannels = xs.map((x) => x.shape[1]);
  const k = kernels();
  const y = empty([n, channels, h, w]);
  k.gatherChannels(xs.map((x) => x.data), sourceChannels, y.data, channels, map, n, h * w);
  if (!needsGrad(...xs)) return y;
  // Inverse maps: source channel <- output channel (or zeros).
  const inverse = xs.map((x) => {
    const m = new Int32Array(2 * x.shape[1]);
    for (let c = 0; c < x.shape[1]; c++) m[2 * c] = -1;
    return m;
  });
  for (let d = 0; d < channels; d++) {
    const s = map[2 * d];
    if (s < 0) continue;
    const m = inverse[s];
    const c = map[2 * d + 1];
    if (m[2 * c] !== -1) throw new Error(`${what}: source ${s} channel ${c} is read twice`);
    m[2 * c] = 0;
    m[2 * c + 1] = d;
  }
  return record(y, {
    name: what,
    inputs: xs,
    backward: (gy, pending) => xs.map((x, s) => {
      if (!x.requiresGrad) return null;
      // Added into the gradient accumulated so far, channels not read left alone; the same
      // source twice in xs adds twice into that one buffer.
      const into = pending[s];
      if (into) {
        k.gatherChannels([gy.data], [channels], into.data, x.shape[1], inverse[s], n, h * w, true);
        return into;
      }
      const gx = empty(x.shape);
      k.gatherChannels([gy.data], [channels], gx.data, x.shape[1], inverse[s], n, h * w);
      return gx;
    }),
  });
}

/** x[:, :, offset:, offset:] (FactorizedReduce's one-pixel shift). */
export function cropTopLeft(x: Tensor, offset: number): Tensor {
  expectRank('cropTopLeft input', x, 4);
  const [n, c, h, w] = x.shape;
  if (offset <= 0 || offset >= h || offset >= w) throw new Error(`cropTopLeft: offset ${offset} outside ${h}x${w}`);
  const oh = h - offset;
  const ow = w - offset;
  const y = empty([n, c, oh, ow]);
  const k = kernels();
  k.cropPlanes(x.data, y.data, n * c, h, w, offset, false);
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'cropTopLeft',
    inputs: [x],
    backward: (gy) => {
      const gx = empty(x.shape);
      k.cropPlanes(gy.data, gx.data, n * c, h, w, offset, true);
      return [gx];
    },
  });
}

// ---------------------------------------------------------------------------------------
// Softmax and losses (small tensors: plain TypeScript, float64 accumulation)

/**
 * Softmax over consecutive segments of the flattened tensor: `segments` lists their lengths
 * (summing to numel). Alphas: every row of 8; betas: the inputs of each node.
 */
export function softmaxSegments(x: Tensor, segments: readonly number[]): Tensor {
  const total = segments.reduce((a, b) => a + b, 0);
  if (total !== x.numel) throw new Error(`softmaxSegments: segments cover ${total} of ${x.numel} elements`);
  const y = empty(x.shape);
  const xs = x.data;
  const ys = y.data;
  let start = 0;
  for (const len of segments) {
    let max = -Infinity;
    for (let i = start; i < start + len; i++) if (xs[i] > max) max = xs[i];
    let s = 0;
    for (let i = start; i < start + len; i++) s += Math.exp(xs[i] - max);
    for (let i = start; i < start + len; i++) ys[i] = Math.exp(xs[i] - max) / s;
    start += len;
  }
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'softmax',
    inputs: [x],
    saved: [y],
    backward: (gy) => {
      const gx = empty(x.shape);
      const g = gy.data;
      const out = gx.data;
      let from = 0;
      for (const len of segments) {
        let dotGy = 0;
        for (let i = from; i < from + len; i++) dotGy += g[i] * ys[i];
        for (let i = from; i < from + len; i++) out[i] = ys[i] * (g[i] - dotGy);
        from += len;
      }
      return [gx];
    },
  });
}

/** Softmax over the last dimension. */
export function softmax(x: Tensor): Tensor {
  const last = x.shape[x.shape.length - 1];
  return softmaxSegments(x, new Array<number>(x.numel / last).fill(last));
}

/** Log-softmax over the last dimension. */
export function logSoftmax(x: Tensor): Tensor {
  const last = x.shape[x.shape.length - 1];
  const rows = x.numel / last;
  const y = empty(x.shape);
  const xs = x.data;
  const ys = y.data;
  for (let r = 0; r < rows; r++) {
    const o = r * last;
    let max = -Infinity;
    for (let i = 0; i < last; i++) if (xs[o + i] > max) max = xs[o + i];
    let s = 0;
    for (let i = 0; i < last; i++) s += Math.exp(xs[o + i] - max);
    const logSum = max + Math.log(s);
    for (let i = 0; i < last; i++) ys[o + i] = xs[o + i] - logSum;
  }
  if (!needsGrad(x)) return y;
  return record(y, {
    name: 'logSoftmax',
    inputs: [x],
    saved: [y],
    backward: (gy) => {
      const gx = empty(x.shape);
      const g = gy.data;
      const out = gx.data;
      for (let r = 0; r < rows; r++) {
        const o = r * last;
        let sg = 0;
        for (let i = 0; i < last; i++) sg += g[o + i];
        for (let i = 0; i < last; i++) out[o + i] = g[o + i] - Math.exp(ys[o + i]) * sg;
      }
      return [gx];
    },
  });
}

export interface CrossEntropyOptions {
  /** Target = (1 - s) one-hot + s / classes (PyTorch's label_smoothing). */
  labelSmoothing?: number;
}

/** Mean cross-entropy of logits [N, classes] against integer labels; a one-element tensor. */
export function crossEntropy(logits: Tensor, labels: Int32Array, options: CrossEntropyOptions = {}): Tensor {
  expectRank('crossEntropy logits', logits, 2);
  const [rows, classes] = logits.shape;
  if (labels.length !== rows) throw new Error(`crossEntropy: ${labels.length} labels for ${rows} rows of logits`);
  const smoothing = options.labelSmoothing ?? 0;
  const xs = logits.data;
  const probabilities = new Float64Array(rows * classes);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new Error(`crossEntropy: label ${label} outside 0..${classes - 1}`);
    }
    const o = r * classes;
    let max = -Infinity;
    for (let i = 0; i < classes; i++) if (xs[o + i] > max) max = xs[o + i];
    let s = 0;
    for (let i = 0; i < classes; i++) s += Math.exp(xs[o + i] - max);
    const logSum = max + Math.log(s);
    let sumLogP = 0;
    for (let i = 0; i < classes; i++) {
      const logP = xs[o + i] - logSum;
      probabilities[o + i] = Math.exp(logP);
      sumLogP += logP;
    }
    total += -(1 - smoothing) * (xs[o + label] - logSum) - (smoothing / classes) * sumLogP;
  }
  const loss = empty([]);
  loss.data[0] = total / rows;
  if (!needsGrad(logits)) return loss;
  const savedLabels = Int32Array.from(labels);
  return record(loss, {
    name: 'crossEntropy',
    inputs: [logits],
    backward: (gy) => {
      const scale = gy.data[0] / rows;
      const gx = empty(logits.shape);
      const out = gx.data;
      for (let r = 0; r < rows; r++) {
        const o = r * classes;
        for (let i = 0; i < classes; i++) {
          const target = (i === savedLabels[r] ? 1 - smoothing : 0) + smoothing / classes;
          out[o + i] = (probabilities[o + i] - target) * scale;
        }
      }
      return [gx];
    },
  });
}

/** Sum of y * weights over all elements: drives backward with an upstream gradient in tests. */
export function dotConstant(y: Tensor, weights: Float32Array): Tensor {
  if (weights.length < y.numel) throw new Error(`dotConstant: ${weights.length} weights for ${y.numel} elements`);
  const k = kernels();
  // Kernels take buffers of the backend's own memory: copy the constant in.
  const saved = empty(y.shape);
  saved.data.set(weights.subarray(0, y.numel));
  const out = empty([]);
  out.data[0] = k.dot(y.data, saved.data, y.numel);
  if (!needsGrad(y)) {
    saved.dispose();
    return out;
  }
  return record(out, {
    name: 'dotConstant',
    inputs: [y],
    backward: (gy) => {
      const gx = empty(y.shape);
      k.scale(saved.data, gy.data[0], gx.data, y.numel);
      return [gx];
    },
    release: () => saved.dispose(),
  });
}

/** Zeros of the shape an op with the given stride would output (the `none` operation). */
export function zerosLikeStrided(x: Tensor, stride: number): Tensor {
  expectRank('zerosLikeStrided input', x, 4);
  const [n, c, h, w] = x.shape;
  return zeros([n, c, Math.ceil(h / stride), Math.ceil(w / stride)]);
}
