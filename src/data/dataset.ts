/**
 * The in-memory dataset every loader returns, and the per-dataset constants (class names,
 * channel statistics). Pure: no Node imports, so it can go into a browser bundle.
 */

export type Split = 'train' | 'test';

/**
 * A labelled image set held as uint8 pixels, NCHW, image after image
 * (`images[((n * channels + c) * height + y) * width + x]`).
 */
export interface Dataset {
  /** The name it was loaded by ('fashion-mnist', 'fashion-mnist-bundled', 'cifar10'). */
  readonly name: string;
  readonly split: Split;
  readonly images: Uint8Array;
  readonly labels: Int32Array;
  readonly count: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly classes: number;
  readonly classNames: readonly string[];
  /** Per-channel mean of the training images, in [0, 1] pixel units. */
  readonly mean: readonly number[];
  /** Per-channel standard deviation (population) of the training images, [0, 1] units. */
  readonly std: readonly number[];
}

export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

/** The authors' constants (utils.py, `_data_transforms_cifar10`). */
export const CIFAR10_MEAN: readonly number[] = [0.49139968, 0.48215827, 0.44653124];
export const CIFAR10_STD: readonly number[] = [0.24703233, 0.24348505, 0.26158768];

/**
 * Fashion-MNIST's size on disk, and the zero padding that makes it CIFAR-sized (spec
 * section 6: 28x28 -> 32x32, 2 pixels each side, at load time).
 */
export const FASHION_MNIST_RAW_SIZE = 28;
export const FASHION_MNIST_PADDING = 2;
export const FASHION_MNIST_SIZE = FASHION_MNIST_RAW_SIZE + 2 * FASHION_MNIST_PADDING;

/**
 * Mean and population standard deviation of all pixels of the 60,000 Fashion-MNIST
 * training images AFTER padding to 32x32 (so the borders count as zeros), in [0, 1] units.
 * Computed once by `scripts/make-bundled-subset.ts` from the Debian package's files
 * (the unpadded 28x28 values are mean 0.28604060, std 0.35302424). The bundled subset uses the
 * same constants: normalisation is a property of the dataset, not of the sample.
 */
export const FASHION_MNIST_MEAN: readonly number[] = [0.21899983];
export const FASHION_MNIST_STD: readonly number[] = [0.33181137];

/** Number of images of each class (index = label). */
export function classCounts(dataset: Dataset): Int32Array {
  const counts = new Int32Array(dataset.classes);
  for (let i = 0; i < dataset.count; i++) counts[dataset.labels[i]]++;
  return counts;
}

/**
 * Copies `count` single- or multi-channel images of `height` x `width` into a new buffer
 * with `padding` zero pixels on every side.
 */
export function padImages(
  images: Uint8Array, count: number, channels: number, height: number, width: number, padding: number,
): Uint8Array {
  const paddedH = height + 2 * padding;
  const paddedW = width + 2 * padding;
  const out = new Uint8Array(count * channels * paddedH * paddedW);
  const planes = count * channels;
  for (let p = 0; p < planes; p++) {
    const src = p * height * width;
    const dst = p * paddedH * paddedW + padding * paddedW + padding;
    for (let y = 0; y < height; y++) {
      out.set(images.subarray(src + y * width, src + (y + 1) * width), dst + y * paddedW);
    }
  }
  return out;
}
