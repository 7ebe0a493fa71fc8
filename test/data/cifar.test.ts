import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import {
  CIFAR10_MEAN, CIFAR10_RECORD_BYTES, CIFAR10_STD, CIFAR10_TRAIN_FILES, loadCifar10From, loadDataset,
} from '../../src/data/index.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcdarts-cifar-'));
  tempDirs.push(dir);
  return dir;
}
after(() => { for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true }); });

/** Record r of file f: label (f + r) % 10; pixel (c, y, x) = (f * 50 + r * 10 + c * 3 + y + x) % 256. */
function batchFile(file: number, records: number): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const offset = r * CIFAR10_RECORD_BYTES;
    bytes[offset] = (file + r) % 10;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) bytes[offset + 1 + c * 1024 + y * 32 + x] = (file * 50 + r * 10 + c * 3 + y + x) % 256;
      }
    }
  }
  return bytes;
}

function writeCifar(dir: string): void {
  CIFAR10_TRAIN_FILES.forEach((name, f) => writeFileSync(join(dir, name), batchFile(f, 2)));
  writeFileSync(join(dir, 'test_batch.bin'), batchFile(7, 3));
}

describe('CIFAR-10 binary reader', () => {
  it('concatenates the training batches in file order, RGB planes as NCHW', () => {
    const dir = tempDir();
    writeCifar(dir);
    const dataset = loadDataset({ dataset: 'cifar10', dataDir: dir, split: 'train' });
    assert.equal(dataset.count, 10);
    assert.deepEqual([dataset.channels, dataset.height, dataset.width, dataset.classes], [3, 32, 32, 10]);
    assert.deepEqual(Array.from(dataset.labels), [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
    assert.deepEqual(dataset.mean, CIFAR10_MEAN);
    assert.deepEqual(dataset.std, CIFAR10_STD);
    // Image 7 = file 3, record 1; green plane (c = 1), pixel (y 5, x 9).
    const at = (n: number, c: number, y: number, x: number): number => dataset.images[((n * 3 + c) * 32 + y) * 32 + x];
    assert.equal(at(7, 1, 5, 9), (3 * 50 + 10 + 3 + 5 + 9) % 256);
    assert.equal(at(7, 0, 5, 9), (3 * 50 + 10 + 0 + 5 + 9) % 256);
    assert.equal(at(7, 2, 31, 0), (3 * 50 + 10 + 6 + 31) % 256);
    for (let n = 0; n < 10; n++) {
      const f = n >> 1;
      const r = n & 1;
      for (let c = 0; c < 3; c++) assert.equal(at(n, c, 1, 2), (f * 50 + r * 10 + c * 3 + 3) % 256);
    }
  });

  it('loads test_batch.bin, also from the archive\'s cifar-10-batches-bin folder', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'cifar-10-batches-bin'));
    writeCifar(join(dir, 'cifar-10-batches-bin'));
    const dataset = loadCifar10From(dir, 'test');
    assert.equal(dataset.count, 3);
    assert.deepEqual(Array.from(dataset.labels), [7, 8, 9]);
    assert.equal(dataset.images[(2 * 3 + 2) * 1024 + 0], (350 + 20 + 6) % 256);
  });

  it('rejects a truncated file, naming it', () => {
    const dir = tempDir();
    writeCifar(dir);
    writeFileSync(join(dir, 'data_batch_3.bin'), batchFile(2, 2).subarray(0, 5000));
    assert.throws(() => loadCifar10From(dir, 'train'),
      (err: Error) => err.message === 'data_batch_3.bin: truncated: expected a multiple of 3073 bytes (1 label + 3072 pixels per record), got 5000');
  });

  it('rejects a label >= 10 and a missing batch, naming the file', () => {
    const dir = tempDir();
    writeCifar(dir);
    const bad = batchFile(0, 2);
    bad[CIFAR10_RECORD_BYTES] = 10;
    writeFileSync(join(dir, 'test_batch.bin'), bad);
    assert.throws(() => loadCifar10From(dir, 'test'), /^Error: test_batch\.bin: label 10 of record 1 is out of range: expected 0\.\.9$/);
    rmSync(join(dir, 'data_batch_5.bin'));
    assert.throws(() => loadCifar10From(dir, 'train'), /data_batch_5\.bin not found: pass --data DIR/);
  });
});
