// Shared helpers of the SIMD kernels.
//
// Conventions of every file in this folder:
// - Pointers are byte offsets into the one shared memory (usize); element counts are i32.
// - Nothing here allocates: the JS side owns the memory (its allocator starts above
//   `heapBase()`) and hands every kernel the scratch it needs. The stub runtime would
//   otherwise bump-allocate into memory the JS allocator has handed out.
// - Vector loops may READ up to 12 bytes past the last element of a buffer (the JS
//   allocator rounds blocks to 256 bytes and keeps slack at the top of memory), but never
//   write past it, except into scratch, whose layout leaves room for that.

/** First byte not used by the module's static data. */
export function heapBase(): usize {
  return __heap_base;
}

/** Address of element `index` of a float32 array at `base`. */
// @ts-ignore: decorator
@inline export function at(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

/** Address of element `index` of a float64 array at `base`. */
// @ts-ignore: decorator
@inline export function at64(base: usize, index: i32): usize {
  return base + (<usize>index << 3);
}

// @ts-ignore: decorator
@inline export function roundUp4(n: i32): i32 {
  return (n + 3) & ~3;
}

// @ts-ignore: decorator
@inline export function align64(bytes: i32): i32 {
  return (bytes + 63) & ~63;
}

// @ts-ignore: decorator
@inline export function imin(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

// @ts-ignore: decorator
@inline export function imax(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

/** Stores the first `n` lanes of `v` at `p` (all four when n >= 4); never writes past them. */
// @ts-ignore: decorator
@inline export function storeLanes(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
  } else {
    store<f32>(p, f32x4.extract_lane(v, 0));
    if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
    if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
  }
}

/** Lane sum in a fixed order, in float64 (used where partial sums are combined). */
// @ts-ignore: decorator
@inline export function hsum64(v: v128): f64 {
  return (<f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1)) +
    (<f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3));
}

/** Lane sum in a fixed order, in float32. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** p[0..n) = value. */
export function fillF32(p: usize, n: i32, value: f32): void {
  if (value == 0 && n >= 1024) {
    memory.fill(p, 0, <usize>n << 2); // a libc memset beats the loop on big blocks
    return;
  }
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const q = at(p, i);
    v128.store(q, v);
    v128.store(q, v, 16);
    v128.store(q, v, 32);
    v128.store(q, v, 48);
  }
  for (; i + 4 <= n; i += 4) v128.store(at(p, i), v);
  for (; i < n; i++) store<f32>(at(p, i), value);
}

/** dst[0..n) = src[0..n); exact (no over-write). The ranges must not overlap. */
export function copyF32(dst: usize, src: usize, n: i32): void {
  if (n >= 256) {
    memory.copy(dst, src, <usize>n << 2); // a call, but memmove wins on long rows
    return;
  }
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(dst, i), v128.load(at(src, i)));
  for (; i < n; i++) store<f32>(at(dst, i), load<f32>(at(src, i)));
}

/**
 * dst[0..roundUp4(n)) = src[...]: copies whole vectors, so it may write up to 3 floats past
 * dst[n - 1]. Only for scratch rows whose stride is rounded up to whole vectors.
 */
// @ts-ignore: decorator
@inline export function copyF32Over(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a = v128.load(at(src, i));
    const b = v128.load(at(src, i), 16);
    v128.store(at(dst, i), a);
    v128.store(at(dst, i), b, 16);
  }
  for (; i < n; i += 4) v128.store(at(dst, i), v128.load(at(src, i)));
}

/** dst[0..n) += src[0..n). */
export function addF32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = at(dst, i);
    v128.store(q, f32x4.add(v128.load(q), v128.load(at(src, i))));
  }
  for (; i < n; i++) {
    const q = at(dst, i);
    store<f32>(q, load<f32>(q) + load<f32>(at(src, i)));
  }
}

/**
 * a * b + c per lane. The relaxed-SIMD build (compiled with `--enable relaxed-simd`) uses
 * f32x4.relaxed_madd, which V8 lowers to one fused multiply-add (a single rounding) where the
 * CPU has FMA; the baseline build multiplies and adds (two roundings). Every kernel writes
 * its multiply-adds through this, so the two builds differ exactly there.
 */
// @ts-ignore: decorator
@inline export function fmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** 1 in the relaxed-SIMD build, 0 in the baseline one. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
