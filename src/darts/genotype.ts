/**
 * The genotype: the discrete architecture found by the search, and the single currency
 * between search, training and visualisation (spec section 5). Here: the type, validation,
 * the JSON file form and the published genotypes by name. Derivation from the architecture
 * parameters is genotype-derive.ts, the authors' Python text form genotype-python.ts, and
 * loading from files (Node only) genotype-load.ts. Pure: no Node imports.
 */
import { PRIMITIVES, isPrimitive, type Primitive } from './primitives.js';
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
// validation

export interface ValidateOptions {
  /** Required number of intermediate nodes; by default inferred per cell as entries / 2. */
  steps?: number;
  /** Where the genotype came from (a file path, a CLI argument), for error messages. */
  source?: string;
}

/** 'genotype' or 'genotype from SOURCE': how errors name a genotype. */
export function genotypeLabelFor(source: string | undefined): string {
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
  const prefix = genotypeLabelFor(options.source);
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
    throw new Error(`${genotypeLabelFor(source)}: invalid JSON: ${(error as Error).message}`);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if (!('normal' in record) && 'genotype' in record) value = record['genotype'];
  }
  return validateGenotype(value, source === undefined ? {} : { source });
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
