// Sliding-window machinery shared by depthwise convolution, the implicit GEMM of dense
// convolution, and pooling.
//
// Every window operation first copies one input plane into a "Q plane": the plane padded
// with a fill value (0 for sums, -inf for max) and split by the column stride into `phases`
// sub-planes, Q_r[row][j] = P[row][j * phases + r] where P is the padded plane. After that,
// the input cells of output (oh, ow) under tap (kh, kw) are
//   Q_{(kw*dW) % s}[oh*sH + kh*dH][ow + (kw*dW) / s],
// i.e. for a fixed tap, consecutive ow read consecutive floats: every stride, dilation and
// padding becomes plain contiguous SIMD loads with no bounds checks, and the per-tap offset
// (relative to the output row start) is precomputed once in a tap table.
//
// Q widths are padded so that whole vectors of 4 outputs can be computed past outW (the
// extra lanes are never stored).

import { at, copyF32, fillF32, imax, imin, roundUp4, storeLanes, fmadd } from './common';

/** Rows of the Q plane that an output of outH rows reads. */
// @ts-ignore: decorator
@inline export function qRows(outH: i32, kH: i32, sH: i32, dH: i32): i32 {
  return (outH - 1) * sH + (kH - 1) * dH + 1;
}

/** Row stride (floats) of the Q plane for outW outputs (rounded to whole vectors). */
// @ts-ignore: decorator
@inline export function qStride(outW: i32, kW: i32, sW: i32, dW: i32): i32 {
  return roundUp4(roundUp4(outW) + ((kW - 1) * dW) / sW);
}

/** Floats of a Q area with `phases` phase planes of rows x stride, plus slack for spills. */
// @ts-ignore: decorator
@inline export function qFloats(rows: i32, phases: i32, stride: i32): i32 {
  return rows * stride * phases + 16;
}

/**
 * Fills a whole Q area (all phases and the slack) with `fill`. The cells a plane copies into
 * (copyIntoQ) are the same for every plane of a geometry, so the padding is filled once per
 * part and each plane then only writes its own cells.
 */
export function fillQ(dst: usize, rows: i32, phases: i32, stride: i32, fill: f32): void {
  fillF32(dst, qFloats(rows, phases, stride), fill);
}

/**
 * Copies a srcH x srcW plane into a filled Q area: the source is optionally upsampled
 * (upH/upW > 1 puts cell (r, c) at (r*upH, c*upW), for transposed convolution), shifted by
 * padT/padL (negative crops) and split into `phases` column phases. Writes only the cells
 * the source lands on (rows/columns past the Q area are dropped).
 */
export function copyIntoQ(
  src: usize, srcH: i32, srcW: i32, upH: i32, upW: i32, padT: i32, padL: i32,
  dst: usize, rows: i32, phases: i32, stride: i32,
): void {
  if (upW == 1 && phases == 1) {
    // Contiguous rows: one exact row copy per source row.
    const c0 = imax(0, padL);
    const c1 = imin(stride, srcW + padL);
    if (c1 <= c0) return;
    for (let sr = 0; sr < srcH; sr++) {
      const r = sr * upH + padT;
      if (r < 0) continue;
      if (r >= rows) break;
      copyRowExact(at(dst, r * stride + c0), at(src, sr * srcW + c0 - padL), c1 - c0);
    }
    return;
  }
  const phaseFloats = rows * stride;
  for (let sr = 0; sr < srcH; sr++) {
    const r = sr * upH + padT;
    if (r < 0) continue;
    if (r >= rows) break;
    const srcRow = at(src, sr * srcW);
    const dstRow = at(dst, r * stride);
    for (let sc = 0; sc < srcW; sc++) {
      const c = sc * upW + padL;
      if (c < 0) continue;
      const j = c / phases;
      if (j >= stride) break;
      const ph = c - j * phases;
      store<f32>(at(dstRow, ph * phaseFloats + j), load<f32>(at(srcRow, sc)));
    }
  }
}

/**
 * dst[0..n) = src[0..n) with whole vectors: the last vector is re-copied overlapping the
 * previous one, so nothing past dst[n - 1] is written.
 */
