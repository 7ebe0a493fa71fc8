/**
 * `pcdarts info --genotype G`: parameters (auxiliary head excluded) and multiply-adds of one
 * forward pass of the network that retrains a genotype (spec section 7's table), as text or,
 * with --json, as JSON. Exit statuses: 0 done, 2 bad input (a bad genotype or flag).
 */
import { Command, Option } from 'commander';

import {
  INFO_DATASET_NAMES, type InfoDatasetName, NETWORK_KINDS, type NetworkInfo, networkInfo, type NetworkKind, readRunConfig, RunInputError,
  runNetworkDefaults,
} from '../index.js';
import { reportFailure } from './common.js';
import { parseInteger } from './search.js';
import { genotypeArgument } from './train.js';

interface InfoOptions {
  genotype?: string;
  dataset?: InfoDatasetName;
  network?: NetworkKind;
  initChannels?: number;
  layers?: number;
  nodes?: number;
  data?: string;
  imageSize?: number;
  json?: boolean;
}

function thousands(n: number): string {
  return n.toLocaleString('en-US');
}

/** "PC_DARTS_cifar: CIFAR network C36 L20 (4 nodes), 3x32x32 input, 10 classes" and the counts. */
export function formatNetworkInfo(genotype: string, info: NetworkInfo): string {
  const kind = info.network === 'cifar' ? 'CIFAR' : 'ImageNet';
  return `${genotype}: ${kind} network C${info.init_channels} L${info.layers} (${info.nodes} nodes per cell), `
    + `${info.in_channels}x${info.input_size}x${info.input_size} input, ${info.classes} classes\n`
    + `parameters: ${thousands(info.parameters)} (${(info.parameters / 1e6).toFixed(2)} M, auxiliary head excluded)\n`
    + `mult-adds:  ${thousands(info.mult_adds)} (${(info.mult_adds / 1e6).toFixed(1)} M per image)\n`;
}

export function infoCommand(): Command {
  return new Command('info')
    .description('parameters (auxiliary head excluded) and multiply-adds of the network built from a genotype; for a run directory, the network that run trains (a search run: the one `train RUN_DIR` trains by default)')
    .argument('[genotype]', 'the same as --genotype')
    .addOption(new Option('--genotype <spec>', 'published name (PC_DARTS_cifar, ...), genotype file (.json or Python form) or run directory'))
    .addOption(new Option('--dataset <name>', 'network and input: cifar10 (32x32, 3 channels), cifar100 (100 classes), imagenet (224x224, 1000 classes), imagefolder (--data DIR: its classes, --image-size), fashion-mnist (32x32, 1 channel) (default: a run directory\'s network and images, else cifar10)').choices([...INFO_DATASET_NAMES]))
    .addOption(new Option('--data <dir>', 'imagefolder / imagenet: the folder (DIR/train/<class>/...) whose classes the network predicts'))
    .addOption(new Option('--image-size <n>', 'imagefolder / imagenet: input side (default: 224; the ImageNet network from 128 on, else the CIFAR one)').argParser(parseInteger))
    .addOption(new Option('--network <kind>', 'the authors\' NetworkCIFAR or NetworkImageNet (default: the dataset\'s, or the run\'s)').choices([...NETWORK_KINDS]))
    .addOption(new Option('--init-channels <n>', 'initial channels C (default: a run\'s, else 36; 48 for the ImageNet network)').argParser(parseInteger))
    .addOption(new Option('--layers <n>', 'cells (default: a run\'s, else 20; 14 for the ImageNet network)').argParser(parseInteger))
    .addOption(new Option('--nodes <n>', 'intermediate nodes the genotype must have (checked)').argParser(parseInteger))
    .addOption(new Option('--json', 'print the result as JSON'))
    .action((genotypeArg: string | undefined, options: InfoOptions) => {
      process.exitCode = runInfoCommand(genotypeArg, options);
    });
}

function runInfoCommand(genotypeArg: string | undefined, options: InfoOptions): number {
  try {
    if (genotypeArg !== undefined && options.genotype !== undefined && genotypeArg !== options.genotype) {
      throw new RunInputError(`give the genotype once: ${genotypeArg} and --genotype ${options.genotype}`);
    }
    const spec = genotypeArg ?? options.genotype;
    if (spec === undefined) throw new RunInputError('give a genotype: pcdarts info GENOTYPE (a published name such as PC_DARTS_cifar, a genotype file or a run directory)');
    options = { ...options, genotype: spec };
    const genotype = genotypeArgument(spec);
    // A run directory brings its network and images unless --dataset says otherwise.
    const fromRun = options.dataset === undefined ? runNetworkDefaults(spec) ?? {} : {};
    const info = networkInfo({
      ...fromRun, genotype, dataset: options.dataset,
      ...Object.fromEntries(Object.entries({ network: options.network, initChannels: options.initChannels, layers: options.layers }).filter(([, v]) => v !== undefined)),
      nodes: options.nodes, data: options.data, imageSize: options.imageSize,
    });
    process.stdout.write(options.json ? `${JSON.stringify({ genotype: spec, ...info })}\n` : formatNetworkInfo(spec, info));
    // A search run: its size is the search's; the paper retrains at C36 L20, which is worth knowing before a long run.
    if (!options.json && fromRun.initChannels !== undefined && options.initChannels === undefined && options.layers === undefined
      && info.network === 'cifar' && readRunConfig(spec).command === 'search' && (info.init_channels !== 36 || info.layers !== 20)) {
      const paper = networkInfo({ ...fromRun, genotype, initChannels: 36, layers: 20, nodes: options.nodes, data: options.data, imageSize: options.imageSize });
      process.stdout.write(`(the size of the search, which \`train ${spec}\` trains by default; at the paper's C36 L20: ${(paper.parameters / 1e6).toFixed(2)} M parameters, ${(paper.mult_adds / 1e6).toFixed(1)} M mult-adds)\n`);
    }
    return 0;
  } catch (error) {
    return reportFailure('info', error);
  }
}
