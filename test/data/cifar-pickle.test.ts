/**
 * CIFAR as people download it: the "python version" of CIFAR-10 and CIFAR-100 written by real
 * pickle + numpy (/usr/bin/python3) in the official archives' layout, both as Python 2 wrote
 * the official files and as Python 3 writes them at protocols 2, 4 and 5; CIFAR-100's binary
 * version; and the one-line errors for broken files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

import {
  CIFAR10_IMAGE_BYTES, CIFAR100_CLASS_NAMES, CIFAR100_MEAN, CIFAR100_RECORD_BYTES, type Dataset, loadDataset, readPickle,
} from '../../src/data/index.js';

const SCRIPT = fileURLToPath(new URL('../../../test/data/cifar_pickles.py', import.meta.url));
const PYTHON = process.env.PCDARTS_PYTHON ?? '/usr/bin/python3';
const PER_BATCH = 30;

const root = mkdtempSync(join(tmpdir(), 'pcdarts-cifar-pickle-'));
after(() => rmSync(root, { recursive: true, force: true }));

type Digest = Record<string, { pixels: string; labels: number[] }>;

function write(style: string): { dir: string; digest: Digest } {
  const dir = join(root, style);
  mkdirSync(dir, { recursive: true });
  const digest = JSON.parse(execFileSync(PYTHON, [SCRIPT, dir, style, String(PER_BATCH)], { encoding: 'utf8' })) as Digest;
  return { dir, digest };
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Checks that `dataset` is the concatenation of the digest's batches `names`. */
function assertBatches(dataset: Dataset, digest: Digest, names: string[]): void {
  assert.equal(dataset.count, names.length * PER_BATCH * (names[0].startsWith('cifar100/train') ? 2 : 1));
  let first = 0;
  for (const name of names) {
    const { pixels, labels } = digest[name];
    const images = dataset.images.subarray(first * CIFAR10_IMAGE_BYTES, (first + labels.length) * CIFAR10_IMAGE_BYTES);
    assert.equal(sha(images), pixels, `${name}: pixels`);
    assert.deepEqual(Array.from(dataset.labels.subarray(first, first + labels.length)), labels, `${name}: labels`);
    first += labels.length;
  }
}