// @ts-ignore: decorator
@inline function copyRowExact(dst: usize, src: usize, n: i32): void {
  if (n >= 4) {
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const a = v128.load(at(src, i));
      const b = v128.load(at(src, i), 16);
      v128.store(at(dst, i), a);
      v128.store(at(dst, i), b, 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(at(dst, i), v128.load(at(src, i)));
    if (i < n) v128.store(at(dst, n - 4), v128.load(at(src, n - 4)));
  } else {
    for (let i = 0; i < n; i++) store<f32>(at(dst, i), load<f32>(at(src, i)));
  }
}

/**
 * Inverse of copyIntoQ without upsampling: dst[ih][iw] = P[ih + padT][iw + padL], 0 where the
 * padded plane does not reach (cells no window touched).
 */
export function copyFromQ(
  q: usize, rows: i32, phases: i32, stride: i32, padT: i32, padL: i32,
  dst: usize, H: i32, W: i32,
): void {
  const phaseFloats = rows * stride;
  for (let ih = 0; ih < H; ih++) {
    const r = ih + padT;
    const dstRow = at(dst, ih * W);
    if (r < 0 || r >= rows) {
      fillF32(dstRow, W, 0);
      continue;
    }
    const qRow = at(q, r * stride);
    if (phases == 1) {
      const w0 = imin(W, imax(0, -padL));
      const w1 = imax(w0, imin(W, stride - padL));
      if (w0 > 0) fillF32(dstRow, w0, 0);
      copyF32(at(dstRow, w0), at(qRow, w0 + padL), w1 - w0);
      if (w1 < W) fillF32(at(dstRow, w1), W - w1, 0);
    } else {
      for (let iw = 0; iw < W; iw++) {
        const c = iw + padL;
        let v: f32 = 0;
        if (c >= 0) {
          const j = c / phases;
          if (j < stride) v = load<f32>(at(qRow, (c - j * phases) * phaseFloats + j));
        }
        store<f32>(at(dstRow, iw), v);
      }
    }
  }
}

/**
 * Tap table: byte offset of tap (kh, kw) relative to the Q address of output (oh, 0), for
 * row-major taps. Returns the number of taps.
 */
export function buildTaps(
  taps: usize, kH: i32, kW: i32, dH: i32, dW: i32, phases: i32, rows: i32, stride: i32,
): i32 {
  let t = 0;
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      const off = kw * dW;
      const ph = off % phases;
      const col = off / phases;
      store<i32>(taps + (<usize>t << 2), ((kh * dH + ph * rows) * stride + col) << 2);
      t++;
    }
  }
  return t;
}

/**
 * out[oh][ow] = sum over taps t of w[t] * Q[tap t of (oh, ow)]. `rowStep` is the byte
 * distance between the Q rows of consecutive output rows (sH * stride * 4).
 * Four vectors (16 outputs) per pass; taps go in pairs, (w0*x0 + w1*x1) being added to the
 * accumulator, which halves the chain of dependent additions (their latency, not the
 * arithmetic, bounds a one-tap-at-a-time loop). More accumulators would not fit V8's 16
 * SIMD registers: it issues all loads of an iteration first.
 */
