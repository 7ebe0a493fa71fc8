/// <reference types="@webgpu/types" />
/**
 * The WebGPU kernel backend: every method of the kernel interface in WGSL, over device
 * buffer handles (the phase-2 interface of ./handles.ts). Not registered as a tensor backend
 * yet (phase 2 makes the engine handle-based); created with `createWebGpuBackend()`.
 *
 * Semantics are the reference backend's (../ref/backend.ts), with float32 arithmetic where
 * it uses float64 (WGSL has no f64), so results agree to float32 rounding, not bitwise; the
 * tests state each kernel's tolerance and why. Same inputs on the same device give the same
 * bits: every reduction has one order fixed by the shapes (no atomics).
 */
import type { BatchNormGeometry, ConvGeometry, PoolGeometry } from '../backend.js';
import { checkGatherMap } from '../ref/backend.js';
import { requestWebGpuDevice, type AdapterSummary, type WebGpuDeviceOptions } from './device.js';
import type { DeviceKernelBackend, DeviceMemoryStats, Scalar, Scalars } from './handles.js';
import { GpuBuffer, Params, Runtime, grid, type RuntimeOptions } from './runtime.js';
import { WG } from './wgsl/common.js';
import * as ew from './wgsl/elementwise.js';
import { BK, GEOMETRY_AT, gemm, gemmSplitSum, splitsFor, tileFor, type GemmKind } from './wgsl/gemm.js';
import * as rd from './wgsl/reduce.js';
import * as win from './wgsl/window.js';

export { GpuBuffer } from './runtime.js';

/** Host factors travel as parameter bits; device factors as indices into their buffer (bound last). */
function scalarList(s: Scalars<GpuBuffer>): { buffer: GpuBuffer | null; count: number; put(p: Params, start: number, end: number): void } {
  if (Array.isArray(s)) {
    const values = s as readonly number[];
    return { buffer: null, count: values.length, put: (p, start, end) => p.f(...values.slice(start, end)) };
  }
  const d = s as { buffer: GpuBuffer; indices: readonly number[] };
  return { buffer: d.buffer, count: d.indices.length, put: (p, start, end) => p.u(...d.indices.slice(start, end)) };
}

export class WebGpuBackend implements DeviceKernelBackend<GpuBuffer> {
  readonly name = 'webgpu';
  readonly runtime: Runtime;
  private readonly maxGroups: number;

  /**
   * `gpu` is the entry point the device came from, held for the device's lifetime (Dawn's
   * Node binding tears its instance down when that object is collected).
   */
  constructor(readonly gpu: GPU, readonly device: GPUDevice, readonly summary: AdapterSummary, options: RuntimeOptions = {}) {
    this.runtime = new Runtime(device, options);
    this.maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  }

  private run(source: ew.Source, params: Params, buffers: readonly GpuBuffer[], groups: readonly [number, number, number]): void {
    const kernel = this.runtime.kernel(source.label, source.code, source.buffers.map((b) => b.write));
    this.runtime.dispatch(kernel, params, buffers, groups);
  }

  /** One invocation per item: grid over `count`. */
  private elements(count: number): [number, number, number] {
    return grid(count, WG, this.maxGroups);
  }

  private need(b: GpuBuffer, numel: number, what: string): void {
    this.runtime.check(b, numel, what);
  }

  // ---------------------------------------------------------------- memory and transfers

  alloc(numel: number): GpuBuffer {
    return this.runtime.alloc(numel);
  }

  allocZeros(numel: number): GpuBuffer {
    const b = this.runtime.alloc(numel);
    this.fill(b, 0, numel);
    return b;
  }

  free(buffer: GpuBuffer): void {
    this.runtime.free(buffer);
  }

  upload(buffer: GpuBuffer, data: Float32Array, offset = 0): void {
    this.need(buffer, offset + data.length, 'upload target');
    this.runtime.upload(buffer, data, offset);
  }

  /** A new buffer holding `data`. */
  fromArray(data: Float32Array): GpuBuffer {
    const b = this.alloc(data.length);
    this.upload(b, data);
    return b;
  }

  read(buffer: GpuBuffer, numel = buffer.numel, offset = 0): Promise<Float32Array> {
    this.need(buffer, offset + numel, 'read source');
    return this.runtime.read(buffer, numel, offset);
  }

