/**
 * The kernel interface: every numeric hot loop of the engine goes through one of these
 * methods, so a backend (plain TypeScript reference, WebAssembly SIMD, later WebGPU) can be
 * swapped without touching tensor or model code.
 *
 * Conventions shared by every backend:
 * - Layout is NCHW, float32, contiguous. Buffers are `Float32Array`s obtained from the same
 *   backend's `alloc` (a backend may require that: the wasm backend passes byte offsets into
 *   its own memory).
 * - Every kernel OVERWRITES its output(s) unless the method name says `Accumulate`.
 * - Kernels never allocate buffers that outlive the call and never keep references.
 * - Results must not depend on the thread count: reductions are split into chunks whose
 *   boundaries depend only on the shapes, and partial results are combined in a fixed order.
 */

/** Geometry of a 2-D convolution; `outH`/`outW` are derived by `convOutputSize`. */
export interface ConvGeometry {
  readonly batch: number;
  readonly inChannels: number;
  readonly inH: number;
  readonly inW: number;
  readonly outChannels: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  /** inChannels and outChannels are both divisible by groups; depthwise: groups = inChannels = outChannels. */
  readonly groups: number;
  readonly outH: number;
  readonly outW: number;
}

/** Geometry of a 2-D pooling window (max or average). */
export interface PoolGeometry {
  readonly batch: number;
  readonly channels: number;
  readonly inH: number;
  readonly inW: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly outH: number;
  readonly outW: number;
}

/** Shape of a batch-norm input: [batch, channels, spatial] with spatial = H*W. */
export interface BatchNormGeometry {
  readonly batch: number;
  readonly channels: number;
  readonly spatial: number;
}

export interface KernelBackend {
  readonly name: string;
  /** Worker threads used by the kernels (1 = the calling thread only). */
  readonly threads: number;

  /** A buffer of `numel` floats with unspecified contents. */
  alloc(numel: number): Float32Array;
  /** A zero-filled buffer of `numel` floats. */
  allocZeros(numel: number): Float32Array;
  /** Return a buffer to the backend; the array must not be used afterwards. */
  free(buffer: Float32Array): void;
  /** Bytes currently handed out and the most ever handed out at once. */
  memoryStats(): { liveBytes: number; peakBytes: number; reservedBytes: number };
  resetPeak(): void;

  // --- convolution (no bias; bias-free is all DARTS uses, linear has its own kernel) ---
  /** y[n, co, oh, ow] = sum over the group's ci, kh, kw of x * w; w is [outC, inC/groups, kH, kW]. */
  conv2d(x: Float32Array, weight: Float32Array, y: Float32Array, g: ConvGeometry): void;
  /** gradX = conv2d^T(gradY, weight). */
  conv2dGradInput(gradY: Float32Array, weight: Float32Array, gradX: Float32Array, g: ConvGeometry): void;
  /** gradW = correlation of x with gradY, summed over the batch. */
  conv2dGradWeight(x: Float32Array, gradY: Float32Array, gradW: Float32Array, g: ConvGeometry): void;

  // --- batch norm (spec section 1: eps 1e-5, biased variance for normalisation) ---
  /**
   * Train-mode statistics and normalisation: writes per-channel `mean` and `invStd`
   * (1/sqrt(biasedVar + eps)) and y = (x - mean) * invStd * gamma + beta.
   * gamma/beta null means affine=false. Returns nothing; the caller derives the running
   * statistics from mean and invStd.
   */
  batchNormTrain(
    x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, eps: number,
    y: Float32Array, mean: Float32Array, invStd: Float32Array, g: BatchNormGeometry,
  ): void;
  /** Eval-mode (or any fixed statistics): y = (x - mean) * invStd * gamma + beta. */
  batchNormApply(
    x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, beta: Float32Array | null, y: Float32Array, g: BatchNormGeometry,
  ): void;
  /**
   * Backward of batchNormTrain. Writes gradX; writes gradGamma/gradBeta when non-null
   * (overwrite, per channel). With xhat = (x - mean) * invStd, M = batch * spatial:
   * gradX = gamma * invStd * (gy - mean(gy) - xhat * mean(gy * xhat)).
   */
  batchNormTrainBackward(
    gradY: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, gradX: Float32Array,
    gradGamma: Float32Array | null, gradBeta: Float32Array | null, g: BatchNormGeometry,
  ): void;
  /** Backward of batchNormApply (statistics are constants): gradX = gy * invStd * gamma, gradGamma, gradBeta as above. */
  batchNormApplyBackward(
    gradY: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, gradX: Float32Array,
    gradGamma: Float32Array | null, gradBeta: Float32Array | null, g: BatchNormGeometry,
  ): void;

