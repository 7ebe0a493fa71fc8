/**
 * The genotype: the discrete architecture found by the search, and the single currency
 * between search, training and visualisation (spec section 5). Here: derivation from the
 * architecture parameters (bit-exact with the authors' float32 code), validation, the JSON
 * file form, the authors' Python text form (parsed, never evaluated), and the published
 * genotypes by name.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { NONE_INDEX, PRIMITIVES, isPrimitive, type Primitive } from './primitives.js';
import {
  PUBLISHED_GENOTYPES,
  PUBLISHED_GENOTYPE_NAMES,
  type PublishedGenotypeName,
} from './published-genotypes.js';

export { PUBLISHED_GENOTYPE_NAMES, type PublishedGenotypeName };

/**
 * Field names are snake_case because they ARE the JSON file format (spec section 5).
 * `normal[2 * i]` and `normal[2 * i + 1]` are the two (operation, input state) pairs of
 * intermediate node i; input 0 and 1 are the cell inputs, input j >= 2 is node j - 2.
 */
export interface Genotype {
  normal: [Primitive, number][];
  normal_concat: number[];
  reduce: [Primitive, number][];
  reduce_concat: number[];
}

/** A vector of numbers: a Float32Array from a tensor, or a plain array from JSON. */
export type NumberVector = ArrayLike<number>;

/** An edges x operations matrix: flat row-major (edges * 8 values) or one row per edge. */
export type ArchMatrix = NumberVector | ReadonlyArray<NumberVector>;

/** The four architecture tensors of the search network (spec section 4). */
export interface ArchitectureParameters {
  alphasNormal: ArchMatrix;
  alphasReduce: ArchMatrix;
  /** Absent when edge normalisation is off: every beta weight is then 1 (spec section 3). */
  betasNormal?: NumberVector;
  betasReduce?: NumberVector;
}

/** W = softmax(alpha) * beta_w per edge, one row of 8 float32 values per edge. */
export interface EdgeWeights {
  normal: number[][];
  reduce: number[][];
}

const fround = Math.fround;
const OPERATION_COUNT = PRIMITIVES.length;

/** Number of edges of a cell with `steps` intermediate nodes: 2 + 3 + ... + (steps + 1). */
export function edgeCount(steps: number): number {
  return (steps * (steps + 3)) / 2;
}

/** First edge of node i (node i takes edges from states 0 .. i + 1, numbered in that order). */
export function nodeFirstEdge(node: number): number {
  return (node * (node + 3)) / 2;
}

/** Inverse of `edgeCount`; throws when no whole number of steps gives `edges`. */
export function stepsForEdgeCount(edges: number, what = 'architecture'): number {
  const steps = Math.round((Math.sqrt(9 + 8 * edges) - 3) / 2);
  if (steps < 1 || edgeCount(steps) !== edges) {
    throw new Error(
      `${what}: ${edges} edges is not a cell size (steps 1, 2, 3, 4, 5 give 2, 5, 9, 14, 20 edges)`,
    );
  }
  return steps;
}

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

// ---------------------------------------------------------------------------------------
// validation

export interface ValidateOptions {
  /** Required number of intermediate nodes; by default inferred per cell as entries / 2. */
  steps?: number;
  /** Where the genotype came from (a file path, a CLI argument), for error messages. */
  source?: string;
}