  copy(src: GpuBuffer, dst: GpuBuffer, numel: number, srcOffset = 0, dstOffset = 0): void {
    this.need(src, srcOffset + numel, 'copy source');
    this.need(dst, dstOffset + numel, 'copy target');
    this.run(ew.copy(), new Params().u(numel, srcOffset, dstOffset), [src, dst], this.elements(numel));
  }

  fill(buffer: GpuBuffer, value: number, numel: number, offset = 0): void {
    this.need(buffer, offset + numel, 'fill target');
    this.run(ew.fill(), new Params().u(numel, offset).f(value), [buffer], this.elements(numel));
  }

  flush(): void {
    this.runtime.flush();
  }

  sync(): Promise<void> {
    return this.runtime.sync();
  }

  memoryStats(): DeviceMemoryStats {
    return this.runtime.memoryStats();
  }

  resetPeak(): void {
    this.runtime.resetPeak();
  }

  dispose(): void {
    this.runtime.destroy();
  }

  // ---------------------------------------------------------------- convolution

  private checkConv(g: ConvGeometry): { cinG: number; coutG: number } {
    if (g.groups < 1 || g.inChannels % g.groups !== 0 || g.outChannels % g.groups !== 0) {
      throw new Error(`webgpu backend: conv2d channels ${g.inChannels}->${g.outChannels} not divisible by groups ${g.groups}`);
    }
    return { cinG: g.inChannels / g.groups, coutG: g.outChannels / g.groups };
  }

  private convBuffers(g: ConvGeometry, x: GpuBuffer, w: GpuBuffer, y: GpuBuffer, what: string, xName: string, yName: string): void {
    const { cinG } = this.checkConv(g);
    this.need(x, g.batch * g.inChannels * g.inH * g.inW, `${what} ${xName}`);
    this.need(w, g.outChannels * cinG * g.kernelH * g.kernelW, `${what} weight`);
    this.need(y, g.batch * g.outChannels * g.outH * g.outW, `${what} ${yName}`);
  }

  private static depthwise(g: ConvGeometry): boolean {
    return g.groups === g.inChannels && g.groups === g.outChannels;
  }

  private depthwiseParams(g: ConvGeometry, n: number): Params {
    return new Params().u(g.batch, g.inChannels, g.inH, g.inW, g.kernelH, g.kernelW, g.strideH, g.strideW,
      g.padH, g.padW, g.dilationH, g.dilationW, g.outH, g.outW, n);
  }

  private convParams(g: ConvGeometry, m: number, n: number, k: number, kChunk: number, splits: number): Params {
    const { cinG, coutG } = this.checkConv(g);
    const p = new Params().u(m, n, k, kChunk, g.groups, splits);
    while (p.words.length < GEOMETRY_AT) p.u(0);
    return p.u(g.batch, g.inChannels, g.inH, g.inW, g.outChannels, g.kernelH, g.kernelW, g.strideH, g.strideW,
      g.padH, g.padW, g.dilationH, g.dilationW, g.outH, g.outW, cinG, coutG);
  }

  /**
   * Records a tiled product (split over k when `mayNeedSplit` and k is long). `buffers` are the
   * product's bindings, output last; `params(kChunk, splits)` builds its parameters.
   */
  private product(kind: GemmKind, m: number, n: number, k: number, groups: number, buffers: GpuBuffer[],
    params: (kChunk: number, splits: number) => Params, hasBias = false): void {
    const tile = tileFor(m, n);
    const tilesN = Math.ceil(n / tile.bn);
    const tilesM = Math.ceil(m / tile.bm);
    if (tilesN > this.maxGroups || tilesM > this.maxGroups) {
      throw new Error(`webgpu backend: ${kind} of ${m}x${n} needs more workgroups than a dispatch holds`);
    }
    const splittable = kind === 'convGradWeight' || kind === 'linearGradWeight';
    let splits = splittable ? splitsFor(k) : 1;
    const kChunk = splits > 1 ? Math.ceil(Math.ceil(k / splits) / BK) * BK : Math.max(k, 1);
    splits = splits > 1 ? Math.ceil(k / kChunk) : 1;
    if (splits === 1) {
      this.run(gemm(kind, tile, false, hasBias), params(kChunk, 1), buffers, [tilesN, tilesM, groups]);
      return;
    }
    const part = this.alloc(splits * groups * m * n);
    const inputs = buffers.slice(0, -1);
    const out = buffers[buffers.length - 1];
    const p = params(kChunk, splits);
    this.run(gemm(kind, tile, true), p, [...inputs, part], [tilesN, tilesM, splits * groups]);
    this.run(gemmSplitSum(kind as 'convGradWeight' | 'linearGradWeight'), p, [part, out], this.elements(groups * m * n));
    this.free(part);
  }

