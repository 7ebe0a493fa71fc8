/**
 * `pcdarts info` as a library call: parameters and mult-adds of a genotype's evaluation
 * network (spec section 7's table).
 */
import { type Genotype, genotypeSteps, validateGenotype } from '../darts/genotype.js';
import { evalNetworkComplexity } from '../eval/complexity.js';
import { defaultRandom } from '../tensor/random.js';
import { join, resolve } from 'node:path';

import { scanClassNames } from '../data/index.js';
import { asInputErrors, RunInputError } from './errors.js';
import { defaultNetworkKind, NETWORK_KINDS, type NetworkKind } from './network-kind.js';
import { isRunDirectory, readRunConfig } from './run-dir.js';
import { checkGenotypeNodes } from './train-settings.js';
import { flagName } from './settings.js';

// ------------------------------------------------------------------------------------------
// Network facts (pcdarts info)

/** Datasets whose network `networkInfo` can describe: the training datasets and ImageNet (mobile setting). */
export const INFO_DATASET_NAMES = ['cifar10', 'cifar100', 'imagenet', 'imagefolder', 'fashion-mnist', 'fashion-mnist-bundled'] as const;
export type InfoDatasetName = (typeof INFO_DATASET_NAMES)[number];

export interface NetworkInfoOptions {
  genotype: Genotype;
  /** Default cifar10. */
  dataset?: InfoDatasetName;
  /** Default 36 (48 for imagenet). */
  initChannels?: number;
  /** Default 20 (14 for imagenet). */
  layers?: number;
  /** Intermediate nodes the genotype must have; absent: not checked. */
  nodes?: number;
  /** The network (default: the dataset's: ImageNet for imagenet, else CIFAR). */
  network?: NetworkKind;
  /** Classes, image channels and square image side (default: the dataset's). */
  classes?: number;
  inChannels?: number;
  inputSize?: number;
  /** The dataset name to report when the shape comes from elsewhere (a run directory); default: `dataset`. */
  datasetName?: string;
  /** imagefolder (required) / imagenet (optional): the folder whose DIR/train class folders give the classes. */
  data?: string;
  /** imagefolder / imagenet: the input side (default 224); its default network follows defaultNetworkKind. */
  imageSize?: number;
}

/** The network C and L defaults of each network kind (spec section 7). */
const NETWORK_DEFAULTS: Record<NetworkKind, { channels: number; layers: number }> = {
  cifar: { channels: 36, layers: 20 },
  imagenet: { channels: 48, layers: 14 },
};

/**
 * What `pcdarts info` takes from a run directory: its network kind, C, layers, classes, image
 * channels and size; for a search run, the network `pcdarts train RUN_DIR` builds from it
 * (its genotype at the search's C and layers, see trainDefaultsFromRun). Null for anything
 * that is not a run directory.
 */
export function runNetworkDefaults(dir: string): Partial<NetworkInfoOptions> | null {
  if (!isRunDirectory(dir)) return null;
  const file = readRunConfig(dir);
  const config = file.config as Record<string, unknown>;
  const info = (file.info ?? {}) as Record<string, unknown>;
  const number = (v: unknown): number | undefined => typeof v === 'number' ? v : undefined;
  const network = typeof config.network === 'string' && (NETWORK_KINDS as readonly string[]).includes(config.network)
    ? config.network as NetworkKind : 'cifar';
  const shape = {
    network, classes: number(info.classes), inChannels: number(info.channels), inputSize: number(info.image_size),
    datasetName: typeof config.dataset === 'string' ? config.dataset : undefined,
  };
  return { ...shape, initChannels: number(config.initChannels), layers: number(config.layers) };
}

export interface NetworkInfo {
  /** The authors' NetworkCIFAR or NetworkImageNet. */
  network: 'cifar' | 'imagenet';
  /** The --dataset, or the run's dataset. */
  dataset: string;
  init_channels: number;
  layers: number;
  nodes: number;
  classes: number;
  in_channels: number;
  input_size: number;
  /** Parameters of the main network (auxiliary head excluded). */
  parameters: number;
  /** Multiply-adds of one image's forward pass (spec section 7). */
  mult_adds: number;
}

