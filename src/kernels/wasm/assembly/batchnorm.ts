// Batch norm over [batch, channels, spatial].
//
// Work is split by planes (n, c), walked in memory order: a part = a range of planes. A
// channel-per-part split would stride through the batch 64 KiB at a time, which thrashes
// cache sets and scales badly. Reductions therefore produce one float64 partial per plane
// (float32 vector sums flushed to float64 every 1024 elements), and a short single-part
// step adds the planes of each channel in sample order: results do not depend on threads.
// Statistics use two passes (mean, then squared deviations from it) for accuracy.
// A null gamma/beta/gradGamma/gradBeta is passed as pointer 0 (never a valid block).

import { at, at64, hsum64, imin, sumF64 } from './common';

/** Sum of (p[i] - m)^2 in float64 (float32 vector partials flushed every 1024 elements). */
function sumSqDev(p: usize, n: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let total: f64 = 0;
  const n4 = n & ~3;
  let i = 0;
  while (i < n4) {
    const end = imin(n4, i + 1024);
    let a0 = f32x4.splat(0);
    let a1 = a0;
    for (; i + 8 <= end; i += 8) {
      const d0 = f32x4.sub(v128.load(at(p, i)), mv);
      const d1 = f32x4.sub(v128.load(at(p, i), 16), mv);
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
      a1 = f32x4.add(a1, f32x4.mul(d1, d1));
    }
    for (; i < end; i += 4) {
      const d0 = f32x4.sub(v128.load(at(p, i)), mv);
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
    }
    total += hsum64(f32x4.add(a0, a1));
  }
  for (; i < n; i++) {
    const d = <f64>load<f32>(at(p, i)) - <f64>m;
    total += d * d;
  }
  return total;
}

/** Second result of sumGyAndGyDev (globals are per instance, i.e. per thread). */
let sumGyDevResult: f64 = 0;

/** Returns sum(gy) and sets sumGyDevResult = sum(gy * (x - m)), both in float64. */
function sumGyAndGyDev(gy: usize, x: usize, n: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let totalGy: f64 = 0;
  let totalDev: f64 = 0;
  const n4 = n & ~3;
  let i = 0;
  while (i < n4) {
    const end = imin(n4, i + 1024);
    let g0 = f32x4.splat(0);
    let g1 = g0;
    let d0 = g0;
    let d1 = g0;
    for (; i + 8 <= end; i += 8) {
      const a = v128.load(at(gy, i));
      const b = v128.load(at(gy, i), 16);
      g0 = f32x4.add(g0, a);
      g1 = f32x4.add(g1, b);
      d0 = f32x4.add(d0, f32x4.mul(a, f32x4.sub(v128.load(at(x, i)), mv)));
      d1 = f32x4.add(d1, f32x4.mul(b, f32x4.sub(v128.load(at(x, i), 16), mv)));
    }
    for (; i < end; i += 4) {
      const a = v128.load(at(gy, i));
      g0 = f32x4.add(g0, a);
      d0 = f32x4.add(d0, f32x4.mul(a, f32x4.sub(v128.load(at(x, i)), mv)));
    }
    totalGy += hsum64(f32x4.add(g0, g1));
    totalDev += hsum64(f32x4.add(d0, d1));
  }
  for (; i < n; i++) {
    const g = <f64>load<f32>(at(gy, i));
    totalGy += g;
    totalDev += g * (<f64>load<f32>(at(x, i)) - <f64>m);
  }
  sumGyDevResult = totalDev;
  return totalGy;
}

/** y = (x - m) * scale + shift over n floats. */
function affinePlane(x: usize, y: usize, n: i32, m: f32, scale: f32, shift: f32): void {
  const mv = f32x4.splat(m);
  const sv = f32x4.splat(scale);
  const bv = f32x4.splat(shift);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a = v128.load(at(x, i));
    const b = v128.load(at(x, i), 16);
    v128.store(at(y, i), f32x4.add(f32x4.mul(f32x4.sub(a, mv), sv), bv));
    v128.store(at(y, i), f32x4.add(f32x4.mul(f32x4.sub(b, mv), sv), bv), 16);
  }
  for (; i + 4 <= n; i += 4) {
    v128.store(at(y, i), f32x4.add(f32x4.mul(f32x4.sub(v128.load(at(x, i)), mv), sv), bv));
  }
  for (; i < n; i++) store<f32>(at(y, i), (load<f32>(at(x, i)) - m) * scale + shift);
}

// @ts-ignore: decorator
@inline function optional(p: usize, c: i32, otherwise: f32): f32 {
  return p != 0 ? load<f32>(at(p, c)) : otherwise;
}

/** Part = planes: partials[p] = sum of plane p. */
export function bnPlaneSums(x: usize, S: i32, planes: i32, partials: usize, planesPerPart: i32, part: i32, tid: i32): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) store<f64>(at64(partials, p), sumF64(at(x, p * S), S));
}

/** Single part: mean[c] = sum over n (in order) of partials[n*C + c] / (N*S). */
export function bnMean(partials: usize, N: i32, C: i32, S: i32, mean: usize, part: i32, tid: i32): void {
  const count = <f64>N * <f64>S;
  for (let c = 0; c < C; c++) {
    let s: f64 = 0;
    for (let n = 0; n < N; n++) s += load<f64>(at64(partials, n * C + c));
    store<f32>(at(mean, c), <f32>(s / count));
  }
}

/** Part = planes: partials[p] = sum over plane p of (x - mean[c])^2. */
export function bnPlaneSqDev(
  x: usize, mean: usize, C: i32, S: i32, planes: i32, partials: usize, planesPerPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    store<f64>(at64(partials, p), sumSqDev(at(x, p * S), S, load<f32>(at(mean, p % C))));
  }
}

