/**
 * Batch assembly: uint8 images -> normalised float32 NCHW in a caller-provided buffer (the
 * engine hands in a tensor's data array), with the training augmentation of the authors'
 * code (spec sections 6 and 7), as torchvision would apply it to the PIL image:
 *   RandomCrop(size, padding) -> RandomHorizontalFlip(0.5) -> ToTensor -> Normalize -> Cutout(L).
 *
 * Random draws, per image in batch order, only for the enabled augmentations, always in
 * this order (a resumed run depends on it):
 *   1. crop: top = random.int(H + 2p - size + 1), then left = random.int(W + 2p - size + 1)
 *      (as torchvision's RandomCrop.get_params: i then j; drawn even when the range is 1);
 *   2. flip: random.uniform() < 0.5 flips (torchvision: torch.rand(1) < p);
 *   3. cutout: centre row y = random.int(outH), then column x = random.int(outW)
 *      (the authors' Cutout: np.random.randint(h), then np.random.randint(w)).
 * No allocation per image: one 256-entry lookup table per channel per call.
 */
import type { Random } from '../tensor/random.js';
import type { Dataset } from './dataset.js';

export interface CropOptions {
  /** Output side (square), e.g. 32. */
  readonly size: number;
  /** Zero pixels added on every side before cropping, e.g. 4. */
  readonly padding: number;
}

export interface Augmentation {
  readonly crop: CropOptions | null;
  /** Horizontal flip with probability 0.5. */
  readonly flip: boolean;
  /** Cutout side length L after normalisation; 0 = off. */
  readonly cutout: number;
}

export const NO_AUGMENTATION: Augmentation = { crop: null, flip: false, cutout: 0 };

/** Random crop 32 with padding 4 + flip, and optional cutout (spec sections 6 and 7). */
export function standardAugmentation(cutout = 0): Augmentation {
  return { crop: { size: 32, padding: 4 }, flip: true, cutout };
}

/** [channels, height, width] of one image of a batch that `fillBatch` writes. */
export function batchImageShape(dataset: Dataset, augment: Augmentation): [number, number, number] {
  return augment.crop === null
    ? [dataset.channels, dataset.height, dataset.width]
    : [dataset.channels, augment.crop.size, augment.crop.size];
}

/**
 * value[c * 256 + p] = (p / 255 - mean[c]) / std[c], with the float32 rounding of
 * torchvision's ToTensor (x / 255 in float32) and Normalize (sub, then div, in float32).
 */
export function normalisationTable(mean: readonly number[], std: readonly number[]): Float32Array {
  if (mean.length !== std.length) throw new Error(`normalisationTable: ${mean.length} means but ${std.length} stds`);
  const table = new Float32Array(mean.length * 256);
  for (let c = 0; c < mean.length; c++) {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    for (let p = 0; p < 256; p++) table[c * 256 + p] = Math.fround(Math.fround(p / 255) - m) / s;
  }
  return table;
}

function checkIndex(dataset: Dataset, index: number, position: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= dataset.count) {
    throw new Error(`batch index ${index} at position ${position} is outside ${dataset.name} (${dataset.count} images)`);
  }
}

/**
 * Writes the images `indices` of `dataset`, augmented and normalised, into `out`
 * (float32 NCHW, exactly indices.length x batchImageShape(dataset, augment)).
 */
export function fillBatch(
  dataset: Dataset, indices: ArrayLike<number>, out: Float32Array, augment: Augmentation, random: Random,
): void {
  const { channels, height, width, images } = dataset;
  const [, outH, outW] = batchImageShape(dataset, augment);
  const outPlane = outH * outW;
  const outImage = channels * outPlane;
  if (out.length !== indices.length * outImage) {
    throw new Error(`fillBatch: output holds ${out.length} values, expected ${indices.length} x ${channels}x${outH}x${outW} = ${indices.length * outImage}`);
  }
  const crop = augment.crop;
  if (crop !== null) {
    if (!Number.isInteger(crop.size) || !Number.isInteger(crop.padding) || crop.size <= 0 || crop.padding < 0
      || crop.size > height + 2 * crop.padding || crop.size > width + 2 * crop.padding) {
      throw new Error(`fillBatch: cannot crop ${crop.size}x${crop.size} from ${height}x${width} padded by ${crop.padding}`);
    }
  }
  const cutout = augment.cutout;
  if (!Number.isInteger(cutout) || cutout < 0) throw new Error(`fillBatch: cutout length must be a non-negative integer, got ${cutout}`);
  if (dataset.mean.length !== channels) throw new Error(`fillBatch: ${dataset.name} has ${channels} channels but ${dataset.mean.length} means`);
  const table = normalisationTable(dataset.mean, dataset.std);
  const inPlane = height * width;
  const inImage = channels * inPlane;

  for (let b = 0; b < indices.length; b++) {
    const index = indices[b];
    checkIndex(dataset, index, b);
    // Source coordinates of output pixel (0, 0); padded pixels fall outside the image.
    let rowStart = 0;
    let colStart = 0;
    if (crop !== null) {
      rowStart = random.int(height + 2 * crop.padding - crop.size + 1) - crop.padding;
      colStart = random.int(width + 2 * crop.padding - crop.size + 1) - crop.padding;
    }
    const flipped = augment.flip && random.uniform() < 0.5;
    const src = index * inImage;
    const dst = b * outImage;

    for (let c = 0; c < channels; c++) {
      const tableOffset = c * 256;
      const padValue = table[tableOffset]; // a zero pixel, normalised: -mean/std
      const srcPlane = src + c * inPlane;
      const dstPlane = dst + c * outPlane;
      for (let oy = 0; oy < outH; oy++) {
        const sy = rowStart + oy;
        const dstRow = dstPlane + oy * outW;
        if (sy < 0 || sy >= height) {
          out.fill(padValue, dstRow, dstRow + outW);
          continue;
        }
        const srcRow = srcPlane + sy * width;
        for (let ox = 0; ox < outW; ox++) {
          const sx = colStart + (flipped ? outW - 1 - ox : ox);
          out[dstRow + ox] = sx < 0 || sx >= width ? padValue : table[tableOffset + images[srcRow + sx]];
        }
      }
    }

    if (cutout > 0) applyCutout(out, dst, channels, outH, outW, random.int(outH), random.int(outW), cutout);
  }
}

/**
 * The authors' Cutout at centre (y, x): rows [y - L//2, y + L//2) clipped, same for columns,
 * zero on every channel (an odd L therefore covers L - 1 pixels, as theirs). `offset` is the
 * image's first value in `out` (CHW).
 */
export function applyCutout(
  out: Float32Array, offset: number, channels: number, height: number, width: number, y: number, x: number, length: number,
): void {
  const half = length >> 1;
  const y1 = Math.max(0, y - half);
  const y2 = Math.min(height, y + half);
  const x1 = Math.max(0, x - half);
  const x2 = Math.min(width, x + half);
  for (let c = 0; c < channels; c++) {
    for (let yy = y1; yy < y2; yy++) {
      const row = offset + (c * height + yy) * width;
      out.fill(0, row + x1, row + x2);
    }
  }
}

/** Writes the labels of `indices` into `out` (length indices.length). */
export function fillLabels(dataset: Dataset, indices: ArrayLike<number>, out: Int32Array): void {
  if (out.length !== indices.length) throw new Error(`fillLabels: output holds ${out.length} labels, expected ${indices.length}`);
  for (let b = 0; b < indices.length; b++) {
    checkIndex(dataset, indices[b], b);
    out[b] = dataset.labels[indices[b]];
  }
}