  conv2d(x: GpuBuffer, weight: GpuBuffer, y: GpuBuffer, g: ConvGeometry): void {
    this.convBuffers(g, x, weight, y, 'conv2d', 'x', 'y');
    const { cinG, coutG } = this.checkConv(g);
    if (WebGpuBackend.depthwise(g)) {
      const n = g.batch * g.outChannels * g.outH * g.outW;
      this.run(win.depthwiseConv(), this.depthwiseParams(g, n), [x, weight, y], this.elements(n));
      return;
    }
    const m = coutG;
    const n = g.batch * g.outH * g.outW;
    const k = cinG * g.kernelH * g.kernelW;
    this.product('conv', m, n, k, g.groups, [x, weight, y], (kc, s) => this.convParams(g, m, n, k, kc, s));
  }

  conv2dGradInput(gradY: GpuBuffer, weight: GpuBuffer, gradX: GpuBuffer, g: ConvGeometry): void {
    this.convBuffers(g, gradX, weight, gradY, 'conv2dGradInput', 'gradX', 'gradY');
    const { cinG, coutG } = this.checkConv(g);
    if (WebGpuBackend.depthwise(g)) {
      const n = g.batch * g.inChannels * g.inH * g.inW;
      this.run(win.depthwiseConvGradInput(), this.depthwiseParams(g, n), [gradY, weight, gradX], this.elements(n));
      return;
    }
    const m = cinG;
    const n = g.batch * g.inH * g.inW;
    const k = coutG * g.kernelH * g.kernelW;
    this.product('convGradInput', m, n, k, g.groups, [gradY, weight, gradX], (kc, s) => this.convParams(g, m, n, k, kc, s));
  }

  conv2dGradWeight(x: GpuBuffer, gradY: GpuBuffer, gradW: GpuBuffer, g: ConvGeometry): void {
    this.convBuffers(g, x, gradW, gradY, 'conv2dGradWeight', 'x', 'gradY');
    const { cinG, coutG } = this.checkConv(g);
    if (WebGpuBackend.depthwise(g)) {
      const weights = g.outChannels * g.kernelH * g.kernelW;
      this.run(win.depthwiseConvGradWeight(), this.depthwiseParams(g, weights), [x, gradY, gradW],
        grid(weights, 1, this.maxGroups));
      return;
    }
    const m = coutG;
    const n = cinG * g.kernelH * g.kernelW;
    const k = g.batch * g.outH * g.outW;
    this.product('convGradWeight', m, n, k, g.groups, [x, gradY, gradW], (kc, s) => this.convParams(g, m, n, k, kc, s));
  }

  // ---------------------------------------------------------------- batch norm

  private bnCheck(g: BatchNormGeometry, what: string, full: [GpuBuffer, string][], perChannel: [GpuBuffer | null, string][]): void {
    const numel = g.batch * g.channels * g.spatial;
    for (const [b, name] of full) this.need(b, numel, `${what} ${name}`);
    for (const [b, name] of perChannel) if (b) this.need(b, g.channels, `${what} ${name}`);
  }

  batchNormTrain(x: GpuBuffer, gamma: GpuBuffer | null, beta: GpuBuffer | null, eps: number,
    y: GpuBuffer, mean: GpuBuffer, invStd: GpuBuffer, g: BatchNormGeometry): void {
    this.bnCheck(g, 'batchNormTrain', [[x, 'x'], [y, 'y']], [[mean, 'mean'], [invStd, 'invStd'], [gamma, 'gamma'], [beta, 'beta']]);
    this.run(rd.batchNormStats(), new Params().u(g.batch, g.channels, g.spatial).f(eps), [x, mean, invStd],
      grid(g.channels, 1, this.maxGroups));
    this.batchNormApply(x, mean, invStd, gamma, beta, y, g);
  }

