// Register-tiled SIMD matrix products, the workhorse of dense/1x1 convolution and linear.
//
// gemmNN: C = A * B with B and C row-major (contiguous along N); A is read through arbitrary
//   strides, so A^T costs nothing extra. A is first packed into 4-row panels (k-major), then
//   a 4x8 register tile (8 accumulators, two B vectors, one broadcast A value) walks K.
// gemmNT: C[i][j] = dot(A row i, B row j), both contiguous along K: 4x2 tiles of vector dot
//   products, reduced across lanes at the end (used where the reduction runs along the
//   spatial axis: weight gradients, and linear).
// gemmRows / gemmRowsNT: "implicit GEMM" for convolution. Row k of B is not stored: it is
//   input channel ci shifted by tap t, read straight from the channel's padded Q plane
//   (window.ts) at a byte offset table[k]. Work goes one output row at a time, so the Q rows
//   in use stay in L1 and no im2col matrix is ever written.

import { at, at64, copyF32Over, hsum, hsum64, imin, roundUp4, storeLanes, fmadd } from './common';

/** Bytes of packing scratch gemmNN needs for an M x K operand A. */
// @ts-ignore: decorator
@inline export function packBytes(M: i32, K: i32): i32 {
  return ((M + 3) >> 2) * K * 16;
}

/** pack[panel][k][r] = A(panel*4 + r, k), zero for rows past M. */
export function packA(A: usize, aRow: i32, aCol: i32, M: i32, K: i32, pack: usize): void {
  const panels = (M + 3) >> 2;
  for (let ib = 0; ib < panels; ib++) {
    const dst = pack + <usize>(ib * K) * 16;
    for (let r = 0; r < 4; r++) {
      const i = ib * 4 + r;
      const d = dst + (<usize>r << 2);
      if (i < M) {
        const src = at(A, i * aRow);
        for (let k = 0; k < K; k++) store<f32>(d + (<usize>k << 4), load<f32>(at(src, k * aCol)));
      } else {
        for (let k = 0; k < K; k++) store<f32>(d + (<usize>k << 4), 0);
      }
    }
  }
}

/** 4 x 8 tile: C[0..mr)[0..8) = Apanel * B[.., 0..8). */
// @ts-ignore: decorator
@inline function tile4x8(K: i32, ap: usize, b: usize, ldb: usize, c: usize, ldc: usize, mr: i32): void {
  let c00 = f32x4.splat(0);
  let c01 = c00;
  let c10 = c00;
  let c11 = c00;
  let c20 = c00;
  let c21 = c00;
  let c30 = c00;
  let c31 = c00;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let a = v128.load32_splat(ap);
    c00 = fmadd(a, b0, c00);
    c01 = fmadd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = fmadd(a, b0, c10);
    c11 = fmadd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = fmadd(a, b0, c20);
    c21 = fmadd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = fmadd(a, b0, c30);
    c31 = fmadd(a, b1, c31);
    ap += 16;
    b += ldb;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  if (mr > 1) {
    c += ldc;
    v128.store(c, c10);
    v128.store(c, c11, 16);
  }
  if (mr > 2) {
    c += ldc;
    v128.store(c, c20);
    v128.store(c, c21, 16);
  }
  if (mr > 3) {
    c += ldc;
    v128.store(c, c30);
    v128.store(c, c31, 16);
  }
}

/** 4 x nc tile, nc <= 4 (reads a whole B vector; stores only nc columns). */
// @ts-ignore: decorator
@inline function tile4x4(K: i32, ap: usize, b: usize, ldb: usize, c: usize, ldc: usize, mr: i32, nc: i32): void {
  let c0 = f32x4.splat(0);
  let c1 = c0;
  let c2 = c0;
  let c3 = c0;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b);
    c0 = fmadd(v128.load32_splat(ap), b0, c0);
    c1 = fmadd(v128.load32_splat(ap, 4), b0, c1);
    c2 = fmadd(v128.load32_splat(ap, 8), b0, c2);
    c3 = fmadd(v128.load32_splat(ap, 12), b0, c3);
    ap += 16;
    b += ldb;
  }
  storeLanes(c, c0, nc);
  if (mr > 1) storeLanes(c + ldc, c1, nc);
  if (mr > 2) storeLanes(c + 2 * ldc, c2, nc);
  if (mr > 3) storeLanes(c + 3 * ldc, c3, nc);
}

