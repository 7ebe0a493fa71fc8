/**
 * The plain-TypeScript reference backend: the numeric oracle of the engine.
 *
 * Every kernel is written for clarity, with sums accumulated in float64 (JS numbers, or
 * `Float64Array` scratch buffers) and rounded to float32 only when stored. Semantics follow
 * PyTorch: NCHW layout, conv weight [outC, inC/groups, kH, kW], biased batch-norm variance,
 * max pool with -inf padding and first-maximum tie rule, avg pool with count_include_pad=False.
 * Single-threaded; results are deterministic.
 */
import type { BatchNormGeometry, ConvGeometry, KernelBackend, PoolGeometry } from '../backend.js';
import { registerBackend } from '../registry.js';

/** Chunk size of float64 partial sums in `dot` (fixed: depends only on n). */
const DOT_CHUNK = 4096;

function need(buffer: Float32Array, numel: number, what: string): void {
  if (buffer.length < numel) {
    throw new Error(`ref backend: ${what} has ${buffer.length} elements, needs ${numel}`);
  }
}

function checkConv(g: ConvGeometry): void {
  if (g.groups < 1 || g.inChannels % g.groups !== 0 || g.outChannels % g.groups !== 0) {
    throw new Error(`ref backend: conv2d channels ${g.inChannels}->${g.outChannels} not divisible by groups ${g.groups}`);
  }
}

export class ReferenceBackend implements KernelBackend {
  readonly name = 'ref';
  readonly threads = 1;

  /** Sizes (bytes) of the buffers handed out and not yet freed. */
  private live = new WeakMap<Float32Array, number>();
  private liveBytes = 0;
  private peakBytes = 0;

  // ---------------------------------------------------------------- memory

  alloc(numel: number): Float32Array {
    if (!Number.isInteger(numel) || numel < 0) throw new Error(`ref backend: bad alloc size ${numel}`);
    const buffer = new Float32Array(numel);
    this.live.set(buffer, buffer.byteLength);
    this.liveBytes += buffer.byteLength;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return buffer;
  }

  allocZeros(numel: number): Float32Array {
    return this.alloc(numel); // new Float32Array is zero-filled
  }

  free(buffer: Float32Array): void {
    const bytes = this.live.get(buffer);
    if (bytes === undefined) return; // not ours, or already freed
    this.live.delete(buffer);
    this.liveBytes -= bytes;
  }

  memoryStats(): { liveBytes: number; peakBytes: number; reservedBytes: number } {
    // Plain JS heap: nothing is reserved beyond what is live.
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes, reservedBytes: this.liveBytes };
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  // ---------------------------------------------------------------- convolution

  conv2d(x: Float32Array, weight: Float32Array, y: Float32Array, g: ConvGeometry): void {
    checkConv(g);
    const { batch, inChannels, inH, inW, outChannels, kernelH, kernelW, outH, outW } = g;
    const cinG = inChannels / g.groups;
    const coutG = outChannels / g.groups;
    need(x, batch * inChannels * inH * inW, 'conv2d x');
    need(weight, outChannels * cinG * kernelH * kernelW, 'conv2d weight');
    need(y, batch * outChannels * outH * outW, 'conv2d y');
    const acc = new Float64Array(outH * outW);
    for (let n = 0; n < batch; n++) {
      for (let co = 0; co < outChannels; co++) {
        const group = Math.floor(co / coutG);
        acc.fill(0);
        for (let cl = 0; cl < cinG; cl++) {
          const ci = group * cinG + cl;
          const xBase = (n * inChannels + ci) * inH * inW;
          for (let kh = 0; kh < kernelH; kh++) {
            for (let kw = 0; kw < kernelW; kw++) {
              const w = weight[((co * cinG + cl) * kernelH + kh) * kernelW + kw];
              for (let oh = 0; oh < outH; oh++) {
                const ih = oh * g.strideH - g.padH + kh * g.dilationH;
                if (ih < 0 || ih >= inH) continue;
                const xRow = xBase + ih * inW;
                const accRow = oh * outW;
                for (let ow = 0; ow < outW; ow++) {
                  const iw = ow * g.strideW - g.padW + kw * g.dilationW;
                  if (iw < 0 || iw >= inW) continue;
                  acc[accRow + ow] += w * x[xRow + iw];
                }
              }
            }
          }
        }
        y.set(acc, (n * outChannels + co) * outH * outW); // rounds to float32
      }
    }
  }

