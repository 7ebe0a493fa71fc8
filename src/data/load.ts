/**
 * Loading datasets from files (Node only: fs, zlib). Spec section 6: Fashion-MNIST is
 * zero-padded 28x28 -> 32x32 here, once, so every CIFAR-size network applies unchanged.
 * Every error is one line that names the file and what was expected or what to pass.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import {
  CIFAR10_CHANNELS, CIFAR10_CLASSES, CIFAR10_IMAGE_BYTES, CIFAR10_PYTHON_TEST_FILES, CIFAR10_PYTHON_TRAIN_FILES, CIFAR10_SIZE,
  CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES, CIFAR100_CLASSES, CIFAR100_PYTHON_TEST_FILES, CIFAR100_PYTHON_TRAIN_FILES,
  CIFAR100_TEST_FILES, CIFAR100_TRAIN_FILES, cifar100RecordCount, cifarBatchFromPickle, cifarClassNamesFromPickle,
  cifarRecordCount, decodeCifar100Batch, decodeCifarBatch,
} from './cifar.js';
import { readPickle } from './pickle.js';
import {
  CIFAR10_CLASS_NAMES, CIFAR10_MEAN, CIFAR10_STD, CIFAR100_CLASS_NAMES, CIFAR100_MEAN, CIFAR100_STD, type Dataset, FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_MEAN,
  FASHION_MNIST_PADDING, FASHION_MNIST_RAW_SIZE, FASHION_MNIST_SIZE, FASHION_MNIST_STD, type ImageDataset, padImages, type Split,
} from './dataset.js';
import { decodeIdx, decodeIdxImages, decodeIdxLabels, type IdxArray } from './idx.js';
import { loadImageFolder } from './image-folder.js';

/** Names `loadDataset` accepts; `fashion-mnist-bundled` is the CLI's default. */
export const DATASET_NAMES = ['fashion-mnist-bundled', 'fashion-mnist', 'cifar10', 'cifar100', 'imagefolder', 'imagenet'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];
/** The datasets whose pixels are loaded into memory whole. */
export type InMemoryDatasetName = Exclude<DatasetName, 'imagefolder' | 'imagenet'>;

/** Where the Debian package `dataset-fashion-mnist` installs its files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = 10;

export interface LoadDatasetOptions {
  readonly dataset: DatasetName;
  /** Directory of the dataset files; not allowed for `fashion-mnist-bundled`. */
  readonly dataDir?: string;
  readonly split: Split;
  /** Image folders: the side of a batch's images (default 224). */
  readonly imageSize?: number;
}

/** Reads a whole file, gunzipping it when it is gzip data (as every `.gz` must be). */
export function readMaybeGzipped(path: string): Uint8Array {
  const name = basename(path);
  const raw = new Uint8Array(readFileSync(path));
  const isGzip = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  if (!isGzip) {
    if (path.endsWith('.gz')) throw new Error(`${name}: not gzip data: expected the gzip magic 1f 8b of a .gz file`);
    return raw;
  }
  try {
    return new Uint8Array(gunzipSync(raw));
  } catch (err) {
    throw new Error(`${name}: corrupt gzip data: ${(err as Error).message}`);
  }
}

/** Reads an idx file, gzipped or not; errors name the file. */
export function readIdxFile(path: string, expectedMagic?: number): IdxArray {
  return decodeIdx(readMaybeGzipped(path), basename(path), expectedMagic);
}

function fashionFileNames(split: Split): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  return { images: `${prefix}-images-idx3-ubyte`, labels: `${prefix}-labels-idx1-ubyte` };
}

