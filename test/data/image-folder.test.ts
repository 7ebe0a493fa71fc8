/**
 * Image folders: the scan against torchvision's ImageFolder on the same tree (class order,
 * labels, file order), every format and oddity decoding to upright 8-bit RGB, the layout and
 * image errors, and the decode pipeline's bits for any worker count, prefetch depth and
 * resume position.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import sharp from 'sharp';

import {
  BatchSampler, closeDecodePool, compareCodePoints, FolderBatchSource, fullImage, type ImageFolderDataset, KeyedBatchSampler,
  loadImageFolder, openImage, verifyImages,
} from '../../src/data/index.js';
import { loadRunDataset, verifyUsedImages } from '../../src/run/data.js';
import { RunInputError } from '../../src/run/errors.js';
import { Random } from '../../src/tensor/random.js';
import { encodeVariant, fewColours, makeImageFolder, pattern, storedWithOrientation, type Variant, VARIANTS } from './image-fixture.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-imagefolder-'));
after(async () => {
  rmSync(root, { recursive: true, force: true });
  await closeDecodePool();
});

const PYTHON = process.env.PCDARTS_PYTHON ?? '/usr/bin/python3';

describe('scanning the ImageFolder layout', () => {
  const dir = join(root, 'order');
  // Names whose code-point order differs from locale order and from UTF-16 order.
  const classes = ['zebra', 'Zebra', 'apple', '10', '9', 'Äpfel', 'émile', '\u{1D4B3}-astral', '\uFB01-ligature', 'b c'];
  before(async () => {
    await makeImageFolder(dir, { classes, trainPerClass: 3, valPerClass: 0, minSide: 8, maxSide: 12, seed: 2 });
    // Upper-case and mixed-case extensions, nested folders.
    writeFileSync(join(dir, 'train', 'apple', 'UPPER.JPEG'), await encodeVariant('jpeg', pattern(9, 9, 1), 9, 9));
    writeFileSync(join(dir, 'train', 'apple', 'Mixed.TiFf'), await encodeVariant('tiff', pattern(9, 9, 2), 9, 9));
    mkdirSync(join(dir, 'train', 'apple', 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(dir, 'train', 'apple', 'sub', 'deeper', 'x.png'), await encodeVariant('png', pattern(9, 9, 3), 9, 9));
    writeFileSync(join(dir, 'train', 'apple', 'sub-b.png'), await encodeVariant('png', pattern(9, 9, 4), 9, 9));
  });

  it('orders classes and files exactly as torchvision\'s ImageFolder does', () => {
    const dataset = loadImageFolder({ name: 'imagefolder', dir, split: 'train', imageSize: 16 });
    const script = [
      'import json, sys, torchvision',
      'd = torchvision.datasets.ImageFolder(sys.argv[1])',
      'print(json.dumps({"classes": d.classes, "samples": [[p[len(sys.argv[1]) + 1:], c] for p, c in d.samples]}))',
    ].join('\n');
    const theirs = JSON.parse(execFileSync(PYTHON, ['-c', script, join(dir, 'train')], { encoding: 'utf8' })) as { classes: string[]; samples: [string, number][] };
    assert.deepEqual(dataset.classNames, theirs.classes);
    assert.deepEqual(dataset.files, theirs.samples.map(([path]) => path));
    assert.deepEqual(Array.from(dataset.labels), theirs.samples.map(([, c]) => c));
    assert.equal(dataset.report.ignoredFiles, 0);
  });

  it('sorts by code point, not by UTF-16 unit or locale', () => {
    const names = ['\uFB01', '\u{1D4B3}', 'a', 'B', 'é'];
    assert.deepEqual([...names].sort(compareCodePoints), ['B', 'a', 'é', '\uFB01', '\u{1D4B3}']);
  });

  it('ignores and counts other files, hidden files and folders, and stray files beside the classes', async () => {
    const cluttered = join(root, 'clutter');
    const { ignoredInTrain } = await makeImageFolder(cluttered, { classes: ['a', 'b'], trainPerClass: 2, valPerClass: 1, minSide: 8, maxSide: 10, clutter: true });
    const dataset = loadImageFolder({ name: 'imagefolder', dir: cluttered, split: 'train', imageSize: 16 });
    assert.equal(dataset.count, 4);
    assert.equal(dataset.report.ignoredFiles, ignoredInTrain);
    assert.ok(dataset.report.ignoredExamples.includes('a/labels.txt') && dataset.report.ignoredExamples.includes('.DS_Store'));
    const val = loadImageFolder({ name: 'imagefolder', dir: cluttered, split: 'test', imageSize: 16 });
    assert.deepEqual([val.count, val.classes, Array.from(val.labels)], [2, 2, [0, 1]]);
  });

  it('labels val/ with train/\'s class indices when val/ lacks classes', async () => {
    const partial = join(root, 'partial-val');
    await makeImageFolder(partial, { classes: ['a', 'b', 'c'], trainPerClass: 1, valPerClass: 0, minSide: 8, maxSide: 8 });
    mkdirSync(join(partial, 'val', 'c'), { recursive: true });
    writeFileSync(join(partial, 'val', 'c', 'only.png'), await encodeVariant('png', pattern(8, 8, 1), 8, 8));
    const val = loadImageFolder({ name: 'imagefolder', dir: partial, split: 'test', imageSize: 16 });
    assert.deepEqual([val.classes, Array.from(val.labels)], [3, [2]]);
  });

  it('rejects broken layouts with one line naming the path', async () => {
    const load = (dir: string, split: 'train' | 'test' = 'train') => () => loadImageFolder({ name: 'imagefolder', dir, split, imageSize: 16 });
    assert.throws(load(join(root, 'nowhere')), /imagefolder: .*nowhere: no such directory: expected the ImageFolder layout DIR\/train\/<class>\/<image>/);
    const noTrain = join(root, 'no-train');
    mkdirSync(join(noTrain, 'cats'), { recursive: true });
    assert.throws(load(noTrain), /no-train\/train not found: expected the ImageFolder layout/);
    const noClasses = join(root, 'no-classes');
    mkdirSync(join(noClasses, 'train'), { recursive: true });
    writeFileSync(join(noClasses, 'train', 'loose.jpg'), 'x');
    assert.throws(load(noClasses), /no-classes\/train: no class folders/);
    const emptyClass = join(root, 'empty-class');
    await makeImageFolder(emptyClass, { classes: ['a'], trainPerClass: 1, valPerClass: 0, minSide: 8, maxSide: 8 });
    mkdirSync(join(emptyClass, 'train', 'b'));
    writeFileSync(join(emptyClass, 'train', 'b', 'notes.txt'), 'no images here');
    assert.throws(load(emptyClass), /empty-class\/train\/b: empty class folder: expected at least one image \(\.jpg .*\.bmp/);
    const extraVal = join(root, 'extra-val');
    await makeImageFolder(extraVal, { classes: ['a'], trainPerClass: 1, valPerClass: 1, minSide: 8, maxSide: 8 });
    mkdirSync(join(extraVal, 'val', 'zz'));
    writeFileSync(join(extraVal, 'val', 'zz', 'x.png'), await encodeVariant('png', pattern(8, 8, 1), 8, 8));
    assert.throws(load(extraVal, 'test'), /extra-val\/val\/zz: class 'zz' is not a class of the training folder/);
    assert.throws(load(emptyClass.replace('empty-class', 'no-val-here')), /no such directory/);
    const noVal = join(root, 'no-val');
    await makeImageFolder(noVal, { classes: ['a'], trainPerClass: 1, valPerClass: 0, minSide: 8, maxSide: 8 });
    assert.throws(load(noVal, 'test'), /no-val\/val not found: the test split is DIR\/val\/<class>\/<image>/);
    for (const fn of [load(join(root, 'nowhere')), load(noClasses), load(emptyClass)]) {
      assert.throws(fn, (error: Error) => !error.message.includes('\n'));
    }
  });
});

describe('decoding every format to upright 8-bit RGB', () => {
  const W = 21;
  const H = 13;
  const rgb = pattern(W, H, 7);

  const meanAbsDiff = (a: Uint8Array, b: Uint8Array): number => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

  for (const variant of VARIANTS) {
    it(variant, async () => {
      const content = variant === 'palette' ? fewColours(W, H) : rgb;
      const bytes = await encodeVariant(variant, content, W, H);
      const image = await openImage(bytes);
      const exifTurned = variant === 'exif'; // stored for orientation 6, upright is still W x H
      assert.deepEqual([image.width, image.height], [W, H], exifTurned ? 'orientation applied' : 'size');
      const out = await fullImage(image);
      assert.equal(out.length, W * H * 3, '3 bytes per pixel');
      const exact: Variant[] = ['png', 'palette', 'rgb16', 'alpha', 'webp', 'tiff', 'bmp'];
      if (exact.includes(variant)) {
        assert.deepEqual(Buffer.from(out), Buffer.from(content));
      } else if (variant.startsWith('grey')) {
        // What the file stores: one grey value per pixel (the 16-bit file holds the 8-bit one's values x 257).
        const eightBit = variant === 'grey16' ? await encodeVariant('grey', content, W, H) : bytes;
        const grey = (await sharp(eightBit).extractChannel(0).raw().toBuffer()).subarray(0, W * H);
        for (let p = 0; p < W * H; p++) {
          assert.ok(out[3 * p] === out[3 * p + 1] && out[3 * p] === out[3 * p + 2], 'grey: R = G = B');
          const expected = grey[p];
          assert.ok(Math.abs(out[3 * p] - expected) <= 1, `grey value ${out[3 * p]} at ${p}, stored ${grey[p]}`);
        }
      } else {
        // CMYK goes through ICC profiles and back: close, not exact (read as RGB it would be inverted).
        const limit = variant === 'cmyk' ? 16 : 3;
        assert.ok(meanAbsDiff(out, content) <= limit, `${variant}: mean difference ${meanAbsDiff(out, content)}`);
      }
    });
  }

  it('every EXIF orientation (1..8) arrives upright', async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const image = await openImage(await storedWithOrientation(rgb, W, H, orientation, 'tiff'));
      assert.deepEqual([image.width, image.height], [W, H], `orientation ${orientation}`);
      assert.deepEqual(Buffer.from(await fullImage(image)), Buffer.from(rgb), `orientation ${orientation}`);
    }
  });
});

describe('bad images', () => {
  let dataset: ImageFolderDataset;
  const dir = join(root, 'bad');
  before(async () => {
    await makeImageFolder(dir, { classes: ['a', 'b'], trainPerClass: 4, valPerClass: 0, minSide: 30, maxSide: 40 });
    const good = await encodeVariant('jpeg', pattern(64, 48, 3), 64, 48);
    writeFileSync(join(dir, 'train', 'a', 'truncated.jpg'), good.subarray(0, Math.floor(good.length * 0.7)));
    writeFileSync(join(dir, 'train', 'b', 'garbage.png'), Buffer.from('this is not a png at all'));
    writeFileSync(join(dir, 'train', 'b', 'empty.webp'), Buffer.alloc(0));
    dataset = loadImageFolder({ name: 'imagefolder', dir, split: 'train', imageSize: 16 });
  });

  it('a decode of every image finds exactly the broken ones', () => {
    const result = verifyImages(dataset, { workers: 2 });
    assert.deepEqual(result.bad.map((i) => dataset.files[i]), ['a/truncated.jpg', 'b/empty.webp', 'b/garbage.png']);
    assert.match(result.firstError!, /bad\/train\/a\/truncated\.jpg: cannot decode: /);
  });

  it('stop a run with one line naming the file, or are left out with --skip-bad-images', () => {
    const options = { dataset: 'imagefolder', data: dir, split: 'train', limit: null, imageSize: 16, pipeline: { workers: 2 } } as const;
    assert.throws(() => loadRunDataset(options), (error: Error) => error instanceof RunInputError
      && /train\/a\/truncated\.jpg: cannot decode: .* \(3 bad images in all\)$/.test(error.message) && !error.message.includes('\n'));
    const kept = loadRunDataset({ ...options, skipBadImages: true }) as ImageFolderDataset;
    assert.equal(kept.count, 8);
    assert.deepEqual(kept.report.badImages, ['a/truncated.jpg', 'b/empty.webp', 'b/garbage.png']);
    assert.ok(!kept.files.some((f) => kept.report.badImages.includes(f)));
  });
});

describe('verifying only the images a run uses', () => {
  it('decodes just the used items, once, and stops or leaves out the bad ones among them', async () => {
    const dir = join(root, 'used');
    await makeImageFolder(dir, { classes: ['a', 'b'], trainPerClass: 3, valPerClass: 0, minSide: 20, maxSide: 24 });
    writeFileSync(join(dir, 'train', 'b', 'zz-broken.png'), Buffer.from('not a png'));
    const dataset = loadImageFolder({ name: 'imagefolder', dir, split: 'train', imageSize: 16 });
    const broken = dataset.files.indexOf('b/zz-broken.png');
    const others = Array.from({ length: dataset.count }, (_, i) => i).filter((i) => i !== broken);
    const verified = new Set<string>();
    assert.equal(verifyUsedImages(dataset, others, verified, { skipBadImages: false, pipeline: { workers: 2 } }), dataset);
    assert.equal(verified.size, others.length);
    assert.throws(() => verifyUsedImages(dataset, [broken], verified, { skipBadImages: false }), /used\/train\/b\/zz-broken\.png: cannot decode/);
    const kept = verifyUsedImages(dataset, [0, broken], new Set(), { skipBadImages: true });
    assert.deepEqual([kept.count, kept.report.badImages], [dataset.count - 1, ['b/zz-broken.png']]);
  });
});

describe('the decode pipeline', () => {
  const dir = join(root, 'pipeline');
  let dataset: ImageFolderDataset;
  before(async () => {
    await makeImageFolder(dir, { classes: ['a', 'b', 'c'], trainPerClass: 5, valPerClass: 2, minSide: 20, maxSide: 60, seed: 9 });
    dataset = loadImageFolder({ name: 'imagefolder', dir, split: 'train', imageSize: 16 });
  });

  const all = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

  function batches(source: FolderBatchSource, count: number): { pixels: Float32Array; labels: Int32Array; indices: Int32Array }[] {
    const out = [];
    for (let b = 0; b < count; b++) {
      let pixels = new Float32Array(0);
      const info = source.next((n) => (pixels = new Float32Array(n * 3 * 16 * 16)));
      out.push({ pixels, labels: info.labels, indices: info.indices });
    }
    return out;
  }

  const train = (workers: number, prefetch: number, jitter: boolean): FolderBatchSource => FolderBatchSource.training(
    dataset, new KeyedBatchSampler(all(dataset.count), 4, 11, 'train'),
    { kind: 'train', flip: true, jitter: jitter ? [0.4, 0.4, 0.4, 0.2] : null, cutout: jitter ? 5 : 0 }, { workers, prefetch },
  );

  it('gives the same bits for any number of workers and any prefetch depth, epochs apart differing', () => {
    const reference = batches(train(1, 1, true), 10); // 15 images in batches of 4: 2.5 epochs
    for (const [workers, prefetch] of [[3, 1], [2, 4], [1, 7]]) {
      const other = batches(train(workers, prefetch, true), 10);
      other.forEach((b, i) => {
        assert.deepEqual(b.indices, reference[i].indices);
        assert.deepEqual(b.pixels, reference[i].pixels, `batch ${i} with ${workers} workers, prefetch ${prefetch}`);
      });
    }
    // Every value normalised, labels those of the items.
    for (const b of reference) {
      assert.ok(b.pixels.every((v) => Number.isFinite(v) && v > -2.2 && v < 2.7));
      assert.deepEqual(Array.from(b.labels), Array.from(b.indices, (i) => dataset.labels[i]));
    }
    // The same image in two epochs gets another crop.
    const first = reference.slice(0, 4).flatMap((b, k) => Array.from(b.indices, (item, j) => ({ item, b: k, j })));
    const second = reference.slice(4, 8).flatMap((b, k) => Array.from(b.indices, (item, j) => ({ item, b: k + 4, j })));
    const image = (where: { b: number; j: number }): Float32Array => reference[where.b].pixels.subarray(where.j * 768, (where.j + 1) * 768);
    const again = second.find((s) => first.some((f) => f.item === s.item))!;
    assert.notDeepEqual(image(first.find((f) => f.item === again.item)!), image(again));
  });

  it('resumes at any position with the bits of an uninterrupted run', () => {
    const reference = batches(train(2, 3, false), 9);
    for (const at of [0, 3, 4, 7]) {
      const source = train(2, 3, false);
      batches(source, 1); // something in flight from another position
      const sampler = new KeyedBatchSampler(all(dataset.count), 4, 11, 'train');
      for (let b = 0; b < at; b++) sampler.next();
      source.sampler!.setState(sampler.getState());
      const rest = batches(source, 9 - at);
      rest.forEach((b, i) => assert.deepEqual(b.pixels, reference[at + i].pixels, `resumed at ${at}, batch ${at + i}`));
      source.close();
    }
  });

  it('evaluation batches: resize + centre crop, in order, the same every pass', () => {
    const val = loadImageFolder({ name: 'imagefolder', dir, split: 'test', imageSize: 16 });
    const source = FolderBatchSource.evaluation(val, all(val.count), 4, { workers: 2, prefetch: 2 });
    const passes = batches(source, 4); // 6 images: batches of 4 and 2, twice
    source.close();
    assert.deepEqual(passes.map((b) => b.indices.length), [4, 2, 4, 2]);
    assert.deepEqual(passes[2].pixels, passes[0].pixels);
    assert.deepEqual(passes[3].pixels, passes[1].pixels);
  });
});

describe('KeyedBatchSampler', () => {
  it('has BatchSampler\'s semantics: a permutation per epoch, the last partial batch kept, state round trip', () => {
    const indices = Int32Array.from({ length: 10 }, (_, i) => 100 + i);
    const sampler = new KeyedBatchSampler(indices, 4, 3, 'train');
    const reference = new BatchSampler(indices, 4, new Random(0));
    assert.equal(sampler.batchesPerEpoch, reference.batchesPerEpoch);
    const epochs: number[][] = [];
    for (let e = 0; e < 3; e++) {
      const seen: number[] = [];
      for (let b = 0; b < 3; b++) {
        const peeked = sampler.peek(0).indices;
        const batch = sampler.next();
        assert.deepEqual(batch, peeked);
        assert.equal(batch.length, b < 2 ? 4 : 2);
        seen.push(...batch);
      }
      assert.deepEqual([...seen].sort(), Array.from(indices));
      epochs.push(seen);
    }
    assert.notDeepEqual(epochs[0], epochs[1]);
    const copy = new KeyedBatchSampler(indices, 4, 3, 'train');
    copy.setState(JSON.parse(JSON.stringify(sampler.getState())));
    assert.deepEqual(copy.next(), sampler.next());
    assert.notDeepEqual(new KeyedBatchSampler(indices, 4, 3, 'valid').next(), new KeyedBatchSampler(indices, 4, 3, 'train').next());
    assert.throws(() => copy.setState({ ...copy.getState(), size: 11 }), /11 indices, this sampler has 10/);
  });
});
