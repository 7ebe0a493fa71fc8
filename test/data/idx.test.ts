import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import {
  decodeIdx, encodeIdx, FASHION_MNIST_MEAN, FASHION_MNIST_STD, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
  loadDataset, loadFashionMnistFrom, readIdxFile,
} from '../../src/data/index.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcdarts-idx-'));
  tempDirs.push(dir);
  return dir;
}
after(() => { for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true }); });

/** `count` 28x28 images whose pixel (y, x) of image n is (n * 31 + y * 3 + x) % 256. */
function syntheticImages(count: number): Uint8Array {
  const pixels = new Uint8Array(count * 28 * 28);
  for (let n = 0; n < count; n++) {
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) pixels[(n * 28 + y) * 28 + x] = (n * 31 + y * 3 + x) % 256;
  }
  return pixels;
}

function writeFashion(dir: string, prefix: string, pixels: Uint8Array, labels: Uint8Array, gzip: boolean): void {
  const images = encodeIdx([pixels.length / 784, 28, 28], pixels);
  const labelBytes = encodeIdx([labels.length], labels);
  const suffix = gzip ? '.gz' : '';
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${suffix}`), gzip ? gzipSync(images) : images);
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${suffix}`), gzip ? gzipSync(labelBytes) : labelBytes);
}

describe('idx encoding', () => {
  it('round-trips dimensions and data in memory', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 7) % 256);
    const bytes = encodeIdx([2, 3, 4], data);
    assert.equal(bytes.length, 4 + 12 + 24);
    assert.equal(new DataView(bytes.buffer).getUint32(0, false), IDX_IMAGES_MAGIC);
    const decoded = decodeIdx(bytes, 'x', IDX_IMAGES_MAGIC);
    assert.deepEqual(decoded.dims, [2, 3, 4]);
    assert.deepEqual(Array.from(decoded.data), Array.from(data));
    assert.equal(new DataView(encodeIdx([5], new Uint8Array(5)).buffer).getUint32(0, false), IDX_LABELS_MAGIC);
  });

  for (const gzip of [false, true]) {
    it(`round-trips through a ${gzip ? 'gzipped' : 'plain'} file`, () => {
      const dir = tempDir();
      const data = Uint8Array.from({ length: 3 * 5 * 2 }, (_, i) => 255 - i);
      const path = join(dir, gzip ? 'a-idx3-ubyte.gz' : 'a-idx3-ubyte');
      const bytes = encodeIdx([3, 5, 2], data);
      writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
      const decoded = readIdxFile(path, IDX_IMAGES_MAGIC);
      assert.deepEqual(decoded.dims, [3, 5, 2]);
      assert.deepEqual(Array.from(decoded.data), Array.from(data));
    });
  }
});