/**
 * Column panel width of gemmPacked: a K x nb panel of B is about 32 KiB (L1-sized), a
 * multiple of 8 columns.
 */
// @ts-ignore: decorator
@inline function panelWidth(K: i32): i32 {
  const nb = (8192 / (K > 0 ? K : 1)) & ~7;
  return nb < 16 ? 16 : nb;
}

/** Bytes of B-panel scratch gemmPacked / gemmNN need for reduction length K. */
// @ts-ignore: decorator
@inline export function panelBytes(K: i32): i32 {
  return K * panelWidth(K) * 4 + 64;
}

/**
 * C[M x N] = A[M x K] * B[K x N] (overwrite). A(i, k) is at A + (i*aRow + k*aCol)*4;
 * B and C are row-major with row strides ldb/ldc (floats). `pack` is packBytes(M, K) and
 * `panel` panelBytes(K) of scratch.
 */
export function gemmNN(
  M: i32, N: i32, K: i32, A: usize, aRow: i32, aCol: i32,
  B: usize, ldb: i32, C: usize, ldc: i32, pack: usize, panel: usize,
): void {
  if (M <= 0 || N <= 0) return;
  packA(A, aRow, aCol, M, K, pack);
  gemmPacked(M, N, K, pack, B, ldb, C, ldc, panel);
}

/**
 * gemmNN with A already packed by packA. B is walked in column panels that every row
 * panel of A passes over; when there are several row panels, each B panel is first copied
 * to contiguous scratch (`panel`): B rows are often planes 4 KiB apart, which would all map
 * to the same few cache sets.
 */
export function gemmPacked(
  M: i32, N: i32, K: i32, pack: usize, B: usize, ldb: i32, C: usize, ldc: i32, panel: usize,
): void {
  const panels = (M + 3) >> 2;
  const nb = panelWidth(K);
  const ldcB = <usize>ldc << 2;
  for (let j0 = 0; j0 < N; j0 += nb) {
    const jn = imin(nb, N - j0);
    let brow = at(B, j0);
    let ldbB = <usize>ldb << 2;
    if (panels > 1) {
      const w = roundUp4(jn);
      for (let k = 0; k < K; k++) copyF32Over(at(panel, k * w), at(brow, k * ldb), jn);
      brow = panel;
      ldbB = <usize>w << 2;
    }
    for (let ib = 0; ib < panels; ib++) {
      const mr = imin(4, M - ib * 4);
      const ap = pack + <usize>(ib * K) * 16;
      const crow = at(C, ib * 4 * ldc + j0);
      let j = 0;
      for (; j + 8 <= jn; j += 8) tile4x8(K, ap, at(brow, j), ldbB, at(crow, j), ldcB, mr);
      for (; j < jn; j += 4) tile4x4(K, ap, at(brow, j), ldbB, at(crow, j), ldcB, mr, jn - j);
    }
  }
}

/** Lanes [0, n) set, the others clear (n in 0..3). */
// @ts-ignore: decorator
@inline function laneMask(n: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(n));
}

/**
 * C[i][j] = sum_k A[i*lda + k] * B[j*ldb + k] for i < M, j < N.
 * accumulate64 = false: C is float32, overwritten (row stride ldc).
 * accumulate64 = true:  C is float64 and the results are ADDED to it (fixed-order partial
 *   sums of weight gradients).
 * The last K % 4 elements are read as a whole vector with the extra lanes masked to zero.
 */
