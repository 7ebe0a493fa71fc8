/** The evaluation networks: structure and keys, forward outputs, drop path, validation errors. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { publishedGenotype, type Genotype } from '../../src/darts/genotype.js';
import { FactorizedReduce, ReLUConvBN } from '../../src/darts/operations.js';
import { dropPath, dropPathFactors } from '../../src/eval/drop-path.js';
import {
  EvalCell, NetworkCIFAR, NetworkImageNet, auxiliaryCellIndex, reductionCellIndices, type EvalNetwork,
} from '../../src/eval/network.js';
import { disposeModule } from '../../src/nn/layers.js';
import { readSafetensors } from '../../src/nn/safetensors.js';
import * as ops from '../../src/tensor/ops.js';
import { Random, manualSeed } from '../../src/tensor/random.js';
import { fromArray, tidy, type Tensor } from '../../src/tensor/tensor.js';

setBackend('ref');

const FIXTURE_DIR = fileURLToPath(new URL('../../../../shared/fixtures/pytorch/', import.meta.url));

function randomInput(shape: number[], seed: number): Tensor {
  const random = new Random(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return fromArray(Array.from({ length: n }, () => random.normal()), shape);
}

function withNetwork<N extends EvalNetwork>(network: N, fn: (network: N) => void): void {
  try {
    tidy(() => fn(network));
  } finally {
    disposeModule(network);
  }
}

describe('state dict keys equal the authors\' (eval_network fixtures)', () => {
  const cases = existsSync(FIXTURE_DIR)
    ? readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json'))
      .map((f) => ({ file: f, manifest: JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) }))
      .filter(({ manifest }) => manifest.kind === 'eval_network')
    : [];
  test('the fixture folder holds eval_network cases', () => {
    assert.ok(cases.length >= 1, `no eval_network manifests in ${FIXTURE_DIR}`);
  });
  for (const { file, manifest } of cases) {
    test(file, () => {
      const c = manifest.config;
      const network = new NetworkCIFAR({
        genotype: manifest.genotype, channels: c.C, layers: c.layers, classes: c.classes,
        auxiliary: c.auxiliary, inChannels: c.in_channels ?? 3, dropPathProb: c.drop_path_prob ?? 0,
      });
      try {
        const expected = (manifest.tensors as string[]).filter((n) => n.startsWith('param.')).map((n) => n.slice(6)).sort();
        const entries = network.stateEntries();
        assert.deepEqual(entries.map((e) => e.name).sort(), expected);
        const stored = readSafetensors(readFileSync(join(FIXTURE_DIR, file.replace(/\.json$/, '.safetensors'))));
        for (const e of entries) {
          assert.deepEqual([...e.tensor.shape], [...stored.get(`param.${e.name}`)!.shape], e.name);
          assert.equal(e.dtype, stored.get(`param.${e.name}`)!.dtype, e.name);
        }
      } finally {
        disposeModule(network);
      }
    });
  }
});

test('CIFAR network: reductions, auxiliary head only in training, logits shapes', () => {
  assert.deepEqual(reductionCellIndices(20), [6, 13]);
  assert.equal(auxiliaryCellIndex(20), 13);
  manualSeed(3);
  withNetwork(new NetworkCIFAR({ genotype: publishedGenotype('PC_DARTS_cifar'), channels: 4, layers: 3, classes: 7 }), (net) => {
    assert.deepEqual(net.cells.map((c) => c.reduction), [false, true, true]);
    assert.deepEqual(net.cells.map((c) => c.channels), [4, 8, 16]);
    assert.ok(net.cells[2].preprocess0 instanceof FactorizedReduce && net.cells[2].reductionPrev);
    assert.ok(net.cells[1].preprocess0 instanceof ReLUConvBN);
    const names = new Set(net.stateEntries().map((e) => e.name));
    for (const key of ['stem.0.weight', 'stem.1.running_var', 'cells.0.preprocess0.op.1.weight', 'cells.2.preprocess0.conv_1.weight',
      'cells.0._ops.0.op.1.weight', 'auxiliary_head.features.2.weight', 'auxiliary_head.features.6.running_mean',
      'auxiliary_head.classifier.weight', 'classifier.bias']) {
      assert.ok(names.has(key), key);
    }
    const x = randomInput([2, 3, 32, 32], 1);
    net.train();
    const train = net.forward(x);
    assert.deepEqual(train.logits.shape, [2, 7]);
    assert.deepEqual(train.logitsAux?.shape, [2, 7]);
    net.eval();
    const evaluated = net.forward(x);
    assert.deepEqual(evaluated.logits.shape, [2, 7]);
    assert.equal(evaluated.logitsAux, null);
  });
});

test('CIFAR network with one input channel (Fashion-MNIST padded to 32x32)', () => {
  withNetwork(new NetworkCIFAR({ genotype: publishedGenotype('DARTS_V2'), channels: 4, layers: 3, inChannels: 1 }), (net) => {
    assert.deepEqual(net.stem.layers.length, 2);
    const { logits, logitsAux } = net.forward(randomInput([2, 1, 32, 32], 2));
    assert.deepEqual(logits.shape, [2, 10]);
    assert.deepEqual(logitsAux?.shape, [2, 10]);
    assert.throws(() => net.forward(randomInput([2, 3, 32, 32], 2)), /expected input \[N, 1, H, W\]/);
  });
});

test('ImageNet network: stems, first cell reads a reduced input, head without the last BN', () => {
  withNetwork(new NetworkImageNet({ genotype: publishedGenotype('PC_DARTS_image'), channels: 4, layers: 3, classes: 5 }), (net) => {
    assert.ok(net.cells[0].reductionPrev);
    const names = new Set(net.stateEntries().map((e) => e.name));
    for (const key of ['stem0.0.weight', 'stem0.1.weight', 'stem0.3.weight', 'stem0.4.running_mean', 'stem1.1.weight',
      'stem1.2.bias', 'cells.0.preprocess0.conv_2.weight', 'auxiliary_head.features.5.weight', 'auxiliary_head.classifier.bias']) {
      assert.ok(names.has(key), key);
    }
    assert.ok(![...names].some((n) => n.startsWith('auxiliary_head.features.6')), 'no BN after the 2x2 conv');
    assert.equal(net.stateEntries().find((e) => e.name === 'stem0.0.weight')?.tensor.shape[0], 2);
    const { logits, logitsAux } = net.forward(randomInput([1, 3, 224, 224], 3));
    assert.deepEqual(logits.shape, [1, 5]);
    assert.deepEqual(logitsAux?.shape, [1, 5]);
    assert.throws(() => net.checkInputSize(200, 200), /224x224|odd/);
  });
});

describe('drop path', () => {
  test('factors are 0 or 1/(1-p), dropped with probability p', () => {
    const factors = dropPathFactors(4000, 0.3, new Random(5));
    const keep = Math.fround(1 / 0.7);
    assert.ok(factors.every((f) => f === 0 || f === keep));
    const dropped = factors.filter((f) => f === 0).length / factors.length;
    assert.ok(Math.abs(dropped - 0.3) < 0.03, `dropped fraction ${dropped}`);
    assert.throws(() => dropPathFactors(2, 1, new Random(1)), /\[0, 1\)/);
  });

  test('survivors are scaled by 1/(1-p), the rest zeroed; p = 0 is the identity', () => {
    tidy(() => {
      const x = randomInput([16, 2, 3, 3], 7);
      const random = new Random(11);
      const before = random.getState();
      assert.equal(dropPath(x, 0, random), x);
      assert.deepEqual(random.getState(), before, 'p = 0 draws nothing');
      const y = dropPath(x, 0.5, random);
      const per = 18;
      let kept = 0;
      for (let n = 0; n < 16; n++) {
        const xs = x.data.subarray(n * per, (n + 1) * per);
        const ys = y.data.subarray(n * per, (n + 1) * per);
        if (ys.every((v) => v === 0)) continue;
        kept++;
        xs.forEach((v, i) => assert.ok(Math.abs(ys[i] - v / 0.5) <= 1e-6 * Math.abs(v / 0.5) + 1e-7));
      }
      assert.ok(kept > 0 && kept < 16, `kept ${kept} of 16`);
    });
  });

  const cellGenotype = (normal: Genotype['normal']): Genotype => ({
    normal, normal_concat: Array.from({ length: normal.length / 2 }, (_, i) => i + 2),
    reduce: normal, reduce_concat: Array.from({ length: normal.length / 2 }, (_, i) => i + 2),
  });

  test('never applied to identity operations', () => {
    manualSeed(21);
    const genotype = cellGenotype([['skip_connect', 0], ['skip_connect', 1], ['skip_connect', 2], ['skip_connect', 1]]);
    const cell = new EvalCell(genotype, 6, 6, 4, false, false);
    try {
      tidy(() => {
        const s0 = randomInput([8, 6, 4, 4], 1);
        const s1 = randomInput([8, 6, 4, 4], 2);
        const random = new Random(3);
        const before = random.getState();
        const plain = cell.forward(s0, s1, 0, () => random);
        const dropped = cell.forward(s0, s1, 0.9, () => random);
        assert.deepEqual(dropped.toArray(), plain.toArray());
        assert.deepEqual(random.getState(), before, 'no mask drawn for identities');
      });
    } finally {
      disposeModule(cell);
    }
  });

  test('none in eval mode or with p = 0; per-sample masks in training', () => {
    manualSeed(22);
    const genotype = cellGenotype([['max_pool_3x3', 1], ['avg_pool_3x3', 1]]);
    const cell = new EvalCell(genotype, 6, 6, 4, false, false);
    try {
      tidy(() => {
        const s0 = randomInput([8, 6, 4, 4], 4);
        const s1 = randomInput([8, 6, 4, 4], 5);
        const random = new Random(6);
        const before = random.getState();
        cell.train();
        const plain = cell.forward(s0, s1, 0, () => random);
        cell.eval();
        const evalPlain = cell.forward(s0, s1, 0, () => random);
        assert.deepEqual(cell.forward(s0, s1, 0.5, () => random).toArray(), evalPlain.toArray());
        assert.deepEqual(random.getState(), before, 'eval mode and p = 0 draw nothing');
        cell.train();
        const dropped = cell.forward(s0, s1, 0.5, () => random);
        // Expected: the same masks, drawn in the same order (op 0's batch, then op 1's).
        const replay = new Random(6);
        const f0 = dropPathFactors(8, 0.5, replay);
        const f1 = dropPathFactors(8, 0.5, replay);
        const pre = cell.preprocess1.forward(s1); // train mode: batch statistics, same values
        const maxed = ops.maxPool2d(pre, { kernel: 3, stride: 1, padding: 1 });
        const averaged = ops.avgPool2d(pre, { kernel: 3, stride: 1, padding: 1 });
        const expected = ops.add(ops.mulPerSample(maxed, f0), ops.mulPerSample(averaged, f1));
        const per = 4 * 16;
        for (let i = 0; i < expected.numel; i++) {
          assert.ok(Math.abs(dropped.data[i] - expected.data[i]) <= 1e-5, `element ${i} (sample ${Math.floor(i / per)})`);
        }
        assert.notDeepEqual(dropped.toArray(), plain.toArray());
      });
    } finally {
      disposeModule(cell);
    }
  });

  test('the network uses its mutable dropPathProb and its generator, in training only', () => {
    const random = new Random(9);
    withNetwork(new NetworkCIFAR({ genotype: publishedGenotype('PC_DARTS_cifar'), channels: 4, layers: 3, auxiliary: false, random }), (net) => {
      assert.equal(net.dropPathProb, 0.3);
      const x = randomInput([2, 3, 16, 16], 8);
      net.dropPathProb = 0;
      const before = random.getState();
      net.forward(x);
      assert.deepEqual(random.getState(), before);
      net.dropPathProb = 0.2;
      net.eval();
      net.forward(x);
      assert.deepEqual(random.getState(), before);
      net.train();
      net.forward(x);
      assert.notDeepEqual(random.getState(), before);
    });
  });
});

describe('errors are one clear line', () => {
  const base = publishedGenotype('DARTS_V2');
  const oneLine = (fn: () => unknown, pattern: RegExp): void => {
    assert.throws(fn, (error: Error) => {
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes('\n'), error.message);
      return true;
    });
  };

  test('unknown operation', () => {
    const genotype = publishedGenotype('DARTS_V2');
    (genotype.normal[3] as [string, number])[0] = 'sep_conv_7x7';
    oneLine(() => new NetworkCIFAR({ genotype, channels: 4, layers: 3 }), /normal\[3\]: unknown operation 'sep_conv_7x7'/);
  });

  test('input index out of range', () => {
    const genotype = publishedGenotype('DARTS_V2');
    genotype.reduce[2] = ['skip_connect', 3];
    oneLine(() => new NetworkCIFAR({ genotype, channels: 4, layers: 3 }), /reduce\[2\]: input 3 out of range/);
  });

  test('concat naming a node the cell does not have', () => {
    oneLine(() => new NetworkCIFAR({ genotype: { ...base, normal_concat: [2, 3, 4, 5, 6] }, channels: 4, layers: 3 }),
      /normal_concat\[4\]: state 6 out of range/);
    oneLine(() => new NetworkCIFAR({ genotype: { ...base, reduce: base.reduce.slice(0, 7) }, channels: 4, layers: 3 }),
      /even, non-zero number of entries/);
  });

  test('bad sizes and options', () => {
    oneLine(() => new NetworkCIFAR({ genotype: base, channels: 0, layers: 3 }), /channels/);
    oneLine(() => new NetworkCIFAR({ genotype: base, channels: 4, layers: 3, dropPathProb: 1 }), /dropPathProb/);
    withNetwork(new NetworkCIFAR({ genotype: base, channels: 4, layers: 3, auxiliary: false }), (net) => {
      // 18 -> cell 1 reduces to 9 -> cell 2 (a reduction) would get 9x9
      oneLine(() => net.forward(randomInput([1, 3, 18, 18], 1)), /cell 2 \(a reduction\) an odd size 9x9/);
    });
    withNetwork(new NetworkCIFAR({ genotype: base, channels: 4, layers: 3, auxiliary: true }), (net) => {
      oneLine(() => net.forward(randomInput([1, 3, 16, 16], 1)), /auxiliary head: expected a feature map of 8x8/);
    });
  });
});