describe('Fashion-MNIST loader', () => {
  for (const gzip of [false, true]) {
    it(`loads ${gzip ? 'gzipped' : 'plain'} files and zero-pads 28x28 to 32x32`, () => {
      const dir = tempDir();
      const pixels = syntheticImages(3);
      writeFashion(dir, 'train', pixels, Uint8Array.from([4, 0, 9]), gzip);
      const dataset = loadFashionMnistFrom(dir, 'train');
      assert.equal(dataset.count, 3);
      assert.deepEqual([dataset.channels, dataset.height, dataset.width, dataset.classes], [1, 32, 32, 10]);
      assert.deepEqual(Array.from(dataset.labels), [4, 0, 9]);
      assert.deepEqual(dataset.mean, FASHION_MNIST_MEAN);
      assert.deepEqual(dataset.std, FASHION_MNIST_STD);
      assert.equal(dataset.images.length, 3 * 32 * 32);
      for (let n = 0; n < 3; n++) {
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
            const expected = inside ? pixels[(n * 28 + y - 2) * 28 + x - 2] : 0;
            assert.equal(dataset.images[(n * 32 + y) * 32 + x], expected, `image ${n} (${y}, ${x})`);
          }
        }
      }
    });
  }

  it('loads the test split from t10k files through loadDataset with dataDir', () => {
    const dir = tempDir();
    writeFashion(dir, 't10k', syntheticImages(2), Uint8Array.from([1, 2]), true);
    const dataset = loadDataset({ dataset: 'fashion-mnist', dataDir: dir, split: 'test' });
    assert.equal(dataset.split, 'test');
    assert.deepEqual(Array.from(dataset.labels), [1, 2]);
  });

  it('rejects a corrupt magic number, naming the file', () => {
    const dir = tempDir();
    writeFashion(dir, 'train', syntheticImages(2), Uint8Array.from([1, 2]), false);
    const path = join(dir, 'train-images-idx3-ubyte');
    const bytes = encodeIdx([2, 28, 28], syntheticImages(2));
    bytes[3] = 1; // 2049: a label file's magic
    writeFileSync(path, bytes);
    assert.throws(() => loadFashionMnistFrom(dir, 'train'), /^Error: train-images-idx3-ubyte: bad magic number: expected 2051, got 2049/);
  });

  it('rejects a truncated gzipped file with the expected and actual sizes', () => {
    const dir = tempDir();
    writeFashion(dir, 'train', syntheticImages(2), Uint8Array.from([1, 2]), true);
    const truncated = encodeIdx([2, 28, 28], syntheticImages(2)).subarray(0, 1200);
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(truncated));
    assert.throws(() => loadFashionMnistFrom(dir, 'train'),
      (err: Error) => err.message === 'train-images-idx3-ubyte.gz: truncated: expected 1584 bytes, got 1200');
  });

  it('rejects a truncated gzip stream, naming the file', () => {
    const dir = tempDir();
    writeFashion(dir, 'train', syntheticImages(2), Uint8Array.from([1, 2]), true);
    const gz = gzipSync(encodeIdx([2, 28, 28], syntheticImages(2)));
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gz.subarray(0, gz.length >> 1));
    assert.throws(() => loadFashionMnistFrom(dir, 'train'), /^Error: train-images-idx3-ubyte\.gz: corrupt gzip data/);
  });

  it('rejects a label count that differs from the image count, naming the file', () => {
    const dir = tempDir();
    writeFashion(dir, 'train', syntheticImages(3), Uint8Array.from([1, 2]), false);
    assert.throws(() => loadFashionMnistFrom(dir, 'train'),
      /^Error: train-labels-idx1-ubyte: label count does not match: expected 3 labels \(as train-images-idx3-ubyte has images\), got 2$/);
  });

  it('rejects labels out of range and images that are not 28x28', () => {
    const dir = tempDir();
    writeFashion(dir, 'train', syntheticImages(2), Uint8Array.from([1, 10]), false);
    assert.throws(() => loadFashionMnistFrom(dir, 'train'), /train-labels-idx1-ubyte: label 10 of item 1 is out of range/);
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), encodeIdx([2, 28, 14], new Uint8Array(2 * 28 * 14)));
    assert.throws(() => loadFashionMnistFrom(dir, 'train'), /train-images-idx3-ubyte: expected 28x28 images, got 28x14/);
  });

  it('names the missing file and what to pass', () => {
    const dir = tempDir();
    assert.throws(() => loadDataset({ dataset: 'fashion-mnist', dataDir: dir, split: 'train' }), (err: Error) =>
      err.message.includes(join(dir, 'train-images-idx3-ubyte')) && err.message.includes('--data DIR') && !err.message.includes('\n'));
    assert.throws(() => loadDataset({ dataset: 'cifar10', split: 'train' }), /cifar10: no data directory: pass --data DIR/);
    assert.throws(() => loadDataset({ dataset: 'fashion-mnist-bundled', dataDir: dir, split: 'train' }), /takes no data directory/);
  });
});
