/** Autograd semantics: accumulation as PyTorch, no-grad scope, freeing of intermediates, tidy scopes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import { kernels, setBackend } from '../../src/kernels/registry.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import * as ops from '../../src/tensor/ops.js';
import { fromArray, parameter, tidy } from '../../src/tensor/tensor.js';

setBackend('ref');

test('leaf gradients accumulate across backward calls (PyTorch semantics)', () => {
  const w = parameter([1, 2, 3], [3]);
  for (let i = 0; i < 2; i++) {
    tidy(() => backward(ops.dotConstant(ops.mulScalar(w, 2), Float32Array.of(1, 1, 1))));
  }
  assert.deepEqual(w.grad?.toArray(), [4, 4, 4]);
});

test('a tensor used twice receives the sum of both gradients', () => {
  const x = parameter([1, -2], [2]);
  tidy(() => backward(ops.dotConstant(ops.add(x, ops.mulScalar(x, 3)), Float32Array.of(1, 2))));
  assert.deepEqual(x.grad?.toArray(), [4, 8]);
});

test('noGrad records nothing', () => {
  const x = parameter([1, 2], [2]);
  const y = noGrad(() => ops.mulScalar(x, 2));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.gradFn, null);
  assert.throws(() => backward(y), /does not require grad/);
});

test('backward frees intermediates unless retained, and keeps the root and leaves', () => {
  const x = parameter([1, 2, 3, 4], [1, 1, 2, 2]);
  const a = ops.relu(x);
  const b = ops.mulScalar(a, 2).retain();
  const loss = ops.dotConstant(ops.mulScalar(b, 3), Float32Array.of(1, 1, 1, 1));
  backward(loss);
  assert.equal(a.isDisposed, true, 'intermediate freed by backward');
  assert.equal(b.isDisposed, false, 'retained intermediate survives');
  assert.equal(loss.isDisposed, false);
  assert.equal(x.isDisposed, false);
  assert.throws(() => a.data, /freed/);
  assert.deepEqual(x.grad?.toArray(), [6, 6, 6, 6]);
});

test('tidy frees what it created except the returned value and kept tensors', () => {
  const backend = kernels();
  const before = backend.memoryStats().liveBytes;
  const kept = tidy(() => {
    const a = fromArray([1, 2], [2]);
    const b = ops.mulScalar(a, 2);
    fromArray([5], [1]).keep();
    return b;
  });
  assert.deepEqual(kept.toArray(), [2, 4]);
  // b (2 floats) and the kept one (1 float) are alive.
  assert.equal(backend.memoryStats().liveBytes - before, 12);
  kept.dispose();
});

test('a full training-style step leaves no intermediate alive', () => {
  const backend = kernels();
  const w = parameter(new Float32Array(2 * 3 * 3 * 3).fill(0.1), [2, 3, 3, 3]);
  const before = backend.memoryStats().liveBytes;
  for (let step = 0; step < 3; step++) {
    tidy(() => {
      const x = fromArray(new Float32Array(2 * 3 * 4 * 4).fill(1), [2, 3, 4, 4]);
      const y = ops.globalAvgPool(ops.relu(ops.conv2d(x, w, { padding: 1 })));
      backward(ops.crossEntropy(y, Int32Array.of(0, 1)));
    });
  }
  // Only the leaf gradient (same size as w) was added.
  assert.equal(backend.memoryStats().liveBytes - before, w.numel * 4);
});

test('gatherChannels refuses a map that reads a source channel twice when a gradient is needed', () => {
  const x = parameter(new Float32Array(8), [1, 2, 2, 2]);
  assert.throws(() => ops.gatherChannels([x], Int32Array.from([0, 1, 0, 1])), /source 0 channel 1 is read twice/);
  assert.throws(() => ops.gatherChannels([x], Int32Array.from([0, 1, 0])), /odd length/);
});

test('an evicted ReLU output frees its storage, holds its input, and comes back bitwise equal in backward', () => {
  const x = parameter([1, -2, 3, -4, 5, -6], [1, 1, 2, 3]);
  const ones = new Float32Array(6).fill(1);
  const live0 = kernels().memoryStats().liveBytes;
  tidy(() => {
    const h = ops.mulScalar(x, 1.5);
    const keeper = ops.maxPool2d(h, { kernel: 1, stride: 1 }); // a node that saves h
    const y = ops.relu(h); // its node saves y
    const before = y.toArray();
    const liveBefore = kernels().memoryStats().liveBytes;
    ops.releaseRelu(y, h);
    assert.ok(y.isEvicted, 'evicted: both h and y are held by nodes');
    assert.ok(kernels().memoryStats().liveBytes < liveBefore, 'storage freed');
    h.drop(); // still held by the pool node and by y's recipe
    assert.ok(!h.isDisposed);
    assert.deepEqual(y.toArray(), before, 'restored on read, bitwise');
    backward(ops.add(ops.dotConstant(y, ones), ops.dotConstant(keeper, ones)));
  });
  // d/dx of sum(relu(1.5 x)) + sum(1.5 x)
  assert.deepEqual(x.grad?.toArray(), [3, 1.5, 3, 1.5, 3, 1.5]);
  x.grad.dispose();
  x.grad = null;
  assert.equal(kernels().memoryStats().liveBytes, live0, 'nothing leaked');
});

test('releaseRelu drops (not evicts) when nothing else keeps the input', () => {
  const x = parameter([1, -2], [1, 1, 1, 2]);
  tidy(() => {
    const h = ops.mulScalar(x, 2); // saved by nobody
    const y = ops.relu(h);
    ops.releaseRelu(y, h);
    assert.ok(!y.isEvicted && !y.isDisposed, 'kept: y is saved by its node and h is held by nobody');
    backward(ops.dotConstant(y, Float32Array.of(1, 1)));
  });
  assert.deepEqual(x.grad?.toArray(), [2, 0]);
});
