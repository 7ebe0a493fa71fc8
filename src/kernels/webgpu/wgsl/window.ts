/**
 * WGSL of the windowed kernels without a GEMM: pooling (forward and backward) and depthwise
 * convolution (forward and both gradients).
 *
 * Backward passes gather instead of scatter: one invocation per input cell visits, in output
 * order, the windows that cover it, so every cell's sum has a fixed order and no two
 * invocations write the same element (no atomics).
 *
 * Pool P: batch, channels, inH, inW, kH, kW, sH, sW, pH, pW, outH, outW, n, -inf.
 * Depthwise conv P: batch, channels, inH, inW, kH, kW, sH, sW, pH, pW, dH, dW, outH, outW (then n).
 */
import { ELEMENT_MAIN, GROUP_MAIN, TREE_SUM, WG, module, read, write } from './common.js';
import type { Source } from './elementwise.js';

const POOL_GEOMETRY = `let inH = pi(2); let inW = pi(3); let kH = pi(4); let kW = pi(5);
  let sH = pi(6); let sW = pi(7); let pH = pi(8); let pW = pi(9); let outH = pi(10); let outW = pi(11);`;

/**
 * First maximum of window (oh, ow) of the plane at `base` in row-major window order (a later
 * cell wins only if strictly greater), -1 for a window with no input cell: the reference's
 * windowArgmax, so padding never wins and ties go to the first cell.
 */
const ARGMAX = `fn argmaxAt(base: i32, oh: i32, ow: i32, inH: i32, inW: i32, kH: i32, kW: i32, sH: i32, sW: i32, pH: i32, pW: i32) -> i32 {
  let h0 = max(oh * sH - pH, 0); let h1 = min(oh * sH - pH + kH, inH);
  let w0 = max(ow * sW - pW, 0); let w1 = min(ow * sW - pW + kW, inW);
  if (h0 >= h1 || w0 >= w1) { return -1; }
  var best = base + h0 * inW + w0;
  var bestValue = x[best];
  for (var ih = h0; ih < h1; ih = ih + 1) {
    for (var iw = w0; iw < w1; iw = iw + 1) {
      let at = base + ih * inW + iw;
      let v = x[at];
      if (v > bestValue) { bestValue = v; best = at; }
    }
  }
  return best;
}`;

export function maxPool(): Source {
  const buffers = [read('x'), write('y')];
  return {
    label: 'maxPool2d', buffers, code: module(buffers, `${ARGMAX}
${ELEMENT_MAIN}
  if (gid >= pu(12)) { return; }
  ${POOL_GEOMETRY}
  let i = i32(gid);
  let p = i / (outH * outW); let oh = (i / outW) % outH; let ow = i % outW;
  let at = argmaxAt(p * inH * inW, oh, ow, inH, inW, kH, kW, sH, sW, pH, pW);
  if (at < 0) { y[gid] = pf(13); } else { y[gid] = x[at]; } // -inf from the host: WGSL has no infinite constants
}`),
  };
}

/** Range of output positions along one axis whose window covers input position `i`. */
const COVERING = `fn firstCovering(i: i32, s: i32, p: i32, k: i32) -> i32 {
  let t = i + p - k + 1;
  if (t <= 0) { return 0; }
  return (t + s - 1) / s;
}`;

export function maxPoolBackward(): Source {
  const buffers = [read('x'), read('gy'), write('gx')];
  return {
    label: 'maxPool2dBackward', buffers, code: module(buffers, `${ARGMAX}
${COVERING}
${ELEMENT_MAIN}
  if (gid >= pu(12)) { return; }
  ${POOL_GEOMETRY}
  let i = i32(gid);
  let p = i / (inH * inW); let ih = (i / inW) % inH; let iw = i % inW;
  let base = p * inH * inW;
  let oh1 = min(outH - 1, (ih + pH) / sH); let ow1 = min(outW - 1, (iw + pW) / sW);
  var acc = 0.0;
  for (var oh = firstCovering(ih, sH, pH, kH); oh <= oh1; oh = oh + 1) {
    for (var ow = firstCovering(iw, sW, pW, kW); ow <= ow1; ow = ow + 1) {
      if (argmaxAt(base, oh, ow, inH, inW, kH, kW, sH, sW, pH, pW) == i) {
        acc = acc + gy[(p * outH + oh) * outW + ow];
      }
    }
  }
  gx[gid] = acc;
}`),
  };
}

const COUNT = `fn windowCount(oh: i32, ow: i32, inH: i32, inW: i32, kH: i32, kW: i32, sH: i32, sW: i32, pH: i32, pW: i32) -> i32 {
  let h0 = max(oh * sH - pH, 0); let h1 = min(oh * sH - pH + kH, inH);
  let w0 = max(ow * sW - pW, 0); let w1 = min(ow * sW - pW + kW, inW);
  return max(h1 - h0, 0) * max(w1 - w0, 0);
}`;

/** Average over the cells inside the input (count_include_pad=False), summed row-major. */
export function avgPool(): Source {
  const buffers = [read('x'), write('y')];
  return {
    label: 'avgPool2d', buffers, code: module(buffers, `${COUNT}
${ELEMENT_MAIN}
  if (gid >= pu(12)) { return; }
  ${POOL_GEOMETRY}
  let i = i32(gid);
  let p = i / (outH * outW); let oh = (i / outW) % outH; let ow = i % outW;
  let base = p * inH * inW;
  let h0 = max(oh * sH - pH, 0); let h1 = min(oh * sH - pH + kH, inH);
  let w0 = max(ow * sW - pW, 0); let w1 = min(ow * sW - pW + kW, inW);
  var acc = 0.0;
  for (var ih = h0; ih < h1; ih = ih + 1) {
    for (var iw = w0; iw < w1; iw = iw + 1) { acc = acc + x[base + ih * inW + iw]; }
  }
  let count = windowCount(oh, ow, inH, inW, kH, kW, sH, sW, pH, pW);
  if (count > 0) { y[gid] = acc / f32(count); } else { y[gid] = 0.0; }
}`),
  };
}