const INFO_NETWORKS: Record<InfoDatasetName, { network: 'cifar' | 'imagenet'; classes: number; inChannels: number; inputSize: number; channels: number; layers: number }> = {
  'cifar10': { network: 'cifar', classes: 10, inChannels: 3, inputSize: 32, channels: 36, layers: 20 },
  'fashion-mnist': { network: 'cifar', classes: 10, inChannels: 1, inputSize: 32, channels: 36, layers: 20 },
  'fashion-mnist-bundled': { network: 'cifar', classes: 10, inChannels: 1, inputSize: 32, channels: 36, layers: 20 },
  'cifar100': { network: 'cifar', classes: 100, inChannels: 3, inputSize: 32, channels: 36, layers: 20 },
  'imagenet': { network: 'imagenet', classes: 1000, inChannels: 3, inputSize: 224, channels: 48, layers: 14 },
  'imagefolder': { network: 'imagenet', classes: 0, inChannels: 3, inputSize: 224, channels: 48, layers: 14 },
};

/** The shape of an image folder's network: its classes from DIR/train, the input side from --image-size. */
function folderShape(dataset: 'imagenet' | 'imagefolder', data: string | undefined, imageSize: number | undefined): typeof INFO_NETWORKS['imagenet'] {
  const size = imageSize ?? 224;
  if (!(Number.isInteger(size) && size >= 8)) throw new RunInputError(`--image-size: expected an integer >= 8, got ${size}`);
  if (data === undefined && dataset === 'imagefolder') throw new RunInputError('imagefolder: no data directory: pass --data DIR holding DIR/train/<class>/<image> (its class folders are the classes)');
  const classes = data === undefined ? 1000 : asInputErrors(() => scanClassNames(join(resolve(data), 'train'))).length;
  const network = defaultNetworkKind(dataset, size);
  return { network, classes, inChannels: 3, inputSize: size, ...NETWORK_DEFAULTS[network] };
}

/** Parameters and mult-adds of the evaluation network of a genotype (spec section 7's table). */
export function networkInfo(options: NetworkInfoOptions): NetworkInfo {
  const dataset = options.dataset ?? 'cifar10';
  if (INFO_NETWORKS[dataset] === undefined) throw new RunInputError(`--dataset: expected one of ${INFO_DATASET_NAMES.join(', ')}, got ${JSON.stringify(dataset)}`);
  const folder = dataset === 'imagefolder' || (dataset === 'imagenet' && (options.data !== undefined || options.imageSize !== undefined));
  const datasetShape = folder && options.classes === undefined
    ? folderShape(dataset as 'imagenet' | 'imagefolder', options.data, options.imageSize) : INFO_NETWORKS[dataset];
  const network = options.network ?? datasetShape.network;
  if (!(NETWORK_KINDS as readonly string[]).includes(network)) throw new RunInputError(`--network: expected one of ${NETWORK_KINDS.join(', ')}, got ${JSON.stringify(network)}`);
  const shape = {
    network,
    classes: options.classes ?? datasetShape.classes,
    inChannels: options.inChannels ?? datasetShape.inChannels,
    inputSize: options.inputSize ?? datasetShape.inputSize,
  };
  const initChannels = options.initChannels ?? NETWORK_DEFAULTS[network].channels;
  const layers = options.layers ?? NETWORK_DEFAULTS[network].layers;
  for (const [key, value] of [['initChannels', initChannels], ['layers', layers], ['classes', shape.classes], ['inChannels', shape.inChannels], ['inputSize', shape.inputSize]] as const) {
    if (!(Number.isInteger(value) && value >= 1)) throw new RunInputError(`${flagName(key)}: expected an integer >= 1, got ${value}`);
  }
  const genotype = asInputErrors(() => validateGenotype(options.genotype));
  checkGenotypeNodes(genotype, options.nodes);
  const saved = defaultRandom().getState();
  const report = asInputErrors(() => {
    try {
      return evalNetworkComplexity(shape.network, {
        genotype, channels: initChannels, layers, classes: shape.classes, inChannels: shape.inChannels, auxiliary: false,
      }, shape.inputSize);
    } finally {
      defaultRandom().setState(saved);
    }
  });
  return {
    network: shape.network, dataset: options.datasetName ?? dataset, init_channels: initChannels, layers, nodes: genotypeSteps(genotype), classes: shape.classes,
    in_channels: shape.inChannels, input_size: shape.inputSize, parameters: report.parameters, mult_adds: report.multAdds,
  };
}
