/**
 * Reverse-mode autograd: each recorded op leaves a GradNode on its output; backward()
 * walks the nodes in reverse topological order. Gradients of intermediates are freed as
 * soon as they are consumed, and (unless retainGraph) each node's saved tensors and its
 * output are freed right after its backward ran: in reverse topological order every
 * consumer of a tensor has run before its producer, so nothing still needs them.
 */
import { kernels } from '../kernels/registry.js';
import { Tensor, shapeToString } from './tensor.js';

export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  /**
   * Gradients with respect to each input (null where an input needs none). The node may
   * return `gradOutput` itself for inputs of the same shape; everything else it returns
   * must be freshly allocated (ownership passes to the engine), except `pending[k]`:
   * `pending[k]` is the gradient input k has accumulated so far (or null), and a node that
   * adds its contribution into it itself returns `pending[k]` for k (e.g. a slice adding
   * its few channels instead of returning a mostly-zero tensor to be added whole).
   */
  backward(gradOutput: Tensor, pending: readonly (Tensor | null)[]): (Tensor | null)[];
  /**
   * Tensors (inputs or the output) that backward reads. Each is held until this node has
   * run, so `drop()`-ed intermediates that nobody saved are freed during the forward pass.
   */
  readonly saved?: readonly Tensor[];
  /** Frees buffers held only for backward (not tensors of the graph). */
  release?(): void;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording anything for autograd (evaluation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Attaches node to output (the caller checked needsGrad). */
export function record(output: Tensor, node: GradNode): Tensor {
  output.requiresGrad = true;
  output.gradFn = node;
  if (node.saved) for (const t of node.saved) t.saveRefs++;
  return output;
}

/** Lets go of a node's saved tensors (after its backward ran). */
function releaseNode(node: GradNode): void {
  node.release?.();
  if (!node.saved) return;
  for (const t of node.saved) {
    t.saveRefs--;
    if (t.saveRefs <= 0 && t.dropped) t.dispose();
  }
}

function topologicalOrder(root: Tensor): { node: GradNode; output: Tensor }[] {
  const order: { node: GradNode; output: Tensor }[] = [];
  const visited = new Set<GradNode>();
  // Iterative DFS (networks are deep enough to overflow a recursive one).
  const stack: { tensor: Tensor; next: number }[] = [{ tensor: root, next: 0 }];
  if (root.gradFn) visited.add(root.gradFn);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const node = top.tensor.gradFn as GradNode;
    if (top.next < node.inputs.length) {
      const input = node.inputs[top.next++];
      if (input && input.gradFn && !visited.has(input.gradFn)) {
        visited.add(input.gradFn);
        stack.push({ tensor: input, next: 0 });
      }
    } else {
      order.push({ node, output: top.tensor });
      stack.pop();
    }
  }
  return order;
}

