/**
 * `pcdarts train`: flags (kebab-case forms of the authors' train.py arguments) -> TrainRun.
 * All the work is in the library (src/run/train.ts); this file parses, wires progress and
 * signals, and turns outcomes into exit statuses: 0 done, 2 bad input, 130/143 stopped by
 * SIGINT/SIGTERM (after a checkpoint).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { Command, Option } from 'commander';

import {
  DATASET_NAMES, DEFAULT_IMAGENET_TRAIN_GENOTYPE, DEFAULT_TRAIN_CONFIG, DEFAULT_TRAIN_GENOTYPE, DEFAULT_TRAIN_RUNTIME,
  describeSetting, estimateTrainTime, formatEstimate, formatTestResult, formatTrainEpochLine, formatTrainStepStatus, type Genotype,
  IMAGENET_TRAIN_RECIPE, INHERITED_TRAIN_SETTINGS, loadGenotype, LR_SCHEDULE_KINDS, NETWORK_KINDS, oneLine, readRunConfig, RunInputError,
  type TrainConfig, trainDefaultsFromRun, TrainRun, type TrainRuntime,
} from '../index.js';
import { cappedThreads, commandLine, reportFailure } from './common.js';
import { addImageFolderOptions, imageFolderRuntime } from './data-options.js';
import { trainNextSteps } from './next-steps.js';
import { driveRun, writeReportAfterRun } from './run-session.js';
import { parseInteger, parseNumber, timestamp } from './search.js';

/** Keys of TrainConfig that are flags with the same attribute name in commander (all but the genotype). */
const CONFIG_KEYS = (Object.keys(DEFAULT_TRAIN_CONFIG) as (keyof TrainConfig)[]).filter((key) => key !== 'genotype');

/** "(default: 96; 1024 with the ImageNet network)" for a setting the ImageNet recipe changes. */
function recipeDefault(key: keyof TrainConfig): string {
  const show = (v: unknown): string => typeof v === 'boolean' ? (v ? 'on' : 'off') : typeof v === 'string' ? JSON.stringify(v) : String(v);
  const imagenet = IMAGENET_TRAIN_RECIPE[key];
  const cifar = show(DEFAULT_TRAIN_CONFIG[key]);
  return imagenet === undefined || show(imagenet) === cifar ? `(default: ${cifar})` : `(default: ${cifar}; ${show(imagenet)} with the ImageNet network)`;
}

/** The genotype of a --genotype argument; a bad one is a RunInputError. */
export function genotypeArgument(spec: string): Genotype {
  try {
    return loadGenotype(spec);
  } catch (error) {
    throw new RunInputError(oneLine(error));
  }
}