export function windowFma(
  q: usize, rowStep: i32, taps: usize, T: i32, w: usize, out: usize, outH: i32, outW: i32,
): void {
  const nv = (outW + 3) >> 2;
  const nPaired = nv & ~3;
  const T2 = T & ~1;
  for (let oh = 0; oh < outH; oh++) {
    const base = q + <usize>(oh * rowStep);
    const orow = at(out, oh * outW);
    for (let v = 0; v < nPaired; v += 4) {
      const vb = base + (<usize>v << 4);
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let a2 = a0;
      let a3 = a0;
      for (let t = 0; t < T2; t += 2) {
        const tp = taps + (<usize>t << 2);
        const wp = w + (<usize>t << 2);
        const p = vb + <usize>load<i32>(tp);
        const r = vb + <usize>load<i32>(tp, 4);
        const wv = v128.load32_splat(wp);
        const wu = v128.load32_splat(wp, 4);
        a0 = f32x4.add(a0, fmadd(wv, v128.load(p), f32x4.mul(wu, v128.load(r))));
        a1 = f32x4.add(a1, fmadd(wv, v128.load(p, 16), f32x4.mul(wu, v128.load(r, 16))));
        a2 = f32x4.add(a2, fmadd(wv, v128.load(p, 32), f32x4.mul(wu, v128.load(r, 32))));
        a3 = f32x4.add(a3, fmadd(wv, v128.load(p, 48), f32x4.mul(wu, v128.load(r, 48))));
      }
      if (T2 < T) {
        const p = vb + <usize>load<i32>(taps + (<usize>T2 << 2));
        const wv = v128.load32_splat(w + (<usize>T2 << 2));
        a0 = fmadd(wv, v128.load(p), a0);
        a1 = fmadd(wv, v128.load(p, 16), a1);
        a2 = fmadd(wv, v128.load(p, 32), a2);
        a3 = fmadd(wv, v128.load(p, 48), a3);
      }
      const o = orow + (<usize>v << 4);
      v128.store(o, a0);
      v128.store(o, a1, 16);
      v128.store(o, a2, 32);
      storeLanes(o + 48, a3, outW - ((v + 3) << 2));
    }
  }
  if (nPaired == nv) return;
  // The last nv % 4 vectors of every row (all of them on planes narrower than 16): even and
  // odd taps in two chains per vector, two rows at once so that four chains run side by
  // side (one row's two chains are bound by the addition latency on small planes). Each
  // output is summed exactly as before, row by row.
  let oh = 0;
  for (; oh + 2 <= outH; oh += 2) {
    const base = q + <usize>(oh * rowStep);
    const orow = at(out, oh * outW);
    for (let v = nPaired; v < nv; v++) {
      const vb = base + (<usize>v << 4);
      const vc = vb + <usize>rowStep;
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let b0 = a0;
      let b1 = a0;
      for (let t = 0; t < T2; t += 2) {
        const tp = taps + (<usize>t << 2);
        const wp = w + (<usize>t << 2);
        const o0 = <usize>load<i32>(tp);
        const o1 = <usize>load<i32>(tp, 4);
        const wv = v128.load32_splat(wp);
        const wu = v128.load32_splat(wp, 4);
        a0 = fmadd(wv, v128.load(vb + o0), a0);
        a1 = fmadd(wu, v128.load(vb + o1), a1);
        b0 = fmadd(wv, v128.load(vc + o0), b0);
        b1 = fmadd(wu, v128.load(vc + o1), b1);
      }
      if (T2 < T) {
        const o0 = <usize>load<i32>(taps + (<usize>T2 << 2));
        const wv = v128.load32_splat(w + (<usize>T2 << 2));
        a0 = fmadd(wv, v128.load(vb + o0), a0);
        b0 = fmadd(wv, v128.load(vc + o0), b0);
      }
      const n = outW - (v << 2);
      storeLanes(orow + (<usize>v << 4), f32x4.add(a0, a1), n);
      storeLanes(orow + (<usize>(outW + (v << 2)) << 2), f32x4.add(b0, b1), n);
    }
  }
  for (; oh < outH; oh++) {
    const base = q + <usize>(oh * rowStep);
    const orow = at(out, oh * outW);
    for (let v = nPaired; v < nv; v++) {
      const vb = base + (<usize>v << 4);
      let a0 = f32x4.splat(0);
      let a1 = a0;
      for (let t = 0; t < T2; t += 2) {
        const tp = taps + (<usize>t << 2);
        const wp = w + (<usize>t << 2);
        a0 = fmadd(v128.load32_splat(wp), v128.load(vb + <usize>load<i32>(tp)), a0);
        a1 = fmadd(v128.load32_splat(wp, 4), v128.load(vb + <usize>load<i32>(tp, 4)), a1);
      }
      if (T2 < T) {
        const p = vb + <usize>load<i32>(taps + (<usize>T2 << 2));
        a0 = fmadd(v128.load32_splat(w + (<usize>T2 << 2)), v128.load(p), a0);
      }
      storeLanes(orow + (<usize>v << 4), f32x4.add(a0, a1), outW - (v << 2));
    }
  }
}

/**
 * out[oh][ow] = sum over taps of Q (taps in pairs, as in windowFma), divided by
 * max(rowCnt[oh] * colCnt[ow], 1) when rowCnt != 0 (average pooling; colCnt is padded to
 * whole vectors).
 */
