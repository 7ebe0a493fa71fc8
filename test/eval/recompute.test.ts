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

/** budget: null keeps every cell's intermediates; otherwise recompute beyond that many live bytes. */
function run(budget: number | null) {
  manualSeed(3);
  const random = new Random(11);
  const net = new NetworkCIFAR({ genotype: publishedGenotype('PC_DARTS_cifar'), channels: 8, layers: 5, classes: 10, inChannels: 3, auxiliary: true, dropPathProb: 0.3, random,
    recompute: budget !== null, activationBudgetBytes: budget ?? 0 });
  net.train();
  const data = new Random(4);
  const x = Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => data.normal());
  const labels = Int32Array.of(0, 1, 2, 3);
  kernels().resetPeak();
  const startBytes = kernels().memoryStats().liveBytes;
  const loss = tidy(() => {
    const { logits, logitsAux } = net.forward(fromArray(x, [4, 3, 32, 32]));
    const l = ops.add(ops.crossEntropy(logits, labels), ops.mulScalar(ops.crossEntropy(logitsAux!, labels), 0.4));
    backward(l);
    return l.item();
  });
  return {
    loss,
    peak: kernels().memoryStats().peakBytes,
    startBytes,
    grads: net.parameters().map((p) => Float32Array.from(p.grad!.data.subarray(0, p.numel))),
    buffers: net.stateEntries().filter((e) => e.kind === 'buffer').map((e) => Float32Array.from(e.tensor.data.subarray(0, e.tensor.numel))),
    randomAfter: random.getState(),
  };
}

for (const backend of ['ref', 'wasm']) {
  test(`recomputed cells: same loss, gradients, running statistics and generator state (${backend})`, () => {
    setBackend(backend, { threads: 2 });
    const kept = run(null);
    const recomputed = run(0);
    const partial = run(kept.startBytes + (kept.peak - kept.startBytes) / 2);
    for (const [name, other] of [['recomputed', recomputed], ['partial', partial]] as const) {
      assert.equal(other.loss, kept.loss, name);
      kept.grads.forEach((g, i) => assert.deepEqual(other.grads[i], g, `${name} gradient ${i}`));
      kept.buffers.forEach((b, i) => assert.deepEqual(other.buffers[i], b, `${name} buffer ${i}`));
      assert.deepEqual(other.randomAfter, kept.randomAfter, name);
    }
    // Kept intermediates cost memory: more than recomputing everything. (Not necessarily less
    // than keeping all: a recomputed cell's transient comes on top of what the kept ones hold.)
    assert.ok(recomputed.peak < partial.peak, `peaks: all recomputed ${recomputed.peak} < budget ${partial.peak}`);
    assert.ok(recomputed.peak < kept.peak, `peaks: all recomputed ${recomputed.peak} < all kept ${kept.peak}`);
  });
}
