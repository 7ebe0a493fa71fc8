// Convolution kernels. Each exported function computes ONE part of a job (`part`), with
// `tid` selecting the calling thread's scratch slice; the JS side decides how parts are
// spread over threads. Every part writes outputs that no other part writes, and reductions
// over the batch go through per-chunk float64 partials summed in chunk order afterwards,
// so the result does not depend on which thread ran which part.
//
// Dense/grouped convolution: per (sample, group), implicit GEMM over padded Q planes (no
// im2col matrix): forward, input gradient (stride 1: the same with the flipped, transposed
// kernel; other strides: W^T * gy then col2im) and weight gradient into float64 partials.
// A 1x1/stride-1/no-padding convolution is a plain GEMM on the input planes.
// Depthwise convolution (one input and one output channel per group): per plane, a Q plane
// (see window.ts) and a direct SIMD window pass; 3x3/stride 1/pad 1/dilation 1 (forward and
// input gradient) skips the Q copy and reads the planes directly (window3x3s1), with the
// same summation order, hence the same bits.

import { addF32, align64, at, at64, copyF32, fillF32, hsum64, imax, imin, roundUp4, fmadd } from './common';
import { gemmNTSamples, gemmPacked, gemmRows, gemmRowsNT, packA, packBytes, panelBytes } from './gemm';
import { buildTaps, copyIntoQ, fillQ, qFloats, qRows, qStride, copyFromQ, window3x3s1, windowFma } from './window';

/** Mirrors ConvGeometry; the JS side writes the fields in this order as int32. */
@unmanaged export class ConvDesc {
  batch: i32;
  inC: i32;
  inH: i32;
  inW: i32;
  outC: i32;
  kH: i32;
  kW: i32;
  sH: i32;
  sW: i32;
  pH: i32;
  pW: i32;
  dH: i32;
  dW: i32;
  groups: i32;
  outH: i32;
  outW: i32;
}

// @ts-ignore: decorator
@inline function is1x1(g: ConvDesc): bool {
  return g.kH == 1 && g.kW == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0;
}

// ---------------------------------------------------------------- dense / grouped

// Per-thread scratch: [Q planes][tap table][B row table][A packing][B panel (plain GEMMs)]
// [col (strided input gradient only)], each 64-byte aligned.
//   Forward and weight gradient read the cinG input planes of one (sample, group) as Q
//   planes (forward geometry); the input gradient at stride 1 reads the coutG gy planes as Q
//   planes of the transposed geometry (a forward pass of gy with the flipped, transposed
//   kernel); at other strides it falls back to W^T * gy into `col` and col2im.

// @ts-ignore: decorator
@inline function fwdRows(g: ConvDesc): i32 {
  return qRows(g.outH, g.kH, g.sH, g.dH);
}

// @ts-ignore: decorator
@inline function fwdStride(g: ConvDesc): i32 {
  return qStride(g.outW, g.kW, g.sW, g.dW);
}

// @ts-ignore: decorator
@inline function fwdPlane(g: ConvDesc): i32 {
  return qFloats(fwdRows(g), g.sW, fwdStride(g));
}

// @ts-ignore: decorator
@inline function transposedStride1(g: ConvDesc): bool {
  return g.sH == 1 && g.sW == 1;
}

// @ts-ignore: decorator
@inline function bwdRows(g: ConvDesc): i32 {
  return qRows(g.inH, g.kH, 1, g.dH);
}

// @ts-ignore: decorator
@inline function bwdStride(g: ConvDesc): i32 {
  return qStride(g.inW, g.kW, 1, g.dW);
}

// @ts-ignore: decorator
@inline function bwdPlane(g: ConvDesc): i32 {
  return transposedStride1(g) ? qFloats(bwdRows(g), 1, bwdStride(g)) : 0;
}

// @ts-ignore: decorator
@inline function denseQBytes(g: ConvDesc): i32 {
  if (is1x1(g)) return 0;
  return align64(imax((g.inC / g.groups) * fwdPlane(g), (g.outC / g.groups) * bwdPlane(g)) * 4);
}

// @ts-ignore: decorator
@inline function tapBytes(g: ConvDesc): i32 {
  return align64(g.kH * g.kW * 4);
}

// @ts-ignore: decorator
@inline function tableBytes(g: ConvDesc): i32 {
  return align64(imax(g.inC, g.outC) / g.groups * g.kH * g.kW * 4);
}