  // --- elementwise ---
  relu(x: Float32Array, y: Float32Array, n: number): void;
  /** gradX = gradY where x > 0, else 0 (x may be the ReLU input or its output: same mask). */
  reluBackward(gradY: Float32Array, x: Float32Array, gradX: Float32Array, n: number): void;
  /** out = a + b. */
  add(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void;
  /** y += alpha * x (y is read and written). */
  axpy(alpha: number, x: Float32Array, y: Float32Array, n: number): void;
  /** out = alpha * x (out may alias x). */
  scale(x: Float32Array, alpha: number, out: Float32Array, n: number): void;
  /** outs[k] = alphas[k] * x for every k, reading x once (the gradients of a weighted sum). */
  scaleMany(x: Float32Array, alphas: readonly number[], outs: readonly Float32Array[], n: number): void;
  /** out[s*per + i] = factors[s] * x[s*per + i] for every sample s (drop path); out may alias x. */
  scaleSamples(x: Float32Array, factors: Float32Array, out: Float32Array, per: number): void;
  /** sum_i a[i] * b[i], accumulated in float64 in fixed-size chunks. */
  dot(a: Float32Array, b: Float32Array, n: number): number;

  // --- pooling ---
  /** Max over the window; padding cells never win (they are -inf). */
  maxPool2d(x: Float32Array, y: Float32Array, g: PoolGeometry): void;
  /**
   * Routes each gradY to the first maximum of its window in row-major window order
   * (PyTorch's tie rule), recomputed from x; gradX is overwritten.
   */
  maxPool2dBackward(x: Float32Array, gradY: Float32Array, gradX: Float32Array, g: PoolGeometry): void;
  /** Average over the window; the divisor counts only cells inside the input (count_include_pad=False). */
  avgPool2d(x: Float32Array, y: Float32Array, g: PoolGeometry): void;
  avgPool2dBackward(gradY: Float32Array, gradX: Float32Array, g: PoolGeometry): void;

  // --- dense ---
  /** y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]); x is [rows, inF], w is [outF, inF]. */
  linear(x: Float32Array, weight: Float32Array, bias: Float32Array | null, y: Float32Array,
    rows: number, inFeatures: number, outFeatures: number): void;
  /** gradX[m, k] = sum_n gradY[m, n] * w[n, k]. */
  linearGradInput(gradY: Float32Array, weight: Float32Array, gradX: Float32Array,
    rows: number, inFeatures: number, outFeatures: number): void;
  /** gradW[n, k] = sum_m gradY[m, n] * x[m, k]; gradB[n] = sum_m gradY[m, n] when non-null. */
  linearGradWeight(x: Float32Array, gradY: Float32Array, gradW: Float32Array, gradB: Float32Array | null,
    rows: number, inFeatures: number, outFeatures: number): void;

  // --- channel plumbing ---
  /**
   * For each of `planes` planes of h x w: y = x[offset:, offset:] ((h - offset) x (w - offset);
   * FactorizedReduce's shift). With `backward`, the adjoint: x-shaped `dst` gets `src` at
   * [offset:, offset:] and zeros elsewhere.
   */
  cropPlanes(src: Float32Array, dst: Float32Array, planes: number, h: number, w: number, offset: number, backward: boolean): void;
  /**
   * Channel gather, one call for a whole shuffle, concatenation or slice: for every sample n
   * and destination channel d, dst[n, d] = sources[map[2d]][n, map[2d + 1]] (source s has
   * sourceChannels[s] channels per sample); map[2d] = -1 writes a zero plane. Every source
   * and dst hold `batch` samples of `plane` = H*W floats per channel; dst must not alias a
   * source. With `accumulate`, source planes are added to dst and map[2d] = -1 leaves
   * channel d untouched (a gradient added into one accumulated so far).
   */
  gatherChannels(sources: readonly Float32Array[], sourceChannels: readonly number[],
    dst: Float32Array, dstChannels: number, map: Int32Array, batch: number, plane: number, accumulate?: boolean): void;

  // --- weighted sums (the MixedOp's mix) ---
  /**
   * out = sum_i weights[i] * xs[i], evaluated per element as ((w0*x0 + w1*x1) + w2*x2) + ...
   * with every product and sum rounded to float32 (the order of a scale and axpys).
   */
  weightedSum(xs: readonly Float32Array[], weights: readonly number[], out: Float32Array, n: number): void;
  /**
   * dot(a, b_i) for every i, each exactly as `dot` computes it (same chunks and float64 order),
   * reading `a` once.
   */
  dots(a: Float32Array, bs: readonly Float32Array[], n: number): number[];
}

/** Output size of a convolution or pooling window along one axis (floor mode). */
export function convOutputSize(inSize: number, kernel: number, stride: number, pad: number, dilation = 1): number {
  return Math.floor((inSize + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

export function makeConvGeometry(p: {
  batch: number; inChannels: number; inH: number; inW: number; outChannels: number;
  kernel: number | [number, number]; stride?: number; padding?: number; dilation?: number; groups?: number;
}): ConvGeometry {
  const [kernelH, kernelW] = typeof p.kernel === 'number' ? [p.kernel, p.kernel] : p.kernel;
  const stride = p.stride ?? 1;
  const pad = p.padding ?? 0;
  const dilation = p.dilation ?? 1;
  const groups = p.groups ?? 1;
  if (p.inChannels % groups !== 0 || p.outChannels % groups !== 0) {
    throw new Error(`conv2d: channels ${p.inChannels}->${p.outChannels} not divisible by groups ${groups}`);
  }
  const outH = convOutputSize(p.inH, kernelH, stride, pad, dilation);
  const outW = convOutputSize(p.inW, kernelW, stride, pad, dilation);
  if (outH <= 0 || outW <= 0) {
    throw new Error(`conv2d: input ${p.inH}x${p.inW} too small for kernel ${kernelH}x${kernelW} dilation ${dilation} padding ${pad}`);
  }
  return {
    batch: p.batch, inChannels: p.inChannels, inH: p.inH, inW: p.inW, outChannels: p.outChannels,
    kernelH, kernelW, strideH: stride, strideW: stride, padH: pad, padW: pad,
    dilationH: dilation, dilationW: dilation, groups, outH, outW,
  };
}

export function makePoolGeometry(p: {
  batch: number; channels: number; inH: number; inW: number; kernel: number; stride: number; padding: number;
}): PoolGeometry {
  const outH = convOutputSize(p.inH, p.kernel, p.stride, p.padding);
  const outW = convOutputSize(p.inW, p.kernel, p.stride, p.padding);
  if (outH <= 0 || outW <= 0) {
    throw new Error(`pool2d: input ${p.inH}x${p.inW} too small for window ${p.kernel} stride ${p.stride}`);
  }
  return {
    batch: p.batch, channels: p.channels, inH: p.inH, inW: p.inW, kernelH: p.kernel, kernelW: p.kernel,
    strideH: p.stride, strideW: p.stride, padH: p.padding, padW: p.padding, outH, outW,
  };
}