export function windowSum(
  q: usize, rowStep: i32, taps: usize, T: i32, out: usize, outH: i32, outW: i32, rowCnt: usize, colCnt: usize,
): void {
  const nv = (outW + 3) >> 2;
  const T2 = T & ~1;
  const one = f32x4.splat(1);
  for (let oh = 0; oh < outH; oh++) {
    const base = q + <usize>(oh * rowStep);
    const orow = at(out, oh * outW);
    const r = rowCnt != 0 ? v128.load32_splat(at(rowCnt, oh)) : one;
    let v = 0;
    for (; v + 4 <= nv; v += 4) {
      const vb = base + (<usize>v << 4);
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let a2 = a0;
      let a3 = a0;
      for (let t = 0; t < T2; t += 2) {
        const tp = taps + (<usize>t << 2);
        const p = vb + <usize>load<i32>(tp);
        const u = vb + <usize>load<i32>(tp, 4);
        a0 = f32x4.add(a0, f32x4.add(v128.load(p), v128.load(u)));
        a1 = f32x4.add(a1, f32x4.add(v128.load(p, 16), v128.load(u, 16)));
        a2 = f32x4.add(a2, f32x4.add(v128.load(p, 32), v128.load(u, 32)));
        a3 = f32x4.add(a3, f32x4.add(v128.load(p, 48), v128.load(u, 48)));
      }
      if (T2 < T) {
        const p = vb + <usize>load<i32>(taps + (<usize>T2 << 2));
        a0 = f32x4.add(a0, v128.load(p));
        a1 = f32x4.add(a1, v128.load(p, 16));
        a2 = f32x4.add(a2, v128.load(p, 32));
        a3 = f32x4.add(a3, v128.load(p, 48));
      }
      if (rowCnt != 0) {
        const c = colCnt + (<usize>v << 4);
        a0 = f32x4.div(a0, f32x4.max(f32x4.mul(r, v128.load(c)), one));
        a1 = f32x4.div(a1, f32x4.max(f32x4.mul(r, v128.load(c, 16)), one));
        a2 = f32x4.div(a2, f32x4.max(f32x4.mul(r, v128.load(c, 32)), one));
        a3 = f32x4.div(a3, f32x4.max(f32x4.mul(r, v128.load(c, 48)), one));
      }
      const o = orow + (<usize>v << 4);
      v128.store(o, a0);
      v128.store(o, a1, 16);
      v128.store(o, a2, 32);
      storeLanes(o + 48, a3, outW - ((v + 3) << 2));
    }
    for (; v < nv; v++) {
      const vb = base + (<usize>v << 4);
      let a0 = f32x4.splat(0);
      for (let t = 0; t < T; t++) a0 = f32x4.add(a0, v128.load(vb + <usize>load<i32>(taps + (<usize>t << 2))));
      if (rowCnt != 0) a0 = f32x4.div(a0, f32x4.max(f32x4.mul(r, v128.load(colCnt + (<usize>v << 4))), one));
      storeLanes(orow + (<usize>v << 4), a0, outW - (v << 2));
    }
  }
}

/**
 * out[oh][ow] = max over taps of Q (padding is -inf in Q). pmax(a, b) = a < b ? b : a, so a
 * NaN input never wins, as with the reference's `v > best` scan.
 */
export function windowMax(
  q: usize, rowStep: i32, taps: usize, T: i32, out: usize, outH: i32, outW: i32,
): void {
  const nv = (outW + 3) >> 2;
  const ninf = f32x4.splat(-Infinity);
  for (let oh = 0; oh < outH; oh++) {
    const base = q + <usize>(oh * rowStep);
    const orow = at(out, oh * outW);
    let v = 0;
    for (; v + 4 <= nv; v += 4) {
      const vb = base + (<usize>v << 4);
      let a0 = ninf;
      let a1 = ninf;
      let a2 = ninf;
      let a3 = ninf;
      for (let t = 0; t < T; t++) {
        const p = vb + <usize>load<i32>(taps + (<usize>t << 2));
        a0 = f32x4.pmax(a0, v128.load(p));
        a1 = f32x4.pmax(a1, v128.load(p, 16));
        a2 = f32x4.pmax(a2, v128.load(p, 32));
        a3 = f32x4.pmax(a3, v128.load(p, 48));
      }
      const o = orow + (<usize>v << 4);
      v128.store(o, a0);
      v128.store(o, a1, 16);
      v128.store(o, a2, 32);
      storeLanes(o + 48, a3, outW - ((v + 3) << 2));
    }
    for (; v < nv; v++) {
      const vb = base + (<usize>v << 4);
      let a0 = ninf;
      for (let t = 0; t < T; t++) {
        a0 = f32x4.pmax(a0, v128.load(vb + <usize>load<i32>(taps + (<usize>t << 2))));
      }
      storeLanes(orow + (<usize>v << 4), a0, outW - (v << 2));
    }
  }
}

/**
 * Max-pool backward for one plane, in three passes:
 * 1. idx[oh][ow] = first tap (row-major, strictly greater wins) holding the window maximum,
 *    recomputed from the -inf padded Q plane of x; -1 where nothing is routed (lanes past
 *    outW, windows without input cells). A window whose cells are all -inf routes to its
 *    first in-bounds cell (PyTorch's rule), patched in scalar code (rare).
 * 2. Each gy is added into the zeroed padded gradient plane gq at its winner's cell, one
 *    scalar add per output in output order (PyTorch's summation order).
 * 3. gx = gq without its padding (copyFromQ).
 * `idx` holds outH * roundUp4(outW) int32.
 */
