/**
 * Deriving the genotype from the architecture parameters (spec section 5), bit-exact with the
 * authors' float32 code: PyTorch's CPU softmax reproduced in float32, W = softmax(alpha) *
 * beta_w, the top-2 edges per node and the strongest operation per edge.
 */
import {
  type ArchMatrix, type ArchitectureParameters, edgeCount, type EdgeWeights, type Genotype, nodeFirstEdge,
  type NumberVector, stepsForEdgeCount,
} from './genotype.js';
import { NONE_INDEX, PRIMITIVES, type Primitive } from './primitives.js';

const fround = Math.fround;
const OPERATION_COUNT = PRIMITIVES.length;

// ---------------------------------------------------------------------------------------
// float32 softmax, bit-exact with PyTorch 1.13's CPU kernel (AVX2 build)

const F32_SCRATCH = new Float32Array(1);
const F32_BITS = new Int32Array(F32_SCRATCH.buffer);

/** The float32 next to `value` (a float32) in the direction of `target`. */
function nextFloat32Toward(value: number, target: number): number {
  F32_SCRATCH[0] = value;
  // For a positive float32 a larger bit pattern is a larger value; for a negative one, smaller.
  F32_BITS[0] += (target > value) === (value > 0) ? 1 : -1;
  return F32_SCRATCH[0]!;
}

/**
 * fround(a * b + c) with ONE rounding (a fused multiply-add) for float32 a, b, c: a * b is
 * exact in float64, the sum is split into float64 s + exact error (TwoSum), and the only case
 * where fround(s) differs from the correctly rounded result, s exactly halfway between two
 * float32s, is decided by the sign of the error.
 */
function fmaFloat32(a: number, b: number, c: number): number {
  const product = a * b;
  const s = product + c;
  const bVirtual = s - product;
  const error = product - (s - bVirtual) + (c - bVirtual);
  const rounded = fround(s);
  if (error === 0 || rounded === s) return rounded;
  const neighbour = nextFloat32Toward(rounded, s);
  if (s - rounded !== neighbour - s) return rounded;
  return error > 0 ? Math.max(rounded, neighbour) : Math.min(rounded, neighbour);
}

/** Round half to even, as the vector float-to-int conversion (cvtps2dq) does. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const LOG2E_F32 = fround(1.442695040888963407359924681001892137426645954152985934135449406931);
const LN2_HIGH_F32 = fround(0.693145751953125);
const LN2_LOW_F32 = fround(1.428606765330187045e-6);
const EXP_POLYNOMIAL_F32 = [
  0.000198527617612853646278381, 0.00139304355252534151077271, 0.00833336077630519866943359,
  0.0416664853692054748535156, 0.166666671633720397949219, 0.5,
].map(fround);

/**
 * exp in float32 as SLEEF's `Sleef_expf8_u10` (what PyTorch's vectorised `exp()` calls on an
 * AVX2 CPU; with FMA), step by step. It is within 1 ULP of the true value but NOT always the
 * correctly rounded float32 that fround(Math.exp(x)) gives, and that ULP decides near-ties.
 */
export function expFloat32(x: number): number {
  const d = fround(x);
  if (d < -104) return 0;
  if (d > 100) return Infinity;
  const q = roundHalfEven(fround(d * LOG2E_F32));
  let s = fmaFloat32(q, -LN2_HIGH_F32, d);
  s = fmaFloat32(q, -LN2_LOW_F32, s);
  let u = EXP_POLYNOMIAL_F32[0]!;
  for (let k = 1; k < EXP_POLYNOMIAL_F32.length; k++) u = fmaFloat32(u, s, EXP_POLYNOMIAL_F32[k]!);
  u = fround(1 + fmaFloat32(fround(s * s), u, s));
  // ldexp in two halves, each a float32 multiply, as SLEEF's vldexp2
  const half = q >> 1;
  return fround(fround(u * 2 ** half) * 2 ** (q - half));
}

const VECTOR_LANES = 8; // float32 lanes of an AVX2 register

/**
 * float32 sum in the order of PyTorch's `vec::reduce_all` with 8-lane vectors: fewer than 8
 * values are added one by one; otherwise lane-wise into 8 accumulators, then folded as
 * (l0+l4 + l2+l6) + (l1+l5 + l3+l7).
 */