export function trainCommand(): Command {
  const d = DEFAULT_TRAIN_CONFIG;
  const r = recipeDefault;
  return addImageFolderOptions(new Command('train')
    .description('train a genotype from scratch (spec section 7); defaults are the CIFAR-10 recipe (600 epochs), on the bundled Fashion-MNIST subset, or the ImageNet recipe with the ImageNet network; a genotype from a run directory brings that run\'s dataset, data directory, network, channels and cells as defaults')
    .argument('[genotype]', 'the same as --genotype')
    .addOption(new Option('--genotype <spec>', `published name (PC_DARTS_cifar, ...), genotype file (.json or Python form) or run directory, whose dataset, data directory, network, channels, cells and image size become the defaults (default: "${DEFAULT_TRAIN_GENOTYPE}"; "${DEFAULT_IMAGENET_TRAIN_GENOTYPE}" with the ImageNet network)`))
    .addOption(new Option('--nodes <n>', 'intermediate nodes the genotype must have (checked; default: the genotype\'s)').argParser(parseInteger))
    .addOption(new Option('--network <kind>', 'the authors\' NetworkCIFAR or NetworkImageNet, the latter with the ImageNet recipe as defaults (default: imagenet for the ImageNet dataset and images of 128 pixels or more, else cifar)').choices([...NETWORK_KINDS]))
    .addOption(new Option('--dataset <name>', 'training and test data').choices([...DATASET_NAMES]).default(d.dataset))
    .addOption(new Option('--data <dir>', 'dataset directory (default: the dataset\'s standard location; none for the bundled subset)'))
    .addOption(new Option('--batch-size <n>', `batch size ${r('batchSize')}`).argParser(parseInteger))
    .addOption(new Option('--lr <x>', `initial learning rate ${r('lr')}`).argParser(parseNumber))
    .addOption(new Option('--lr-schedule <kind>', `cosine to 0, or the authors' linear decay ${r('lrSchedule')}`).choices([...LR_SCHEDULE_KINDS]))
    .addOption(new Option('--lr-warmup-epochs <n>', 'epochs of linear learning-rate warm-up, lr (e+1)/N, before the schedule (default: 0; 5 with the ImageNet network when the batch exceeds 256)').argParser(parseInteger))
    .addOption(new Option('--momentum <x>', 'SGD momentum').argParser(parseNumber).default(d.momentum))
    .addOption(new Option('--weight-decay <x>', `SGD weight decay ${r('weightDecay')}`).argParser(parseNumber))
    .addOption(new Option('--epochs <n>', `training epochs ${r('epochs')}`).argParser(parseInteger))
    .addOption(new Option('--init-channels <n>', `initial channels C ${r('initChannels')}`).argParser(parseInteger))
    .addOption(new Option('--layers <n>', `cells ${r('layers')}`).argParser(parseInteger))
    .addOption(new Option('--auxiliary', 'auxiliary head and loss (default: on)'))
    .addOption(new Option('--no-auxiliary', 'switch the auxiliary head off'))
    .addOption(new Option('--auxiliary-weight <x>', 'weight of the auxiliary loss').argParser(parseNumber).default(d.auxiliaryWeight))
    .addOption(new Option('--cutout', `cutout augmentation ${r('cutout')}`))
    .addOption(new Option('--no-cutout', 'switch cutout off'))
    .addOption(new Option('--cutout-length <n>', 'cutout square side').argParser(parseInteger).default(d.cutoutLength))
    .addOption(new Option('--drop-path-prob <x>', `final drop-path probability (grows linearly from 0) ${r('dropPathProb')}`).argParser(parseNumber))
    .addOption(new Option('--grad-clip <x>', 'clip the gradients\' global norm').argParser(parseNumber).default(d.gradClip))
    .addOption(new Option('--label-smoothing <x>', `label smoothing of the training loss (main and auxiliary) ${r('labelSmoothing')}`).argParser(parseNumber))
    .addOption(new Option('--seed <n>', 'random seed').argParser(parseInteger).default(d.seed))
    .addOption(new Option('--valid-portion <x>', 'hold out the last fraction of the training set for validation and keep the best model (0: none; then train on all and test each epoch)').argParser(parseNumber).default(d.validPortion))
    .addOption(new Option('--limit-train <n>', 'use only the first N training images, for quick runs (default: all)').argParser(parseInteger))
    .addOption(new Option('--limit-test <n>', 'evaluate only the first N test images, for quick runs (default: all)').argParser(parseInteger))
    .addOption(new Option('--init-from <file>', 'start from the weights of this safetensors file (the authors\' state-dict keys: pcdarts export --format pytorch, or saved by PyTorch) instead of a random initialisation'))
    .addOption(new Option('--threads <n>', 'kernel threads; results do not depend on it (default: all cores, or PCDARTS_THREADS)').argParser(parseInteger))
    .addOption(new Option('--activation-budget <mib>', `MiB of activations kept before the rest is recomputed in backward: faster with more memory, 0 recomputes all; results do not depend on it (default: ${DEFAULT_TRAIN_RUNTIME.activationBudgetMiB})`).argParser(parseInteger))
    .addOption(new Option('--checkpoint-every <n>', 'write a checkpoint every N steps, and at every epoch end').argParser(parseInteger).default(DEFAULT_TRAIN_RUNTIME.checkpointEvery))
    .addOption(new Option('-o, --out <dir>', 'new run directory (default: runs/train-<date>-<time>)'))
    .addOption(new Option('--resume <dir>', 'continue the run in DIR from its last checkpoint; other flags must match the run or be left out'))
    .action(async (genotype: string | undefined, _options: Record<string, unknown>, self: Command) => {
      process.exitCode = await runTrainCommand(self, genotype);
    }));
}