  batchNormApply(x: GpuBuffer, mean: GpuBuffer, invStd: GpuBuffer, gamma: GpuBuffer | null, beta: GpuBuffer | null,
    y: GpuBuffer, g: BatchNormGeometry): void {
    this.bnCheck(g, 'batchNormApply', [[x, 'x'], [y, 'y']], [[mean, 'mean'], [invStd, 'invStd'], [gamma, 'gamma'], [beta, 'beta']]);
    const n = g.batch * g.channels * g.spatial;
    const buffers = [x, mean, invStd, ...(gamma ? [gamma] : []), ...(beta ? [beta] : []), y];
    this.run(rd.batchNormApply(gamma !== null, beta !== null), new Params().u(n, g.channels, g.spatial), buffers, this.elements(n));
  }

  /** Per-channel sumGy and sumGyXhat into a scratch buffer (returned) and gradGamma / gradBeta. */
  private bnSums(gradY: GpuBuffer, x: GpuBuffer, mean: GpuBuffer, invStd: GpuBuffer,
    gradGamma: GpuBuffer | null, gradBeta: GpuBuffer | null, g: BatchNormGeometry): GpuBuffer {
    const sums = this.alloc(2 * g.channels);
    const buffers = [gradY, x, mean, invStd, sums, ...(gradGamma ? [gradGamma] : []), ...(gradBeta ? [gradBeta] : [])];
    this.run(rd.batchNormBackwardSums(gradGamma !== null, gradBeta !== null), new Params().u(g.batch, g.channels, g.spatial),
      buffers, grid(g.channels, 1, this.maxGroups));
    return sums;
  }

  batchNormTrainBackward(gradY: GpuBuffer, x: GpuBuffer, mean: GpuBuffer, invStd: GpuBuffer, gamma: GpuBuffer | null,
    gradX: GpuBuffer, gradGamma: GpuBuffer | null, gradBeta: GpuBuffer | null, g: BatchNormGeometry): void {
    this.bnCheck(g, 'batchNormTrainBackward', [[gradY, 'gradY'], [x, 'x'], [gradX, 'gradX']],
      [[mean, 'mean'], [invStd, 'invStd'], [gamma, 'gamma'], [gradGamma, 'gradGamma'], [gradBeta, 'gradBeta']]);
    const sums = this.bnSums(gradY, x, mean, invStd, gradGamma, gradBeta, g);
    const n = g.batch * g.channels * g.spatial;
    this.run(rd.batchNormTrainGradInput(gamma !== null), new Params().u(n, g.channels, g.spatial, g.batch * g.spatial),
      [gradY, x, mean, invStd, sums, ...(gamma ? [gamma] : []), gradX], this.elements(n));
    this.free(sums);
  }

  batchNormApplyBackward(gradY: GpuBuffer, x: GpuBuffer, mean: GpuBuffer, invStd: GpuBuffer, gamma: GpuBuffer | null,
    gradX: GpuBuffer, gradGamma: GpuBuffer | null, gradBeta: GpuBuffer | null, g: BatchNormGeometry): void {
    this.bnCheck(g, 'batchNormApplyBackward', [[gradY, 'gradY'], [x, 'x'], [gradX, 'gradX']],
      [[mean, 'mean'], [invStd, 'invStd'], [gamma, 'gamma'], [gradGamma, 'gradGamma'], [gradBeta, 'gradBeta']]);
    const n = g.batch * g.channels * g.spatial;
    this.run(rd.batchNormApplyGradInput(gamma !== null), new Params().u(n, g.channels, g.spatial),
      [gradY, invStd, ...(gamma ? [gamma] : []), gradX], this.elements(n));
    if (gradGamma || gradBeta) this.free(this.bnSums(gradY, x, mean, invStd, gradGamma, gradBeta, g));
  }

  // ---------------------------------------------------------------- elementwise

  relu(x: GpuBuffer, y: GpuBuffer, n: number): void {
    this.need(x, n, 'relu x');
    this.need(y, n, 'relu y');
    this.run(ew.relu(), new Params().u(n), [x, y], this.elements(n));
  }

  reluBackward(gradY: GpuBuffer, x: GpuBuffer, gradX: GpuBuffer, n: number): void {
    this.need(gradY, n, 'reluBackward gradY');
    this.need(x, n, 'reluBackward x');
    this.need(gradX, n, 'reluBackward gradX');
    this.run(ew.reluBackward(), new Params().u(n), [gradY, x, gradX], this.elements(n));
  }

