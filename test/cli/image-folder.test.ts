/**
 * Image folders end to end, as a user runs them: search, train and test on a folder made with
 * sharp (every format and oddity), the same bits for any decode-worker count, prefetch depth
 * and thread count and after a kill and resume, and every bad input's exit 2 with one line and
 * no run directory.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadImageFolder, openImage } from '../../src/data/index.js';
import { encodeVariant, makeImageFolder, pattern } from '../data/image-fixture.js';
import { assertBadInput, INVOCATION, killMidEpochAndResume, pcdarts, readLog } from './process.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-cli-folder-'));
after(() => rmSync(root, { recursive: true, force: true }));

const DATA = join(root, 'photos');
/** 3 classes x 8 training images: halves of 12 -> 3 weight steps of 4 per epoch. */
const SEARCH = [
  'search', '--dataset', 'imagefolder', '--data', DATA, '--image-size', '16', '--batch-size', '4', '--epochs', '2',
  '--warmup-epochs', '1', '--init-channels', '4', '--layers', '3', '--nodes', '2', '--k', '2',
];

function comparable(dir: string): unknown[] {
  return readLog(dir).filter((r) => r.type === 'step' || r.type === 'epoch').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}

before(async () => {
  await makeImageFolder(DATA, { classes: ['cat', 'dog', 'owl'], trainPerClass: 8, valPerClass: 3, minSide: 18, maxSide: 40, clutter: true });
});

describe('search, train and test on an image folder', () => {
  const searchA = join(root, 'search-a');
  const trainDir = join(root, 'train');

  it('searches; the log counts the ignored files and every step its data wait', async () => {
    const result = await pcdarts(...SEARCH, '--data-workers', '1', '--prefetch', '1', '--threads', '2', '--out', searchA);
    assert.equal(result.code, 0, result.stderr);
    const log = readLog(searchA);
    const data = log.find((r) => r.type === 'data')!;
    assert.deepEqual([data.images, data.classes, data.ignored_files, data.bad_images, data.image_size], [24, 3, 5, 0, 16]);
    const steps = log.filter((r) => r.type === 'step');
    assert.equal(steps.length, 6);
    assert.ok(steps.every((s) => typeof s.data_wait_ms === 'number' && (s.data_wait_ms as number) >= 0));
    assert.ok(existsSync(join(searchA, 'genotype.json')));
  });

  it('gives the same losses and genotype with other decode workers, prefetch depth and threads', async () => {
    const other = join(root, 'search-b');
    const result = await pcdarts(...SEARCH, '--data-workers', '3', '--prefetch', '4', '--threads', '1', '--out', other);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(comparable(other), comparable(searchA));
    assert.equal(readFileSync(join(other, 'genotype.json'), 'utf8'), readFileSync(join(searchA, 'genotype.json'), 'utf8'));
  });

  it('resumes a run killed in the middle of an epoch to the same losses and genotype', async () => {
    const killed = join(root, 'search-killed');
    await killMidEpochAndResume('search', [...SEARCH.slice(1), '--checkpoint-every', '1', '--threads', '2'], killed, 1);
    assert.deepEqual(comparable(killed), comparable(searchA));
    assert.equal(readFileSync(join(killed, 'genotype.json'), 'utf8'), readFileSync(join(searchA, 'genotype.json'), 'utf8'));
  });

  it('retrains the found genotype (random resized crop, flip, colour jitter) and tests it on val/', async () => {
    const result = await pcdarts(
      'train', '--genotype', searchA, '--dataset', 'imagefolder', '--data', DATA, '--image-size', '32', '--epochs', '1',
      '--batch-size', '6', '--init-channels', '4', '--layers', '3', '--threads', '2', '--out', trainDir,
    );
    assert.equal(result.code, 0, result.stderr);
    const log = readLog(trainDir);
    const test = log.find((r) => r.type === 'test')!;
    assert.equal(test.images, 9);
    assert.deepEqual(log.filter((r) => r.type === 'data').map((r) => [r.split, r.images]), [['train', 24], ['test', 9]]);
    const tested = await pcdarts('test', '--run', trainDir, '--json');
    assert.equal(tested.code, 0, tested.stderr);
    const json = JSON.parse(tested.stdout) as { top1: number; images: number; dataset: string };
    assert.deepEqual([json.images, json.dataset], [9, 'imagefolder']);
    assert.equal(Math.round(json.top1 * 1e8) / 1e8, test.top1);
  });
});

