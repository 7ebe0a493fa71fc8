// Fully connected layer kernels on top of the GEMM routines. Parts split the OUTPUT rows
// (of y / gradX by sample rows, of gradW by output features), so each output element is
// computed whole by one part and the result does not depend on the thread count.

import { at, imin } from './common';
import { gemmNN, gemmNT, packBytes, panelBytes } from './gemm';

/** y[m, n] = x[m, :] . w[n, :] (+ bias[n]) for rows [part*rowsPerPart, ...). */
export function linear(
  x: usize, w: usize, bias: usize, y: usize, rows: i32, inF: i32, outF: i32, rowsPerPart: i32,
  part: i32, tid: i32,
): void {
  const m0 = part * rowsPerPart;
  const mr = imin(rows, m0 + rowsPerPart) - m0;
  const yp = at(y, m0 * outF);
  gemmNT(mr, outF, inF, at(x, m0 * inF), inF, w, inF, yp, outF, false);
  if (bias != 0) {
    for (let m = 0; m < mr; m++) {
      for (let o = 0; o < outF; o++) {
        const p = at(yp, m * outF + o);
        store<f32>(p, load<f32>(p) + load<f32>(at(bias, o)));
      }
    }
  }
}

/**
 * Per-thread scratch of linearGradInput (reduction length outF, rows per part) and of
 * linearGradWeight (reduction length rows, features per part): A packing then a B panel.
 */
export function linearScratchBytes(reduction: i32, perPart: i32): i32 {
  return ((packBytes(perPart, reduction) + 63) & ~63) + panelBytes(reduction);
}

/** gx[m, k] = sum_n gy[m, n] * w[n, k] for rows [part*rowsPerPart, ...). */
export function linearGradInput(
  gy: usize, w: usize, gx: usize, rows: i32, inF: i32, outF: i32, rowsPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const m0 = part * rowsPerPart;
  const mr = imin(rows, m0 + rowsPerPart) - m0;
  const pack = scratch + <usize>(tid * scratchStride);
  const panel = pack + <usize>((packBytes(rowsPerPart, outF) + 63) & ~63);
  gemmNN(mr, inF, outF, at(gy, m0 * outF), outF, 1, w, inF, at(gx, m0 * inF), inF, pack, panel);
}

/**
 * gw[n, k] = sum_m gy[m, n] * x[m, k] and gb[n] = sum_m gy[m, n] (float64) for output
 * features [part*featuresPerPart, ...): A = gy^T is read through strides.
 */
export function linearGradWeight(
  x: usize, gy: usize, gw: usize, gb: usize, rows: i32, inF: i32, outF: i32, featuresPerPart: i32,
  scratch: usize, scratchStride: i32, part: i32, tid: i32,
): void {
  const n0 = part * featuresPerPart;
  const n1 = imin(outF, n0 + featuresPerPart);
  const pack = scratch + <usize>(tid * scratchStride);
  const panel = pack + <usize>((packBytes(featuresPerPart, rows) + 63) & ~63);
  gemmNN(n1 - n0, inF, rows, at(gy, n0), 1, outF, x, inF, at(gw, n0 * inF), inF, pack, panel);
  if (gb != 0) {
    for (let o = n0; o < n1; o++) {
      let s: f64 = 0;
      for (let m = 0; m < rows; m++) s += <f64>load<f32>(at(gy, m * outF + o));
      store<f32>(at(gb, o), <f32>s);
    }
  }
}