export function gemmNT(
  M: i32, N: i32, K: i32, A: usize, lda: i32, B: usize, ldb: i32, C: usize, ldc: i32, accumulate64: bool,
): void {
  const K4 = K & ~3;
  const tail = K & 3;
  const mask = laneMask(tail);
  const kt = <usize>K4 << 2;
  for (let i0 = 0; i0 < M; i0 += 4) {
    const mr = imin(4, M - i0);
    // Rows past M alias row i0: computed and dropped, which keeps one code path.
    const a0 = at(A, i0 * lda);
    const a1 = mr > 1 ? at(a0, lda) : a0;
    const a2 = mr > 2 ? at(a0, 2 * lda) : a0;
    const a3 = mr > 3 ? at(a0, 3 * lda) : a0;
    for (let j0 = 0; j0 < N; j0 += 2) {
      const nr = imin(2, N - j0);
      const b0 = at(B, j0 * ldb);
      const b1 = nr > 1 ? at(b0, ldb) : b0;
      let s00 = f32x4.splat(0);
      let s01 = s00;
      let s10 = s00;
      let s11 = s00;
      let s20 = s00;
      let s21 = s00;
      let s30 = s00;
      let s31 = s00;
      for (let kb: usize = 0; kb < kt; kb += 16) {
        const x0 = v128.load(b0 + kb);
        const x1 = v128.load(b1 + kb);
        let a = v128.load(a0 + kb);
        s00 = fmadd(a, x0, s00);
        s01 = fmadd(a, x1, s01);
        a = v128.load(a1 + kb);
        s10 = fmadd(a, x0, s10);
        s11 = fmadd(a, x1, s11);
        a = v128.load(a2 + kb);
        s20 = fmadd(a, x0, s20);
        s21 = fmadd(a, x1, s21);
        a = v128.load(a3 + kb);
        s30 = fmadd(a, x0, s30);
        s31 = fmadd(a, x1, s31);
      }
      if (tail) {
        const x0 = v128.and(v128.load(b0 + kt), mask);
        const x1 = v128.and(v128.load(b1 + kt), mask);
        let a = v128.and(v128.load(a0 + kt), mask);
        s00 = fmadd(a, x0, s00);
        s01 = fmadd(a, x1, s01);
        a = v128.and(v128.load(a1 + kt), mask);
        s10 = fmadd(a, x0, s10);
        s11 = fmadd(a, x1, s11);
        a = v128.and(v128.load(a2 + kt), mask);
        s20 = fmadd(a, x0, s20);
        s21 = fmadd(a, x1, s21);
        a = v128.and(v128.load(a3 + kt), mask);
        s30 = fmadd(a, x0, s30);
        s31 = fmadd(a, x1, s31);
      }
      if (accumulate64) {
        const c = at64(C, i0 * ldc + j0);
        const ldc8 = <usize>ldc << 3;
        store<f64>(c, load<f64>(c) + hsum64(s00));
        if (nr > 1) store<f64>(c, load<f64>(c, 8) + hsum64(s01), 8);
        if (mr > 1) {
          store<f64>(c + ldc8, load<f64>(c + ldc8) + hsum64(s10));
          if (nr > 1) store<f64>(c + ldc8, load<f64>(c + ldc8, 8) + hsum64(s11), 8);
        }
        if (mr > 2) {
          store<f64>(c + 2 * ldc8, load<f64>(c + 2 * ldc8) + hsum64(s20));
          if (nr > 1) store<f64>(c + 2 * ldc8, load<f64>(c + 2 * ldc8, 8) + hsum64(s21), 8);
        }
        if (mr > 3) {
          store<f64>(c + 3 * ldc8, load<f64>(c + 3 * ldc8) + hsum64(s30));
          if (nr > 1) store<f64>(c + 3 * ldc8, load<f64>(c + 3 * ldc8, 8) + hsum64(s31), 8);
        }
      } else {
        const c = at(C, i0 * ldc + j0);
        const ldc4 = <usize>ldc << 2;
        store<f32>(c, hsum(s00));
        if (nr > 1) store<f32>(c, hsum(s01), 4);
        if (mr > 1) {
          store<f32>(c + ldc4, hsum(s10));
          if (nr > 1) store<f32>(c + ldc4, hsum(s11), 4);
        }
        if (mr > 2) {
          store<f32>(c + 2 * ldc4, hsum(s20));
          if (nr > 1) store<f32>(c + 2 * ldc4, hsum(s21), 4);
        }
        if (mr > 3) {
          store<f32>(c + 3 * ldc4, hsum(s30));
          if (nr > 1) store<f32>(c + 3 * ldc4, hsum(s31), 4);
        }
      }
    }
  }
}

/**
 * gemmNT accumulating in float64 over `samples` consecutive samples at once: for i < M, j < N
 *   C64[i * ldc + j] += sum over s < samples, k < K of
 *     A[s * aSample + i * lda + k] * B[s * bSample + j * ldb + k]
 * (aSample / bSample in floats). Each 4 x 2 tile keeps its float32 vector sums across the
 * samples and reduces them to float64 once: on small planes (K = 64 for 8 x 8) the per-sample
 * reductions of gemmNT cost a third of the work. The association depends only on the shapes.
 */