export function maxPoolBackwardPlane(
  q: usize, gq: usize, idx: usize, rows: i32, phases: i32, stride: i32, rowStep: i32, taps: usize, T: i32,
  kH: i32, kW: i32, sH: i32, sW: i32, pH: i32, pW: i32, H: i32, W: i32,
  gy: usize, gx: usize, outH: i32, outW: i32,
): void {
  const nv = (outW + 3) >> 2;
  const ninf = f32x4.splat(-Infinity);
  const none = i32x4.splat(-1);
  for (let oh = 0; oh < outH; oh++) {
    const base = q + <usize>(oh * rowStep);
    const irow = idx + (<usize>(oh * nv) << 4);
    // Two vectors per pass share the tap lookups. wins = x > best (before the update), and
    // pmax(best, x) = best < x ? x : best is that same update in one instruction.
    let v = 0;
    for (; v + 2 <= nv; v += 2) {
      const vb = base + (<usize>v << 4);
      let b0 = ninf;
      let b1 = ninf;
      let i0 = none;
      let i1 = none;
      for (let t = 0; t < T; t++) {
        const p = vb + <usize>load<i32>(taps + (<usize>t << 2));
        const tv = i32x4.splat(t);
        const x0 = v128.load(p);
        const x1 = v128.load(p, 16);
        i0 = v128.bitselect(tv, i0, f32x4.gt(x0, b0));
        i1 = v128.bitselect(tv, i1, f32x4.gt(x1, b1));
        b0 = f32x4.pmax(b0, x0);
        b1 = f32x4.pmax(b1, x1);
      }
      storeArgmax(irow, v, i0, oh, outW, kH, kW, sH, sW, pH, pW, H, W);
      storeArgmax(irow, v + 1, i1, oh, outW, kH, kW, sH, sW, pH, pW, H, W);
    }
    if (v < nv) {
      const vb = base + (<usize>v << 4);
      let b0 = ninf;
      let i0 = none;
      for (let t = 0; t < T; t++) {
        const x0 = v128.load(vb + <usize>load<i32>(taps + (<usize>t << 2)));
        i0 = v128.bitselect(i32x4.splat(t), i0, f32x4.gt(x0, b0));
        b0 = f32x4.pmax(b0, x0);
      }
      storeArgmax(irow, v, i0, oh, outW, kH, kW, sH, sW, pH, pW, H, W);
    }
  }
  fillQ(gq, rows, phases, stride, 0);
  // Route each gy to its window's winning cell: one scalar add per output, in output order
  // (PyTorch's order). Nine masked vector passes, one per tap, were about 12 % slower.
  for (let oh = 0; oh < outH; oh++) {
    const grow = at(gy, oh * outW);
    const irow = idx + (<usize>(oh * nv) << 4);
    const qrow = gq + <usize>(oh * rowStep);
    for (let ow = 0; ow < outW; ow++) {
      const t = load<i32>(irow + (<usize>ow << 2));
      if (t < 0) continue;
      const p = qrow + <usize>load<i32>(taps + (<usize>t << 2)) + (<usize>ow << 2);
      store<f32>(p, load<f32>(p) + load<f32>(grow + (<usize>ow << 2)));
    }
  }
  copyFromQ(gq, rows, phases, stride, pH, pW, gx, H, W);
}

/**
 * Stores the argmax vector v of an output row: lanes past outW get -1 (route nothing), and
 * windows where no tap beat -inf get their first in-bounds cell, or -1 if they have none.
 */
// @ts-ignore: decorator
@inline function storeArgmax(
  irow: usize, v: i32, id: v128, oh: i32, outW: i32,
  kH: i32, kW: i32, sH: i32, sW: i32, pH: i32, pW: i32, H: i32, W: i32,
): void {
  const none = i32x4.splat(-1);
  const inRow = i32x4.lt_s(i32x4.add(i32x4(0, 1, 2, 3), i32x4.splat(v << 2)), i32x4.splat(outW));
  const masked = v128.bitselect(id, none, inRow);
  const p = irow + (<usize>v << 4);
  v128.store(p, masked);
  if (v128.any_true(v128.and(i32x4.eq(masked, none), inRow))) {
    for (let l = 0; l < 4; l++) {
      const ow = (v << 2) + l;
      if (ow >= outW || load<i32>(p + (<usize>l << 2)) >= 0) continue;
      const kh0 = imax(0, pH - oh * sH);
      const kw0 = imax(0, pW - ow * sW);
      const inside = kh0 < kH && oh * sH - pH + kh0 < H && kw0 < kW && ow * sW - pW + kw0 < W;
      if (inside) store<i32>(p + (<usize>l << 2), kh0 * kW + kw0);
    }
  }
}

