/**
 * Phase-2 draft of the kernel interface over opaque device buffers (docs/webgpu-design.md).
 *
 * Today `KernelBackend` (../backend.ts) passes `Float32Array`s that any code may read. A GPU
 * cannot offer that: its buffers live on the device, reads are asynchronous, and a read in
 * the middle of a step stalls the pipeline. This is the shape the interface takes in phase 2,
 * and the WebGPU backend of this folder implements it now:
 *
 * - buffers are handles owned by the backend (`DeviceBuffer`), created by `alloc`, filled by
 *   `upload` (queued, ordered after every kernel recorded before it) and read by `read`
 *   (a Promise: the only way values come back to the host);
 * - kernel arguments that are tensor values today read on the host (the weights of a
 *   weighted sum, the drop-path factors) are device scalars: a buffer and indices into it;
 * - kernels that return numbers today (`dot`, `dots`) write them into a device buffer;
 * - plain JS numbers remain only for values the host owns anyway (a learning rate, eps,
 *   the constant 1 of a gradient sum) and travel with the kernel's parameters.
 *
 * Everything else (geometries, overwrite-unless-`Accumulate` semantics, determinism) is as in
 * `KernelBackend`, and every method means exactly what its namesake there means.
 */
import type { BatchNormGeometry, ConvGeometry, PoolGeometry } from '../backend.js';

/**
 * An opaque buffer of `length` float32 values owned by one backend. A `Float32Array`
 * satisfies it, so the host backends (ref, wasm) implement this interface with their buffers
 * unchanged (phase 2: `DeviceKernelBackend<Float32Array>`).
 */
export interface DeviceBuffer {
  readonly length: number;
}

/** Values on the device: `buffer[indices[i]]` is the i-th scalar (a softmax output read in place). */
export interface DeviceScalars<B extends DeviceBuffer = DeviceBuffer> {
  readonly buffer: B;
  readonly indices: readonly number[];
}

/** One scalar on the device. */
export interface DeviceScalar<B extends DeviceBuffer = DeviceBuffer> {
  readonly buffer: B;
  readonly index: number;
}

/** Scalars given by the host (copied into the kernel's parameters) or read on the device. */
export type Scalars<B extends DeviceBuffer = DeviceBuffer> = readonly number[] | DeviceScalars<B>;
export type Scalar<B extends DeviceBuffer = DeviceBuffer> = number | DeviceScalar<B>;

export interface DeviceMemoryStats {
  /** Bytes of buffers handed out and not yet freed. */
  liveBytes: number;
  /** Most `liveBytes` ever (since `resetPeak`). */
  peakBytes: number;
  /** Bytes the device holds for this backend: live, pooled for reuse, staging, parameters. */
  reservedBytes: number;
}

export interface DeviceKernelBackend<B extends DeviceBuffer = DeviceBuffer> {
  readonly name: string;

  // --- memory and transfers ---
  alloc(numel: number): B;
  allocZeros(numel: number): B;
  /** Returns the buffer; the pool reuses it only once the device has finished every command recorded so far. */
  free(buffer: B): void;
  /** Queues a host-to-device copy of `data` into `buffer` at element `offset`, ordered after every kernel recorded before it. */
  upload(buffer: B, data: Float32Array, offset?: number): void;
  /** The values of `buffer[offset, offset + numel)` once every kernel recorded before the call has run. */
  read(buffer: B, numel?: number, offset?: number): Promise<Float32Array>;
  /** dst[dstOffset + i] = src[srcOffset + i] for i < numel (recorded like a kernel). */
  copy(src: B, dst: B, numel: number, srcOffset?: number, dstOffset?: number): void;
  /** buffer[offset + i] = value for i < numel. */
  fill(buffer: B, value: number, numel: number, offset?: number): void;
  /** Submits what has been recorded (kernels are batched until then). */
  flush(): void;
  /** Resolves when the device has finished everything submitted so far; rejects on a device error. */
  sync(): Promise<void>;
  memoryStats(): DeviceMemoryStats;
  resetPeak(): void;

  // --- convolution ---
  conv2d(x: B, weight: B, y: B, g: ConvGeometry): void;
  conv2dGradInput(gradY: B, weight: B, gradX: B, g: ConvGeometry): void;
  conv2dGradWeight(x: B, gradY: B, gradW: B, g: ConvGeometry): void;

  // --- batch norm ---
  batchNormTrain(x: B, gamma: B | null, beta: B | null, eps: number, y: B, mean: B, invStd: B, g: BatchNormGeometry): void;
  batchNormApply(x: B, mean: B, invStd: B, gamma: B | null, beta: B | null, y: B, g: BatchNormGeometry): void;
  batchNormTrainBackward(gradY: B, x: B, mean: B, invStd: B, gamma: B | null, gradX: B,
    gradGamma: B | null, gradBeta: B | null, g: BatchNormGeometry): void;
  batchNormApplyBackward(gradY: B, x: B, mean: B, invStd: B, gamma: B | null, gradX: B,
    gradGamma: B | null, gradBeta: B | null, g: BatchNormGeometry): void;

  // --- elementwise ---
  relu(x: B, y: B, n: number): void;
  reluBackward(gradY: B, x: B, gradX: B, n: number): void;
  add(a: B, b: B, out: B, n: number): void;
  axpy(alpha: Scalar<B>, x: B, y: B, n: number): void;
  scale(x: B, alpha: Scalar<B>, out: B, n: number): void;
  scaleMany(x: B, alphas: Scalars<B>, outs: readonly B[], n: number): void;
  /** Drop path: `factors` holds one factor per sample; `samples` of them are used. */
  scaleSamples(x: B, factors: B, out: B, per: number, samples: number): void;
  /** out[at] = sum_i a[i] * b[i] (fixed-order reduction). */
  dot(a: B, b: B, n: number, out: B, at?: number): void;
  /** out[at[i]] (+)= dot(a, bs[i]), in order of i; `accumulate` adds to what out holds. */
  dots(a: B, bs: readonly B[], n: number, out: B, at: readonly number[], accumulate?: boolean): void;

  // --- pooling ---
  maxPool2d(x: B, y: B, g: PoolGeometry): void;
  maxPool2dBackward(x: B, gradY: B, gradX: B, g: PoolGeometry): void;
  avgPool2d(x: B, y: B, g: PoolGeometry): void;
  avgPool2dBackward(gradY: B, gradX: B, g: PoolGeometry): void;

  // --- dense ---
  linear(x: B, weight: B, bias: B | null, y: B, rows: number, inFeatures: number, outFeatures: number): void;
  linearGradInput(gradY: B, weight: B, gradX: B, rows: number, inFeatures: number, outFeatures: number): void;
  linearGradWeight(x: B, gradY: B, gradW: B, gradB: B | null, rows: number, inFeatures: number, outFeatures: number): void;

  // --- channel plumbing ---
  cropPlanes(src: B, dst: B, planes: number, h: number, w: number, offset: number, backward: boolean): void;
  gatherChannels(sources: readonly B[], sourceChannels: readonly number[], dst: B, dstChannels: number,
    map: Int32Array, batch: number, plane: number, accumulate?: boolean): void;

  // --- weighted sums ---
  weightedSum(xs: readonly B[], weights: Scalars<B>, out: B, n: number): void;
}