describe('pcdarts prepare and pcdarts info on an image folder', () => {
  it('writes an upright copy with the short side reduced, the same relative paths, and continues an interrupted one', async () => {
    const out = join(root, 'prepared');
    const result = await pcdarts('prepare', DATA, '--out', out, '--short-side', '24', '--data-workers', '2');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(String.raw`^prepared 33 images in .* s: \d+ resized to short side 24, \d+ copied as they were; \d+ other files not copied\nnext: ${INVOCATION} search --dataset imagefolder --data .*prepared --image-size 16\n$`));
    const original = loadImageFolder({ name: 'imagefolder', dir: DATA, split: 'train', imageSize: 16 });
    const copy = loadImageFolder({ name: 'imagefolder', dir: out, split: 'train', imageSize: 16 });
    assert.deepEqual([copy.files, Array.from(copy.labels), copy.classNames], [original.files, Array.from(original.labels), original.classNames]);
    for (const [i, file] of copy.files.entries()) {
      const before = await openImage(readFileSync(join(original.root, file)));
      const after = await openImage(readFileSync(join(copy.root, file)));
      const short = Math.min(before.width, before.height);
      assert.equal(Math.min(after.width, after.height), Math.min(24, short), file);
      // Upright and in proportion (EXIF orientation applied before resizing).
      assert.ok(Math.abs(after.width / after.height - before.width / before.height) < 0.1, `${file} (${i}): ${before.width}x${before.height} -> ${after.width}x${after.height}`);
    }
    const manifest = JSON.parse(readFileSync(join(out, 'prepare.json'), 'utf8')) as { images: number; finished: boolean };
    assert.deepEqual([manifest.images, manifest.finished], [33, true]);
    rmSync(join(copy.root, copy.files[0]));
    const again = await pcdarts('prepare', DATA, '--out', out, '--short-side', '24');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /, 32 done before;/);
    assertBadInput(await pcdarts('prepare', DATA, '--out', out, '--short-side', '32'), /^pcdarts prepare: --out .*prepared holds a prepare of .*photos at short side 24/);
    assertBadInput(await pcdarts('prepare', DATA, '--out', join(DATA, 'inside'), '--short-side', '32'), /--out .*photos\/inside is inside the source folder/);
    assertBadInput(await pcdarts('prepare', DATA, '--out', join(DATA, 'train'), '--short-side', '32'), /is inside the source folder/);
    assertBadInput(await pcdarts('prepare', join(root, 'nowhere'), '--out', join(root, 'p2'), '--short-side', '32'), /nowhere: no such directory/);
    assertBadInput(await pcdarts('prepare', DATA, '--out', join(root, 'p3'), '--short-side', '4'), /--short-side: expected an integer >= 8/);
    assertBadInput(await pcdarts('prepare', DATA, '--short-side', '32'), /--out DIR is required/);
    assert.ok(!existsSync(join(root, 'p2')) && !existsSync(join(root, 'p3')));
  });

  it('info counts the folder\'s classes and picks the network by --image-size', async () => {
    const small = await pcdarts('info', '--genotype', 'PC_DARTS_cifar', '--dataset', 'imagefolder', '--data', DATA, '--image-size', '32', '--json');
    assert.equal(small.code, 0, small.stderr);
    const info = JSON.parse(small.stdout) as { classes: number; input_size: number; network: string };
    assert.deepEqual([info.classes, info.input_size, info.network], [3, 32, 'cifar']);
    const large = JSON.parse((await pcdarts('info', '--genotype', 'PC_DARTS_image', '--dataset', 'imagefolder', '--data', DATA, '--json')).stdout) as typeof info;
    assert.deepEqual([large.classes, large.input_size, large.network], [3, 224, 'imagenet']);
    assertBadInput(await pcdarts('info', '--genotype', 'PC_DARTS_image', '--dataset', 'imagefolder'), /imagefolder: no data directory/);
  });
});