// ---------------------------------------------------------------- 3x3, stride 1, padding 1

// Partial products of one output vector: row r of the 3x3 window contributes
// wr0 * (x shifted right by one), wr1 * x, wr2 * (x shifted left by one).

/**
 * One output vector of a 3x3/stride-1/pad-1 window, computed in exactly the order that
 * windowFma uses for the same vector (so results match it bit for bit): `paired` for the
 * vectors of its 16-output passes, the even/odd split for its tail vectors.
 */
// @ts-ignore: decorator
@inline function dw3Vec(
  l0: v128, c0: v128, r0: v128, l1: v128, c1: v128, r1: v128, l2: v128, c2: v128, r2: v128,
  w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, w8: v128,
  paired: bool,
): v128 {
  if (paired) {
    let a = fmadd(w0, l0, f32x4.mul(w1, c0));
    a = f32x4.add(a, fmadd(w2, r0, f32x4.mul(w3, l1)));
    a = f32x4.add(a, fmadd(w4, c1, f32x4.mul(w5, r1)));
    a = f32x4.add(a, fmadd(w6, l2, f32x4.mul(w7, c2)));
    return fmadd(w8, r2, a);
  }
  let a = f32x4.mul(w0, l0);
  a = fmadd(w2, r0, a);
  a = fmadd(w4, c1, a);
  a = fmadd(w6, l2, a);
  a = fmadd(w8, r2, a);
  let b = f32x4.mul(w1, c0);
  b = fmadd(w3, l1, b);
  b = fmadd(w5, r1, b);
  b = fmadd(w7, c2, b);
  return f32x4.add(a, b);
}

// Shifted vectors of a row at address `p`: mode 0 = first vector (left neighbour
// shifted in from zero), 1 = interior, 2 = last vector (lanes past the row zeroed, right
// neighbour shifted in from zero), 3 = the only vector (both).
// @ts-ignore: decorator
@inline function rowC(p: usize, mode: i32, valid: v128): v128 {
  return mode >= 2 ? v128.and(v128.load(p), valid) : v128.load(p);
}
// @ts-ignore: decorator
@inline function rowL(p: usize, mode: i32, valid: v128): v128 {
  return mode == 1 || mode == 2 ? v128.load(p - 4) : v128.shuffle<f32>(f32x4.splat(0), rowC(p, mode, valid), 3, 4, 5, 6);
}
// @ts-ignore: decorator
@inline function rowR(p: usize, mode: i32, valid: v128): v128 {
  return mode < 2 ? v128.load(p, 4) : v128.shuffle<f32>(rowC(p, mode, valid), f32x4.splat(0), 1, 2, 3, 4);
}

/**
 * Two output rows (A from input rows 0..2, B from rows 1..3 at p0..p3) of one vector, each
 * summed in the order of dw3Vec; the middle rows' loads are shared.
 */