  conv2dGradInput(gradY: Float32Array, weight: Float32Array, gradX: Float32Array, g: ConvGeometry): void {
    checkConv(g);
    const { batch, inChannels, inH, inW, outChannels, kernelH, kernelW, outH, outW } = g;
    const cinG = inChannels / g.groups;
    const coutG = outChannels / g.groups;
    need(gradY, batch * outChannels * outH * outW, 'conv2dGradInput gradY');
    need(weight, outChannels * cinG * kernelH * kernelW, 'conv2dGradInput weight');
    need(gradX, batch * inChannels * inH * inW, 'conv2dGradInput gradX');
    const plane = inH * inW;
    const acc = new Float64Array(plane);
    for (let n = 0; n < batch; n++) {
      for (let ci = 0; ci < inChannels; ci++) {
        const group = Math.floor(ci / cinG);
        const cl = ci - group * cinG;
        acc.fill(0);
        for (let col = 0; col < coutG; col++) {
          const co = group * coutG + col;
          const gyBase = (n * outChannels + co) * outH * outW;
          for (let kh = 0; kh < kernelH; kh++) {
            for (let kw = 0; kw < kernelW; kw++) {
              const w = weight[((co * cinG + cl) * kernelH + kh) * kernelW + kw];
              for (let oh = 0; oh < outH; oh++) {
                const ih = oh * g.strideH - g.padH + kh * g.dilationH;
                if (ih < 0 || ih >= inH) continue;
                const gyRow = gyBase + oh * outW;
                const accRow = ih * inW;
                for (let ow = 0; ow < outW; ow++) {
                  const iw = ow * g.strideW - g.padW + kw * g.dilationW;
                  if (iw < 0 || iw >= inW) continue;
                  acc[accRow + iw] += w * gradY[gyRow + ow];
                }
              }
            }
          }
        }
        gradX.set(acc, (n * inChannels + ci) * plane);
      }
    }
  }

  conv2dGradWeight(x: Float32Array, gradY: Float32Array, gradW: Float32Array, g: ConvGeometry): void {
    checkConv(g);
    const { batch, inChannels, inH, inW, outChannels, kernelH, kernelW, outH, outW } = g;
    const cinG = inChannels / g.groups;
    const coutG = outChannels / g.groups;
    need(x, batch * inChannels * inH * inW, 'conv2dGradWeight x');
    need(gradY, batch * outChannels * outH * outW, 'conv2dGradWeight gradY');
    need(gradW, outChannels * cinG * kernelH * kernelW, 'conv2dGradWeight gradW');
    for (let co = 0; co < outChannels; co++) {
      const group = Math.floor(co / coutG);
      for (let cl = 0; cl < cinG; cl++) {
        const ci = group * cinG + cl;
        for (let kh = 0; kh < kernelH; kh++) {
          for (let kw = 0; kw < kernelW; kw++) {
            let sum = 0;
            for (let n = 0; n < batch; n++) {
              const xBase = (n * inChannels + ci) * inH * inW;
              const gyBase = (n * outChannels + co) * outH * outW;
              for (let oh = 0; oh < outH; oh++) {
                const ih = oh * g.strideH - g.padH + kh * g.dilationH;
                if (ih < 0 || ih >= inH) continue;
                const xRow = xBase + ih * inW;
                const gyRow = gyBase + oh * outW;
                for (let ow = 0; ow < outW; ow++) {
                  const iw = ow * g.strideW - g.padW + kw * g.dilationW;
                  if (iw < 0 || iw >= inW) continue;
                  sum += x[xRow + iw] * gradY[gyRow + ow];
                }
              }
            }
            gradW[((co * cinG + cl) * kernelH + kh) * kernelW + kw] = sum;
          }
        }
      }
    }
  }