function label(source: string | undefined): string {
  return source === undefined ? 'genotype' : `genotype from ${source}`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

const CELL_TYPES = ['normal', 'reduce'] as const;

/**
 * Checks that `value` is a well-formed genotype and returns it typed. Errors are one line,
 * e.g. `genotype: normal[3]: unknown operation 'sep_conv_7x7' (known: none, ...)`.
 * `none` is accepted (the evaluation network can build it), although derivation never picks it.
 */
export function validateGenotype(value: unknown, options: ValidateOptions = {}): Genotype {
  const prefix = label(options.source);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(
      `${prefix}: expected an object with normal, normal_concat, reduce, reduce_concat; got ${describe(value)}`,
    );
  }
  const record = value as Record<string, unknown>;
  for (const cell of CELL_TYPES) {
    const pairs = record[cell];
    if (!Array.isArray(pairs)) {
      throw new Error(`${prefix}: ${cell}: expected a list of [operation, input] pairs, got ${describe(pairs)}`);
    }
    if (pairs.length === 0 || pairs.length % 2 !== 0) {
      throw new Error(`${prefix}: ${cell}: expected an even, non-zero number of entries (2 per node), got ${pairs.length}`);
    }
    const steps = pairs.length / 2;
    if (options.steps !== undefined && steps !== options.steps) {
      throw new Error(
        `${prefix}: ${cell}: ${pairs.length} entries make ${steps} nodes, expected ${options.steps} (2 entries per node)`,
      );
    }
    pairs.forEach((pair: unknown, k) => {
      const where = `${prefix}: ${cell}[${k}]`;
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new Error(`${where}: expected an [operation, input] pair, got ${describe(pair)}`);
      }
      const [op, input] = pair as unknown[];
      if (!isPrimitive(op)) {
        if (typeof op !== 'string') throw new Error(`${where}: expected an operation name, got ${describe(op)}`);
        throw new Error(`${where}: unknown operation '${op}' (known: ${PRIMITIVES.join(', ')})`);
      }
      const node = Math.floor(k / 2);
      if (typeof input !== 'number' || !Number.isInteger(input) || input < 0 || input > node + 1) {
        throw new Error(`${where}: input ${describe(input)} out of range: node ${node} may use inputs 0..${node + 1}`);
      }
    });
    const concatName = `${cell}_concat`;
    const concat = record[concatName];
    if (!Array.isArray(concat) || concat.length === 0) {
      throw new Error(`${prefix}: ${concatName}: expected a non-empty list of state indices, got ${describe(concat)}`);
    }
    const seen = new Set<number>();
    concat.forEach((state: unknown, k) => {
      if (typeof state !== 'number' || !Number.isInteger(state) || state < 0 || state > steps + 1) {
        throw new Error(`${prefix}: ${concatName}[${k}]: state ${describe(state)} out of range 0..${steps + 1} (${steps} nodes)`);
      }
      if (seen.has(state)) throw new Error(`${prefix}: ${concatName}[${k}]: state ${state} listed twice`);
      seen.add(state);
    });
  }
  return value as Genotype;
}

/** Number of intermediate nodes of a (valid) genotype's cells. */
export function genotypeSteps(genotype: Genotype): number {
  return genotype.normal.length / 2;
}

function cloneGenotype(g: Readonly<Genotype>): Genotype {
  return {
    normal: g.normal.map(([op, input]) => [op, input]),
    normal_concat: [...g.normal_concat],
    reduce: g.reduce.map(([op, input]) => [op, input]),
    reduce_concat: [...g.reduce_concat],
  };
}

// ---------------------------------------------------------------------------------------
// JSON form (spec section 5)

/**
 * The JSON file form, one node's two pairs per line, with a final newline:
 * `{"normal": [["sep_conv_3x3", 1], ...], "normal_concat": [2, 3, 4, 5], ...}`.
 */
export function genotypeToJSON(genotype: Genotype): string {
  const pairs = (list: [Primitive, number][]): string => {
    const lines: string[] = [];
    for (let k = 0; k < list.length; k += 2) {
      lines.push('    ' + list.slice(k, k + 2).map(([op, input]) => `[${JSON.stringify(op)}, ${input}]`).join(', '));
    }
    return `[\n${lines.join(',\n')}\n  ]`;
  };
  return (
    '{\n' +
    `  "normal": ${pairs(genotype.normal)},\n` +
    `  "normal_concat": [${genotype.normal_concat.join(', ')}],\n` +
    `  "reduce": ${pairs(genotype.reduce)},\n` +
    `  "reduce_concat": [${genotype.reduce_concat.join(', ')}]\n` +
    '}\n'
  );
}

/**
 * Parses and validates a genotype JSON text: the genotype object itself, or any object with
 * a `genotype` field holding it (a run summary, a log record).
 */