// @ts-ignore: decorator
@inline function dw3Pair(
  p0: usize, p1: usize, p2: usize, p3: usize, mode: i32, valid: v128,
  w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, w8: v128,
  paired: bool, oA: usize, oB: usize, n: i32,
): void {
  if (paired) {
    let a = fmadd(w0, rowL(p0, mode, valid), f32x4.mul(w1, rowC(p0, mode, valid)));
    const ra = rowR(p0, mode, valid);
    let l = rowL(p1, mode, valid);
    let c = rowC(p1, mode, valid);
    let r = rowR(p1, mode, valid);
    a = f32x4.add(a, fmadd(w2, ra, f32x4.mul(w3, l)));
    a = f32x4.add(a, fmadd(w4, c, f32x4.mul(w5, r)));
    let b = fmadd(w0, l, f32x4.mul(w1, c));
    const rb = r;
    l = rowL(p2, mode, valid);
    c = rowC(p2, mode, valid);
    r = rowR(p2, mode, valid);
    a = f32x4.add(a, fmadd(w6, l, f32x4.mul(w7, c)));
    a = fmadd(w8, r, a);
    storeLanes(oA, a, n);
    b = f32x4.add(b, fmadd(w2, rb, f32x4.mul(w3, l)));
    b = f32x4.add(b, fmadd(w4, c, f32x4.mul(w5, r)));
    l = rowL(p3, mode, valid);
    c = rowC(p3, mode, valid);
    r = rowR(p3, mode, valid);
    b = f32x4.add(b, fmadd(w6, l, f32x4.mul(w7, c)));
    b = fmadd(w8, r, b);
    storeLanes(oB, b, n);
  } else {
    let a = f32x4.mul(w0, rowL(p0, mode, valid));
    let a1 = f32x4.mul(w1, rowC(p0, mode, valid));
    a = fmadd(w2, rowR(p0, mode, valid), a);
    let l = rowL(p1, mode, valid);
    let c = rowC(p1, mode, valid);
    let r = rowR(p1, mode, valid);
    a1 = fmadd(w3, l, a1);
    a = fmadd(w4, c, a);
    a1 = fmadd(w5, r, a1);
    let b = f32x4.mul(w0, l);
    let b1 = f32x4.mul(w1, c);
    b = fmadd(w2, r, b);
    l = rowL(p2, mode, valid);
    c = rowC(p2, mode, valid);
    r = rowR(p2, mode, valid);
    a = fmadd(w6, l, a);
    a1 = fmadd(w7, c, a1);
    a = fmadd(w8, r, a);
    storeLanes(oA, f32x4.add(a, a1), n);
    b1 = fmadd(w3, l, b1);
    b = fmadd(w4, c, b);
    b1 = fmadd(w5, r, b1);
    l = rowL(p3, mode, valid);
    c = rowC(p3, mode, valid);
    r = rowR(p3, mode, valid);
    b = fmadd(w6, l, b);
    b1 = fmadd(w7, c, b1);
    b = fmadd(w8, r, b);
    storeLanes(oB, f32x4.add(b, b1), n);
  }
}

/**
 * out = 3x3 window (stride 1, padding 1, dilation 1) of the H x W plane `src` with the 9
 * row-major weights at `w`, read straight from the plane (no padded copy): interior vectors
 * use unaligned loads at columns -1/0/+1; the first and last vector of a row build their
 * shifted vectors with lane shuffles against zero, so nothing before the row or past the
 * plane's last 12 bytes is read. Rows above/below the plane read `zero` (>= W + 4 zeros,
 * 16-byte aligned). Bitwise equal to copyIntoQ + windowFma (up to the sign of a zero sum).
 */