export function sumFloat32(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return 0;
  if (n < VECTOR_LANES) {
    let sum = fround(values[0]!);
    for (let i = 1; i < n; i++) sum = fround(sum + values[i]!);
    return sum;
  }
  const lanes = Array.from({ length: VECTOR_LANES }, (_, i) => fround(values[i]!));
  for (let i = VECTOR_LANES; i < n; i++) lanes[i % VECTOR_LANES] = fround(lanes[i % VECTOR_LANES]! + values[i]!);
  const quad = [0, 1, 2, 3].map((i) => fround(lanes[i]! + lanes[i + 4]!));
  return fround(fround(quad[0]! + quad[2]!) + fround(quad[1]! + quad[3]!));
}

/**
 * Softmax in float32, bit-exact with PyTorch 1.13's CPU kernel for a contiguous last
 * dimension (`_vec_softmax_lastdim`, AVX2): m = max(x); e = expFloat32(x - m); s =
 * sumFloat32(e); y = e * fround(1 / s) (a multiply by the reciprocal, not a division).
 * Checked bit for bit against torch.softmax on 250,000 values (rows of 2..8, scales 1e-3..5);
 * fround(Math.exp) instead of SLEEF's exp, a division, or another summation order each
 * change a few percent of the results by one ULP, and so the ranking of near-ties.
 */
export function softmax32(x: NumberVector): Float32Array {
  const n = x.length;
  const out = new Float32Array(n);
  if (n === 0) return out;
  let max = fround(x[0]!);
  for (let i = 1; i < n; i++) {
    const v = fround(x[i]!);
    if (v > max) max = v;
  }
  for (let i = 0; i < n; i++) out[i] = expFloat32(fround(fround(x[i]!) - max));
  const inverse = fround(1 / sumFloat32(out));
  for (let i = 0; i < n; i++) out[i] = fround(out[i]! * inverse);
  return out;
}

/** float32 softmax over the operations of each edge row (alpha_w of spec section 3). */
export function softmaxRows(alphas: ArchMatrix, what = 'alphas'): Float32Array[] {
  return archRows(alphas, what).map((row) => softmax32(row));
}

/**
 * float32 softmax of the betas, separately over each node's slice (beta_w of spec section 3).
 * Returns one weight per edge.
 */
export function nodeSoftmax(betas: NumberVector, steps: number, what = 'betas'): Float32Array {
  const edges = edgeCount(steps);
  if (betas.length !== edges) {
    throw new Error(`${what}: expected ${edges} values for ${steps} steps, got ${betas.length}`);
  }
  checkFinite(betas, what);
  const out = new Float32Array(edges);
  for (let node = 0; node < steps; node++) {
    const start = nodeFirstEdge(node);
    const end = start + node + 2;
    out.set(softmax32(Array.prototype.slice.call(betas, start, end) as number[]), start);
  }
  return out;
}

function checkFinite(values: NumberVector, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${what}[${i}]: expected a finite number, got ${String(v)}`);
    }
  }
}

/** Splits an ArchMatrix into rows of 8 and checks every value. */
function archRows(matrix: ArchMatrix, what: string): NumberVector[] {
  if (matrix.length === 0) throw new Error(`${what}: empty`);
  const first = matrix[0];
  const rows: NumberVector[] = [];
  if (typeof first === 'number') {
    const flat = matrix as NumberVector;
    if (flat.length % OPERATION_COUNT !== 0) {
      throw new Error(
        `${what}: ${flat.length} values is not a whole number of rows of ${OPERATION_COUNT} operations`,
      );
    }
    for (let start = 0; start < flat.length; start += OPERATION_COUNT) {
      rows.push(Array.prototype.slice.call(flat, start, start + OPERATION_COUNT) as number[]);
    }
  } else {
    const nested = matrix as ReadonlyArray<NumberVector>;
    for (let e = 0; e < nested.length; e++) {
      const row = nested[e];
      if (row === null || typeof row !== 'object' || typeof row.length !== 'number') {
        throw new Error(`${what}[${e}]: expected a row of ${OPERATION_COUNT} numbers`);
      }
      if (row.length !== OPERATION_COUNT) {
        throw new Error(`${what}[${e}]: expected ${OPERATION_COUNT} values (one per operation), got ${row.length}`);
      }
      rows.push(row);
    }
  }
  rows.forEach((row, e) => checkFinite(row, `${what}[${e}]`));
  return rows;
}

// ---------------------------------------------------------------------------------------
// derivation (spec section 5)

/** W[e][o] = fround(softmax(alpha)[e][o] * beta_w[e]) for one cell type. */
function cellEdgeWeights(
  alphas: ArchMatrix,
  betas: NumberVector | undefined,
  steps: number,
  what: string,
): Float32Array[] {
  const alphaWeights = softmaxRows(alphas, `alphas${what}`);
  const edges = edgeCount(steps);
  if (alphaWeights.length !== edges) {
    throw new Error(`alphas${what}: expected ${edges} edges for ${steps} steps, got ${alphaWeights.length}`);
  }
  if (betas === undefined) return alphaWeights;
  const betaWeights = nodeSoftmax(betas, steps, `betas${what}`);
  return alphaWeights.map((row, e) => row.map((w) => fround(w * betaWeights[e]!)));
}

function resolveSteps(arch: ArchitectureParameters, steps: number | undefined): number {
  if (steps !== undefined) {
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps: expected a positive integer, got ${steps}`);
    return steps;
  }
  return stepsForEdgeCount(archRows(arch.alphasNormal, 'alphasNormal').length, 'alphasNormal');
}

