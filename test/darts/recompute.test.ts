/** Recomputing MixedOps in backward, all or within an activation budget, changes memory, not numbers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import '../../src/kernels/wasm/backend.js';
import { kernels, setBackend } from '../../src/kernels/registry.js';
import { SearchNetwork } from '../../src/darts/search-network.js';
import { backward } from '../../src/tensor/autograd.js';
import * as ops from '../../src/tensor/ops.js';
import { manualSeed, Random } from '../../src/tensor/random.js';
import { fromArray, tidy } from '../../src/tensor/tensor.js';

/** budget: null keeps every MixedOp's internals; otherwise recompute beyond that many live bytes. */
function run(budget: number | null, k: number): { grads: Float32Array[]; buffers: Float32Array[]; loss: number; peakBytes: number; startBytes: number } {
  manualSeed(5);
  const model = new SearchNetwork({
    channels: 8, layers: 3, k, steps: 2, multiplier: 2, inChannels: 3, classes: 10,
    recomputeMixedOps: budget !== null, activationBudgetBytes: budget ?? 0,
  });
  const random = new Random(9);
  const x = Float32Array.from({ length: 4 * 3 * 16 * 16 }, () => random.normal());
  const labels = Int32Array.of(1, 2, 3, 4);
  kernels().resetPeak();
  const startBytes = kernels().memoryStats().liveBytes;
  const loss = tidy(() => {
    const l = ops.crossEntropy(model.forward(fromArray(x, [4, 3, 16, 16])), labels);
    backward(l);
    return l.item();
  });
  const peakBytes = kernels().memoryStats().peakBytes;
  const params = [...model.parameters(), ...model.archParameters()];
  return {
    grads: params.map((p) => Float32Array.from(p.grad!.data.subarray(0, p.numel))),
    buffers: model.stateEntries().filter((e) => e.kind === 'buffer').map((e) => Float32Array.from(e.tensor.data.subarray(0, e.tensor.numel))),
    loss,
    peakBytes,
    startBytes,
  };
}

for (const [backend, k] of [['ref', 2], ['wasm', 2], ['ref', 1], ['wasm', 1]] as const) {
  test(`recomputed MixedOps give bitwise identical gradients and running statistics (${backend}, K=${k})`, () => {
    setBackend(backend, { threads: 2 });
    const plain = run(null, k);
    const recomputed = run(0, k);
    // Half the memory the kept internals need: the first MixedOps keep, the later ones recompute.
    const partial = run(plain.startBytes + (plain.peakBytes - plain.startBytes) / 2, k);
    for (const [name, other] of [['recomputed', recomputed], ['partial', partial]] as const) {
      assert.equal(other.loss, plain.loss, name);
      assert.equal(other.grads.length, plain.grads.length);
      plain.grads.forEach((g, i) => assert.deepEqual(other.grads[i], g, `${name} gradient ${i}`));
      plain.buffers.forEach((b, i) => assert.deepEqual(other.buffers[i], b, `${name} buffer ${i} (running statistics updated once)`));
    }
    // Kept internals cost memory: more than recomputing everything. (Not necessarily less than
    // keeping all: a recomputed segment's transient comes on top of what the kept ones hold.)
    assert.ok(recomputed.peakBytes < partial.peakBytes, `peaks: all recomputed ${recomputed.peakBytes} < budget ${partial.peakBytes}`);
    assert.ok(recomputed.peakBytes < plain.peakBytes, `peaks: all recomputed ${recomputed.peakBytes} < all kept ${plain.peakBytes}`);
  });
}
