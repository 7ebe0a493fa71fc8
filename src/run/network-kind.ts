/**
 * Which network a run builds when --network is not given (issue 11): the ImageNet networks
 * for the ImageNet dataset and for images of 128 pixels and more (their stems take 224x224
 * down to 28x28 before the first cell), the CIFAR networks otherwise.
 */

export const NETWORK_KINDS = ['cifar', 'imagenet'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

/** Image side from which the ImageNet network is the default. */
export const IMAGENET_NETWORK_MIN_IMAGE_SIZE = 128;

/** The default network of a dataset name and image size (null: the dataset's own size, below 128 for every built-in one but ImageNet). */
export function defaultNetworkKind(dataset: string, imageSize: number | null = null): NetworkKind {
  if (dataset === 'imagenet') return 'imagenet';
  return imageSize !== null && imageSize >= IMAGENET_NETWORK_MIN_IMAGE_SIZE ? 'imagenet' : 'cifar';
}