/** The W matrices of both cell types (softmax(alpha) * beta_w, float32), e.g. for reports. */
export function edgeWeights(arch: ArchitectureParameters, steps?: number): EdgeWeights {
  const s = resolveSteps(arch, steps);
  return {
    normal: cellEdgeWeights(arch.alphasNormal, arch.betasNormal, s, 'Normal').map((row) => Array.from(row)),
    reduce: cellEdgeWeights(arch.alphasReduce, arch.betasReduce, s, 'Reduce').map((row) => Array.from(row)),
  };
}

/** Largest weight of an edge row and its operation, `none` excluded; ties: lower index. */
function bestOperation(row: ArrayLike<number>): { index: number; weight: number } {
  let index = -1;
  for (let o = 0; o < row.length; o++) {
    if (o === NONE_INDEX) continue;
    if (index < 0 || row[o]! > row[index]!) index = o;
  }
  return { index, weight: row[index]! };
}

/** The authors' `_parse`: per node, the 2 strongest edges and each one's strongest op. */
function parseCell(weights: ReadonlyArray<ArrayLike<number>>, steps: number): [Primitive, number][] {
  const gene: [Primitive, number][] = [];
  for (let node = 0; node < steps; node++) {
    const start = nodeFirstEdge(node);
    const inputs = Array.from({ length: node + 2 }, (_, j) => j);
    const strength = inputs.map((j) => bestOperation(weights[start + j]!).weight);
    // Array.prototype.sort is stable: equal strengths keep the lower input first, as Python's sorted.
    const kept = inputs.sort((a, b) => strength[b]! - strength[a]!).slice(0, 2);
    for (const j of kept) gene.push([PRIMITIVES[bestOperation(weights[start + j]!).index]!, j]);
  }
  return gene;
}

/** concat = [2 + steps - multiplier .. steps + 1] (spec section 5). */
export function concatRange(steps: number, multiplier: number = steps): number[] {
  if (!Number.isInteger(multiplier) || multiplier < 1 || multiplier > steps) {
    throw new Error(`multiplier: expected an integer in 1..${steps} (steps), got ${multiplier}`);
  }
  return Array.from({ length: multiplier }, (_, k) => 2 + steps - multiplier + k);
}

/**
 * Derives the genotype from the architecture parameters exactly as the authors' code
 * (spec section 5). `steps` defaults to what the alphas' edge count implies, `multiplier`
 * to `steps`.
 */
export function deriveGenotype(arch: ArchitectureParameters, steps?: number, multiplier?: number): Genotype {
  const s = resolveSteps(arch, steps);
  const concat = concatRange(s, multiplier ?? s);
  return {
    normal: parseCell(cellEdgeWeights(arch.alphasNormal, arch.betasNormal, s, 'Normal'), s),
    normal_concat: concat,
    reduce: parseCell(cellEdgeWeights(arch.alphasReduce, arch.betasReduce, s, 'Reduce'), s),
    reduce_concat: [...concat],
  };
}
