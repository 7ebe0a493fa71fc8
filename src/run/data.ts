/**
 * The data of a run: a dataset split loaded by name (errors become RunInputErrors, the CLI's
 * exit status 2), optionally limited to its first images for quick runs, image folders
 * verified (every file decoded once) before anything is written, and the batch sources the
 * loops read (in-memory sets on the main thread with the run's generator, image folders
 * through the decode pipeline).
 */
import {
  type Augmentation, BatchSampler, type BatchSource, DATASET_NAMES, type Dataset, type DatasetName, FixedOrder,
  FolderBatchSource, type FolderTransform, IMAGENET_JITTER, type ImageDataset, type ImageFolderDataset, InMemoryBatchSource,
  type InMemoryDatasetName,
  isImageFolder, isInMemory, KeyedBatchSampler, loadDataset, NO_AUGMENTATION, type PipelineOptions, type Split, verifyImages,
  withoutItems,
} from '../data/index.js';
import type { Random } from '../tensor/random.js';
import { empty, type Tensor } from '../tensor/tensor.js';
import { asInputErrors, oneLine, RunInputError } from './errors.js';

/** Datasets read from image files (the torchvision ImageFolder layout). */
export const IMAGE_FOLDER_DATASETS: readonly DatasetName[] = ['imagefolder', 'imagenet'];

export function isImageFolderDataset(name: DatasetName): boolean {
  return IMAGE_FOLDER_DATASETS.includes(name);
}

/** --image-size's default: the ImageNet crop. */
export const DEFAULT_IMAGE_SIZE = 224;

/** Checks a config's dataset, --image-size and --skip-bad-images against each other. */
export function checkDataSettings(config: { dataset: DatasetName; imageSize: number; skipBadImages: boolean }): void {
  if (!(DATASET_NAMES as readonly string[]).includes(config.dataset)) return; // reported by the config checks
  if (!(Number.isInteger(config.imageSize) && config.imageSize >= 8)) {
    throw new RunInputError(`--image-size: expected an integer >= 8, got ${JSON.stringify(config.imageSize)}`);
  }
  if (!isImageFolderDataset(config.dataset)) {
    if (config.imageSize !== DEFAULT_IMAGE_SIZE) {
      throw new RunInputError(`--image-size ${config.imageSize}: ${config.dataset} images have a fixed size; --image-size applies to --dataset ${IMAGE_FOLDER_DATASETS.join('|')}`);
    }
    if (config.skipBadImages) throw new RunInputError(`--skip-bad-images: ${config.dataset} is not read from image files; it applies to --dataset ${IMAGE_FOLDER_DATASETS.join('|')}`);
  }
}

/** The first `count` images of an in-memory dataset (views, no copy); `flag` names the limit in errors. */
export function firstImages(dataset: Dataset, count: number, flag = '--limit-train'): Dataset {
  if (count > dataset.count) {
    throw new RunInputError(`${flag} ${count}: ${dataset.name} has only ${dataset.count} ${dataset.split === 'train' ? 'training' : 'test'} images`);
  }
  const imageSize = dataset.channels * dataset.height * dataset.width;
  return { ...dataset, images: dataset.images.subarray(0, count * imageSize), labels: dataset.labels.subarray(0, count), count };
}

/**
 * Items taken round-robin over the classes (first image of every class, then the second, ...)
 * until `count`, returned in storage order: a limit of an image folder (stored grouped by
 * class) that keeps every class.
 */
export function classBalancedFirst(labels: Int32Array, classes: number, count: number): Int32Array {
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const chosen: number[] = [];
  for (let round = 0; chosen.length < count; round++) {
    let any = false;
    for (const members of byClass) {
      if (round < members.length) {
        any = true;
        if (chosen.length < count) chosen.push(members[round]);
      }
    }
    if (!any) break;
  }
  return Int32Array.from(chosen.sort((a, b) => a - b));
}

/** The items `indices` (ascending) of an image folder as a dataset of their own. */
export function folderSubset(dataset: ImageFolderDataset, indices: Int32Array): ImageFolderDataset {
  return {
    ...dataset, count: indices.length, files: Array.from(indices, (i) => dataset.files[i]),
    labels: Int32Array.from(indices, (i) => dataset.labels[i]),
  };
}

export interface RunDatasetOptions {
  readonly dataset: DatasetName;
  /** Dataset directory; null: the dataset's standard location. */
  readonly data: string | null;
  readonly split: Split;
  /** Use only the first N images (image folders: class-balanced, see classBalancedFirst); null: all. */
  readonly limit: number | null;
  /** The flag that set `limit`, for errors. */
  readonly limitFlag?: string;
  /** Image folders: the side of a batch's images (default 224). */
  readonly imageSize?: number;
  /** Image folders: leave out images that fail to decode instead of stopping (default false). */
  readonly skipBadImages?: boolean;
  /**
   * Image folders: files known to be bad (a resumed run's record): left out without decoding
   * anything again. Absent: every image is decoded once to find them.
   */
  readonly knownBadImages?: readonly string[];
  /**
   * Image folders: false skips decoding every image here (the caller verifies what it uses,
   * see verifyUsedImages); default true.
   */
  readonly verify?: boolean;
  /** Image folders: decode workers (they do not change results). */
  readonly pipeline?: PipelineOptions;
}