  add(a: GpuBuffer, b: GpuBuffer, out: GpuBuffer, n: number): void {
    this.need(a, n, 'add a');
    this.need(b, n, 'add b');
    this.need(out, n, 'add out');
    this.run(ew.add(), new Params().u(n), [a, b, out], this.elements(n));
  }

  private checkIndices(buffer: GpuBuffer, s: Scalars<GpuBuffer>, what: string): void {
    for (const i of (s as { indices: readonly number[] }).indices) {
      if (!Number.isInteger(i) || i < 0) throw new Error(`webgpu backend: ${what} index ${i} is not an element index`);
      this.need(buffer, i + 1, what);
    }
  }

  /** Parameters and extra binding of a host or device scalar. */
  private scalar(alpha: Scalar<GpuBuffer>, p: Params): GpuBuffer[] {
    if (typeof alpha === 'number') {
      p.f(alpha);
      return [];
    }
    this.need(alpha.buffer, alpha.index + 1, 'scalar');
    p.u(alpha.index);
    return [alpha.buffer];
  }

  axpy(alpha: Scalar<GpuBuffer>, x: GpuBuffer, y: GpuBuffer, n: number): void {
    this.need(x, n, 'axpy x');
    this.need(y, n, 'axpy y');
    const p = new Params().u(n);
    const extra = this.scalar(alpha, p);
    this.run(ew.axpy(extra.length > 0), p, [x, y, ...extra], this.elements(n));
  }

  scale(x: GpuBuffer, alpha: Scalar<GpuBuffer>, out: GpuBuffer, n: number): void {
    this.need(x, n, 'scale x');
    this.need(out, n, 'scale out');
    const p = new Params().u(n);
    const extra = this.scalar(alpha, p);
    const inPlace = x.buffer === out.buffer;
    this.run(ew.scale(extra.length > 0, inPlace), p, [...(inPlace ? [out] : [x, out]), ...extra], this.elements(n));
  }

  scaleMany(x: GpuBuffer, alphas: Scalars<GpuBuffer>, outs: readonly GpuBuffer[], n: number): void {
    const list = scalarList(alphas);
    const count = list.count;
    if (count !== outs.length) throw new Error(`webgpu backend: scaleMany with ${count} factors and ${outs.length} outputs`);
    this.need(x, n, 'scaleMany x');
    outs.forEach((o, k) => this.need(o, n, `scaleMany output ${k}`));
    if (list.buffer) this.checkIndices(list.buffer, alphas, 'scaleMany factors');
    const extra = list.buffer ? [list.buffer] : [];
    const cap = this.runtime.maxBuffers - 1 - extra.length;
    for (let start = 0; start < count; start += cap) {
      const end = Math.min(count, start + cap);
      const p = new Params().u(n);
      list.put(p, start, end);
      this.run(ew.scaleMany(end - start, extra.length > 0), p, [x, ...outs.slice(start, end), ...extra], this.elements(n));
    }
  }

  scaleSamples(x: GpuBuffer, factors: GpuBuffer, out: GpuBuffer, per: number, samples: number): void {
    this.need(factors, samples, 'scaleSamples factors');
    this.need(x, samples * per, 'scaleSamples x');
    this.need(out, samples * per, 'scaleSamples out');
    const n = samples * per;
    const inPlace = x.buffer === out.buffer;
    this.run(ew.scaleSamples(inPlace), new Params().u(n, Math.max(per, 1)), [factors, ...(inPlace ? [out] : [x, out])], this.elements(n));
  }

  dot(a: GpuBuffer, b: GpuBuffer, n: number, out: GpuBuffer, at = 0): void {
    this.dots(a, [b], n, out, [at], false);
  }

  dots(a: GpuBuffer, bs: readonly GpuBuffer[], n: number, out: GpuBuffer, at: readonly number[], accumulate = false): void {
    if (at.length !== bs.length) throw new Error(`webgpu backend: dots with ${bs.length} vectors and ${at.length} targets`);
    if (bs.length === 0) return;
    this.need(a, n, 'dot a');
    bs.forEach((b, i) => this.need(b, n, `dot b${i}`));
    at.forEach((i) => this.need(out, i + 1, 'dot target'));
    const chunks = Math.max(1, Math.ceil(n / rd.DOT_CHUNK));
    if (chunks > this.maxGroups) throw new Error(`webgpu backend: a dot product of ${n} elements needs more workgroups than a dispatch holds`);
    const partial = this.alloc(bs.length * chunks);
    const cap = this.runtime.maxBuffers - 2;
    for (let start = 0; start < bs.length; start += cap) {
      const end = Math.min(bs.length, start + cap);
      this.run(rd.dotPartials(end - start), new Params().u(n, chunks, start), [a, partial, ...bs.slice(start, end)],
        [chunks, 1, end - start]);
    }
    this.run(rd.dotFinish(), new Params().u(chunks, bs.length, accumulate ? 1 : 0, ...at), [partial, out], [1, 1, 1]);
    this.free(partial);
  }