describe('the CIFAR python version', () => {
  for (const style of ['py2', 'p2', 'p4', 'p5']) {
    it(`reads CIFAR-10 and CIFAR-100 pickled ${style === 'py2' ? 'as the official archives (Python 2 cPickle)' : `by Python 3 at protocol ${style[1]}`}`, () => {
      const { dir, digest } = write(style);
      const train = loadDataset({ dataset: 'cifar10', dataDir: dir, split: 'train' });
      assertBatches(train, digest, [1, 2, 3, 4, 5].map((i) => `cifar10/data_batch_${i}`));
      assert.deepEqual([train.classes, train.classNames[9], train.channels, train.height], [10, 'truck', 3, 32]);
      assertBatches(loadDataset({ dataset: 'cifar10', dataDir: join(dir, 'cifar-10-batches-py'), split: 'test' }), digest, ['cifar10/test_batch']);
      const hundred = loadDataset({ dataset: 'cifar100', dataDir: dir, split: 'train' });
      assertBatches(hundred, digest, ['cifar100/train']);
      assert.deepEqual([hundred.classes, hundred.classNames[7], hundred.mean], [100, 'fine_07', CIFAR100_MEAN]);
      assertBatches(loadDataset({ dataset: 'cifar100', dataDir: dir, split: 'test' }), digest, ['cifar100/test']);
    });
  }

  it('refuses what is not a CIFAR batch, with one line naming the file', () => {
    const { dir } = write('p4');
    const batches = join(dir, 'cifar-10-batches-py');
    const good = readFileSync(join(batches, 'data_batch_1'));
    const load = () => loadDataset({ dataset: 'cifar10', dataDir: dir, split: 'train' });
    writeFileSync(join(batches, 'data_batch_3'), good.subarray(0, good.length - 500));
    assert.throws(load, /^Error: data_batch_3: not a readable pickle: truncated/);
    // A pickle that would run code: refused, never called.
    writeFileSync(join(batches, 'data_batch_3'), Buffer.from("cos\nsystem\n(S'echo hi'\ntR.", 'latin1'));
    assert.throws(load, /data_batch_3: not a readable pickle: refusing the global os\.system/);
    const wrong = execFileSync(PYTHON, ['-c', 'import pickle, numpy, sys; sys.stdout.buffer.write(pickle.dumps({b"data": numpy.zeros((2, 100), numpy.uint8), b"labels": [0, 1]}))']);
    writeFileSync(join(batches, 'data_batch_3'), wrong);
    assert.throws(load, /data_batch_3: 'data' must be a C-order uint8 array of shape \(N, 3072\), got \|?u1 \(2, 100\)/);
    const labels = execFileSync(PYTHON, ['-c', 'import pickle, numpy, sys; sys.stdout.buffer.write(pickle.dumps({b"data": numpy.zeros((2, 3072), numpy.uint8), b"labels": [0, 10]}))']);
    writeFileSync(join(batches, 'data_batch_3'), labels);
    assert.throws(load, /data_batch_3: label 10 of image 1 is out of range: expected 0\.\.9/);
    rmSync(join(batches, 'data_batch_3'));
    assert.throws(load, /cifar10: .*data_batch_3 not found: pass --data DIR \(dataDir\) holding .*"python version"/);
    assert.throws(() => loadDataset({ dataset: 'cifar100', dataDir: join(root, 'nothing'), split: 'train' }), /cifar100: .*nothing\/train\.bin not found: .*cifar-100-python\/train and test/);
  });

  it('reads numpy label arrays and big-endian dtypes that re-pickled files may hold', () => {
    const bytes = execFileSync(PYTHON, ['-c', [
      'import pickle, numpy, sys',
      'd = {"data": numpy.arange(2 * 3072, dtype=numpy.uint8).reshape(2, 3072), "labels": numpy.array([3, 7], dtype=">i8")}',
      'sys.stdout.buffer.write(pickle.dumps(d, protocol=3))',
    ].join('\n')]);
    const value = readPickle(new Uint8Array(bytes), 'x');
    const dir = join(root, 'numpy-labels', 'cifar-10-batches-py');
    mkdirSync(dir, { recursive: true });
    for (const name of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) writeFileSync(join(dir, name), bytes);
    const train = loadDataset({ dataset: 'cifar10', dataDir: dir, split: 'train' });
    assert.deepEqual(Array.from(train.labels), [3, 7, 3, 7, 3, 7, 3, 7, 3, 7]);
    assert.equal(train.images[3072 + 5], (3072 + 5) % 256);
    assert.ok(value !== null);
  });
});

describe('the CIFAR-100 binary version', () => {
  it('reads fine labels (the second byte of each record) and the class names beside the files', () => {
    const dir = join(root, 'cifar-100-binary');
    mkdirSync(dir, { recursive: true });
    const record = (coarse: number, fine: number, fill: number): Uint8Array => {
      const r = new Uint8Array(CIFAR100_RECORD_BYTES).fill(fill);
      r[0] = coarse;
      r[1] = fine;
      return r;
    };
    writeFileSync(join(dir, 'train.bin'), Buffer.concat([record(1, 99, 7), record(19, 0, 8), record(3, 42, 9)]));
    writeFileSync(join(dir, 'test.bin'), record(0, 5, 1));
    const train = loadDataset({ dataset: 'cifar100', dataDir: join(root), split: 'train' });
    assert.deepEqual(Array.from(train.labels), [99, 0, 42]);
    assert.deepEqual([train.images[0], train.images[3072], train.images[2 * 3072 + 3071]], [7, 8, 9]);
    assert.deepEqual(train.classNames, CIFAR100_CLASS_NAMES);
    writeFileSync(join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `class ${i}`).join('\n') + '\n');
    assert.equal(loadDataset({ dataset: 'cifar100', dataDir: dir, split: 'test' }).classNames[5], 'class 5');
    writeFileSync(join(dir, 'test.bin'), record(0, 100, 1));
    assert.throws(() => loadDataset({ dataset: 'cifar100', dataDir: dir, split: 'test' }), /test\.bin: fine label 100 of record 0 is out of range: expected 0\.\.99/);
    writeFileSync(join(dir, 'test.bin'), record(0, 1, 1).subarray(0, 3000));
    assert.throws(() => loadDataset({ dataset: 'cifar100', dataDir: dir, split: 'test' }), /test\.bin: truncated: expected a multiple of 3074 bytes/);
  });
});