// @ts-ignore: decorator
@inline function denseKc(g: ConvDesc): i32 {
  return (g.inC / g.groups) * g.kH * g.kW;
}

// @ts-ignore: decorator
@inline function densePackBytes(g: ConvDesc): i32 {
  const cinG = g.inC / g.groups;
  const coutG = g.outC / g.groups;
  const T = g.kH * g.kW;
  return align64(imax(packBytes(coutG, cinG * T), imax(packBytes(cinG, coutG * T), packBytes(cinG * T, coutG))));
}

// @ts-ignore: decorator
@inline function colBytes(g: ConvDesc): i32 {
  if (is1x1(g) || transposedStride1(g)) return 0;
  return align64(denseKc(g) * g.outH * g.outW * 4 + 64);
}

// @ts-ignore: decorator
@inline function densePanelBytes(g: ConvDesc): i32 {
  if (!is1x1(g) && transposedStride1(g)) return 0; // only plain GEMMs use B panels
  return align64(imax(panelBytes((g.inC / g.groups) * g.kH * g.kW), panelBytes(g.outC / g.groups)));
}

/** Per-thread scratch bytes of convForward / convGradInput / convGradWeight. */
export function convScratchBytes(desc: usize): i32 {
  const g = changetype<ConvDesc>(desc);
  return denseQBytes(g) + tapBytes(g) + tableBytes(g) + densePackBytes(g) + densePanelBytes(g) + colBytes(g);
}

/** table[c*T + t] = c * planeBytes + taps[t]: B row (channel c, tap t) of the implicit GEMM. */
function buildTable(table: usize, taps: usize, T: i32, planes: i32, planeFloats: i32): void {
  for (let c = 0; c < planes; c++) {
    const base = c * planeFloats * 4;
    for (let t = 0; t < T; t++) {
      store<i32>(table + (<usize>(c * T + t) << 2), base + load<i32>(taps + (<usize>t << 2)));
    }
  }
}

/**
 * Packs A'(ci, co*T + t) = W[co][ci][T - 1 - t] (transposed, spatially flipped kernel of one
 * group) in gemm's panel layout.
 */
function packTransposedFlipped(wg: usize, cinG: i32, coutG: i32, T: i32, pack: usize): void {
  const K = coutG * T;
  const panels = (cinG + 3) >> 2;
  for (let ib = 0; ib < panels; ib++) {
    for (let r = 0; r < 4; r++) {
      const ci = ib * 4 + r;
      const d = pack + <usize>(ib * K) * 16 + (<usize>r << 2);
      for (let co = 0; co < coutG; co++) {
        const src = at(wg, (co * cinG + ci) * T + T - 1);
        for (let t = 0; t < T; t++) {
          const v: f32 = ci < cinG ? load<f32>(src - (<usize>t << 2)) : 0;
          store<f32>(d + (<usize>(co * T + t) << 4), v);
        }
      }
    }
  }
}

/** Adjoint of the forward gather: gx[ci] = sum over taps of the col rows placed back (overwrites gx). */
function col2im(g: ConvDesc, col: usize, cinG: i32, gxg: usize, q: usize, taps: usize): void {
  const rows = fwdRows(g);
  const st = fwdStride(g);
  const T = buildTaps(taps, g.kH, g.kW, g.dH, g.dW, g.sW, rows, st);
  const rowStep = <usize>(g.sH * st) << 2;
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const oW = g.outW;
  for (let ci = 0; ci < cinG; ci++) {
    fillQ(q, rows, g.sW, st, 0);
    for (let t = 0; t < T; t++) {
      const dst = q + <usize>load<i32>(taps + (<usize>t << 2));
      const src = at(col, (ci * T + t) * HWo);
      for (let oh = 0; oh < g.outH; oh++) addF32(dst + <usize>oh * rowStep, at(src, oh * oW), oW);
    }
    copyFromQ(q, rows, g.sW, st, g.pH, g.pW, at(gxg, ci * HWi), g.inH, g.inW);
  }
}

/**
 * Part = items [part*itemsPerPart, ...) of (sample, group):
 * y[n, group] = W[group] * (x[n, group] gathered through the taps).
 */