/** Runs the command whose options commander has parsed; returns the exit status. */
async function runTrainCommand(command: Command, genotypeArg: string | undefined): Promise<number> {
  const options = command.opts<Record<string, unknown>>();
  const fromCli = (key: string): boolean => command.getOptionValueSource(key) === 'cli';
  const err = (line: string): void => { process.stderr.write(`pcdarts train: ${line}\n`); };
  const runtime: Partial<TrainRuntime> = {
    threads: cappedThreads('train', options.threads as number | undefined),
    activationBudgetMiB: options.activationBudget as number | undefined,
    checkpointEvery: fromCli('checkpointEvery') ? options.checkpointEvery as number : undefined,
    ...imageFolderRuntime('train', options),
  };
  const nodes = options.nodes as number | undefined;
  let run: TrainRun;
  let inheritedLine: string | null = null;
  try {
    if (genotypeArg !== undefined) {
      if (options.genotype !== undefined && options.genotype !== genotypeArg) throw new RunInputError(`give the genotype once: ${genotypeArg} and --genotype ${options.genotype as string}`);
      options.genotype = genotypeArg;
      command.setOptionValueWithSource('genotype', genotypeArg, 'cli');
    }
    const resume = options.resume as string | undefined;
    if (resume !== undefined) {
      if (options.out !== undefined) throw new RunInputError('--out and --resume exclude each other: --resume continues the run in its own directory');
      const given: Partial<TrainConfig> = {};
      for (const key of CONFIG_KEYS) if (fromCli(key)) (given as Record<string, unknown>)[key] = options[key];
      if (fromCli('genotype')) given.genotype = genotypeArgument(options.genotype as string);
      run = TrainRun.resume({ dir: resume, given, nodes, runtime });
    } else {
      // Only what was given: the library fills in the defaults of the network's recipe.
      const config: Partial<TrainConfig> = {};
      if (options.genotype !== undefined) config.genotype = genotypeArgument(options.genotype as string);
      for (const key of CONFIG_KEYS) if (fromCli(key)) (config as Record<string, unknown>)[key] = options[key];
      // A genotype from a run directory trains on that run's data, at that run's size, unless flags say otherwise.
      const inherited = options.genotype === undefined ? null : trainDefaultsFromRun(options.genotype as string);
      if (inherited !== null) {
        const taken = INHERITED_TRAIN_SETTINGS.filter((key) => inherited[key] !== undefined && config[key] === undefined);
        for (const key of taken) (config as Record<string, unknown>)[key] = inherited[key];
        if (taken.length > 0) {
          const kind = readRunConfig(options.genotype as string).command;
          inheritedLine = `from the ${kind} run ${options.genotype as string}: ${taken.map((key) => describeSetting(key, inherited[key])).join(' ')} (flags given override these)`;
        }
      }
      run = TrainRun.create({
        config, nodes, genotypeSource: options.genotype as string | undefined,
        runtime: { ...runtime, checkpointEvery: options.checkpointEvery as number },
        out: (options.out as string | undefined) ?? `runs/train-${timestamp()}`,
      });
    }
  } catch (error) {
    return reportFailure('train', error);
  }

  const dir = run.directory;
  for (const warning of run.warnings) err(`warning: ${warning}`);
  if (run.finished) {
    const test = run.testResult;
    err(`${dir} has already finished all ${run.config.epochs} epochs${test ? `; test: ${formatTestResult(test)}` : ''}`);
    run.dispose();
    // A run killed while writing its report (written atomically: absent, never half) gets it now.
    if (!existsSync(join(dir, 'report.html'))) await writeReportAfterRun(dir);
    return 0;
  }
  if (inheritedLine !== null) err(inheritedLine);
  if (run.position.epoch === 0 && run.position.step === 0) printEstimate(run, err);
  const outcome = await driveRun('train', run, { step: formatTrainStepStatus, epoch: formatTrainEpochLine });
  if (typeof outcome === 'number') return outcome;
  const epochs = run.config.epochs;
  const test = outcome.test!;
  const which = test.model === 'best' ? `best model (epoch ${test.epoch + 1} of ${epochs} by validation accuracy)` : `model after ${epochs} epochs`;
  process.stdout.write(`train finished: ${dir}\ntest (${which}): ${formatTestResult(test)}\n`);
  await writeReportAfterRun(dir);
  process.stdout.write(`${trainNextSteps(dir).join('\n')}\n`);
  return 0;
}

/** Runs of more than this many seconds say how to make a shorter one. */
const LONG_RUN_SECONDS = 3600;

/** "estimated time: about 20 h (600 epochs, about 2.0 min each)" before a new run starts. */
function printEstimate(run: TrainRun, err: (line: string) => void): void {
  try {
    const info = readRunConfig(run.directory).info as Record<string, number>;
    const config = run.config;
    const estimate = estimateTrainTime(config, {
      channels: info.channels!, imageSize: info.image_size!, classes: info.classes!, trainImages: info.train_images!,
      evaluatedImages: info.valid_images! > 0 ? info.valid_images! : info.test_images!,
    });
    const size = `C${config.initChannels}, ${config.layers} cells, ${info.train_images} images`;
    let line = `estimated time: ${formatEstimate(estimate.seconds)} on this machine (${config.epochs} ${config.epochs === 1 ? 'epoch' : 'epochs'} of ${formatEstimate(estimate.secondsPerEpoch).replace('about ', '')} each; ${size})`;
    if (estimate.seconds > LONG_RUN_SECONDS) {
      const epochs = Math.max(1, Math.floor(LONG_RUN_SECONDS / 2 / estimate.secondsPerEpoch));
      line += `; --epochs ${epochs} would take ${formatEstimate(epochs * estimate.secondsPerEpoch)}; Ctrl-C stops at any time with a checkpoint (resume: ${commandLine(['train', '--resume', run.directory])})`;
    }
    err(line);
  } catch (error) {
    err(`estimated time: unknown (${oneLine(error)})`);
  }
}