export function avgPoolBackward(): Source {
  const buffers = [read('gy'), write('gx')];
  return {
    label: 'avgPool2dBackward', buffers, code: module(buffers, `${COUNT}
${COVERING}
${ELEMENT_MAIN}
  if (gid >= pu(12)) { return; }
  ${POOL_GEOMETRY}
  let i = i32(gid);
  let p = i / (inH * inW); let ih = (i / inW) % inH; let iw = i % inW;
  let oh1 = min(outH - 1, (ih + pH) / sH); let ow1 = min(outW - 1, (iw + pW) / sW);
  var acc = 0.0;
  for (var oh = firstCovering(ih, sH, pH, kH); oh <= oh1; oh = oh + 1) {
    for (var ow = firstCovering(iw, sW, pW, kW); ow <= ow1; ow = ow + 1) {
      let count = windowCount(oh, ow, inH, inW, kH, kW, sH, sW, pH, pW);
      acc = acc + gy[(p * outH + oh) * outW + ow] / f32(count);
    }
  }
  gx[gid] = acc;
}`),
  };
}

const DW_GEOMETRY = `let channels = pi(1); let inH = pi(2); let inW = pi(3); let kH = pi(4); let kW = pi(5);
  let sH = pi(6); let sW = pi(7); let pH = pi(8); let pW = pi(9); let dH = pi(10); let dW = pi(11);
  let outH = pi(12); let outW = pi(13);`;

/** Depthwise convolution (one input and one output channel per group), one invocation per output, sum in (kh, kw) order. */
export function depthwiseConv(): Source {
  const buffers = [read('x'), read('w'), write('y')];
  return {
    label: 'depthwiseConv', buffers, code: module(buffers, `${ELEMENT_MAIN}
  if (gid >= pu(14)) { return; }
  ${DW_GEOMETRY}
  let i = i32(gid);
  let plane = i / (outH * outW); let c = plane % channels; let oh = (i / outW) % outH; let ow = i % outW;
  let base = plane * inH * inW;
  var acc = 0.0;
  for (var kh = 0; kh < kH; kh = kh + 1) {
    let ih = oh * sH - pH + kh * dH;
    if (ih < 0 || ih >= inH) { continue; }
    for (var kw = 0; kw < kW; kw = kw + 1) {
      let iw = ow * sW - pW + kw * dW;
      if (iw < 0 || iw >= inW) { continue; }
      acc = acc + w[(c * kH + kh) * kW + kw] * x[base + ih * inW + iw];
    }
  }
  y[gid] = acc;
}`),
  };
}

/** Depthwise gradient of the input: one invocation per input cell gathers over (kh, kw). */
export function depthwiseConvGradInput(): Source {
  const buffers = [read('gy'), read('w'), write('gx')];
  return {
    label: 'depthwiseConvGradInput', buffers, code: module(buffers, `${ELEMENT_MAIN}
  if (gid >= pu(14)) { return; }
  ${DW_GEOMETRY}
  let i = i32(gid);
  let plane = i / (inH * inW); let c = plane % channels; let ih = (i / inW) % inH; let iw = i % inW;
  let base = plane * outH * outW;
  var acc = 0.0;
  for (var kh = 0; kh < kH; kh = kh + 1) {
    let th = ih + pH - kh * dH;
    if (th < 0 || th % sH != 0 || th / sH >= outH) { continue; }
    for (var kw = 0; kw < kW; kw = kw + 1) {
      let tw = iw + pW - kw * dW;
      if (tw < 0 || tw % sW != 0 || tw / sW >= outW) { continue; }
      acc = acc + w[(c * kH + kh) * kW + kw] * gy[base + (th / sH) * outW + tw / sW];
    }
  }
  gx[gid] = acc;
}`),
  };
}

/**
 * Depthwise gradient of the weight: one workgroup per weight (c, kh, kw); invocation li sums
 * the output positions li, li + WG, ... of every sample in turn, then a tree sum.
 */
export function depthwiseConvGradWeight(): Source {
  const buffers = [read('x'), read('gy'), write('gw')];
  return {
    label: 'depthwiseConvGradWeight', buffers, code: module(buffers, `var<workgroup> red: array<f32, ${WG}>;
${GROUP_MAIN}
  ${DW_GEOMETRY}
  let batch = pi(0);
  let wi = i32(item);
  let c = min(wi / (kH * kW), channels - 1); let kh = (wi / kW) % kH; let kw = wi % kW;
  let positions = outH * outW;
  var acc = 0.0;
  for (var n = 0; n < batch; n = n + 1) {
    let xBase = (n * channels + c) * inH * inW;
    let gBase = (n * channels + c) * positions;
    for (var q = i32(li); q < positions; q = q + ${WG}) {
      let oh = q / outW; let ow = q % outW;
      let ih = oh * sH - pH + kh * dH; let iw = ow * sW - pW + kw * dW;
      if (ih >= 0 && ih < inH && iw >= 0 && iw < inW) { acc = acc + x[xBase + ih * inW + iw] * gy[gBase + q]; }
    }
  }
  red[li] = acc;
  ${TREE_SUM}
  if (li == 0u && wi < channels * kH * kW) { gw[wi] = red[0]; }
}`),
  };
}