/** The file `name` or `name.gz` in `dir` (uncompressed preferred), or null. */
function findMaybeGzipped(dir: string, name: string): string | null {
  for (const candidate of [join(dir, name), join(dir, `${name}.gz`)]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

const FASHION_FILES_HINT =
  'train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz)';

/**
 * Loads one split of Fashion-MNIST (or anything in its idx layout with 28x28 images and
 * 10 classes) from `dir`, padded to 32x32. `name` becomes `Dataset.name`; `missingHint`
 * says what to do when a file is absent.
 */
export function loadFashionMnistFrom(dir: string, split: Split, name = 'fashion-mnist', missingHint?: string): Dataset {
  const files = fashionFileNames(split);
  const hint = missingHint ?? `pass --data DIR (dataDir) holding ${FASHION_FILES_HINT}`;
  const imagesPath = findMaybeGzipped(dir, files.images);
  if (imagesPath === null) throw new Error(`${name}: ${join(dir, files.images)}[.gz] not found: ${hint}`);
  const labelsPath = findMaybeGzipped(dir, files.labels);
  if (labelsPath === null) throw new Error(`${name}: ${join(dir, files.labels)}[.gz] not found: ${hint}`);

  const imagesName = basename(imagesPath);
  const labelsName = basename(labelsPath);
  const raw = decodeIdxImages(readMaybeGzipped(imagesPath), imagesName);
  if (raw.rows !== FASHION_MNIST_RAW_SIZE || raw.cols !== FASHION_MNIST_RAW_SIZE) {
    throw new Error(`${imagesName}: expected ${FASHION_MNIST_RAW_SIZE}x${FASHION_MNIST_RAW_SIZE} images, got ${raw.rows}x${raw.cols}`);
  }
  const labels = decodeIdxLabels(readMaybeGzipped(labelsPath), labelsName, FASHION_MNIST_CLASSES);
  if (labels.length !== raw.count) {
    throw new Error(`${labelsName}: label count does not match: expected ${raw.count} labels (as ${imagesName} has images), got ${labels.length}`);
  }
  const images = padImages(raw.pixels, raw.count, 1, raw.rows, raw.cols, FASHION_MNIST_PADDING);
  return {
    name, split, images, labels, count: raw.count,
    channels: 1, height: FASHION_MNIST_SIZE, width: FASHION_MNIST_SIZE,
    classes: FASHION_MNIST_CLASSES, classNames: FASHION_MNIST_CLASS_NAMES,
    mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD,
  };
}

const CIFAR_FILES_HINT = 'data_batch_1.bin .. data_batch_5.bin and test_batch.bin (the "binary version"), or cifar-10-batches-py/data_batch_1 .. data_batch_5 and test_batch (the "python version"), from https://www.cs.toronto.edu/~kriz/cifar.html';
const CIFAR100_FILES_HINT = 'train.bin and test.bin (the "binary version", cifar-100-binary/), or cifar-100-python/train and test (the "python version"), from https://www.cs.toronto.edu/~kriz/cifar.html';

/** The folder among `candidates` that holds `file`, or null. */
function folderWith(candidates: readonly string[], file: string): string | null {
  return candidates.find((dir) => existsSync(join(dir, file))) ?? null;
}

function readAll(dir: string, files: readonly string[], dataset: string, hint: string): Uint8Array[] {
  return files.map((file) => {
    const path = join(dir, file);
    if (!existsSync(path)) throw new Error(`${dataset}: ${path} not found: pass --data DIR (dataDir) holding ${hint}`);
    return new Uint8Array(readFileSync(path));
  });
}

/** Concatenates unpickled batches (python version) in file order. */
function fromPickles(
  dir: string, files: readonly string[], labelKey: 'labels' | 'fine_labels', classes: number, dataset: string, hint: string,
): { images: Uint8Array; labels: Int32Array; count: number } {
  const batches = readAll(dir, files, dataset, hint).map((bytes, i) => cifarBatchFromPickle(readPickle(bytes, files[i]), files[i], labelKey, classes));
  const count = batches.reduce((sum, b) => sum + b.labels.length, 0);
  const images = new Uint8Array(count * CIFAR10_IMAGE_BYTES);
  const labels = new Int32Array(count);
  let first = 0;
  for (const batch of batches) {
    images.set(batch.images, first * CIFAR10_IMAGE_BYTES);
    labels.set(batch.labels, first);
    first += batch.labels.length;
  }
  return { images, labels, count };
}

function cifarDataset(name: string, split: Split, parts: { images: Uint8Array; labels: Int32Array; count: number }, classes: number,
  classNames: readonly string[], mean: readonly number[], std: readonly number[]): Dataset {
  return {
    name, split, images: parts.images, labels: parts.labels, count: parts.count,
    channels: CIFAR10_CHANNELS, height: CIFAR10_SIZE, width: CIFAR10_SIZE, classes, classNames, mean, std,
  };
}

/**
 * Loads one split of CIFAR-10 from `dir`: the binary batches (in `dir` or
 * `dir/cifar-10-batches-bin`, as the archive unpacks), else the python version (in `dir` or
 * `dir/cifar-10-batches-py`); batches concatenated in file order.
 */
export function loadCifar10From(dir: string, split: Split): Dataset {
  const binary = folderWith([dir, join(dir, 'cifar-10-batches-bin')], CIFAR10_TRAIN_FILES[0]);
  const python = folderWith([dir, join(dir, 'cifar-10-batches-py')], CIFAR10_PYTHON_TRAIN_FILES[0]);
  if (binary !== null || python === null) {
    const base = binary ?? dir;
    const fileNames = split === 'train' ? CIFAR10_TRAIN_FILES : CIFAR10_TEST_FILES;
    const contents = readAll(base, fileNames, 'cifar10', CIFAR_FILES_HINT);
    const count = contents.reduce((sum, bytes, i) => sum + cifarRecordCount(bytes.length, fileNames[i]), 0);
    const images = new Uint8Array(count * CIFAR10_IMAGE_BYTES);
    const labels = new Int32Array(count);
    let first = 0;
    contents.forEach((bytes, i) => { first += decodeCifarBatch(bytes, fileNames[i], images, labels, first); });
    return cifarDataset('cifar10', split, { images, labels, count }, CIFAR10_CLASSES, CIFAR10_CLASS_NAMES, CIFAR10_MEAN, CIFAR10_STD);
  }
  const files = split === 'train' ? CIFAR10_PYTHON_TRAIN_FILES : CIFAR10_PYTHON_TEST_FILES;
  const parts = fromPickles(python, files, 'labels', CIFAR10_CLASSES, 'cifar10', CIFAR_FILES_HINT);
  const names = metaNames(join(python, 'batches.meta'), 'label_names', CIFAR10_CLASSES) ?? CIFAR10_CLASS_NAMES;
  return cifarDataset('cifar10', split, parts, CIFAR10_CLASSES, names, CIFAR10_MEAN, CIFAR10_STD);
}

/** Class names from a pickled meta file when it is there and readable. */
function metaNames(path: string, key: 'label_names' | 'fine_label_names', classes: number): string[] | null {
  if (!existsSync(path)) return null;
  return cifarClassNamesFromPickle(readPickle(new Uint8Array(readFileSync(path)), basename(path)), key, classes);
}

/**
 * Loads one split of CIFAR-100 (fine labels, the authors' --set cifar100) from `dir`: the
 * binary version (in `dir` or `dir/cifar-100-binary`), else the python version (in `dir` or
 * `dir/cifar-100-python`).
 */
export function loadCifar100From(dir: string, split: Split): Dataset {
  const binary = folderWith([dir, join(dir, 'cifar-100-binary')], CIFAR100_TRAIN_FILES[0]);
  const python = folderWith([dir, join(dir, 'cifar-100-python')], CIFAR100_PYTHON_TRAIN_FILES[0]);
  if (binary !== null || python === null) {
    const base = binary ?? dir;
    const fileNames = split === 'train' ? CIFAR100_TRAIN_FILES : CIFAR100_TEST_FILES;
    const contents = readAll(base, fileNames, 'cifar100', CIFAR100_FILES_HINT);
    const count = contents.reduce((sum, bytes, i) => sum + cifar100RecordCount(bytes.length, fileNames[i]), 0);
    const images = new Uint8Array(count * CIFAR10_IMAGE_BYTES);
    const labels = new Int32Array(count);
    let first = 0;
    contents.forEach((bytes, i) => { first += decodeCifar100Batch(bytes, fileNames[i], images, labels, first); });
    const namesFile = join(base, 'fine_label_names.txt');
    const listed = existsSync(namesFile) ? readFileSync(namesFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '') : [];
    const names = listed.length === CIFAR100_CLASSES ? listed : CIFAR100_CLASS_NAMES;
    return cifarDataset('cifar100', split, { images, labels, count }, CIFAR100_CLASSES, names, CIFAR100_MEAN, CIFAR100_STD);
  }
  const files = split === 'train' ? CIFAR100_PYTHON_TRAIN_FILES : CIFAR100_PYTHON_TEST_FILES;
  const parts = fromPickles(python, files, 'fine_labels', CIFAR100_CLASSES, 'cifar100', CIFAR100_FILES_HINT);
  const names = metaNames(join(python, 'meta'), 'fine_label_names', CIFAR100_CLASSES) ?? CIFAR100_CLASS_NAMES;
  return cifarDataset('cifar100', split, parts, CIFAR100_CLASSES, names, CIFAR100_MEAN, CIFAR100_STD);
}

/**
 * The bundled Fashion-MNIST subset (data/fashion-mnist-subset in the package root). Found
 * relative to this module, compiled (dist/src/data) or not (src/data).
 */
export function bundledSubsetDir(): string {
  const candidates = ['../../../data/fashion-mnist-subset', '../../data/fashion-mnist-subset']
    .map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  const found = candidates.find((dir) => existsSync(join(dir, 'train-images-idx3-ubyte.gz')));
  if (found === undefined) {
    throw new Error(`fashion-mnist-bundled: the bundled subset is missing: expected ${candidates[0]}/train-images-idx3-ubyte.gz (regenerate it with scripts/make-bundled-subset.ts)`);
  }
  return found;
}

/**
 * Loads a dataset split by name (spec section 6): in-memory sets decoded whole; image folders
 * scanned only (their files are decoded batch by batch, see pipeline.ts).
 */
export function loadDataset(options: LoadDatasetOptions & { readonly dataset: InMemoryDatasetName }): Dataset;
export function loadDataset(options: LoadDatasetOptions): ImageDataset;
export function loadDataset(options: LoadDatasetOptions): ImageDataset {
  const { dataset, dataDir, split } = options;
  if (split !== 'train' && split !== 'test') throw new Error(`unknown split '${String(split)}': expected 'train' or 'test'`);
  switch (dataset) {
    case 'fashion-mnist-bundled':
      if (dataDir !== undefined) {
        throw new Error(`fashion-mnist-bundled: takes no data directory (got ${dataDir}): use --dataset fashion-mnist --data DIR for files of your own`);
      }
      return loadFashionMnistFrom(bundledSubsetDir(), split, 'fashion-mnist-bundled',
        'the bundled subset is incomplete: regenerate it with scripts/make-bundled-subset.ts');
    case 'fashion-mnist':
      if (dataDir === undefined) {
        return loadFashionMnistFrom(DEBIAN_FASHION_MNIST_DIR, split, 'fashion-mnist',
          `install it (apt-get install dataset-fashion-mnist), pass --data DIR holding ${FASHION_FILES_HINT}, or use --dataset fashion-mnist-bundled`);
      }
      return loadFashionMnistFrom(dataDir, split, 'fashion-mnist');
    case 'cifar10':
      if (dataDir === undefined) throw new Error(`cifar10: no data directory: pass --data DIR (dataDir) holding ${CIFAR_FILES_HINT}`);
      return loadCifar10From(dataDir, split);
    case 'cifar100':
      if (dataDir === undefined) throw new Error(`cifar100: no data directory: pass --data DIR (dataDir) holding ${CIFAR100_FILES_HINT}`);
      return loadCifar100From(dataDir, split);
    case 'imagefolder':
    case 'imagenet':
      if (dataDir === undefined) {
        throw new Error(`${dataset}: no data directory: pass --data DIR holding DIR/train/<class>/<image> (and DIR/val/<class>/<image>)`);
      }
      return loadImageFolder({ name: dataset, dir: dataDir, split, imageSize: options.imageSize ?? 224 });
    default:
      throw new Error(`unknown dataset '${String(dataset)}': expected one of ${DATASET_NAMES.join(', ')}`);
  }
}
