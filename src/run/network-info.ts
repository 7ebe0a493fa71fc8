/**
 * `pcdarts info` as a library call: parameters and mult-adds of a genotype's evaluation
 * network (spec section 7's table).
 */
import { type Genotype, genotypeSteps, validateGenotype } from '../darts/genotype.js';
import { evalNetworkComplexity } from '../eval/complexity.js';
import { defaultRandom } from '../tensor/random.js';
import { asInputErrors, RunInputError } from './errors.js';
import { checkGenotypeNodes } from './train-settings.js';
import { flagName } from './settings.js';

// ------------------------------------------------------------------------------------------
// Network facts (pcdarts info)

/** Datasets whose network `networkInfo` can describe: the training datasets and ImageNet (mobile setting). */
export const INFO_DATASET_NAMES = ['cifar10', 'imagenet', 'fashion-mnist', 'fashion-mnist-bundled'] as const;
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
}

export interface NetworkInfo {
  /** The authors' NetworkCIFAR or NetworkImageNet. */
  network: 'cifar' | 'imagenet';
  dataset: InfoDatasetName;
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
  'imagenet': { network: 'imagenet', classes: 1000, inChannels: 3, inputSize: 224, channels: 48, layers: 14 },
};

/** Parameters and mult-adds of the evaluation network of a genotype (spec section 7's table). */
export function networkInfo(options: NetworkInfoOptions): NetworkInfo {
  const dataset = options.dataset ?? 'cifar10';
  const shape = INFO_NETWORKS[dataset];
  if (shape === undefined) throw new RunInputError(`--dataset: expected one of ${INFO_DATASET_NAMES.join(', ')}, got ${JSON.stringify(dataset)}`);
  const initChannels = options.initChannels ?? shape.channels;
  const layers = options.layers ?? shape.layers;
  for (const [key, value] of [['initChannels', initChannels], ['layers', layers]] as const) {
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
    network: shape.network, dataset, init_channels: initChannels, layers, nodes: genotypeSteps(genotype), classes: shape.classes,
    in_channels: shape.inChannels, input_size: shape.inputSize, parameters: report.parameters, mult_adds: report.multAdds,
  };
}
