/** Recomputing MixedOps in backward changes memory, not numbers. */
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

function run(recomputeMixedOps: boolean): { grads: Float32Array[]; buffers: Float32Array[]; loss: number; peakBytes: number } {
  manualSeed(5);
  const model = new SearchNetwork({ channels: 8, layers: 3, k: 2, steps: 2, multiplier: 2, inChannels: 3, classes: 10, recomputeMixedOps });
  const random = new Random(9);
  const x = Float32Array.from({ length: 4 * 3 * 16 * 16 }, () => random.normal());
  const labels = Int32Array.of(1, 2, 3, 4);
  kernels().resetPeak();
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
  };
}

for (const backend of ['ref', 'wasm']) {
  test(`recomputed MixedOps give bitwise identical gradients and running statistics (${backend})`, () => {
    setBackend(backend, { threads: 2 });
    const plain = run(false);
    const recomputed = run(true);
    assert.equal(recomputed.loss, plain.loss);
    assert.equal(recomputed.grads.length, plain.grads.length);
    plain.grads.forEach((g, i) => assert.deepEqual(recomputed.grads[i], g, `gradient ${i}`));
    plain.buffers.forEach((b, i) => assert.deepEqual(recomputed.buffers[i], b, `buffer ${i} (running statistics updated once)`));
    if (backend === 'wasm') assert.ok(recomputed.peakBytes < plain.peakBytes, `peak ${recomputed.peakBytes} should be below ${plain.peakBytes}`);
  });
}
