// Max and average pooling over Q planes (see window.ts). Part = a range of (n, c) planes.

import { align64, at, imax, imin, roundUp4 } from './common';
import { buildTaps, copyIntoQ, fillQ, maxPoolBackwardPlane, qFloats, qRows, qStride, windowMax, windowSum } from './window';

/** Mirrors PoolGeometry; the JS side writes the fields in this order as int32. */
@unmanaged export class PoolDesc {
  batch: i32;
  channels: i32;
  inH: i32;
  inW: i32;
  kH: i32;
  kW: i32;
  sH: i32;
  sW: i32;
  pH: i32;
  pW: i32;
  outH: i32;
  outW: i32;
}

// Per-thread scratch: [Q plane][gradient Q plane][tap table][row counts][column counts]
// [scaled gy plane or argmax plane].

// @ts-ignore: decorator
@inline function poolQBytes(g: PoolDesc): i32 {
  const fwd = qFloats(qRows(g.outH, g.kH, g.sH, 1), g.sW, qStride(g.outW, g.kW, g.sW, 1));
  const bwd = qFloats(qRows(g.inH, g.kH, 1, 1), 1, qStride(g.inW, g.kW, 1, 1));
  return align64(imax(fwd, bwd) * 4);
}

// @ts-ignore: decorator
@inline function tapBytes(g: PoolDesc): i32 {
  return align64(g.kH * g.kW * 4);
}

// @ts-ignore: decorator
@inline function rowCountBytes(g: PoolDesc): i32 {
  return align64(g.outH * 4);
}

// @ts-ignore: decorator
@inline function colCountBytes(g: PoolDesc): i32 {
  return align64(roundUp4(g.outW) * 4);
}

// @ts-ignore: decorator
@inline function planeBytes(g: PoolDesc): i32 {
  return align64(g.outH * roundUp4(g.outW) * 4 + 64);
}

export function poolScratchBytes(desc: usize): i32 {
  const g = changetype<PoolDesc>(desc);
  return 2 * poolQBytes(g) + tapBytes(g) + rowCountBytes(g) + colCountBytes(g) + planeBytes(g);
}

/** Number of input cells along one axis covered by window o (clipped to the input). */
// @ts-ignore: decorator
@inline function covered(o: i32, stride: i32, pad: i32, kernel: i32, size: i32): i32 {
  const start = o * stride - pad;
  return imax(0, imin(start + kernel, size) - imax(start, 0));
}

/** Writes the per-row and per-column covered counts (as floats; columns padded with 1). */
function writeCounts(g: PoolDesc, rowCnt: usize, colCnt: usize): void {
  for (let oh = 0; oh < g.outH; oh++) store<f32>(at(rowCnt, oh), <f32>covered(oh, g.sH, g.pH, g.kH, g.inH));
  const w4 = roundUp4(g.outW);
  for (let ow = 0; ow < w4; ow++) {
    store<f32>(at(colCnt, ow), ow < g.outW ? <f32>covered(ow, g.sW, g.pW, g.kW, g.inW) : 1);
  }
}