/** Single part: invStd[c] = 1 / sqrt(biased variance + eps) from the per-plane partials. */
export function bnInvStd(partials: usize, N: i32, C: i32, S: i32, eps: f64, invStd: usize, part: i32, tid: i32): void {
  const count = <f64>N * <f64>S;
  for (let c = 0; c < C; c++) {
    let s: f64 = 0;
    for (let n = 0; n < N; n++) s += load<f64>(at64(partials, n * C + c));
    store<f32>(at(invStd, c), <f32>(1.0 / Math.sqrt(s / count + eps)));
  }
}

/** Part = planes: y = (x - mean[c]) * invStd[c] * gamma[c] + beta[c]. */
export function bnPlaneAffine(
  x: usize, mean: usize, invStd: usize, gamma: usize, beta: usize, y: usize,
  C: i32, S: i32, planes: i32, planesPerPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    const c = p % C;
    const scale = <f32>(<f64>load<f32>(at(invStd, c)) * <f64>optional(gamma, c, 1));
    affinePlane(at(x, p * S), at(y, p * S), S, load<f32>(at(mean, c)), scale, optional(beta, c, 0));
  }
}

/** Part = planes: partials[2p] = sum(gy), partials[2p + 1] = sum(gy * (x - mean[c])) over plane p. */
export function bnPlaneGradSums(
  gy: usize, x: usize, mean: usize, C: i32, S: i32, planes: i32, partials: usize,
  planesPerPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    const base = p * S;
    store<f64>(at64(partials, 2 * p), sumGyAndGyDev(at(gy, base), at(x, base), S, load<f32>(at(mean, p % C))));
    store<f64>(at64(partials, 2 * p + 1), sumGyDevResult);
  }
}

/**
 * Single part: channel sums of the gradient partials (samples in order). Writes gradGamma =
 * invStd * sum(gy (x - mean)) and gradBeta = sum(gy) when non-null, and, when `coef` is
 * non-null, the train-mode coefficients coef[2c] = mean(gy), coef[2c + 1] =
 * invStd * mean(gy * xhat) used by bnPlaneTrainBackward.
 */
export function bnGradFinish(
  partials: usize, N: i32, C: i32, S: i32, invStd: usize, gradGamma: usize, gradBeta: usize, coef: usize,
  part: i32, tid: i32,
): void {
  const count = <f64>N * <f64>S;
  for (let c = 0; c < C; c++) {
    let sumGy: f64 = 0;
    let sumGyDev: f64 = 0;
    for (let n = 0; n < N; n++) {
      const p = n * C + c;
      sumGy += load<f64>(at64(partials, 2 * p));
      sumGyDev += load<f64>(at64(partials, 2 * p + 1));
    }
    const inv = <f64>load<f32>(at(invStd, c));
    const sumGyXhat = sumGyDev * inv;
    if (gradGamma != 0) store<f32>(at(gradGamma, c), <f32>sumGyXhat);
    if (gradBeta != 0) store<f32>(at(gradBeta, c), <f32>sumGy);
    if (coef != 0) {
      store<f32>(at(coef, 2 * c), <f32>(sumGy / count));
      store<f32>(at(coef, 2 * c + 1), <f32>(inv * sumGyXhat / count));
    }
  }
}

/**
 * Part = planes: backward of train-mode batch norm,
 * gx = k * (gy - mean(gy) - xhat * mean(gy * xhat)), k = gamma * invStd, xhat = (x - mean) * invStd,
 * computed as (gy - coef[2c] - (x - mean) * coef[2c + 1]) * k.
 */
export function bnPlaneTrainBackward(
  gy: usize, x: usize, mean: usize, invStd: usize, gamma: usize, coef: usize, gx: usize,
  C: i32, S: i32, planes: i32, planesPerPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    const c = p % C;
    const mu = load<f32>(at(mean, c));
    const k = <f32>(<f64>optional(gamma, c, 1) * <f64>load<f32>(at(invStd, c)));
    const meanGy = load<f32>(at(coef, 2 * c));
    const c2 = load<f32>(at(coef, 2 * c + 1));
    const kv = f32x4.splat(k);
    const mgv = f32x4.splat(meanGy);
    const c2v = f32x4.splat(c2);
    const muv = f32x4.splat(mu);
    const g = at(gy, p * S);
    const xp = at(x, p * S);
    const o = at(gx, p * S);
    let i = 0;
    for (; i + 4 <= S; i += 4) {
      const d = f32x4.sub(v128.load(at(xp, i)), muv);
      const r = f32x4.sub(f32x4.sub(v128.load(at(g, i)), mgv), f32x4.mul(d, c2v));
      v128.store(at(o, i), f32x4.mul(r, kv));
    }
    for (; i < S; i++) {
      const d = load<f32>(at(xp, i)) - mu;
      store<f32>(at(o, i), (load<f32>(at(g, i)) - meanGy - d * c2) * k);
    }
  }
}

/** Part = planes: backward of batch norm with constant statistics, gx = gy * invStd * gamma. */
export function bnPlaneApplyBackward(
  gy: usize, invStd: usize, gamma: usize, gx: usize, C: i32, S: i32, planes: i32, planesPerPart: i32,
  part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    const c = p % C;
    const k = <f32>(<f64>optional(gamma, c, 1) * <f64>load<f32>(at(invStd, c)));
    const kv = f32x4.splat(k);
    const g = at(gy, p * S);
    const o = at(gx, p * S);
    let i = 0;
    for (; i + 4 <= S; i += 4) v128.store(at(o, i), f32x4.mul(v128.load(at(g, i)), kv));
    for (; i < S; i++) store<f32>(at(o, i), load<f32>(at(g, i)) * k);
  }
}
