/**
 * Which network a run builds when --network is not given (issue 11): the ImageNet networks
 * for the ImageNet dataset and for images of 128 pixels and more (their stems take 224x224
 * down to 28x28 before the first cell), the CIFAR networks otherwise.
 */

export const NETWORK_KINDS = ['cifar', 'imagenet'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

/** Image side from which the ImageNet network is the default. */
export const IMAGENET_NETWORK_MIN_IMAGE_SIZE = 128;

/** The --image-size of image folders when none is given (torchvision's 224). */
const FOLDER_IMAGE_SIZE = 224;

/**
 * The default network of a dataset and image size. `imageSize` null: the dataset's own size
 * (an image folder's default 224; every in-memory dataset's 32).
 */
export function defaultNetworkKind(dataset: string, imageSize: number | null = null): NetworkKind {
  if (dataset === 'imagenet') return 'imagenet';
  const size = imageSize ?? (dataset === 'imagefolder' ? FOLDER_IMAGE_SIZE : null);
  return size !== null && size >= IMAGENET_NETWORK_MIN_IMAGE_SIZE ? 'imagenet' : 'cifar';
}

/** The --image-size among given settings (a key of the run configs of image-folder datasets), or null. */
export function givenImageSize(given: object): number | null {
  const size = (given as { imageSize?: unknown }).imageSize;
  return typeof size === 'number' ? size : null;
}