  // ---------------------------------------------------------------- batch norm

  batchNormTrain(
    x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, eps: number,
    y: Float32Array, mean: Float32Array, invStd: Float32Array, g: BatchNormGeometry,
  ): void {
    const { batch, channels, spatial } = g;
    const numel = batch * channels * spatial;
    need(x, numel, 'batchNormTrain x');
    need(y, numel, 'batchNormTrain y');
    need(mean, channels, 'batchNormTrain mean');
    need(invStd, channels, 'batchNormTrain invStd');
    if (gamma) need(gamma, channels, 'batchNormTrain gamma');
    if (beta) need(beta, channels, 'batchNormTrain beta');
    const count = batch * spatial;
    for (let c = 0; c < channels; c++) {
      // Two-pass statistics in float64.
      let sum = 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) sum += x[base + i];
      }
      const mu = sum / count;
      let sq = 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) {
          const d = x[base + i] - mu;
          sq += d * d;
        }
      }
      const variance = sq / count; // biased
      const inv = 1 / Math.sqrt(variance + eps);
      mean[c] = mu;
      invStd[c] = inv;
      const scale = gamma ? inv * gamma[c] : inv;
      const shift = beta ? beta[c] : 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) y[base + i] = (x[base + i] - mu) * scale + shift;
      }
    }
  }

  batchNormApply(
    x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, beta: Float32Array | null, y: Float32Array, g: BatchNormGeometry,
  ): void {
    const { batch, channels, spatial } = g;
    const numel = batch * channels * spatial;
    need(x, numel, 'batchNormApply x');
    need(y, numel, 'batchNormApply y');
    need(mean, channels, 'batchNormApply mean');
    need(invStd, channels, 'batchNormApply invStd');
    if (gamma) need(gamma, channels, 'batchNormApply gamma');
    if (beta) need(beta, channels, 'batchNormApply beta');
    for (let c = 0; c < channels; c++) {
      const mu = mean[c];
      const scale = gamma ? invStd[c] * gamma[c] : invStd[c];
      const shift = beta ? beta[c] : 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) y[base + i] = (x[base + i] - mu) * scale + shift;
      }
    }
  }

  batchNormTrainBackward(
    gradY: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, gradX: Float32Array,
    gradGamma: Float32Array | null, gradBeta: Float32Array | null, g: BatchNormGeometry,
  ): void {
    const { batch, channels, spatial } = g;
    const numel = batch * channels * spatial;
    need(gradY, numel, 'batchNormTrainBackward gradY');
    need(x, numel, 'batchNormTrainBackward x');
    need(gradX, numel, 'batchNormTrainBackward gradX');
    need(mean, channels, 'batchNormTrainBackward mean');
    need(invStd, channels, 'batchNormTrainBackward invStd');
    if (gamma) need(gamma, channels, 'batchNormTrainBackward gamma');
    if (gradGamma) need(gradGamma, channels, 'batchNormTrainBackward gradGamma');
    if (gradBeta) need(gradBeta, channels, 'batchNormTrainBackward gradBeta');
    const count = batch * spatial;
    for (let c = 0; c < channels; c++) {
      const mu = mean[c];
      const inv = invStd[c];
      let sumGy = 0;
      let sumGyXhat = 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) {
          const gy = gradY[base + i];
          sumGy += gy;
          sumGyXhat += gy * (x[base + i] - mu) * inv;
        }
      }
      if (gradGamma) gradGamma[c] = sumGyXhat;
      if (gradBeta) gradBeta[c] = sumGy;
      const meanGy = sumGy / count;
      const meanGyXhat = sumGyXhat / count;
      const k = gamma ? gamma[c] * inv : inv;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) {
          const xhat = (x[base + i] - mu) * inv;
          gradX[base + i] = k * (gradY[base + i] - meanGy - xhat * meanGyXhat);
        }
      }
    }
  }

  batchNormApplyBackward(
    gradY: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, gradX: Float32Array,
    gradGamma: Float32Array | null, gradBeta: Float32Array | null, g: BatchNormGeometry,
  ): void {
    const { batch, channels, spatial } = g;
    const numel = batch * channels * spatial;
    need(gradY, numel, 'batchNormApplyBackward gradY');
    need(x, numel, 'batchNormApplyBackward x');
    need(gradX, numel, 'batchNormApplyBackward gradX');
    need(mean, channels, 'batchNormApplyBackward mean');
    need(invStd, channels, 'batchNormApplyBackward invStd');
    if (gamma) need(gamma, channels, 'batchNormApplyBackward gamma');
    if (gradGamma) need(gradGamma, channels, 'batchNormApplyBackward gradGamma');
    if (gradBeta) need(gradBeta, channels, 'batchNormApplyBackward gradBeta');
    for (let c = 0; c < channels; c++) {
      const mu = mean[c];
      const inv = invStd[c];
      const k = gamma ? gamma[c] * inv : inv;
      let sumGy = 0;
      let sumGyXhat = 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * spatial;
        for (let i = 0; i < spatial; i++) {
          const gy = gradY[base + i];
          sumGy += gy;
          sumGyXhat += gy * (x[base + i] - mu) * inv;
          gradX[base + i] = gy * k;
        }
      }
      if (gradGamma) gradGamma[c] = sumGyXhat;
      if (gradBeta) gradBeta[c] = sumGy;
    }
  }

  // ---------------------------------------------------------------- elementwise

  relu(x: Float32Array, y: Float32Array, n: number): void {
    need(x, n, 'relu x');
    need(y, n, 'relu y');
    for (let i = 0; i < n; i++) {
      const v = x[i];
      y[i] = v > 0 ? v : 0;
    }
  }

  reluBackward(gradY: Float32Array, x: Float32Array, gradX: Float32Array, n: number): void {
    need(gradY, n, 'reluBackward gradY');
    need(x, n, 'reluBackward x');
    need(gradX, n, 'reluBackward gradX');
    for (let i = 0; i < n; i++) gradX[i] = x[i] > 0 ? gradY[i] : 0;
  }

  add(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void {
    need(a, n, 'add a');
    need(b, n, 'add b');
    need(out, n, 'add out');
    for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  }

  axpy(alpha: number, x: Float32Array, y: Float32Array, n: number): void {
    need(x, n, 'axpy x');
    need(y, n, 'axpy y');
    for (let i = 0; i < n; i++) y[i] += alpha * x[i];
  }

  scale(x: Float32Array, alpha: number, out: Float32Array, n: number): void {
    need(x, n, 'scale x');
    need(out, n, 'scale out');
    for (let i = 0; i < n; i++) out[i] = alpha * x[i];
  }

  dot(a: Float32Array, b: Float32Array, n: number): number {
    need(a, n, 'dot a');
    need(b, n, 'dot b');
    let total = 0;
    for (let start = 0; start < n; start += DOT_CHUNK) {
      const end = Math.min(n, start + DOT_CHUNK);
      let partial = 0;
      for (let i = start; i < end; i++) partial += a[i] * b[i];
      total += partial;
    }
    return total;
  }

  // ---------------------------------------------------------------- pooling

  maxPool2d(x: Float32Array, y: Float32Array, g: PoolGeometry): void {
    const { batch, channels, inH, inW, outH, outW } = g;
    need(x, batch * channels * inH * inW, 'maxPool2d x');
    need(y, batch * channels * outH * outW, 'maxPool2d y');
    for (let p = 0; p < batch * channels; p++) {
      const xBase = p * inH * inW;
      const yBase = p * outH * outW;
      for (let oh = 0; oh < outH; oh++) {
        for (let ow = 0; ow < outW; ow++) {
          const at = windowArgmax(x, xBase, oh, ow, g);
          y[yBase + oh * outW + ow] = at < 0 ? -Infinity : x[at];
        }
      }
    }
  }

  maxPool2dBackward(x: Float32Array, gradY: Float32Array, gradX: Float32Array, g: PoolGeometry): void {
    const { batch, channels, inH, inW, outH, outW } = g;
    need(x, batch * channels * inH * inW, 'maxPool2dBackward x');
    need(gradY, batch * channels * outH * outW, 'maxPool2dBackward gradY');
    need(gradX, batch * channels * inH * inW, 'maxPool2dBackward gradX');
    const plane = inH * inW;
    const acc = new Float64Array(plane);
    for (let p = 0; p < batch * channels; p++) {
      const xBase = p * plane;
      const yBase = p * outH * outW;
      acc.fill(0);
      for (let oh = 0; oh < outH; oh++) {
        for (let ow = 0; ow < outW; ow++) {
          const at = windowArgmax(x, xBase, oh, ow, g);
          if (at >= 0) acc[at - xBase] += gradY[yBase + oh * outW + ow];
        }
      }
      gradX.set(acc, xBase);
    }
  }

  avgPool2d(x: Float32Array, y: Float32Array, g: PoolGeometry): void {
    const { batch, channels, inH, inW, outH, outW } = g;
    need(x, batch * channels * inH * inW, 'avgPool2d x');
    need(y, batch * channels * outH * outW, 'avgPool2d y');
    for (let p = 0; p < batch * channels; p++) {
      const xBase = p * inH * inW;
      const yBase = p * outH * outW;
      for (let oh = 0; oh < outH; oh++) {
        const [h0, h1] = windowRange(oh, g.strideH, g.padH, g.kernelH, inH);
        for (let ow = 0; ow < outW; ow++) {
          const [w0, w1] = windowRange(ow, g.strideW, g.padW, g.kernelW, inW);
          const count = (h1 - h0) * (w1 - w0);
          let sum = 0;
          for (let ih = h0; ih < h1; ih++) {
            for (let iw = w0; iw < w1; iw++) sum += x[xBase + ih * inW + iw];
          }
          y[yBase + oh * outW + ow] = count > 0 ? sum / count : 0;
        }
      }
    }
  }

  avgPool2dBackward(gradY: Float32Array, gradX: Float32Array, g: PoolGeometry): void {
    const { batch, channels, inH, inW, outH, outW } = g;
    need(gradY, batch * channels * outH * outW, 'avgPool2dBackward gradY');
    need(gradX, batch * channels * inH * inW, 'avgPool2dBackward gradX');
    const plane = inH * inW;
    const acc = new Float64Array(plane);
    for (let p = 0; p < batch * channels; p++) {
      const yBase = p * outH * outW;
      acc.fill(0);
      for (let oh = 0; oh < outH; oh++) {
        const [h0, h1] = windowRange(oh, g.strideH, g.padH, g.kernelH, inH);
        for (let ow = 0; ow < outW; ow++) {
          const [w0, w1] = windowRange(ow, g.strideW, g.padW, g.kernelW, inW);
          const count = (h1 - h0) * (w1 - w0);
          if (count === 0) continue;
          const share = gradY[yBase + oh * outW + ow] / count;
          for (let ih = h0; ih < h1; ih++) {
            for (let iw = w0; iw < w1; iw++) acc[ih * inW + iw] += share;
          }
        }
      }
      gradX.set(acc, p * plane);
    }
  }

  // ---------------------------------------------------------------- dense

  linear(x: Float32Array, weight: Float32Array, bias: Float32Array | null, y: Float32Array,
    rows: number, inFeatures: number, outFeatures: number): void {
    need(x, rows * inFeatures, 'linear x');
    need(weight, outFeatures * inFeatures, 'linear weight');
    need(y, rows * outFeatures, 'linear y');
    if (bias) need(bias, outFeatures, 'linear bias');
    for (let m = 0; m < rows; m++) {
      for (let o = 0; o < outFeatures; o++) {
        let sum = bias ? bias[o] : 0;
        for (let k = 0; k < inFeatures; k++) sum += x[m * inFeatures + k] * weight[o * inFeatures + k];
        y[m * outFeatures + o] = sum;
      }
    }
  }

  linearGradInput(gradY: Float32Array, weight: Float32Array, gradX: Float32Array,
    rows: number, inFeatures: number, outFeatures: number): void {
    need(gradY, rows * outFeatures, 'linearGradInput gradY');
    need(weight, outFeatures * inFeatures, 'linearGradInput weight');
    need(gradX, rows * inFeatures, 'linearGradInput gradX');
    for (let m = 0; m < rows; m++) {
      for (let k = 0; k < inFeatures; k++) {
        let sum = 0;
        for (let o = 0; o < outFeatures; o++) sum += gradY[m * outFeatures + o] * weight[o * inFeatures + k];
        gradX[m * inFeatures + k] = sum;
      }
    }
  }

  linearGradWeight(x: Float32Array, gradY: Float32Array, gradW: Float32Array, gradB: Float32Array | null,
    rows: number, inFeatures: number, outFeatures: number): void {
    need(x, rows * inFeatures, 'linearGradWeight x');
    need(gradY, rows * outFeatures, 'linearGradWeight gradY');
    need(gradW, outFeatures * inFeatures, 'linearGradWeight gradW');
    if (gradB) need(gradB, outFeatures, 'linearGradWeight gradB');
    for (let o = 0; o < outFeatures; o++) {
      for (let k = 0; k < inFeatures; k++) {
        let sum = 0;
        for (let m = 0; m < rows; m++) sum += gradY[m * outFeatures + o] * x[m * inFeatures + k];
        gradW[o * inFeatures + k] = sum;
      }
      if (gradB) {
        let sum = 0;
        for (let m = 0; m < rows; m++) sum += gradY[m * outFeatures + o];
        gradB[o] = sum;
      }
    }
  }

  // ---------------------------------------------------------------- channel plumbing

  cropPlanes(src: Float32Array, dst: Float32Array, planes: number, h: number, w: number, offset: number, backward: boolean): void {
    const oh = h - offset;
    const ow = w - offset;
    need(backward ? src : dst, planes * oh * ow, 'cropPlanes cropped');
    need(backward ? dst : src, planes * h * w, 'cropPlanes full');
    if (backward) dst.fill(0, 0, planes * h * w);
    for (let p = 0; p < planes; p++) {
      for (let r = 0; r < oh; r++) {
        const full = p * h * w + (r + offset) * w + offset;
        const cropped = p * oh * ow + r * ow;
        if (backward) dst.set(src.subarray(cropped, cropped + ow), full);
        else dst.set(src.subarray(full, full + ow), cropped);
      }
    }
  }

  scaleMany(x: Float32Array, alphas: readonly number[], outs: readonly Float32Array[], n: number): void {
    if (alphas.length !== outs.length) throw new Error(`ref backend: scaleMany with ${alphas.length} factors and ${outs.length} outputs`);
    outs.forEach((out, k) => this.scale(x, alphas[k], out, n));
  }

  scaleSamples(x: Float32Array, factors: Float32Array, out: Float32Array, per: number): void {
    need(x, factors.length * per, 'scaleSamples x');
    need(out, factors.length * per, 'scaleSamples out');
    for (let s = 0; s < factors.length; s++) {
      const f = Math.fround(factors[s]);
      for (let i = s * per; i < (s + 1) * per; i++) out[i] = f * x[i];
    }
  }

  gatherChannels(sources: readonly Float32Array[], sourceChannels: readonly number[],
    dst: Float32Array, dstChannels: number, map: Int32Array, batch: number, plane: number, accumulate = false): void {
    checkGatherMap(sources, sourceChannels, dstChannels, map, 'ref');
    sources.forEach((src, s) => need(src, batch * sourceChannels[s] * plane, `gatherChannels source ${s}`));
    need(dst, batch * dstChannels * plane, 'gatherChannels dst');
    for (let n = 0; n < batch; n++) {
      for (let d = 0; d < dstChannels; d++) {
        const s = map[2 * d];
        const at = (n * dstChannels + d) * plane;
        if (s < 0) {
          if (!accumulate) dst.fill(0, at, at + plane);
          continue;
        }
        const from = (n * sourceChannels[s] + map[2 * d + 1]) * plane;
        if (accumulate) {
          const src = sources[s];
          for (let i = 0; i < plane; i++) dst[at + i] += src[from + i];
        } else {
          dst.set(sources[s].subarray(from, from + plane), at);
        }
      }
    }
  }

  weightedSum(xs: readonly Float32Array[], weights: readonly number[], out: Float32Array, n: number): void {
    if (xs.length === 0 || xs.length !== weights.length) throw new Error(`ref backend: weightedSum of ${xs.length} inputs with ${weights.length} weights`);
    xs.forEach((x, i) => need(x, n, `weightedSum input ${i}`));
    need(out, n, 'weightedSum out');
    const w = Float32Array.from(weights);
    for (let j = 0; j < n; j++) {
      let acc = Math.fround(w[0] * xs[0][j]);
      for (let i = 1; i < xs.length; i++) acc = Math.fround(acc + Math.fround(w[i] * xs[i][j]));
      out[j] = acc;
    }
  }

  dots(a: Float32Array, bs: readonly Float32Array[], n: number): number[] {
    return bs.map((b) => this.dot(a, b, n));
  }
}