  // ---------------------------------------------------------------- pooling

  private poolParams(g: PoolGeometry, n: number): Params {
    return new Params().u(g.batch, g.channels, g.inH, g.inW, g.kernelH, g.kernelW, g.strideH, g.strideW,
      g.padH, g.padW, g.outH, g.outW, n).f(-Infinity);
  }

  private poolCheck(g: PoolGeometry, what: string, input: [GpuBuffer, string][], output: [GpuBuffer, string][]): void {
    for (const [b, name] of input) this.need(b, g.batch * g.channels * g.inH * g.inW, `${what} ${name}`);
    for (const [b, name] of output) this.need(b, g.batch * g.channels * g.outH * g.outW, `${what} ${name}`);
  }

  maxPool2d(x: GpuBuffer, y: GpuBuffer, g: PoolGeometry): void {
    this.poolCheck(g, 'maxPool2d', [[x, 'x']], [[y, 'y']]);
    const n = g.batch * g.channels * g.outH * g.outW;
    this.run(win.maxPool(), this.poolParams(g, n), [x, y], this.elements(n));
  }

  maxPool2dBackward(x: GpuBuffer, gradY: GpuBuffer, gradX: GpuBuffer, g: PoolGeometry): void {
    this.poolCheck(g, 'maxPool2dBackward', [[x, 'x'], [gradX, 'gradX']], [[gradY, 'gradY']]);
    const n = g.batch * g.channels * g.inH * g.inW;
    this.run(win.maxPoolBackward(), this.poolParams(g, n), [x, gradY, gradX], this.elements(n));
  }

  avgPool2d(x: GpuBuffer, y: GpuBuffer, g: PoolGeometry): void {
    this.poolCheck(g, 'avgPool2d', [[x, 'x']], [[y, 'y']]);
    const n = g.batch * g.channels * g.outH * g.outW;
    this.run(win.avgPool(), this.poolParams(g, n), [x, y], this.elements(n));
  }

  avgPool2dBackward(gradY: GpuBuffer, gradX: GpuBuffer, g: PoolGeometry): void {
    this.poolCheck(g, 'avgPool2dBackward', [[gradX, 'gradX']], [[gradY, 'gradY']]);
    const n = g.batch * g.channels * g.inH * g.inW;
    this.run(win.avgPoolBackward(), this.poolParams(g, n), [gradY, gradX], this.elements(n));
  }

  // ---------------------------------------------------------------- dense

  private static dense(m: number, n: number, k: number) {
    return (kChunk: number, splits: number): Params => new Params().u(m, n, k, kChunk, 1, splits);
  }

  linear(x: GpuBuffer, weight: GpuBuffer, bias: GpuBuffer | null, y: GpuBuffer,
    rows: number, inFeatures: number, outFeatures: number): void {
    this.need(x, rows * inFeatures, 'linear x');
    this.need(weight, outFeatures * inFeatures, 'linear weight');
    this.need(y, rows * outFeatures, 'linear y');
    if (bias) this.need(bias, outFeatures, 'linear bias');
    this.product('linear', rows, outFeatures, inFeatures, 1, [x, weight, ...(bias ? [bias] : []), y],
      WebGpuBackend.dense(rows, outFeatures, inFeatures), bias !== null);
  }

  linearGradInput(gradY: GpuBuffer, weight: GpuBuffer, gradX: GpuBuffer,
    rows: number, inFeatures: number, outFeatures: number): void {
    this.need(gradY, rows * outFeatures, 'linearGradInput gradY');
    this.need(weight, outFeatures * inFeatures, 'linearGradInput weight');
    this.need(gradX, rows * inFeatures, 'linearGradInput gradX');
    this.product('linearGradInput', rows, inFeatures, outFeatures, 1, [gradY, weight, gradX],
      WebGpuBackend.dense(rows, inFeatures, outFeatures));
  }