export interface BackwardOptions {
  /** Keep saved tensors and intermediates (to call backward again or read them). */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into every leaf that requires grad (added to an existing
 * .grad, as PyTorch). `gradient` defaults to ones (root must then have one element).
 */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('backward: tensor does not require grad');
  const backend = kernels();
  let seed: Tensor;
  if (gradient) {
    if (gradient.numel !== root.numel) {
      throw new Error(`backward: gradient ${shapeToString(gradient.shape)} does not match ${shapeToString(root.shape)}`);
    }
    seed = gradient.clone();
  } else {
    if (root.numel !== 1) throw new Error(`backward: implicit gradient needs a one-element tensor, got ${shapeToString(root.shape)}`);
    seed = new Tensor(backend.alloc(1), root.shape);
    seed.data[0] = 1;
  }
  if (root.isLeaf) {
    accumulateLeaf(root, seed);
    if (root.grad !== seed) seed.dispose();
    return;
  }
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, seed);
  const order = topologicalOrder(root);
  for (let i = order.length - 1; i >= 0; i--) {
    const { node, output } = order[i];
    const gradOutput = grads.get(output);
    grads.delete(output);
    if (gradOutput) {
      const pending = node.inputs.map((input) => {
        if (!input || !input.requiresGrad) return null;
        if (input.gradFn) return grads.get(input) ?? null;
        return input.grad !== null && !input.grad.isDisposed ? input.grad : null;
      });
      const inputGrads = node.backward(gradOutput, pending);
      const handedOut = new Set<Tensor>();
      for (let k = 0; k < node.inputs.length; k++) {
        const input = node.inputs[k];
        let g = inputGrads[k] ?? null;
        if (!input || !g) continue;
        if (g === pending[k]) continue; // the node added its part into it
        if (!input.requiresGrad) {
          if (g !== gradOutput && !handedOut.has(g)) g.dispose();
          continue;
        }
        if (handedOut.has(g)) g = g.clone();
        handedOut.add(g);
        if (input.gradFn) {
          const existing = grads.get(input);
          if (existing) {
            backend.axpy(1, g.data, existing.data, g.numel);
            handedOut.delete(g);
            if (g !== gradOutput) g.dispose();
          } else {
            grads.set(input, g);
          }
        } else {
          accumulateLeaf(input, g);
          if (input.grad !== g) {
            handedOut.delete(g);
            if (g !== gradOutput) g.dispose();
          }
        }
      }
      if (!handedOut.has(gradOutput)) gradOutput.dispose();
    }
    if (!options.retainGraph) {
      releaseNode(node);
      if (output !== root && !output.retained && !output.kept) output.dispose();
    }
  }
  for (const leftover of grads.values()) leftover.dispose();
  if (!options.retainGraph) {
    root.gradFn = null;
  }
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.grad === null || leaf.grad.isDisposed) {
    leaf.grad = g.keep();
  } else {
    kernels().axpy(1, g.data, leaf.grad.data, g.numel);
  }
}

/**
 * Default activation budget of the search network: MixedOps keep their intermediates while
 * the kernel backend's live memory is below it, and recompute once it is reached. Spending
 * memory there saves the extra forward.
 */
export const DEFAULT_ACTIVATION_BUDGET_BYTES = 768 * 2 ** 20;

/**
 * Default activation budget of the evaluation (retraining) networks, twice the search's: a
 * retraining cell's dense convolutions (36-144 channels) cost several times more to
 * recompute per byte kept than a search MixedOp's C/K-channel slices, so memory spent there
 * buys more time (PC_DARTS_cifar C36 L20, batch 96: 10.9 s/step at 768 MiB, 10.1 at 1536).
 */
export const DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES = 1536 * 2 ** 20;

let recomputing = 0;

/** True while a checkpointed segment is being recomputed (batch norm must not update its running statistics twice). */
export function isRecomputing(): boolean {
  return recomputing > 0;
}

/**
 * Runs fn without keeping its intermediates; backward recomputes it from the saved inputs
 * and backpropagates through the recomputation (torch.utils.checkpoint). Trades one more
 * forward of fn for the memory of everything fn would have saved. fn must be deterministic
 * given its inputs (no random draws) and may read parameters, whose gradients accumulate as
 * usual.
 */
export function checkpoint(fn: (inputs: Tensor[]) => Tensor, inputs: Tensor[]): Tensor {
  if (!gradEnabled) return fn(inputs);
  const output = noGrad(() => fn(inputs));
  // Recorded even when no input requires grad: fn may read parameters.
  return record(output, {
    name: 'checkpoint',
    inputs,
    saved: inputs,
    backward: (gradOutput) => {
      const leaves = inputs.map((t) => t.detachedView(t.requiresGrad));
      recomputing++;
      try {
        const recomputed = fn(leaves);
        backward(recomputed, gradOutput);
        recomputed.dispose();
      } finally {
        recomputing--;
      }
      return leaves.map((leaf) => {
        const g = leaf.grad;
        leaf.grad = null;
        leaf.dispose();
        if (g) g.kept = false;
        return g;
      });
    },
  });
}
