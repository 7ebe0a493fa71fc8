// Elementwise kernels, dot product and channel copies. Part = the elements
// [part * chunk, min(n, (part + 1) * chunk)); chunk is a multiple of 16.
// Outputs may alias inputs (each element is read before it is written).

import { addF32, at, at64, copyF32, fillF32, imin } from './common';

/** y = x > 0 ? x : 0. pmax(0, x) = 0 < x ? x : 0 is exactly that (NaN and -0 give 0), branch-free. */
export function relu(x: usize, y: usize, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  const zero = f32x4.splat(0);
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    v128.store(at(y, i), f32x4.pmax(zero, v128.load(at(x, i))));
    v128.store(at(y, i), f32x4.pmax(zero, v128.load(at(x, i), 16)), 16);
  }
  for (; i < i1; i++) {
    const v = load<f32>(at(x, i));
    store<f32>(at(y, i), v > 0 ? v : 0);
  }
}

/** gx = x > 0 ? gy : 0, as a bit mask (a data-dependent branch would mispredict). */
export function reluBackward(gy: usize, x: usize, gx: usize, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  const zero = f32x4.splat(0);
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    const m0 = f32x4.gt(v128.load(at(x, i)), zero);
    const m1 = f32x4.gt(v128.load(at(x, i), 16), zero);
    v128.store(at(gx, i), v128.and(v128.load(at(gy, i)), m0));
    v128.store(at(gx, i), v128.and(v128.load(at(gy, i), 16), m1), 16);
  }
  for (; i < i1; i++) store<f32>(at(gx, i), load<f32>(at(x, i)) > 0 ? load<f32>(at(gy, i)) : 0);
}

/** out = a + b. */
export function add(a: usize, b: usize, out: usize, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    v128.store(at(out, i), f32x4.add(v128.load(at(a, i)), v128.load(at(b, i))));
    v128.store(at(out, i), f32x4.add(v128.load(at(a, i), 16), v128.load(at(b, i), 16)), 16);
  }
  for (; i < i1; i++) store<f32>(at(out, i), load<f32>(at(a, i)) + load<f32>(at(b, i)));
}

/** y += alpha * x. */
export function axpy(alpha: f32, x: usize, y: usize, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  const av = f32x4.splat(alpha);
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    const p = at(y, i);
    v128.store(p, f32x4.add(v128.load(p), f32x4.mul(av, v128.load(at(x, i)))));
    v128.store(p, f32x4.add(v128.load(p, 16), f32x4.mul(av, v128.load(at(x, i), 16))), 16);
  }
  for (; i < i1; i++) {
    const p = at(y, i);
    store<f32>(p, load<f32>(p) + alpha * load<f32>(at(x, i)));
  }
}

/** out = alpha * x. */
export function scale(x: usize, alpha: f32, out: usize, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  const av = f32x4.splat(alpha);
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    v128.store(at(out, i), f32x4.mul(av, v128.load(at(x, i))));
    v128.store(at(out, i), f32x4.mul(av, v128.load(at(x, i), 16)), 16);
  }
  for (; i < i1; i++) store<f32>(at(out, i), alpha * load<f32>(at(x, i)));
}

/**
 * partials[part] = sum over the chunk of a[i] * b[i] in float64: products of float32 values
 * are exact in float64, accumulated in two f64x2 lanes pairs. The caller sums the chunk
 * partials in order.
 */
export function dot(a: usize, b: usize, n: i32, chunk: i32, partials: usize, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  let s0 = f64x2.splat(0);
  let s1 = s0;
  let i = part * chunk;
  for (; i + 4 <= i1; i += 4) {
    const x = v128.load(at(a, i));
    const y = v128.load(at(b, i));
    s0 = f64x2.add(s0, f64x2.mul(f64x2.promote_low_f32x4(x), f64x2.promote_low_f32x4(y)));
    const xh = v128.shuffle<f32>(x, x, 2, 3, 0, 1);
    const yh = v128.shuffle<f32>(y, y, 2, 3, 0, 1);
    s1 = f64x2.add(s1, f64x2.mul(f64x2.promote_low_f32x4(xh), f64x2.promote_low_f32x4(yh)));
  }
  const s = f64x2.add(s0, s1);
  let total = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < i1; i++) total += <f64>load<f32>(at(a, i)) * <f64>load<f32>(at(b, i));
  store<f64>(at64(partials, part), total);
}

/**
 * Part = units [part * perPart, ...) of the (sample, destination channel) planes of dst, in
 * memory order. table: per destination channel two u32: the address of sample 0's source
 * plane (0: write zeros, or with `accumulate` leave the plane alone) and the source's sample
 * stride in bytes. With `accumulate` the source planes are added to dst.
 */
export function gatherChannels(
  table: usize, dst: usize, dstChannels: i32, plane: i32, units: i32, perPart: i32, accumulate: i32, part: i32, tid: i32,
): void {
  const u1 = imin(units, (part + 1) * perPart);
  for (let u = part * perPart; u < u1; u++) {
    const n = u / dstChannels;
    const entry = table + (<usize>(u - n * dstChannels) << 3);
    const src = load<u32>(entry);
    const out = at(dst, u * plane);
    if (src == 0) {
      if (!accumulate) fillF32(out, plane, 0);
    } else if (accumulate) {
      addF32(out, <usize>src + <usize>n * <usize>load<u32>(entry, 4), plane);
    } else {
      copyF32(out, <usize>src + <usize>n * <usize>load<u32>(entry, 4), plane);
    }
  }
}