export function gemmNTSamples(
  M: i32, N: i32, K: i32, A: usize, lda: i32, aSample: i32, B: usize, ldb: i32, bSample: i32, samples: i32,
  C: usize, ldc: i32,
): void {
  const K4 = K & ~3;
  const tail = K & 3;
  const mask = laneMask(tail);
  const kt = <usize>K4 << 2;
  const aStep = <usize>aSample << 2;
  const bStep = <usize>bSample << 2;
  const ldc8 = <usize>ldc << 3;
  for (let i0 = 0; i0 < M; i0 += 4) {
    const mr = imin(4, M - i0);
    for (let j0 = 0; j0 < N; j0 += 2) {
      const nr = imin(2, N - j0);
      let s00 = f32x4.splat(0);
      let s01 = s00;
      let s10 = s00;
      let s11 = s00;
      let s20 = s00;
      let s21 = s00;
      let s30 = s00;
      let s31 = s00;
      for (let s = 0; s < samples; s++) {
        // Rows past M / N alias the tile's first row: computed and dropped.
        const a0 = at(A, i0 * lda) + <usize>s * aStep;
        const a1 = mr > 1 ? at(a0, lda) : a0;
        const a2 = mr > 2 ? at(a0, 2 * lda) : a0;
        const a3 = mr > 3 ? at(a0, 3 * lda) : a0;
        const b0 = at(B, j0 * ldb) + <usize>s * bStep;
        const b1 = nr > 1 ? at(b0, ldb) : b0;
        for (let kb: usize = 0; kb < kt; kb += 16) {
          const x0 = v128.load(b0 + kb);
          const x1 = v128.load(b1 + kb);
          let a = v128.load(a0 + kb);
          s00 = fmadd(a, x0, s00);
          s01 = fmadd(a, x1, s01);
          a = v128.load(a1 + kb);
          s10 = fmadd(a, x0, s10);
          s11 = fmadd(a, x1, s11);
          a = v128.load(a2 + kb);
          s20 = fmadd(a, x0, s20);
          s21 = fmadd(a, x1, s21);
          a = v128.load(a3 + kb);
          s30 = fmadd(a, x0, s30);
          s31 = fmadd(a, x1, s31);
        }
        if (tail) {
          const x0 = v128.and(v128.load(b0 + kt), mask);
          const x1 = v128.and(v128.load(b1 + kt), mask);
          let a = v128.and(v128.load(a0 + kt), mask);
          s00 = fmadd(a, x0, s00);
          s01 = fmadd(a, x1, s01);
          a = v128.and(v128.load(a1 + kt), mask);
          s10 = fmadd(a, x0, s10);
          s11 = fmadd(a, x1, s11);
          a = v128.and(v128.load(a2 + kt), mask);
          s20 = fmadd(a, x0, s20);
          s21 = fmadd(a, x1, s21);
          a = v128.and(v128.load(a3 + kt), mask);
          s30 = fmadd(a, x0, s30);
          s31 = fmadd(a, x1, s31);
        }
      }
      const c = at64(C, i0 * ldc + j0);
      store<f64>(c, load<f64>(c) + hsum64(s00));
      if (nr > 1) store<f64>(c, load<f64>(c, 8) + hsum64(s01), 8);
      if (mr > 1) {
        store<f64>(c + ldc8, load<f64>(c + ldc8) + hsum64(s10));
        if (nr > 1) store<f64>(c + ldc8, load<f64>(c + ldc8, 8) + hsum64(s11), 8);
      }
      if (mr > 2) {
        store<f64>(c + 2 * ldc8, load<f64>(c + 2 * ldc8) + hsum64(s20));
        if (nr > 1) store<f64>(c + 2 * ldc8, load<f64>(c + 2 * ldc8, 8) + hsum64(s21), 8);
      }
      if (mr > 3) {
        store<f64>(c + 3 * ldc8, load<f64>(c + 3 * ldc8) + hsum64(s30));
        if (nr > 1) store<f64>(c + 3 * ldc8, load<f64>(c + 3 * ldc8, 8) + hsum64(s31), 8);
      }
    }
  }
}