export function window3x3s1(src: usize, H: i32, W: i32, w: usize, out: usize, zero: usize): void {
  const w0 = v128.load32_splat(w);
  const w1 = v128.load32_splat(w, 4);
  const w2 = v128.load32_splat(w, 8);
  const w3 = v128.load32_splat(w, 12);
  const w4 = v128.load32_splat(w, 16);
  const w5 = v128.load32_splat(w, 20);
  const w6 = v128.load32_splat(w, 24);
  const w7 = v128.load32_splat(w, 28);
  const w8 = v128.load32_splat(w, 32);
  const z = f32x4.splat(0);
  const nv = (W + 3) >> 2;
  const nPaired = nv & ~3; // vectors windowFma computes in its 16-output passes
  const last = nv - 1;
  const n = W - (last << 2); // valid lanes of the last vector, 1..4
  const valid = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(n));
  const rowBytes = <usize>W << 2;
  const lastByte = <usize>last << 4;
  let oh = 0;
  for (; oh + 2 <= H; oh += 2) {
    const p1 = src + <usize>oh * rowBytes;
    const p0 = oh > 0 ? p1 - rowBytes : zero;
    const p2 = p1 + rowBytes;
    const p3 = oh + 2 < H ? p2 + rowBytes : zero;
    const oA = out + <usize>oh * rowBytes;
    const oB = oA + rowBytes;
    if (last == 0) {
      dw3Pair(p0, p1, p2, p3, 3, valid, w0, w1, w2, w3, w4, w5, w6, w7, w8, nPaired > 0, oA, oB, n);
      continue;
    }
    dw3Pair(p0, p1, p2, p3, 0, valid, w0, w1, w2, w3, w4, w5, w6, w7, w8, nPaired > 0, oA, oB, 4);
    const v1 = imin(nPaired, last);
    let v = 1;
    for (; v < v1; v++) {
      const o = <usize>v << 4;
      dw3Pair(p0 + o, p1 + o, p2 + o, p3 + o, 1, valid, w0, w1, w2, w3, w4, w5, w6, w7, w8, true, oA + o, oB + o, 4);
    }
    for (; v < last; v++) {
      const o = <usize>v << 4;
      dw3Pair(p0 + o, p1 + o, p2 + o, p3 + o, 1, valid, w0, w1, w2, w3, w4, w5, w6, w7, w8, false, oA + o, oB + o, 4);
    }
    const o = lastByte;
    dw3Pair(p0 + o, p1 + o, p2 + o, p3 + o, 2, valid, w0, w1, w2, w3, w4, w5, w6, w7, w8, last < nPaired, oA + o, oB + o, n);
  }
  for (; oh < H; oh++) {
    const p1 = src + <usize>oh * rowBytes;
    const p0 = oh > 0 ? p1 - rowBytes : zero;
    const p2 = oh + 1 < H ? p1 + rowBytes : zero;
    const orow = out + <usize>oh * rowBytes;
    if (last == 0) {
      // One vector: both edges.
      const c0 = v128.and(v128.load(p0), valid);
      const c1 = v128.and(v128.load(p1), valid);
      const c2 = v128.and(v128.load(p2), valid);
      const a = dw3Vec(
        v128.shuffle<f32>(z, c0, 3, 4, 5, 6), c0, v128.shuffle<f32>(c0, z, 1, 2, 3, 4),
        v128.shuffle<f32>(z, c1, 3, 4, 5, 6), c1, v128.shuffle<f32>(c1, z, 1, 2, 3, 4),
        v128.shuffle<f32>(z, c2, 3, 4, 5, 6), c2, v128.shuffle<f32>(c2, z, 1, 2, 3, 4),
        w0, w1, w2, w3, w4, w5, w6, w7, w8, nPaired > 0,
      );
      storeLanes(orow, a, n);
      continue;
    }
    // First vector: left neighbours shifted in from zero.
    {
      const c0 = v128.load(p0);
      const c1 = v128.load(p1);
      const c2 = v128.load(p2);
      const a = dw3Vec(
        v128.shuffle<f32>(z, c0, 3, 4, 5, 6), c0, v128.load(p0, 4),
        v128.shuffle<f32>(z, c1, 3, 4, 5, 6), c1, v128.load(p1, 4),
        v128.shuffle<f32>(z, c2, 3, 4, 5, 6), c2, v128.load(p2, 4),
        w0, w1, w2, w3, w4, w5, w6, w7, w8, nPaired > 0,
      );
      v128.store(orow, a);
    }
    // Interior vectors: plain unaligned loads.
    const v1 = imin(nPaired, last);
    let v = 1;
    for (; v < v1; v++) {
      const o = <usize>v << 4;
      const q0 = p0 + o;
      const q1 = p1 + o;
      const q2 = p2 + o;
      const a = dw3Vec(
        v128.load(q0 - 4), v128.load(q0), v128.load(q0, 4),
        v128.load(q1 - 4), v128.load(q1), v128.load(q1, 4),
        v128.load(q2 - 4), v128.load(q2), v128.load(q2, 4),
        w0, w1, w2, w3, w4, w5, w6, w7, w8, true,
      );
      v128.store(orow + o, a);
    }
    for (; v < last; v++) {
      const o = <usize>v << 4;
      const q0 = p0 + o;
      const q1 = p1 + o;
      const q2 = p2 + o;
      const a = dw3Vec(
        v128.load(q0 - 4), v128.load(q0), v128.load(q0, 4),
        v128.load(q1 - 4), v128.load(q1), v128.load(q1, 4),
        v128.load(q2 - 4), v128.load(q2), v128.load(q2, 4),
        w0, w1, w2, w3, w4, w5, w6, w7, w8, false,
      );
      v128.store(orow + o, a);
    }
    // Last vector: lanes past W zeroed, right neighbours shifted in from zero.
    {
      const q0 = p0 + lastByte;
      const q1 = p1 + lastByte;
      const q2 = p2 + lastByte;
      const c0 = v128.and(v128.load(q0), valid);
      const c1 = v128.and(v128.load(q1), valid);
      const c2 = v128.and(v128.load(q2), valid);
      const a = dw3Vec(
        v128.load(q0 - 4), c0, v128.shuffle<f32>(c0, z, 1, 2, 3, 4),
        v128.load(q1 - 4), c1, v128.shuffle<f32>(c1, z, 1, 2, 3, 4),
        v128.load(q2 - 4), c2, v128.shuffle<f32>(c2, z, 1, 2, 3, 4),
        w0, w1, w2, w3, w4, w5, w6, w7, w8, last < nPaired,
      );
      storeLanes(orow + lastByte, a, n);
    }
  }
}
