/**
 * Random architectures (the random-search baseline of the NAS checklist): genotypes drawn
 * uniformly from the search space of spec section 1. Per cell and intermediate node i (inputs
 * 0 .. i + 1), two distinct inputs are drawn uniformly (each of the (i + 2)(i + 1) / 2 pairs
 * equally likely) and each of the two edges gets one of the 7 operations other than `none`,
 * uniformly and independently; the normal and the reduction cell are independent. The pairs
 * of a node are listed in increasing input order, so that every cell of the space has exactly
 * one representation and each is equally likely. Seeded: the same seed gives the same list.
 */
import { type Genotype } from './genotype.js';
import { NONE_INDEX, PRIMITIVES, type Primitive } from './primitives.js';
import { Random } from '../tensor/random.js';

/** The operations a sampled edge may carry: all but `none`, in PRIMITIVES order. */
export const SAMPLED_OPERATIONS: readonly Primitive[] = PRIMITIVES.filter((_, i) => i !== NONE_INDEX);

function sampleCell(random: Random, nodes: number): [Primitive, number][] {
  const pairs: [Primitive, number][] = [];
  for (let node = 0; node < nodes; node++) {
    const inputs = node + 2;
    // Two distinct inputs: the first uniformly, the second uniformly among the others.
    const a = random.int(inputs);
    let b = random.int(inputs - 1);
    if (b >= a) b += 1;
    for (const input of a < b ? [a, b] : [b, a]) {
      pairs.push([SAMPLED_OPERATIONS[random.int(SAMPLED_OPERATIONS.length)], input]);
    }
  }
  return pairs;
}

/** One genotype drawn from `random` (which advances). */
export function sampleGenotype(random: Random, nodes = 4): Genotype {
  if (!(Number.isInteger(nodes) && nodes >= 1)) throw new Error(`nodes: expected an integer >= 1, got ${nodes}`);
  const concat = Array.from({ length: nodes }, (_, i) => i + 2);
  const normal = sampleCell(random, nodes);
  const reduce = sampleCell(random, nodes);
  return { normal, normal_concat: concat, reduce, reduce_concat: [...concat] };
}

/**
 * `count` genotypes from one generator seeded with `seed`: the first n of a longer list are
 * the list of n (so `--count` only extends it).
 */
export function sampleGenotypes(seed: number, count = 1, nodes = 4): Genotype[] {
  if (!(Number.isInteger(seed) && seed >= 0)) throw new Error(`seed: expected an integer >= 0, got ${seed}`);
  if (!(Number.isInteger(count) && count >= 1)) throw new Error(`count: expected an integer >= 1, got ${count}`);
  const random = new Random(seed);
  return Array.from({ length: count }, () => sampleGenotype(random, nodes));
}

/** One line of JSON: the genotype file's fields in its order, without the line breaks. */
export function genotypeToJSONLine(genotype: Genotype): string {
  const { normal, normal_concat, reduce, reduce_concat } = genotype;
  return `${JSON.stringify({ normal, normal_concat, reduce, reduce_concat })}\n`;
}