/** 4 x 8 tile of gemmRows: B row k at b + table[k]. */
// @ts-ignore: decorator
@inline function rowTile4x8(K: i32, ap: usize, table: usize, b: usize, c: usize, ldc: usize, mr: i32): void {
  let c00 = f32x4.splat(0);
  let c01 = c00;
  let c10 = c00;
  let c11 = c00;
  let c20 = c00;
  let c21 = c00;
  let c30 = c00;
  let c31 = c00;
  for (let k = 0; k < K; k++) {
    const bk = b + <usize>load<i32>(table + (<usize>k << 2));
    const b0 = v128.load(bk);
    const b1 = v128.load(bk, 16);
    let a = v128.load32_splat(ap);
    c00 = fmadd(a, b0, c00);
    c01 = fmadd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = fmadd(a, b0, c10);
    c11 = fmadd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = fmadd(a, b0, c20);
    c21 = fmadd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = fmadd(a, b0, c30);
    c31 = fmadd(a, b1, c31);
    ap += 16;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  if (mr > 1) {
    c += ldc;
    v128.store(c, c10);
    v128.store(c, c11, 16);
  }
  if (mr > 2) {
    c += ldc;
    v128.store(c, c20);
    v128.store(c, c21, 16);
  }
  if (mr > 3) {
    c += ldc;
    v128.store(c, c30);
    v128.store(c, c31, 16);
  }
}

/** 4 x nc tile of gemmRows, nc <= 4. */
// @ts-ignore: decorator
@inline function rowTile4x4(K: i32, ap: usize, table: usize, b: usize, c: usize, ldc: usize, mr: i32, nc: i32): void {
  let c0 = f32x4.splat(0);
  let c1 = c0;
  let c2 = c0;
  let c3 = c0;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b + <usize>load<i32>(table + (<usize>k << 2)));
    c0 = fmadd(v128.load32_splat(ap), b0, c0);
    c1 = fmadd(v128.load32_splat(ap, 4), b0, c1);
    c2 = fmadd(v128.load32_splat(ap, 8), b0, c2);
    c3 = fmadd(v128.load32_splat(ap, 12), b0, c3);
    ap += 16;
  }
  storeLanes(c, c0, nc);
  if (mr > 1) storeLanes(c + ldc, c1, nc);
  if (mr > 2) storeLanes(c + 2 * ldc, c2, nc);
  if (mr > 3) storeLanes(c + 3 * ldc, c3, nc);
}

/**
 * Implicit GEMM, one output row at a time: for oh < outH, j < outW, i < M
 *   C[i * ldc + oh * outW + j] = sum_k A(i, k) * f32 at (b + table[k] + oh * rowStep + 4 j)
 * with A packed by packA (M x K). C rows are output channel planes (ldc = outH * outW).
 */
export function gemmRows(
  M: i32, K: i32, ap: usize, table: usize, b: usize, rowStep: i32, outH: i32, outW: i32, C: usize, ldc: i32,
): void {
  const panels = (M + 3) >> 2;
  const ldcB = <usize>ldc << 2;
  for (let oh = 0; oh < outH; oh++) {
    const base = b + <usize>(oh * rowStep);
    const crow = at(C, oh * outW);
    for (let ib = 0; ib < panels; ib++) {
      const mr = imin(4, M - ib * 4);
      const a = ap + <usize>(ib * K) * 16;
      const c = at(crow, ib * 4 * ldc);
      let j = 0;
      for (; j + 8 <= outW; j += 8) rowTile4x8(K, a, table, base + (<usize>j << 2), at(c, j), ldcB, mr);
      for (; j < outW; j += 4) rowTile4x4(K, a, table, base + (<usize>j << 2), at(c, j), ldcB, mr, outW - j);
    }
  }
}

/**
 * Implicit GEMM reducing over output positions (weight gradients): for i < M, k < N
 *   C64[i * ldc + k] += sum over oh < outH, ow < outW of
 *     G[i * ldg + oh * outW + ow] * f32 at (b + table[k] + oh * rowStep + 4 ow)
 * 4 x 2 tiles of vector dot products; each row's last partial vector is masked.
 */