export function convForward(
  desc: usize, x: usize, w: usize, y: usize, itemsPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<ConvDesc>(desc);
  const cinG = g.inC / g.groups;
  const coutG = g.outC / g.groups;
  const Kc = denseKc(g);
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>denseQBytes(g);
  const table = taps + <usize>tapBytes(g);
  const pack = table + <usize>tableBytes(g);
  const panel = pack + <usize>densePackBytes(g);
  const i1 = imin(g.batch * g.groups, (part + 1) * itemsPerPart);
  const rows = fwdRows(g);
  const st = fwdStride(g);
  const plane = fwdPlane(g);
  if (!is1x1(g)) {
    fillF32(q, cinG * plane, 0);
    const T = buildTaps(taps, g.kH, g.kW, g.dH, g.dW, g.sW, rows, st);
    buildTable(table, taps, T, cinG, plane);
  }
  let packedGroup = -1;
  for (let item = part * itemsPerPart; item < i1; item++) {
    const n = item / g.groups;
    const gi = item - n * g.groups;
    const xg = at(x, (n * g.inC + gi * cinG) * HWi);
    const yg = at(y, (n * g.outC + gi * coutG) * HWo);
    // The same weights for every sample: pack them once per group (a 144 x 144 pack costs a
    // third of the product on an 8 x 8 plane).
    if (gi != packedGroup) packA(at(w, gi * coutG * Kc), Kc, 1, coutG, Kc, pack);
    packedGroup = gi;
    if (is1x1(g)) {
      gemmPacked(coutG, HWo, Kc, pack, xg, HWo, yg, HWo, panel);
    } else {
      for (let ci = 0; ci < cinG; ci++) {
        copyIntoQ(at(xg, ci * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, at(q, ci * plane), rows, g.sW, st);
      }
      gemmRows(coutG, Kc, pack, table, q, g.sH * st * 4, g.outH, g.outW, yg, HWo);
    }
  }
}

/** Part = items of (sample, group): gx[n, group] = transposed convolution of gy[n, group]. */
export function convGradInput(
  desc: usize, gy: usize, w: usize, gx: usize, itemsPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<ConvDesc>(desc);
  const cinG = g.inC / g.groups;
  const coutG = g.outC / g.groups;
  const T = g.kH * g.kW;
  const Kc = cinG * T;
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>denseQBytes(g);
  const table = taps + <usize>tapBytes(g);
  const pack = table + <usize>tableBytes(g);
  const panel = pack + <usize>densePackBytes(g);
  const col = panel + <usize>densePanelBytes(g);
  const i1 = imin(g.batch * g.groups, (part + 1) * itemsPerPart);
  const oneByOne = is1x1(g);
  const stride1 = transposedStride1(g);
  const rows = bwdRows(g);
  const st = bwdStride(g);
  const plane = bwdPlane(g);
  const padT = g.dH * (g.kH - 1) - g.pH;
  const padL = g.dW * (g.kW - 1) - g.pW;
  if (!oneByOne && stride1) {
    fillF32(q, coutG * plane, 0);
    buildTaps(taps, g.kH, g.kW, g.dH, g.dW, 1, rows, st);
    buildTable(table, taps, T, coutG, plane);
  }
  let packedGroup = -1;
  for (let item = part * itemsPerPart; item < i1; item++) {
    const n = item / g.groups;
    const gi = item - n * g.groups;
    const wg = at(w, gi * coutG * Kc);
    const gyg = at(gy, (n * g.outC + gi * coutG) * HWo);
    const gxg = at(gx, (n * g.inC + gi * cinG) * HWi);
    if (oneByOne) {
      // A(i, k) = W[k][i]: W^T through strides (aRow = 1, aCol = Kc).
      if (gi != packedGroup) packA(wg, 1, Kc, cinG, coutG, pack);
      gemmPacked(cinG, HWo, coutG, pack, gyg, HWo, gxg, HWo, panel);
    } else if (stride1) {
      if (gi != packedGroup) packTransposedFlipped(wg, cinG, coutG, T, pack);
      for (let co = 0; co < coutG; co++) {
        copyIntoQ(at(gyg, co * HWo), g.outH, g.outW, 1, 1, padT, padL, at(q, co * plane), rows, 1, st);
      }
      gemmRows(cinG, coutG * T, pack, table, q, st * 4, g.inH, g.inW, gxg, HWi);
    } else {
      if (gi != packedGroup) packA(wg, 1, Kc, Kc, coutG, pack);
      gemmPacked(Kc, HWo, coutG, pack, gyg, HWo, col, HWo, panel);
      col2im(g, col, cinG, gxg, q, taps);
    }
    packedGroup = gi;
  }
}

/**
 * Part = chunk of `chunk` consecutive samples: partials[part] (float64 [outC x Kc]) =
 * sum over the chunk's samples, in order, of gy[n] * (x[n] gathered through the taps)^T.
 * The chunk size depends only on the shapes; reduceChunks then adds the chunks in order.
 */
export function convGradWeight(
  desc: usize, x: usize, gy: usize, partials: usize, chunk: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<ConvDesc>(desc);
  const cinG = g.inC / g.groups;
  const coutG = g.outC / g.groups;
  const Kc = denseKc(g);
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>denseQBytes(g);
  const table = taps + <usize>tapBytes(g);
  const rows = fwdRows(g);
  const st = fwdStride(g);
  const plane = fwdPlane(g);
  if (!is1x1(g)) {
    fillF32(q, cinG * plane, 0);
    const T = buildTaps(taps, g.kH, g.kW, g.dH, g.dW, g.sW, rows, st);
    buildTable(table, taps, T, cinG, plane);
  }
  const acc = at64(partials, part * g.outC * Kc);
  memory.fill(acc, 0, <usize>(g.outC * Kc) << 3);
  const n1 = imin(g.batch, (part + 1) * chunk);
  if (is1x1(g)) {
    // The chunk's samples in one pass per tile (vector sums across them, one reduction).
    const n0 = part * chunk;
    for (let gi = 0; gi < g.groups; gi++) {
      gemmNTSamples(coutG, Kc, HWo, at(gy, (n0 * g.outC + gi * coutG) * HWo), HWo, g.outC * HWo,
        at(x, (n0 * g.inC + gi * cinG) * HWi), HWo, g.inC * HWi, n1 - n0, at64(acc, gi * coutG * Kc), Kc);
    }
    return;
  }
  for (let n = part * chunk; n < n1; n++) {
    for (let gi = 0; gi < g.groups; gi++) {
      const xg = at(x, (n * g.inC + gi * cinG) * HWi);
      const gyg = at(gy, (n * g.outC + gi * coutG) * HWo);
      const accg = at64(acc, gi * coutG * Kc);
      for (let ci = 0; ci < cinG; ci++) {
        copyIntoQ(at(xg, ci * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, at(q, ci * plane), rows, g.sW, st);
      }
      gemmRowsNT(coutG, Kc, gyg, HWo, table, q, g.sH * st * 4, g.outH, g.outW, accg, Kc);
    }
  }
}

/**
 * out[i] = float32(sum over c < chunks, in order, of partials[c * count + i]) for i in this
 * part's span [part * span, (part + 1) * span).
 */
export function reduceChunks(
  partials: usize, chunks: i32, count: i32, out: usize, span: i32, part: i32, tid: i32,
): void {
  const i1 = imin(count, (part + 1) * span);
  for (let i = part * span; i < i1; i++) {
    let s: f64 = 0;
    for (let c = 0; c < chunks; c++) s += load<f64>(at64(partials, c * count + i));
    store<f32>(at(out, i), <f32>s);
  }
}

// ---------------------------------------------------------------- depthwise

// Per-thread scratch: [Q plane (forward or transposed geometry)][tap table][flipped weights]
// [gy plane padded to whole vectors].

// @ts-ignore: decorator
@inline function dwQBytes(g: ConvDesc): i32 {
  const fwd = qFloats(qRows(g.outH, g.kH, g.sH, g.dH), g.sW, qStride(g.outW, g.kW, g.sW, g.dW));
  const bwd = qFloats(qRows(g.inH, g.kH, 1, g.dH), 1, qStride(g.inW, g.kW, 1, g.dW));
  return align64(imax(fwd, bwd) * 4);
}

// @ts-ignore: decorator
@inline function dwGyBytes(g: ConvDesc): i32 {
  return align64(g.outH * roundUp4(g.outW) * 4 + 64);
}

export function dwScratchBytes(desc: usize): i32 {
  const g = changetype<ConvDesc>(desc);
  return dwQBytes(g) + 2 * tapBytes(g) + dwGyBytes(g);
}

// @ts-ignore: decorator
@inline function is3x3s1p1(g: ConvDesc): bool {
  return g.kH == 3 && g.kW == 3 && g.sH == 1 && g.sW == 1 && g.pH == 1 && g.pW == 1 &&
    g.dH == 1 && g.dW == 1 && g.outH == g.inH && g.outW == g.inW;
}

/** Part = planes [part*planesPerPart, ...): y[n][c] = window sum of x[n][c] with w[c]. */
export function dwForward(
  desc: usize, x: usize, w: usize, y: usize, planesPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<ConvDesc>(desc);
  const C = g.outC;
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>dwQBytes(g);
  const rows = qRows(g.outH, g.kH, g.sH, g.dH);
  const st = qStride(g.outW, g.kW, g.sW, g.dW);
  const T = buildTaps(taps, g.kH, g.kW, g.dH, g.dW, g.sW, rows, st);
  const rowStep = g.sH * st * 4;
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const p1 = imin(g.batch * C, (part + 1) * planesPerPart);
  if (is3x3s1p1(g)) {
    // Straight from the planes; the Q area serves as the zero row above/below a plane.
    fillF32(q, roundUp4(g.inW) + 4, 0);
    for (let p = part * planesPerPart; p < p1; p++) {
      window3x3s1(at(x, p * HWi), g.inH, g.inW, at(w, (p % C) * 9), at(y, p * HWo), q);
    }
    return;
  }
  fillQ(q, rows, g.sW, st, 0);
  for (let p = part * planesPerPart; p < p1; p++) {
    const c = p % C;
    copyIntoQ(at(x, p * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, q, rows, g.sW, st);
    windowFma(q, rowStep, taps, T, at(w, c * T), at(y, p * HWo), g.outH, g.outW);
  }
}

/**
 * Part = planes: gx[n][c] = transposed window pass of gy[n][c]. gy is upsampled by the
 * stride and padded by dilation*(k-1) - pad, then correlated with the flipped kernel
 * (stride 1), which equals scattering every gy cell through the kernel.
 */
export function dwGradInput(
  desc: usize, gy: usize, w: usize, gx: usize, planesPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<ConvDesc>(desc);
  const C = g.outC;
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>dwQBytes(g);
  const wf = taps + <usize>tapBytes(g);
  const rows = qRows(g.inH, g.kH, 1, g.dH);
  const st = qStride(g.inW, g.kW, 1, g.dW);
  const T = buildTaps(taps, g.kH, g.kW, g.dH, g.dW, 1, rows, st);
  const padT = g.dH * (g.kH - 1) - g.pH;
  const padL = g.dW * (g.kW - 1) - g.pW;
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const p1 = imin(g.batch * C, (part + 1) * planesPerPart);
  let lastC = -1;
  // 3x3/stride 1/pad 1: the flipped kernel runs the same window straight from gy.
  const fast = is3x3s1p1(g);
  if (fast) fillF32(q, roundUp4(g.inW) + 4, 0);
  else fillQ(q, rows, 1, st, 0);
  for (let p = part * planesPerPart; p < p1; p++) {
    const c = p % C;
    if (c != lastC) {
      const wc = at(w, c * T);
      for (let t = 0; t < T; t++) store<f32>(at(wf, t), load<f32>(at(wc, T - 1 - t)));
      lastC = c;
    }
    if (fast) {
      window3x3s1(at(gy, p * HWo), g.inH, g.inW, wf, at(gx, p * HWi), q);
      continue;
    }
    copyIntoQ(at(gy, p * HWo), g.outH, g.outW, g.sH, g.sW, padT, padL, q, rows, 1, st);
    windowFma(q, st * 4, taps, T, wf, at(gx, p * HWi), g.inH, g.inW);
  }
}

/**
 * Part = planes: partials[p][t] (float64) = sum over the plane of gy * (x shifted by tap t).
 * reduceChunks then sums the planes of each channel over the batch, in sample order.
 */
export function dwGradWeight(
  desc: usize, x: usize, gy: usize, partials: usize, planesPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<ConvDesc>(desc);
  const C = g.outC;
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>dwQBytes(g);
  const gpad = taps + <usize>(2 * tapBytes(g));
  const rows = qRows(g.outH, g.kH, g.sH, g.dH);
  const st = qStride(g.outW, g.kW, g.sW, g.dW);
  const T = buildTaps(taps, g.kH, g.kW, g.dH, g.dW, g.sW, rows, st);
  const rowStep = <usize>(g.sH * st) << 2;
  const oH = g.outH;
  const oW = g.outW;
  const nv = (oW + 3) >> 2;
  const HWi = g.inH * g.inW;
  const HWo = oH * oW;
  const p1 = imin(g.batch * C, (part + 1) * planesPerPart);
  fillQ(q, rows, g.sW, st, 0);
  for (let p = part * planesPerPart; p < p1; p++) {
    copyIntoQ(at(x, p * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, q, rows, g.sW, st);
    // The lanes past outW must multiply zeros: copy gy rows to whole vectors when needed.
    let gp = at(gy, p * HWo);
    let gStride = oW;
    if (oW & 3) {
      gStride = nv << 2;
      for (let oh = 0; oh < oH; oh++) {
        const d = at(gpad, oh * gStride);
        copyF32(d, at(gp, oh * oW), oW);
        fillF32(at(d, oW), gStride - oW, 0);
      }
      gp = gpad;
    }
    const gRowStep = <usize>gStride << 2;
    const out = at64(partials, p * T);
    // Three taps per pass share each gy load; two vectors per step give six independent
    // accumulators (enough to hide the addition latency, few enough for 16 registers).
    let t = 0;
    for (; t + 3 <= T; t += 3) {
      const q0 = q + <usize>load<i32>(taps + (<usize>t << 2));
      const q1 = q + <usize>load<i32>(taps + (<usize>t << 2), 4);
      const q2 = q + <usize>load<i32>(taps + (<usize>t << 2), 8);
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let a2 = a0;
      let b0 = a0;
      let b1 = a0;
      let b2 = a0;
      for (let oh = 0; oh < oH; oh++) {
        const qo = <usize>oh * rowStep;
        const gr = gp + <usize>oh * gRowStep;
        const r0 = q0 + qo;
        const r1 = q1 + qo;
        const r2 = q2 + qo;
        let v = 0;
        for (; v + 2 <= nv; v += 2) {
          const o = <usize>v << 4;
          const g0 = v128.load(gr + o);
          const g1 = v128.load(gr + o, 16);
          a0 = fmadd(g0, v128.load(r0 + o), a0);
          a1 = fmadd(g0, v128.load(r1 + o), a1);
          a2 = fmadd(g0, v128.load(r2 + o), a2);
          b0 = fmadd(g1, v128.load(r0 + o, 16), b0);
          b1 = fmadd(g1, v128.load(r1 + o, 16), b1);
          b2 = fmadd(g1, v128.load(r2 + o, 16), b2);
        }
        if (v < nv) {
          const o = <usize>v << 4;
          const g0 = v128.load(gr + o);
          a0 = fmadd(g0, v128.load(r0 + o), a0);
          a1 = fmadd(g0, v128.load(r1 + o), a1);
          a2 = fmadd(g0, v128.load(r2 + o), a2);
        }
      }
      store<f64>(at64(out, t), hsum64(f32x4.add(a0, b0)));
      store<f64>(at64(out, t + 1), hsum64(f32x4.add(a1, b1)));
      store<f64>(at64(out, t + 2), hsum64(f32x4.add(a2, b2)));
    }
    for (; t < T; t++) {
      const qt = q + <usize>load<i32>(taps + (<usize>t << 2));
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let a2 = a0;
      let a3 = a0;
      for (let oh = 0; oh < oH; oh++) {
        const qr = qt + <usize>oh * rowStep;
        const gr = gp + <usize>oh * gRowStep;
        let v = 0;
        for (; v + 4 <= nv; v += 4) {
          const o = <usize>v << 4;
          a0 = fmadd(v128.load(gr + o), v128.load(qr + o), a0);
          a1 = fmadd(v128.load(gr + o, 16), v128.load(qr + o, 16), a1);
          a2 = fmadd(v128.load(gr + o, 32), v128.load(qr + o, 32), a2);
          a3 = fmadd(v128.load(gr + o, 48), v128.load(qr + o, 48), a3);
        }
        for (; v < nv; v++) {
          const o = <usize>v << 4;
          a0 = fmadd(v128.load(gr + o), v128.load(qr + o), a0);
        }
      }
      store<f64>(at64(out, t), hsum64(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
    }
  }
}