describe('bad image-folder input: exit 2, one line, no run directory', () => {
  const bad = (name: string): string => join(root, 'bad', name);

  it('a corrupt or truncated image, and --skip-bad-images', async () => {
    const dir = bad('corrupt');
    cpSync(DATA, dir, { recursive: true });
    const jpeg = await encodeVariant('jpeg', pattern(40, 30, 1), 40, 30);
    writeFileSync(join(dir, 'train', 'dog', 'cut.jpg'), jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
    const out = join(root, 'never');
    const args = [...SEARCH.map((a) => (a === DATA ? dir : a)), '--epochs', '1', '--warmup-epochs', '0', '--threads', '2'];
    assertBadInput(await pcdarts(...args, '--out', out), /^pcdarts search: .*corrupt\/train\/dog\/cut\.jpg: cannot decode: .*--skip-bad-images/);
    assert.ok(!existsSync(out), 'no run directory on bad input');
    const skipped = join(root, 'skipped');
    const result = await pcdarts(...args, '--warmup-epochs', '0', '--skip-bad-images', '--out', skipped);
    assert.equal(result.code, 0, result.stderr);
    const data = readLog(skipped).find((r) => r.type === 'data')!;
    assert.deepEqual([data.images, data.bad_images, data.bad_image_files], [24, 1, ['dog/cut.jpg']]);
  });

  it('layout errors: no --data, no train/, no classes, an empty class, a val/ class train/ lacks', async () => {
    const out = join(root, 'never');
    const search = (data: string | null, ...more: string[]) => pcdarts(
      'search', '--dataset', 'imagefolder', ...(data === null ? [] : ['--data', data]), '--image-size', '16', '--out', out, ...more,
    );
    assertBadInput(await search(null), /^pcdarts search: imagefolder: no data directory: pass --data DIR holding DIR\/train\/<class>\/<image>/);
    mkdirSync(bad('no-train'), { recursive: true });
    assertBadInput(await search(bad('no-train')), /no-train\/train not found: expected the ImageFolder layout/);
    mkdirSync(join(bad('no-classes'), 'train'), { recursive: true });
    assertBadInput(await search(bad('no-classes')), /no-classes\/train: no class folders/);
    const empty = bad('empty-class');
    cpSync(DATA, empty, { recursive: true });
    mkdirSync(join(empty, 'train', 'emu'));
    assertBadInput(await search(empty), /empty-class\/train\/emu: empty class folder/);
    const extra = bad('extra-val');
    cpSync(DATA, extra, { recursive: true });
    mkdirSync(join(extra, 'val', 'yak'));
    writeFileSync(join(extra, 'val', 'yak', 'y.png'), await encodeVariant('png', pattern(20, 20, 1), 20, 20));
    assertBadInput(await pcdarts('train', '--dataset', 'imagefolder', '--data', extra, '--image-size', '32', '--out', out),
      /^pcdarts train: .*extra-val\/val\/yak: class 'yak' is not a class of the training folder/);
    assertBadInput(await pcdarts('test', '--run', join(root, 'train'), '--data', extra), /extra-val\/val\/yak: class 'yak'/);
    assert.ok(!existsSync(out));
  });

  it('flag errors: --image-size on a fixed-size dataset or out of range, --data-workers, --prefetch', async () => {
    const out = join(root, 'never');
    assertBadInput(await pcdarts('search', '--image-size', '64', '--out', out), /--image-size 64: fashion-mnist-bundled images have a fixed size/);
    assertBadInput(await pcdarts('search', '--skip-bad-images', '--out', out), /--skip-bad-images: fashion-mnist-bundled is not read from image files/);
    assertBadInput(await pcdarts(...SEARCH, '--image-size', '4', '--out', out), /--image-size: expected an integer >= 8, got 4/);
    assertBadInput(await pcdarts(...SEARCH, '--data-workers', '0', '--out', out), /--data-workers: expected an integer >= 1, got 0/);
    assertBadInput(await pcdarts(...SEARCH, '--prefetch', '0', '--out', out), /--prefetch: expected an integer >= 1 \(batches\), got 0/);
    assert.ok(!existsSync(out));
  });
});