export function gemmRowsNT(
  M: i32, N: i32, G: usize, ldg: i32, table: usize, b: usize, rowStep: i32, outH: i32, outW: i32,
  C: usize, ldc: i32,
): void {
  const w4 = <usize>(outW & ~3) << 2;
  const tail = outW & 3;
  const mask = laneMask(tail);
  const gRow = <usize>outW << 2;
  const ldc8 = <usize>ldc << 3;
  for (let i0 = 0; i0 < M; i0 += 4) {
    const mr = imin(4, M - i0);
    const g0 = at(G, i0 * ldg);
    const g1 = mr > 1 ? at(g0, ldg) : g0;
    const g2 = mr > 2 ? at(g0, 2 * ldg) : g0;
    const g3 = mr > 3 ? at(g0, 3 * ldg) : g0;
    for (let j0 = 0; j0 < N; j0 += 2) {
      const nr = imin(2, N - j0);
      const b0 = b + <usize>load<i32>(table + (<usize>j0 << 2));
      const b1 = nr > 1 ? b + <usize>load<i32>(table + (<usize>(j0 + 1) << 2)) : b0;
      let s00 = f32x4.splat(0);
      let s01 = s00;
      let s10 = s00;
      let s11 = s00;
      let s20 = s00;
      let s21 = s00;
      let s30 = s00;
      let s31 = s00;
      for (let oh = 0; oh < outH; oh++) {
        const go = <usize>oh * gRow;
        const bo = <usize>(oh * rowStep);
        const r0 = b0 + bo;
        const r1 = b1 + bo;
        const q0 = g0 + go;
        const q1 = g1 + go;
        const q2 = g2 + go;
        const q3 = g3 + go;
        for (let v: usize = 0; v < w4; v += 16) {
          const x0 = v128.load(r0 + v);
          const x1 = v128.load(r1 + v);
          let a = v128.load(q0 + v);
          s00 = fmadd(a, x0, s00);
          s01 = fmadd(a, x1, s01);
          a = v128.load(q1 + v);
          s10 = fmadd(a, x0, s10);
          s11 = fmadd(a, x1, s11);
          a = v128.load(q2 + v);
          s20 = fmadd(a, x0, s20);
          s21 = fmadd(a, x1, s21);
          a = v128.load(q3 + v);
          s30 = fmadd(a, x0, s30);
          s31 = fmadd(a, x1, s31);
        }
        if (tail) {
          const x0 = v128.and(v128.load(r0 + w4), mask);
          const x1 = v128.and(v128.load(r1 + w4), mask);
          let a = v128.and(v128.load(q0 + w4), mask);
          s00 = fmadd(a, x0, s00);
          s01 = fmadd(a, x1, s01);
          a = v128.and(v128.load(q1 + w4), mask);
          s10 = fmadd(a, x0, s10);
          s11 = fmadd(a, x1, s11);
          a = v128.and(v128.load(q2 + w4), mask);
          s20 = fmadd(a, x0, s20);
          s21 = fmadd(a, x1, s21);
          a = v128.and(v128.load(q3 + w4), mask);
          s30 = fmadd(a, x0, s30);
          s31 = fmadd(a, x1, s31);
        }
      }
      const c = at64(C, i0 * ldc + j0);
      store<f64>(c, load<f64>(c) + hsum64(s00));
      if (nr > 1) store<f64>(c, load<f64>(c, 8) + hsum64(s01), 8);
      if (mr > 1) {
        store<f64>(c + ldc8, load<f64>(c + ldc8) + hsum64(s10));
        if (nr > 1) store<f64>(c + ldc8, load<f64>(c + ldc8, 8) + hsum64(s11), 8);
      }
      if (mr > 2) {
        store<f64>(c + 2 * ldc8, load<f64>(c + 2 * ldc8) + hsum64(s20));
        if (nr > 1) store<f64>(c + 2 * ldc8, load<f64>(c + 2 * ldc8, 8) + hsum64(s21), 8);
      }
      if (mr > 3) {
        store<f64>(c + 3 * ldc8, load<f64>(c + 3 * ldc8) + hsum64(s30));
        if (nr > 1) store<f64>(c + 3 * ldc8, load<f64>(c + 3 * ldc8, 8) + hsum64(s31), 8);
      }
    }
  }
}
