// The multiply-add peak of this machine's wasm SIMD, measured by the benchmarks in the same
// process right before they time anything: 12 independent chains of fmadd (4 lanes each), no
// memory traffic. 96 floating-point operations per iteration (a multiply-add counts 2).

import { fmadd, hsum } from './common';

/**
 * Runs `iterations` iterations; one part per thread (parts write nothing, the sum is returned
 * only so that the loop is not removed). `seed` near 1 keeps the values finite.
 */
export function simdPeak(iterations: i32, seed: f32, part: i32, tid: i32): f32 {
  const b = f32x4.splat(seed);
  const c = f32x4.splat(<f32>1e-3 * <f32>(part + 1));
  let a0 = f32x4.splat(0.1);
  let a1 = f32x4.splat(0.2);
  let a2 = f32x4.splat(0.3);
  let a3 = f32x4.splat(0.4);
  let a4 = f32x4.splat(0.5);
  let a5 = f32x4.splat(0.6);
  let a6 = f32x4.splat(0.7);
  let a7 = f32x4.splat(0.8);
  let a8 = f32x4.splat(0.9);
  let a9 = f32x4.splat(1.0);
  let a10 = f32x4.splat(1.1);
  let a11 = f32x4.splat(1.2);
  for (let i = 0; i < iterations; i++) {
    a0 = fmadd(a0, b, c);
    a1 = fmadd(a1, b, c);
    a2 = fmadd(a2, b, c);
    a3 = fmadd(a3, b, c);
    a4 = fmadd(a4, b, c);
    a5 = fmadd(a5, b, c);
    a6 = fmadd(a6, b, c);
    a7 = fmadd(a7, b, c);
    a8 = fmadd(a8, b, c);
    a9 = fmadd(a9, b, c);
    a10 = fmadd(a10, b, c);
    a11 = fmadd(a11, b, c);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return hsum(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11)))) + <f32>tid * 0;
}