/**
 * out = ((w0 * x0 + w1 * x1) + w2 * x2) + ... per element, every step rounded to float32 (the
 * order of a scale followed by axpys). table: `count` u32 input addresses, then `count` f32
 * weights.
 */
export function weightedSum(table: usize, count: i32, out: usize, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  const weights = table + (<usize>count << 2);
  const x0 = <usize>load<u32>(table);
  const w0 = f32x4.splat(load<f32>(weights));
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    let a = f32x4.mul(w0, v128.load(at(x0, i)));
    let b = f32x4.mul(w0, v128.load(at(x0, i), 16));
    for (let k = 1; k < count; k++) {
      const x = <usize>load<u32>(table + (<usize>k << 2));
      const w = f32x4.splat(load<f32>(weights + (<usize>k << 2)));
      a = f32x4.add(a, f32x4.mul(w, v128.load(at(x, i))));
      b = f32x4.add(b, f32x4.mul(w, v128.load(at(x, i), 16)));
    }
    v128.store(at(out, i), a);
    v128.store(at(out, i), b, 16);
  }
  for (; i < i1; i++) {
    let acc = load<f32>(weights) * load<f32>(at(x0, i));
    for (let k = 1; k < count; k++) {
      acc += load<f32>(weights + (<usize>k << 2)) * load<f32>(at(<usize>load<u32>(table + (<usize>k << 2)), i));
    }
    store<f32>(at(out, i), acc);
  }
}

/**
 * partials[part * count + k] = `dot`'s chunk partial of a and the k-th vector of `table`
 * (count u32 addresses): the same float64 accumulation per vector, with a's chunk read from
 * cache after the first.
 */
export function dots(a: usize, table: usize, count: i32, n: i32, chunk: i32, partials: usize, part: i32, tid: i32): void {
  for (let k = 0; k < count; k++) {
    dot(a, <usize>load<u32>(table + (<usize>k << 2)), n, chunk, partials + (<usize>(part * count + k) << 3) - (<usize>part << 3), part, tid);
  }
}

/** Part = samples [part * perPart, ...): out = factors[s] * x over each sample's `per` floats. */
export function scaleSamples(x: usize, factors: usize, out: usize, per: i32, batch: i32, perPart: i32, part: i32, tid: i32): void {
  const s1 = imin(batch, (part + 1) * perPart);
  for (let s = part * perPart; s < s1; s++) {
    scale(at(x, s * per), load<f32>(at(factors, s)), at(out, s * per), per, per, 0, tid);
  }
}

/**
 * outs[k] = alphas[k] * x for k < count, per chunk of elements; table: count u32 output
 * addresses, then count f32 factors. Each product is `scale`'s.
 */
export function scaleMany(x: usize, table: usize, count: i32, n: i32, chunk: i32, part: i32, tid: i32): void {
  const i1 = imin(n, (part + 1) * chunk);
  const alphas = table + (<usize>count << 2);
  let i = part * chunk;
  for (; i + 8 <= i1; i += 8) {
    const a = v128.load(at(x, i));
    const b = v128.load(at(x, i), 16);
    for (let k = 0; k < count; k++) {
      const out = <usize>load<u32>(table + (<usize>k << 2));
      const s = f32x4.splat(load<f32>(alphas + (<usize>k << 2)));
      v128.store(at(out, i), f32x4.mul(s, a));
      v128.store(at(out, i), f32x4.mul(s, b), 16);
    }
  }
  for (; i < i1; i++) {
    const v = load<f32>(at(x, i));
    for (let k = 0; k < count; k++) {
      store<f32>(at(<usize>load<u32>(table + (<usize>k << 2)), i), load<f32>(alphas + (<usize>k << 2)) * v);
    }
  }
}

/**
 * Part = planes [part * perPart, ...) of h x w: dst = src[offset:, offset:], or with
 * `backward` the adjoint (the cropped src placed at [offset:, offset:] of a zeroed dst).
 */
export function cropPlanes(
  src: usize, dst: usize, planes: i32, h: i32, w: i32, offset: i32, backward: i32, perPart: i32, part: i32, tid: i32,
): void {
  const p1 = imin(planes, (part + 1) * perPart);
  const oh = h - offset;
  const ow = w - offset;
  for (let p = part * perPart; p < p1; p++) {
    const full = at(backward ? dst : src, p * h * w);
    const cropped = at(backward ? src : dst, p * oh * ow);
    if (backward) fillF32(full, offset * w, 0);
    for (let r = 0; r < oh; r++) {
      const f = full + (<usize>((r + offset) * w) << 2);
      const c = cropped + (<usize>(r * ow) << 2);
      if (backward) {
        fillF32(f, offset, 0);
        copyF32(f + (<usize>offset << 2), c, ow);
      } else {
        copyF32(c, f + (<usize>offset << 2), ow);
      }
    }
  }
}