export function maxPool(
  desc: usize, x: usize, y: usize, planesPerPart: i32, scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<PoolDesc>(desc);
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>(2 * poolQBytes(g));
  const rows = qRows(g.outH, g.kH, g.sH, 1);
  const st = qStride(g.outW, g.kW, g.sW, 1);
  const T = buildTaps(taps, g.kH, g.kW, 1, 1, g.sW, rows, st);
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const p1 = imin(g.batch * g.channels, (part + 1) * planesPerPart);
  fillQ(q, rows, g.sW, st, -Infinity);
  for (let p = part * planesPerPart; p < p1; p++) {
    copyIntoQ(at(x, p * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, q, rows, g.sW, st);
    windowMax(q, g.sH * st * 4, taps, T, at(y, p * HWo), g.outH, g.outW);
  }
}

/** Window sums divided by the covered count (count_include_pad=False). */
export function avgPool(
  desc: usize, x: usize, y: usize, planesPerPart: i32, scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<PoolDesc>(desc);
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>(2 * poolQBytes(g));
  const rowCnt = taps + <usize>tapBytes(g);
  const colCnt = rowCnt + <usize>rowCountBytes(g);
  const rows = qRows(g.outH, g.kH, g.sH, 1);
  const st = qStride(g.outW, g.kW, g.sW, 1);
  const T = buildTaps(taps, g.kH, g.kW, 1, 1, g.sW, rows, st);
  writeCounts(g, rowCnt, colCnt);
  const HWi = g.inH * g.inW;
  const oW = g.outW;
  const HWo = g.outH * oW;
  const p1 = imin(g.batch * g.channels, (part + 1) * planesPerPart);
  fillQ(q, rows, g.sW, st, 0);
  for (let p = part * planesPerPart; p < p1; p++) {
    copyIntoQ(at(x, p * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, q, rows, g.sW, st);
    windowSum(q, g.sH * st * 4, taps, T, at(y, p * HWo), g.outH, oW, rowCnt, colCnt);
  }
}

export function maxPoolBackward(
  desc: usize, x: usize, gy: usize, gx: usize, planesPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<PoolDesc>(desc);
  const q = scratch + <usize>(tid * scratchStride);
  const gq = q + <usize>poolQBytes(g);
  const taps = q + <usize>(2 * poolQBytes(g));
  const idx = taps + <usize>(tapBytes(g) + rowCountBytes(g) + colCountBytes(g));
  const rows = qRows(g.outH, g.kH, g.sH, 1);
  const st = qStride(g.outW, g.kW, g.sW, 1);
  const T = buildTaps(taps, g.kH, g.kW, 1, 1, g.sW, rows, st);
  const HWi = g.inH * g.inW;
  const HWo = g.outH * g.outW;
  const p1 = imin(g.batch * g.channels, (part + 1) * planesPerPart);
  fillQ(q, rows, g.sW, st, -Infinity);
  for (let p = part * planesPerPart; p < p1; p++) {
    copyIntoQ(at(x, p * HWi), g.inH, g.inW, 1, 1, g.pH, g.pW, q, rows, g.sW, st);
    maxPoolBackwardPlane(q, gq, idx, rows, g.sW, st, g.sH * st * 4, taps, T, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW,
      g.inH, g.inW, at(gy, p * HWo), at(gx, p * HWi), g.outH, g.outW);
  }
}

/**
 * gx = transposed window pass of gy / count: gy / count is upsampled by the stride, padded
 * by k - 1 - pad and summed over the window.
 */
export function avgPoolBackward(
  desc: usize, gy: usize, gx: usize, planesPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const g = changetype<PoolDesc>(desc);
  const q = scratch + <usize>(tid * scratchStride);
  const taps = q + <usize>(2 * poolQBytes(g));
  const rowCnt = taps + <usize>tapBytes(g);
  const colCnt = rowCnt + <usize>rowCountBytes(g);
  const scaled = colCnt + <usize>colCountBytes(g);
  const rows = qRows(g.inH, g.kH, 1, 1);
  const st = qStride(g.inW, g.kW, 1, 1);
  const T = buildTaps(taps, g.kH, g.kW, 1, 1, 1, rows, st);
  writeCounts(g, rowCnt, colCnt);
  const oW = g.outW;
  const nv = (oW + 3) >> 2;
  const HWi = g.inH * g.inW;
  const HWo = g.outH * oW;
  const p1 = imin(g.batch * g.channels, (part + 1) * planesPerPart);
  fillQ(q, rows, 1, st, 0);
  for (let p = part * planesPerPart; p < p1; p++) {
    // scaled = gy / count, row by row (whole vectors: a spill past a row is rewritten by the
    // next row, and the plane has slack).
    const gp = at(gy, p * HWo);
    const one = f32x4.splat(1);
    for (let oh = 0; oh < g.outH; oh++) {
      const r = v128.load32_splat(at(rowCnt, oh));
      const src = at(gp, oh * oW);
      const dst = at(scaled, oh * oW);
      for (let v = 0; v < nv; v++) {
        const o = <usize>v << 4;
        // A window covering no input cell only reaches padding, which is dropped.
        const cnt = f32x4.max(f32x4.mul(r, v128.load(colCnt + o)), one);
        v128.store(dst + o, f32x4.div(v128.load(src + o), cnt));
      }
    }
    copyIntoQ(scaled, g.outH, oW, g.sH, g.sW, g.kH - 1 - g.pH, g.kW - 1 - g.pW, q, rows, 1, st);
    windowSum(q, st * 4, taps, T, at(gx, p * HWi), g.inH, g.inW, 0, 0);
  }
}