export function parseGenotypeJSON(text: string, source?: string): Genotype {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${label(source)}: invalid JSON: ${(error as Error).message}`);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if (!('normal' in record) && 'genotype' in record) value = record['genotype'];
  }
  return validateGenotype(value, source === undefined ? {} : { source });
}

// ---------------------------------------------------------------------------------------
// Python text form: Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=range(2, 6), ...)

/** The authors' text form; `parsePythonGenotype` reads it back. Contiguous concat -> range(a, b). */
export function formatGenotypePython(genotype: Genotype): string {
  const pairs = (list: [Primitive, number][]): string =>
    `[${list.map(([op, input]) => `('${op}', ${input})`).join(', ')}]`;
  const concat = (list: number[]): string => {
    const contiguous = list.length > 0 && list.every((v, k) => v === list[0]! + k);
    return contiguous ? `range(${list[0]}, ${list[0]! + list.length})` : `[${list.join(', ')}]`;
  };
  return (
    `Genotype(normal=${pairs(genotype.normal)}, normal_concat=${concat(genotype.normal_concat)}, ` +
    `reduce=${pairs(genotype.reduce)}, reduce_concat=${concat(genotype.reduce_concat)})`
  );
}

type TokenKind = 'name' | 'string' | 'int' | 'punct' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  /** Offset into the source text. */
  offset: number;
}

const PUNCTUATION = '()[],=;';

/** A parse error located by line and column (both 1-based). */
function syntaxError(text: string, offset: number, source: string | undefined, message: string): Error {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return new Error(`${label(source)}: line ${line}, column ${column}: ${message}`);
}

function tokenize(text: string, source: string | undefined): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (PUNCTUATION.includes(c)) {
      tokens.push({ kind: 'punct', text: c, offset: i });
      i++;
    } else if (c === "'" || c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== c && text[i] !== '\n') {
        if (text[i] === '\\') throw syntaxError(text, i, source, 'escape sequences are not supported in operation names');
        i++;
      }
      if (text[i] !== c) throw syntaxError(text, start, source, `unterminated string starting with ${c}`);
      tokens.push({ kind: 'string', text: text.slice(start + 1, i), offset: start });
      i++;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const match = /^-?[0-9]+/.exec(text.slice(i))!;
      tokens.push({ kind: 'int', text: match[0], offset: i });
      i += match[0].length;
      if (/[A-Za-z_.]/.test(text[i] ?? '')) {
        throw syntaxError(text, i, source, `unexpected character '${text[i]}' after a number (only integers are allowed)`);
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(text.slice(i))!;
      tokens.push({ kind: 'name', text: match[0], offset: i });
      i += match[0].length;
    } else {
      throw syntaxError(text, i, source, `unexpected character '${c}'`);
    }
  }
  tokens.push({ kind: 'end', text: '', offset: text.length });
  return tokens;
}

const GENOTYPE_FIELDS = ['normal', 'normal_concat', 'reduce', 'reduce_concat'] as const;
type GenotypeField = (typeof GENOTYPE_FIELDS)[number];

/** Recursive-descent reader over the tokens of one `Genotype(...)` expression. */
class PythonGenotypeReader {
  private position = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly source: string | undefined,
  ) {}

  private peek(): Token {
    return this.tokens[this.position]!;
  }

  private next(): Token {
    const token = this.tokens[this.position]!;
    if (token.kind !== 'end') this.position++;
    return token;
  }

  private fail(token: Token, message: string): Error {
    return syntaxError(this.text, token.offset, this.source, message);
  }

  private static show(token: Token): string {
    if (token.kind === 'end') return 'end of input';
    if (token.kind === 'string') return `string '${token.text}'`;
    return `'${token.text}'`;
  }

  private isPunct(text: string): boolean {
    const token = this.peek();
    return token.kind === 'punct' && token.text === text;
  }

  private expectPunct(text: string, context: string): Token {
    const token = this.next();
    if (token.kind !== 'punct' || token.text !== text) {
      throw this.fail(token, `expected '${text}' ${context}, found ${PythonGenotypeReader.show(token)}`);
    }
    return token;
  }

  private expectInt(context: string): number {
    const token = this.next();
    if (token.kind !== 'int') throw this.fail(token, `expected an integer ${context}, found ${PythonGenotypeReader.show(token)}`);
    return Number(token.text);
  }

  /** Genotype = [NAME '='] 'Genotype' '(' arguments ')' [';'] end */
  read(): Genotype {
    if (this.peek().kind === 'name' && this.tokens[this.position + 1]?.text === '=') {
      this.position += 2; // `PC_DARTS_cifar = Genotype(...)`, as in the authors' genotypes.py
    }
    const head = this.next();
    if (head.kind !== 'name' || (head.text !== 'Genotype' && !head.text.endsWith('.Genotype'))) {
      throw this.fail(head, `expected 'Genotype(', found ${PythonGenotypeReader.show(head)}`);
    }
    const open = this.expectPunct('(', "after 'Genotype'");
    const fields = new Map<GenotypeField, unknown>();
    let positional = 0;
    while (!this.isPunct(')')) {
      const start = this.peek();
      if (start.kind === 'end') throw this.unclosed(open, "')'", "'Genotype('");
      let field: GenotypeField;
      if (start.kind === 'name' && this.tokens[this.position + 1]?.text === '=') {
        if (!(GENOTYPE_FIELDS as readonly string[]).includes(start.text)) {
          throw this.fail(start, `unknown field '${start.text}' (expected ${GENOTYPE_FIELDS.join(', ')})`);
        }
        field = start.text as GenotypeField;
        this.position += 2;
      } else {
        if (fields.size > positional) throw this.fail(start, 'positional argument after keyword arguments');
        if (positional >= GENOTYPE_FIELDS.length) {
          throw this.fail(start, `too many arguments (Genotype has ${GENOTYPE_FIELDS.length} fields)`);
        }
        field = GENOTYPE_FIELDS[positional]!;
        positional++;
      }
      if (fields.has(field)) throw this.fail(start, `field '${field}' given twice`);
      fields.set(field, field.endsWith('_concat') ? this.readConcat(field) : this.readPairs(field));
      if (this.peek().kind === 'end') throw this.unclosed(open, "')'", "'Genotype('");
      if (!this.isPunct(')')) this.expectPunct(',', `or ')' after the value of '${field}'`);
    }
    const close = this.next();
    if (this.isPunct(';')) this.next();
    const end = this.peek();
    if (end.kind !== 'end') throw this.fail(end, `unexpected ${PythonGenotypeReader.show(end)} after the closing ')'`);
    const missing = GENOTYPE_FIELDS.filter((f) => !fields.has(f));
    if (missing.length > 0) throw this.fail(close, `missing field${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
    return Object.fromEntries(GENOTYPE_FIELDS.map((f) => [f, fields.get(f)])) as unknown as Genotype;
  }

  /** Error at the end of the input: `closing` never came for the bracket `opener`. */
  private unclosed(opener: Token, closing: string, what: string): Error {
    const before = this.text.slice(0, opener.offset);
    const line = before.split('\n').length;
    const column = opener.offset - before.lastIndexOf('\n');
    return this.fail(this.peek(), `missing ${closing} closing ${what} opened at line ${line}, column ${column}`);
  }

  /** pairs = '[' [pair (',' pair)* [',']] ']' ; pair = ('(' | '[') STRING ',' INT [','] (')' | ']') */
  private readPairs(field: string): [Primitive, number][] {
    const listOpen = this.expectPunct('[', `to start the list of '${field}'`);
    const pairs: [Primitive, number][] = [];
    while (!this.isPunct(']')) {
      if (this.peek().kind === 'end') throw this.unclosed(listOpen, "']'", `the list of '${field}'`);
      const open = this.next();
      if (open.kind !== 'punct' || (open.text !== '(' && open.text !== '[')) {
        const found = PythonGenotypeReader.show(open);
        throw this.fail(open, `expected an ('operation', input) pair in '${field}', found ${found}`);
      }
      const closing = open.text === '(' ? ')' : ']';
      const name = this.next();
      if (name.kind !== 'string') {
        throw this.fail(name, `expected a quoted operation name, found ${PythonGenotypeReader.show(name)}`);
      }
      if (!isPrimitive(name.text)) {
        throw this.fail(name, `unknown operation '${name.text}' (known: ${PRIMITIVES.join(', ')})`);
      }
      this.expectPunct(',', `after the operation name '${name.text}'`);
      const input = this.expectInt(`(the input index) after '${name.text}',`);
      if (this.isPunct(',')) this.next();
      this.expectPunct(closing, `closing the pair ('${name.text}', ${input})`);
      pairs.push([name.text, input]);
      if (this.peek().kind === 'end') throw this.unclosed(listOpen, "']'", `the list of '${field}'`);
      if (!this.isPunct(']')) this.expectPunct(',', `or ']' after a pair in '${field}'`);
    }
    this.next();
    return pairs;
  }

  /** concat = 'range' '(' INT ',' INT ')' | '[' ints ']' | '(' ints ')' */
  private readConcat(field: string): number[] {
    const token = this.next();
    if (token.kind === 'name' && token.text === 'range') {
      this.expectPunct('(', "after 'range'");
      const from = this.expectInt(`as the start of the range of '${field}'`);
      this.expectPunct(',', `after the start of the range of '${field}'`);
      const to = this.expectInt(`as the end of the range of '${field}'`);
      this.expectPunct(')', `closing the range of '${field}' (range takes a start and an end)`);
      if (to <= from) throw this.fail(token, `range(${from}, ${to}) of '${field}' is empty`);
      return Array.from({ length: to - from }, (_, k) => from + k);
    }
    if (token.kind === 'punct' && (token.text === '[' || token.text === '(')) {
      const closing = token.text === '[' ? ']' : ')';
      const values: number[] = [];
      while (!this.isPunct(closing)) {
        if (this.peek().kind === 'end') throw this.unclosed(token, `'${closing}'`, `the list of '${field}'`);
        values.push(this.expectInt(`in '${field}'`));
        if (!this.isPunct(closing)) this.expectPunct(',', `or '${closing}' in '${field}'`);
      }
      this.next();
      return values;
    }
    const found = PythonGenotypeReader.show(token);
    throw this.fail(token, `expected range(a, b) or a list of integers for '${field}', found ${found}`);
  }
}