/** Loads one split of a run's dataset, limited to its first `limit` images. */
export function loadRunDataset(options: RunDatasetOptions & { readonly dataset: InMemoryDatasetName }): Dataset;
export function loadRunDataset(options: RunDatasetOptions): ImageDataset;
export function loadRunDataset(options: RunDatasetOptions): ImageDataset {
  const loaded = asInputErrors(() => loadDataset({
    dataset: options.dataset, dataDir: options.data ?? undefined, split: options.split, imageSize: options.imageSize ?? DEFAULT_IMAGE_SIZE,
  }));
  if (isInMemory(loaded)) return options.limit === null ? loaded : firstImages(loaded, options.limit, options.limitFlag);
  if (!isImageFolder(loaded)) throw new Error(`${loaded.name}: neither in memory nor an image folder`);
  let folder = loaded;
  if (options.limit !== null) {
    if (options.limit > folder.count) {
      throw new RunInputError(`${options.limitFlag ?? '--limit-train'} ${options.limit}: ${folder.root} has only ${folder.count} images`);
    }
    folder = folderSubset(folder, classBalancedFirst(folder.labels, folder.classes, options.limit));
  }
  return checkFolderImages(folder, options);
}

/** Decodes every image once (or applies a known list of bad ones); bad images stop the run or are left out. */
function checkFolderImages(folder: ImageFolderDataset, options: RunDatasetOptions): ImageFolderDataset {
  if (options.verify === false) return folder;
  if (options.knownBadImages !== undefined) {
    const known = new Set(options.knownBadImages);
    const drop: number[] = [];
    folder.files.forEach((file, i) => { if (known.has(file)) drop.push(i); });
    return withoutItems(folder, drop);
  }
  let result;
  try {
    result = verifyImages(folder, options.pipeline);
  } catch (error) {
    throw new Error(`${folder.root}: verifying the images failed: ${oneLine(error)}`);
  }
  if (result.bad.length === 0) return folder;
  if (!options.skipBadImages) {
    const more = result.bad.length > 1 ? ` (${result.bad.length} bad images in all)` : '';
    throw new RunInputError(`${result.firstError!}${more}`);
  }
  const kept = withoutItems(folder, result.bad);
  if (kept.count === 0) throw new RunInputError(`${folder.root}: every image failed to decode (--skip-bad-images left none)`);
  return kept;
}

/**
 * Decodes the items `used` of an image folder that `verified` (file names) does not hold yet
 * and adds them to it; returns the dataset without the bad ones (with skipBadImages) or throws
 * the one-line error naming the first. For runs that use a sample of a folder (a search's
 * per-class subset): only what is used pays for a decode.
 */
export function verifyUsedImages(
  dataset: ImageFolderDataset, used: ArrayLike<number>, verified: Set<string>, options: { skipBadImages: boolean; pipeline?: PipelineOptions },
): ImageFolderDataset {
  const unverified = Array.from(used).filter((i) => !verified.has(dataset.files[i]));
  if (unverified.length === 0) return dataset;
  let result;
  try {
    result = verifyImages(dataset, options.pipeline, unverified);
  } catch (error) {
    throw new Error(`${dataset.root}: verifying the images failed: ${oneLine(error)}`);
  }
  for (const i of unverified) verified.add(dataset.files[i]);
  if (result.bad.length === 0) return dataset;
  if (!options.skipBadImages) {
    const more = result.bad.length > 1 ? ` (${result.bad.length} bad images in all)` : '';
    throw new RunInputError(`${result.firstError!}${more}`);
  }
  return withoutItems(dataset, [...result.bad].sort((a, b) => a - b));
}

/** A record of what a run's data is, for its log (the 'data' record). */
export function datasetLogFacts(dataset: ImageDataset): Record<string, unknown> {
  const facts: Record<string, unknown> = { split: dataset.split, dataset: dataset.name, images: dataset.count, classes: dataset.classes };
  if (isImageFolder(dataset)) {
    facts.root = dataset.root;
    facts.image_size = dataset.height;
    facts.ignored_files = dataset.report.ignoredFiles;
    facts.ignored_examples = dataset.report.ignoredExamples;
    facts.bad_images = dataset.report.badImages.length;
    facts.bad_image_files = dataset.report.badImages;
  }
  return facts;
}

/**
 * The search's weight / architecture halves (spec section 6): the first `trainPortion` of the
 * items in storage order, and the rest; for an image folder (stored grouped by class) the
 * same within every class, so both halves see every class.
 */