/** Validates a gatherChannels map (shared by the backends). */
export function checkGatherMap(sources: readonly unknown[], sourceChannels: readonly number[], dstChannels: number,
  map: Int32Array, backend: string): void {
  if (sources.length !== sourceChannels.length) throw new Error(`${backend} backend: gatherChannels has ${sources.length} sources and ${sourceChannels.length} channel counts`);
  if (map.length !== 2 * dstChannels) throw new Error(`${backend} backend: gatherChannels map has ${map.length} entries, expected ${2 * dstChannels}`);
  for (let d = 0; d < dstChannels; d++) {
    const s = map[2 * d];
    const c = map[2 * d + 1];
    if (s === -1) continue;
    if (s < 0 || s >= sources.length || c < 0 || c >= sourceChannels[s]) {
      throw new Error(`${backend} backend: gatherChannels channel ${d} reads source ${s} channel ${c}, outside the sources`);
    }
  }
}

/** [start, end) of the input cells covered by output position `o` along one axis (clipped to the input). */
function windowRange(o: number, stride: number, pad: number, kernel: number, size: number): [number, number] {
  const start = o * stride - pad;
  return [Math.max(start, 0), Math.min(start + kernel, size)];
}

/**
 * Absolute index of the first maximum of the window at (oh, ow) of the plane starting at
 * `base`, scanning in row-major window order; a later cell wins only if strictly greater.
 * Padding cells are -inf and never win; when every in-bounds cell is -inf the first
 * in-bounds cell is returned (as PyTorch does). -1 if the window holds no input cell.
 */
function windowArgmax(x: Float32Array, base: number, oh: number, ow: number, g: PoolGeometry): number {
  const [h0, h1] = windowRange(oh, g.strideH, g.padH, g.kernelH, g.inH);
  const [w0, w1] = windowRange(ow, g.strideW, g.padW, g.kernelW, g.inW);
  if (h0 >= h1 || w0 >= w1) return -1;
  let best = base + h0 * g.inW + w0;
  let bestValue = x[best];
  for (let ih = h0; ih < h1; ih++) {
    for (let iw = w0; iw < w1; iw++) {
      const at = base + ih * g.inW + iw;
      const v = x[at];
      if (v > bestValue) {
        bestValue = v;
        best = at;
      }
    }
  }
  return best;
}

export function createReferenceBackend(): KernelBackend {
  return new ReferenceBackend();
}

registerBackend('ref', () => new ReferenceBackend());