/**
 * Parses the authors' Python text form (optionally `NAME = Genotype(...)`, comments allowed)
 * with a small tokenizer and recursive-descent reader; nothing is evaluated. The result is
 * validated. Errors are one line with the line and column of the problem.
 */
export function parsePythonGenotype(text: string, source?: string): Genotype {
  const genotype = new PythonGenotypeReader(text, tokenize(text, source), source).read();
  return validateGenotype(genotype, source === undefined ? {} : { source });
}

// ---------------------------------------------------------------------------------------
// published genotypes and loading by name or path

function isPublishedName(name: string): name is PublishedGenotypeName {
  return (PUBLISHED_GENOTYPE_NAMES as readonly string[]).includes(name);
}

/** A fresh copy of one of the authors' published genotypes. */
export function publishedGenotype(name: string): Genotype {
  if (!isPublishedName(name)) {
    throw new Error(`unknown published genotype '${name}' (known: ${PUBLISHED_GENOTYPE_NAMES.join(', ')})`);
  }
  return cloneGenotype(PUBLISHED_GENOTYPES[name]);
}

/** Parses a genotype text of either form: JSON if it starts with '{', else Python. */
function parseGenotypeText(text: string, source: string): Genotype {
  return text.trimStart().startsWith('{') ? parseGenotypeJSON(text, source) : parsePythonGenotype(text, source);
}

