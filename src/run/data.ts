/**
 * The data of a run: a dataset split loaded by name (errors become RunInputErrors, the CLI's
 * exit status 2), optionally limited to its first images for quick runs, and batches of it
 * as tensors.
 */
import {
  type Augmentation, batchImageShape, type Dataset, type DatasetName, fillBatch, fillLabels, loadDataset, type Split,
} from '../data/index.js';
import type { Random } from '../tensor/random.js';
import { empty, type Tensor } from '../tensor/tensor.js';
import { asInputErrors, RunInputError } from './errors.js';

/** The first `count` images of a dataset (views, no copy); `flag` names the limit in errors. */
export function firstImages(dataset: Dataset, count: number, flag = '--limit-train'): Dataset {
  if (count > dataset.count) {
    throw new RunInputError(`${flag} ${count}: ${dataset.name} has only ${dataset.count} ${dataset.split === 'train' ? 'training' : 'test'} images`);
  }
  const imageSize = dataset.channels * dataset.height * dataset.width;
  return { ...dataset, images: dataset.images.subarray(0, count * imageSize), labels: dataset.labels.subarray(0, count), count };
}

export interface RunDatasetOptions {
  readonly dataset: DatasetName;
  /** Dataset directory; null: the dataset's standard location. */
  readonly data: string | null;
  readonly split: Split;
  /** Use only the first N images; null: all. */
  readonly limit: number | null;
  /** The flag that set `limit`, for errors. */
  readonly limitFlag?: string;
}

/** Loads one split of a run's dataset, limited to its first `limit` images. */
export function loadRunDataset(options: RunDatasetOptions): Dataset {
  const dataset = asInputErrors(() => loadDataset({ dataset: options.dataset, dataDir: options.data ?? undefined, split: options.split }));
  return options.limit === null ? dataset : firstImages(dataset, options.limit, options.limitFlag);
}

/**
 * The images `indices` of `dataset`, augmented (drawing from `random` as fillBatch says) and
 * normalised, as a fresh [N, C, H, W] tensor (call inside tidy), with their labels.
 */
export function datasetBatch(
  dataset: Dataset, indices: Int32Array, augment: Augmentation, random: Random,
): { x: Tensor; labels: Int32Array } {
  const x = empty([indices.length, ...batchImageShape(dataset, augment)]);
  fillBatch(dataset, indices, x.data.subarray(0, x.numel), augment, random);
  const labels = new Int32Array(indices.length);
  fillLabels(dataset, indices, labels);
  return { x, labels };
}
