// Batch norm over [batch, channels, spatial].
//
// Work is split by planes (n, c), walked in memory order: a part = a range of planes. A
// channel-per-part split would stride through the batch 64 KiB at a time, which thrashes
// cache sets and scales badly. Reductions therefore produce one float64 partial per plane,
// and a short single-part step adds the planes of each channel in sample order: results do
// not depend on threads.
// Forward statistics (the corrected two-pass algorithm): a first pass gives a provisional
// mean m0 (float32); the second sums d = x - m0 and d^2 (float32 vector partials flushed to
// float64 every FLUSH elements); then, in float64, mean = m0 + sum(d) / M and biased
// variance = sum(d^2) / M - (sum(d) / M)^2. Where |mean| >> std, x - m0 is exact (Sterbenz)
// and d is small, so the mean is accurate to ~1e-8 std instead of being off by ~ulp(mean);
// elsewhere the rounding of x - m0 moves the mean by at most ~ulp(x) / 2 (also ~1e-8 std).
// The normalisation uses the UNROUNDED statistics (`stats64`): scale = f32(invStd * gamma)
// is rounded once, and the mean enters as mh + ml (mh = f32(mean), ml = the float32
// remainder), because (x - mean) * invStd magnifies any error of the mean by |mean| / std
// (a float32-rounded mean of x = 100 + 0.01 N(0, 1) put errors of ~1e-3 into y).
// The elementwise affine stays float32 (about twice the error of a single rounding): a
// float64 evaluation would match the reference but costs 2-3x the pass, while a network's
// forward noise is dominated by the float32 accumulation of its convolutions.
// A null gamma/beta/gradGamma/gradBeta is passed as pointer 0 (never a valid block).

import { at, at64, hsum64, imin } from './common';

/** Float32 vector partial sums are flushed to float64 every FLUSH elements (a multiple of 8). */
const FLUSH = 256;

/** Sum of p[0..n) in float64 (float32 vector partials flushed every FLUSH elements). */
function sumPlane(p: usize, n: i32): f64 {
  let total: f64 = 0;
  const n4 = n & ~3;
  let i = 0;
  while (i < n4) {
    const end = imin(n4, i + FLUSH);
    let a0 = f32x4.splat(0);
    let a1 = a0;
    for (; i + 8 <= end; i += 8) {
      a0 = f32x4.add(a0, v128.load(at(p, i)));
      a1 = f32x4.add(a1, v128.load(at(p, i), 16));
    }
    for (; i < end; i += 4) a0 = f32x4.add(a0, v128.load(at(p, i)));
    total += hsum64(f32x4.add(a0, a1));
  }
  for (; i < n; i++) total += <f64>load<f32>(at(p, i));
  return total;
}

/** Second result of sumDevAndSqDev (globals are per instance, i.e. per thread). */
let sumDevResult: f64 = 0;

/**
 * Returns sum((p[i] - m)^2) and sets sumDevResult = sum(p[i] - m), both in float64 (float32
 * vector partials flushed every FLUSH elements).
 */
function sumDevAndSqDev(p: usize, n: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let totalSq: f64 = 0;
  let totalDev: f64 = 0;
  const n4 = n & ~3;
  let i = 0;
  while (i < n4) {
    const end = imin(n4, i + FLUSH);
    let a0 = f32x4.splat(0);
    let a1 = a0;
    let s0 = a0;
    let s1 = a0;
    for (; i + 8 <= end; i += 8) {
      const d0 = f32x4.sub(v128.load(at(p, i)), mv);
      const d1 = f32x4.sub(v128.load(at(p, i), 16), mv);
      s0 = f32x4.add(s0, d0);
      s1 = f32x4.add(s1, d1);
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
      a1 = f32x4.add(a1, f32x4.mul(d1, d1));
    }
    for (; i < end; i += 4) {
      const d0 = f32x4.sub(v128.load(at(p, i)), mv);
      s0 = f32x4.add(s0, d0);
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
    }
    totalSq += hsum64(f32x4.add(a0, a1));
    totalDev += hsum64(f32x4.add(s0, s1));
  }
  for (; i < n; i++) {
    const d = <f64>load<f32>(at(p, i)) - <f64>m;
    totalDev += d;
    totalSq += d * d;
  }
  sumDevResult = totalDev;
  return totalSq;
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

/**
 * y = ((x - mh) - ml) * scale + shift over n floats, for a float64 mean split as
 * mh = f32(mean), ml = f32(mean - mh): x - mh is exact near the mean (Sterbenz).
 */
function affinePlaneSplit(x: usize, y: usize, n: i32, mh: f32, ml: f32, scale: f32, shift: f32): void {
  const hv = f32x4.splat(mh);
  const lv = f32x4.splat(ml);
  const sv = f32x4.splat(scale);
  const bv = f32x4.splat(shift);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a = f32x4.sub(f32x4.sub(v128.load(at(x, i)), hv), lv);
    const b = f32x4.sub(f32x4.sub(v128.load(at(x, i), 16), hv), lv);
    v128.store(at(y, i), f32x4.add(f32x4.mul(a, sv), bv));
    v128.store(at(y, i), f32x4.add(f32x4.mul(b, sv), bv), 16);
  }
  for (; i + 4 <= n; i += 4) {
    const a = f32x4.sub(f32x4.sub(v128.load(at(x, i)), hv), lv);
    v128.store(at(y, i), f32x4.add(f32x4.mul(a, sv), bv));
  }
  for (; i < n; i++) store<f32>(at(y, i), ((load<f32>(at(x, i)) - mh) - ml) * scale + shift);
}