  linearGradWeight(x: GpuBuffer, gradY: GpuBuffer, gradW: GpuBuffer, gradB: GpuBuffer | null,
    rows: number, inFeatures: number, outFeatures: number): void {
    this.need(x, rows * inFeatures, 'linearGradWeight x');
    this.need(gradY, rows * outFeatures, 'linearGradWeight gradY');
    this.need(gradW, outFeatures * inFeatures, 'linearGradWeight gradW');
    if (gradB) this.need(gradB, outFeatures, 'linearGradWeight gradB');
    this.product('linearGradWeight', outFeatures, inFeatures, rows, 1, [gradY, x, gradW],
      WebGpuBackend.dense(outFeatures, inFeatures, rows));
    if (gradB) this.run(rd.linearGradBias(), new Params().u(rows, outFeatures), [gradY, gradB], this.elements(outFeatures));
  }

  // ---------------------------------------------------------------- channel plumbing

  cropPlanes(src: GpuBuffer, dst: GpuBuffer, planes: number, h: number, w: number, offset: number, backward: boolean): void {
    if (!Number.isInteger(offset) || offset < 0 || offset >= Math.min(h, w)) {
      throw new Error(`webgpu backend: cropPlanes offset ${offset} outside a ${h}x${w} plane`);
    }
    const cropped = planes * (h - offset) * (w - offset);
    const full = planes * h * w;
    this.need(backward ? src : dst, cropped, 'cropPlanes cropped');
    this.need(backward ? dst : src, full, 'cropPlanes full');
    const n = backward ? full : cropped;
    this.run(ew.cropPlanes(backward), new Params().u(n, h, w, offset), [src, dst], this.elements(n));
  }

  gatherChannels(sources: readonly GpuBuffer[], sourceChannels: readonly number[], dst: GpuBuffer, dstChannels: number,
    map: Int32Array, batch: number, plane: number, accumulate = false): void {
    checkGatherMap(sources, sourceChannels, dstChannels, map, 'webgpu');
    sources.forEach((s, i) => this.need(s, batch * sourceChannels[i] * plane, `gatherChannels source ${i}`));
    this.need(dst, batch * dstChannels * plane, 'gatherChannels dst');
    const n = batch * dstChannels * plane;
    const cap = this.runtime.maxBuffers - 1;
    const mapWords = Array.from(map);
    for (let start = 0; start === 0 || start < sources.length; start += cap) {
      const end = Math.min(sources.length, start + cap);
      const p = new Params().u(n, plane, dstChannels, start, start === 0 ? 1 : 0, ...sourceChannels.slice(start, end)).i(...mapWords);
      this.run(ew.gather(end - start, accumulate), p, [dst, ...sources.slice(start, end)], this.elements(n));
    }
  }

  // ---------------------------------------------------------------- weighted sums

  weightedSum(xs: readonly GpuBuffer[], weights: Scalars<GpuBuffer>, out: GpuBuffer, n: number): void {
    const list = scalarList(weights);
    const count = list.count;
    if (xs.length === 0 || xs.length !== count) throw new Error(`webgpu backend: weightedSum of ${xs.length} inputs with ${count} weights`);
    xs.forEach((x, i) => this.need(x, n, `weightedSum input ${i}`));
    this.need(out, n, 'weightedSum out');
    if (list.buffer) this.checkIndices(list.buffer, weights, 'weightedSum weights');
    const extra = list.buffer ? [list.buffer] : [];
    const cap = this.runtime.maxBuffers - 1 - extra.length;
    for (let start = 0; start < count; start += cap) {
      const end = Math.min(count, start + cap);
      const p = new Params().u(n);
      list.put(p, start, end);
      this.run(ew.weightedSum(end - start, start === 0, extra.length > 0), p, [out, ...xs.slice(start, end), ...extra],
        this.elements(n));
    }
  }
}

export interface WebGpuBackendOptions extends WebGpuDeviceOptions, RuntimeOptions {}

/** A WebGPU backend on a new device (Dawn in Node, navigator.gpu in a browser). */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const { gpu, device, summary } = await requestWebGpuDevice(options);
  return new WebGpuBackend(gpu, device, summary, options);
}
