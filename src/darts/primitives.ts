/**
 * The candidate operations of the search space (spec section 1). The ORDER is part of every
 * file format: an operation's index is its column in the alphas and its position in a
 * MixedOp's `_ops` list (state-dict keys such as `cells.3._ops.7._ops.4.op.1.weight`).
 */
export const PRIMITIVES = [
  'none',
  'max_pool_3x3',
  'avg_pool_3x3',
  'skip_connect',
  'sep_conv_3x3',
  'sep_conv_5x5',
  'dil_conv_3x3',
  'dil_conv_5x5',
] as const;

export type Primitive = (typeof PRIMITIVES)[number];

/** Index of `none` in PRIMITIVES; genotype derivation never picks it (spec section 5). */
export const NONE_INDEX = 0;

const PRIMITIVE_SET: ReadonlySet<string> = new Set<string>(PRIMITIVES);

export function isPrimitive(name: unknown): name is Primitive {
  return typeof name === 'string' && PRIMITIVE_SET.has(name);
}

/** Index of `name` in PRIMITIVES; throws on an unknown name. */
export function primitiveIndex(name: string): number {
  const index = (PRIMITIVES as readonly string[]).indexOf(name);
  if (index < 0) {
    throw new Error(`unknown operation '${name}' (known: ${PRIMITIVES.join(', ')})`);
  }
  return index;
}