// @ts-ignore: decorator
@inline function optional(p: usize, c: i32, otherwise: f32): f32 {
  return p != 0 ? load<f32>(at(p, c)) : otherwise;
}

/** Part = planes: partials[p] = sum of plane p. */
export function bnPlaneSums(x: usize, S: i32, planes: i32, partials: usize, planesPerPart: i32, part: i32, tid: i32): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) store<f64>(at64(partials, p), sumPlane(at(x, p * S), S));
}

/** Single part: provisional mean[c] = f32(sum over n (in order) of partials[n*C + c] / (N*S)). */
export function bnMean(partials: usize, N: i32, C: i32, S: i32, mean: usize, part: i32, tid: i32): void {
  const count = <f64>N * <f64>S;
  for (let c = 0; c < C; c++) {
    let s: f64 = 0;
    for (let n = 0; n < N; n++) s += load<f64>(at64(partials, n * C + c));
    store<f32>(at(mean, c), <f32>(s / count));
  }
}

/**
 * Part = planes: partials[2p] = sum over plane p of (x - mean[c]), partials[2p + 1] = sum of
 * (x - mean[c])^2, mean[c] being the provisional mean.
 */
export function bnPlaneSqDev(
  x: usize, mean: usize, C: i32, S: i32, planes: i32, partials: usize, planesPerPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    store<f64>(at64(partials, 2 * p + 1), sumDevAndSqDev(at(x, p * S), S, load<f32>(at(mean, p % C))));
    store<f64>(at64(partials, 2 * p), sumDevResult);
  }
}

/**
 * Single part: from the provisional mean m0 = mean[c] and the channel's sums of d = x - m0
 * and d^2 (planes in sample order): mean = m0 + sum(d) / M, biased variance =
 * sum(d^2) / M - (sum(d) / M)^2, invStd = 1 / sqrt(variance + eps). Writes them rounded to
 * mean[c] and invStd[c] and unrounded to stats64[2c], stats64[2c + 1].
 */
export function bnInvStd(
  partials: usize, N: i32, C: i32, S: i32, eps: f64, mean: usize, invStd: usize, stats64: usize,
  part: i32, tid: i32,
): void {
  const count = <f64>N * <f64>S;
  for (let c = 0; c < C; c++) {
    let sd: f64 = 0;
    let sq: f64 = 0;
    for (let n = 0; n < N; n++) {
      const p = n * C + c;
      sd += load<f64>(at64(partials, 2 * p));
      sq += load<f64>(at64(partials, 2 * p + 1));
    }
    const shift = sd / count;
    const m = <f64>load<f32>(at(mean, c)) + shift;
    const variance = Math.max(sq / count - shift * shift, 0);
    const inv = 1.0 / Math.sqrt(variance + eps);
    store<f64>(at64(stats64, 2 * c), m);
    store<f64>(at64(stats64, 2 * c + 1), inv);
    store<f32>(at(mean, c), <f32>m);
    store<f32>(at(invStd, c), <f32>inv);
  }
}

/**
 * Part = planes: y = (x - mean) * (invStd * gamma[c]) + beta[c]. The statistics are the
 * unrounded stats64[2c], stats64[2c + 1] (train mode) or, when stats64 is 0, the float32
 * mean[c] and invStd[c] (fixed statistics).
 */
export function bnPlaneAffine(
  x: usize, mean: usize, invStd: usize, stats64: usize, gamma: usize, beta: usize, y: usize,
  C: i32, S: i32, planes: i32, planesPerPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * planesPerPart);
  for (let p = part * planesPerPart; p < p1; p++) {
    const c = p % C;
    const m: f64 = stats64 != 0 ? load<f64>(at64(stats64, 2 * c)) : <f64>load<f32>(at(mean, c));
    const inv: f64 = stats64 != 0 ? load<f64>(at64(stats64, 2 * c + 1)) : <f64>load<f32>(at(invStd, c));
    const scale = <f32>(inv * <f64>optional(gamma, c, 1));
    const shift = optional(beta, c, 0);
    const mh = <f32>m;
    const ml = <f32>(m - <f64>mh);
    if (ml == 0) affinePlane(at(x, p * S), at(y, p * S), S, mh, scale, shift);
    else affinePlaneSplit(at(x, p * S), at(y, p * S), S, mh, ml, scale, shift);
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