/**
 * Resolves a genotype argument (as given on a command line): a published name
 * (PC_DARTS_cifar, ...), a run directory holding genotype.json, a .json file (the genotype,
 * or an object with a `genotype` field), a file with the Python form, or the Python/JSON text
 * itself. Node-only (reads files).
 */
export function loadGenotype(spec: string): Genotype {
  if (isPublishedName(spec)) return publishedGenotype(spec);
  const trimmed = spec.trimStart();
  if (trimmed.startsWith('{') || /^Genotype\s*\(/.test(trimmed)) return parseGenotypeText(spec, 'the argument');
  let isDirectory: boolean;
  try {
    isDirectory = statSync(spec).isDirectory();
  } catch {
    throw new Error(
      `genotype '${spec}': expected a published name (${PUBLISHED_GENOTYPE_NAMES.join(', ')}), ` +
        'a genotype file (.json or Python form) or a run directory containing genotype.json; no such name, file or directory',
    );
  }
  const path = isDirectory ? join(spec, 'genotype.json') : spec;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new Error(
      isDirectory
        ? `genotype '${spec}': a directory, so expected a run directory containing genotype.json; ${path}: ${reason}`
        : `genotype '${spec}': cannot read the file: ${reason}`,
    );
  }
  return path.toLowerCase().endsWith('.json') ? parseGenotypeJSON(text, path) : parseGenotypeText(text, path);
}
