/** Recomputed cells (the default) give the same numbers as kept intermediates, drop path included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import '../../src/kernels/wasm/backend.js';
import { kernels, setBackend } from '../../src/kernels/registry.js';
import { publishedGenotype } from '../../src/darts/genotype.js';
import { NetworkCIFAR } from '../../src/eval/network.js';
import { backward } from '../../src/tensor/autograd.js';
import * as ops from '../../src/tensor/ops.js';
import { manualSeed, Random } from '../../src/tensor/random.js';
import { fromArray, tidy } from '../../src/tensor/tensor.js';

function run(recompute: boolean) {
  manualSeed(3);
  const random = new Random(11);
  const net = new NetworkCIFAR({ genotype: publishedGenotype('PC_DARTS_cifar'), channels: 8, layers: 5, classes: 10, inChannels: 3, auxiliary: true, dropPathProb: 0.3, random, recompute });
  net.train();
  const data = new Random(4);
  const x = Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => data.normal());
  const labels = Int32Array.of(0, 1, 2, 3);
  kernels().resetPeak();
  const loss = tidy(() => {
    const { logits, logitsAux } = net.forward(fromArray(x, [4, 3, 32, 32]));
    const l = ops.add(ops.crossEntropy(logits, labels), ops.mulScalar(ops.crossEntropy(logitsAux!, labels), 0.4));
    backward(l);
    return l.item();
  });
  return {
    loss,
    peak: kernels().memoryStats().peakBytes,
    grads: net.parameters().map((p) => Float32Array.from(p.grad!.data.subarray(0, p.numel))),
    buffers: net.stateEntries().filter((e) => e.kind === 'buffer').map((e) => Float32Array.from(e.tensor.data.subarray(0, e.tensor.numel))),
    randomAfter: random.getState(),
  };
}

for (const backend of ['ref', 'wasm']) {
  test(`recomputed cells: same loss, gradients, running statistics and generator state (${backend})`, () => {
    setBackend(backend, { threads: 2 });
    const kept = run(false);
    const recomputed = run(true);
    assert.equal(recomputed.loss, kept.loss);
    kept.grads.forEach((g, i) => assert.deepEqual(recomputed.grads[i], g, `gradient ${i}`));
    kept.buffers.forEach((b, i) => assert.deepEqual(recomputed.buffers[i], b, `buffer ${i}`));
    assert.deepEqual(recomputed.randomAfter, kept.randomAfter);
    if (backend === 'wasm') assert.ok(recomputed.peak < kept.peak, `peak ${recomputed.peak} should be below ${kept.peak}`);
  });
}