export function searchSplit(dataset: ImageDataset, trainPortion: number): { train: Int32Array; valid: Int32Array } {
  if (!isImageFolder(dataset)) {
    const boundary = Math.floor(trainPortion * dataset.count);
    return {
      train: Int32Array.from({ length: boundary }, (_, i) => i),
      valid: Int32Array.from({ length: dataset.count - boundary }, (_, i) => boundary + i),
    };
  }
  return perClassSplit(dataset.labels, dataset.classes, (n) => Math.floor(trainPortion * n));
}

/** Within every class, the first `firstCount(n)` of its n items, and the rest (both ascending). */
export function perClassSplit(labels: Int32Array, classes: number, firstCount: (n: number) => number): { train: Int32Array; valid: Int32Array } {
  const sizes = new Int32Array(classes);
  for (let i = 0; i < labels.length; i++) sizes[labels[i]]++;
  const seen = new Int32Array(classes);
  const first: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    (seen[c] < firstCount(sizes[c]) ? first : rest).push(i);
    seen[c]++;
  }
  return { train: Int32Array.from(first), valid: Int32Array.from(rest) };
}

export interface TrainingBatchesOptions {
  readonly batchSize: number;
  /** In-memory sets draw their order and augmentation from it (the run's generator). */
  readonly random: Random;
  /** Image folders: the run's seed and this source's stream name ('train', 'valid'). */
  readonly seed: number;
  readonly stream: string;
  /** In-memory sets: crop/flip/cutout. */
  readonly augmentation: Augmentation;
  /** Image folders: ColorJitter on (retraining) or off (search). */
  readonly colorJitter: boolean;
  /** Cutout length after normalisation, 0: off (image folders; in-memory sets have it in `augmentation`). */
  readonly cutout?: number;
  readonly pipeline?: PipelineOptions;
}

/** Reshuffled training batches of `indices`, augmented. */
export function trainingBatches(dataset: ImageDataset, indices: Int32Array, options: TrainingBatchesOptions): BatchSource {
  if (isInMemory(dataset)) {
    return new InMemoryBatchSource(dataset, new BatchSampler(indices, options.batchSize, options.random), null, options.augmentation, options.random);
  }
  if (!isImageFolder(dataset)) throw new Error(`${dataset.name}: neither in memory nor an image folder`);
  const sampler = new KeyedBatchSampler(indices, options.batchSize, options.seed % 2 ** 32, options.stream);
  const transform: FolderTransform = { kind: 'train', flip: true, jitter: options.colorJitter ? IMAGENET_JITTER : null, cutout: options.cutout ?? 0 };
  return FolderBatchSource.training(dataset, sampler, transform, options.pipeline);
}

/** Batches of `indices` in order, without augmentation (image folders: resize + centre crop). */
export function evaluationBatches(dataset: ImageDataset, indices: Int32Array, batchSize: number, pipeline?: PipelineOptions): BatchSource {
  if (isInMemory(dataset)) {
    // Without augmentation nothing is drawn: any generator will do.
    return new InMemoryBatchSource(dataset, null, new FixedOrder(indices, batchSize), NO_AUGMENTATION, UNUSED_RANDOM);
  }
  if (!isImageFolder(dataset)) throw new Error(`${dataset.name}: neither in memory nor an image folder`);
  return FolderBatchSource.evaluation(dataset, indices, batchSize, pipeline);
}

const UNUSED_RANDOM: Random = {
  uniform: () => { throw new Error('evaluation batches draw nothing'); },
} as unknown as Random;

/** The next batch of a source as a fresh [N, C, H, W] tensor (call inside tidy), its labels and the ms waited. */
export function nextBatch(source: BatchSource): { x: Tensor; labels: Int32Array; waitMs: number } {
  let x: Tensor | null = null;
  const info = asDataErrors(() => source.next((count) => {
    x = empty([count, ...source.imageShape]);
    return x.data.subarray(0, x.numel);
  }));
  return { x: x!, labels: info.labels, waitMs: info.waitMs };
}

/** A file that stopped decoding during a run is bad input too (exit 2; the last checkpoint stays). */
function asDataErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof Error && /: cannot decode: /.test(error.message)) throw new RunInputError(oneLine(error));
    throw error;
  }
}

/**
 * The images `indices` of an in-memory dataset, augmented (drawing from `random` as fillBatch
 * says) and normalised, as a fresh [N, C, H, W] tensor (call inside tidy), with their labels.
 */
export function datasetBatch(
  dataset: Dataset, indices: Int32Array, augment: Augmentation, random: Random,
): { x: Tensor; labels: Int32Array } {
  const source = new InMemoryBatchSource(dataset, null, new FixedOrder(indices, Math.max(1, indices.length)), augment, random);
  const { x, labels } = nextBatch(source);
  return { x, labels };
}
