/**
 * The in-memory dataset every loader returns, and the per-dataset constants (class names,
 * channel statistics). Pure: no Node imports, so it can go into a browser bundle.
 */

export type Split = 'train' | 'test';

/**
 * THE dataset interface: one split of labelled images, in memory or on disk, as the run loops
 * (search, train, evaluate, test) consume it. Items are numbered 0..count-1 in storage order
 * (file order for idx/CIFAR files; for image folders, classes in code-point order of their
 * folder names, files in code-point order within a class). Batches of it come from a
 * `BatchSource` (batch-source.ts), never from `images` directly, so both kinds work everywhere.
 *
 * - In memory (`Dataset`: Fashion-MNIST, CIFAR-10/100): `images` holds uint8 NCHW pixels.
 * - On disk (`ImageFolderDataset`: --dataset imagefolder|imagenet): `files[i]` is item i's file
 *   relative to `root`, and height = width = the run's --image-size (what a batch holds).
 */
export interface ImageDataset {
  /** The name it was loaded by ('fashion-mnist', 'fashion-mnist-bundled', 'cifar10', 'cifar100', 'imagefolder', 'imagenet'). */
  readonly name: string;
  readonly split: Split;
  readonly count: number;
  /** Class index of each item, 0..classes-1. */
  readonly labels: Int32Array;
  readonly channels: number;
  /** Size of the images a batch of this split holds (image folders: --image-size). */
  readonly height: number;
  readonly width: number;
  readonly classes: number;
  readonly classNames: readonly string[];
  /** Per-channel mean used for normalisation, in [0, 1] pixel units. */
  readonly mean: readonly number[];
  /** Per-channel standard deviation used for normalisation, [0, 1] units. */
  readonly std: readonly number[];
  /** In-memory sets only: uint8 pixels, NCHW, image after image. */
  readonly images?: Uint8Array;
  /** File-backed sets only: item i's file relative to `root`, '/'-separated ('n01440764/n01440764_10026.JPEG'). */
  readonly files?: readonly string[];
  /** File-backed sets only: the absolute split folder (DIR/train or DIR/val). */
  readonly root?: string;
}

/**
 * A labelled image set held as uint8 pixels, NCHW, image after image
 * (`images[((n * channels + c) * height + y) * width + x]`).
 */
export interface Dataset extends ImageDataset {
  readonly images: Uint8Array;
}

/** What scanning an image folder found besides the images (run logs report it). */
export interface FolderScanReport {
  /** Files and folders that are not images of a listed extension, or hidden (names starting with '.'). */
  readonly ignoredFiles: number;
  /** Up to 10 of them, relative to the split folder. */
  readonly ignoredExamples: readonly string[];
  /** Images that failed to decode and were left out (--skip-bad-images), relative to the split folder. */
  readonly badImages: readonly string[];
}

/** A split of a torchvision ImageFolder tree, decoded from its files batch by batch. */
export interface ImageFolderDataset extends ImageDataset {
  readonly files: readonly string[];
  readonly root: string;
  readonly report: FolderScanReport;
}

/** True for a set whose pixels are in memory. */
export function isInMemory(dataset: ImageDataset): dataset is Dataset {
  return dataset.images !== undefined;
}

/** True for a set read from image files. */
export function isImageFolder(dataset: ImageDataset): dataset is ImageFolderDataset {
  return dataset.files !== undefined && dataset.root !== undefined;
}

/** Item i's file relative to the split folder, or null for an in-memory set. */
export function itemFile(dataset: ImageDataset, index: number): string | null {
  return dataset.files?.[index] ?? null;
}

export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

/** CIFAR-100's fine classes, as its meta file lists them (used when the files come without it). */
export const CIFAR100_CLASS_NAMES: readonly string[] = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle', 'bowl', 'boy', 'bridge', 'bus',
  'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch',
  'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house',
  'kangaroo', 'keyboard', 'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle',
  'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea', 'seal', 'shark',
  'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider', 'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table',
  'tank', 'telephone', 'television', 'tiger', 'tractor', 'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree',
  'wolf', 'woman', 'worm',
];

/**
 * CIFAR-100's per-channel mean and population std over its 50,000 training images, [0, 1]
 * units: the values in common use (the authors used CIFAR-10's for both; they are not
 * recomputed here, as no copy of CIFAR-100 is on this machine).
 */
export const CIFAR100_MEAN: readonly number[] = [0.50707516, 0.48654887, 0.44091784];
export const CIFAR100_STD: readonly number[] = [0.26733429, 0.25643846, 0.27615047];

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
export function classCounts(dataset: ImageDataset): Int32Array {
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
