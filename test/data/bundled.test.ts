import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
  classCounts, type Dataset, DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_MEAN, FASHION_MNIST_STD, loadDataset,
  splitTrainValid,
} from '../../src/data/index.js';

function assertZeroBorders(dataset: Dataset): void {
  for (let n = 0; n < dataset.count; n++) {
    const base = n * 32 * 32;
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        if (y >= 2 && y < 30 && x >= 2 && x < 30) continue;
        if (dataset.images[base + y * 32 + x] !== 0) assert.fail(`image ${n} has a non-zero border pixel at (${y}, ${x})`);
      }
    }
  }
}

describe('bundled Fashion-MNIST subset', () => {
  const train = loadDataset({ dataset: 'fashion-mnist-bundled', split: 'train' });
  const test = loadDataset({ dataset: 'fashion-mnist-bundled', split: 'test' });

  it('has 6000 training and 1000 test images, class-balanced', () => {
    assert.equal(train.count, 6000);
    assert.equal(test.count, 1000);
    assert.deepEqual(Array.from(classCounts(train)), new Array(10).fill(600));
    assert.deepEqual(Array.from(classCounts(test)), new Array(10).fill(100));
    assert.equal(train.name, 'fashion-mnist-bundled');
    assert.deepEqual(train.mean, FASHION_MNIST_MEAN);
    assert.deepEqual(train.std, FASHION_MNIST_STD);
  });

  it('is 1x32x32, zero-padded from 28x28, with real (non-blank) content', () => {
    for (const dataset of [train, test]) {
      assert.deepEqual([dataset.channels, dataset.height, dataset.width], [1, 32, 32]);
      assertZeroBorders(dataset);
    }
    let blank = 0;
    for (let n = 0; n < train.count; n++) {
      if (train.images.subarray(n * 1024, (n + 1) * 1024).every((v) => v === 0)) blank++;
    }
    assert.equal(blank, 0);
  });

  it('is stored shuffled: both halves of the search split hold every class', () => {
    const { train: weights, valid: architecture } = splitTrainValid(train.count, 0.5);
    for (const half of [weights, architecture]) {
      const counts = new Array(10).fill(0);
      for (const i of half) counts[train.labels[i]]++;
      // 3000 draws of a balanced set: every class near 300.
      for (const c of counts) assert.ok(c > 200 && c < 400, `class counts ${counts.join(', ')}`);
    }
    let runs = 1;
    for (let i = 1; i < train.count; i++) if (train.labels[i] !== train.labels[i - 1]) runs++;
    assert.ok(runs > 4000, `only ${runs} runs of equal labels: looks sorted`);
  });
});

describe('full Fashion-MNIST (Debian package dataset-fashion-mnist)', () => {
  const present = existsSync(join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
  it('has the documented padded channel statistics', { skip: present ? false : 'not installed' }, () => {
    const train = loadDataset({ dataset: 'fashion-mnist', split: 'train' });
    assert.equal(train.count, 60000);
    assert.deepEqual(Array.from(classCounts(train)), new Array(10).fill(6000));
    let sum = 0;
    let sumSquares = 0;
    for (let i = 0; i < train.images.length; i++) {
      const v = train.images[i] / 255;
      sum += v;
      sumSquares += v * v;
    }
    const mean = sum / train.images.length;
    const std = Math.sqrt(sumSquares / train.images.length - mean * mean);
    assert.ok(Math.abs(mean - FASHION_MNIST_MEAN[0]) < 5e-8, `mean ${mean}`);
    assert.ok(Math.abs(std - FASHION_MNIST_STD[0]) < 5e-8, `std ${std}`);
    const test = loadDataset({ dataset: 'fashion-mnist', split: 'test' });
    assert.equal(test.count, 10000);

    // Provenance (data/fashion-mnist-subset/README.md): the bundle's first images are
    // source images 6421 (train) and 7964 (test), unchanged.
    const bundledTrain = loadDataset({ dataset: 'fashion-mnist-bundled', split: 'train' });
    const bundledTest = loadDataset({ dataset: 'fashion-mnist-bundled', split: 'test' });
    assert.deepEqual(bundledTrain.images.subarray(0, 1024), train.images.subarray(6421 * 1024, 6422 * 1024));
    assert.equal(bundledTrain.labels[0], train.labels[6421]);
    assert.deepEqual(bundledTest.images.subarray(0, 1024), test.images.subarray(7964 * 1024, 7965 * 1024));
  });
});
