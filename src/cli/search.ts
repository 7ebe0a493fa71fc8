/**
 * `pcdarts search`: flags (kebab-case forms of the authors' arguments) -> SearchRun. All the
 * work is in the library (src/run/search.ts); this file parses, wires progress and signals,
 * and turns outcomes into exit statuses: 0 done, 2 bad input, 130/143 stopped by SIGINT/SIGTERM.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { Command, InvalidArgumentError, Option } from 'commander';

import {
  DATASET_NAMES, DEFAULT_SEARCH_CONFIG, DEFAULT_SEARCH_RUNTIME, formatEpochLine, formatStepStatus, genotypeToJSON,
  estimateSearchTime, formatEstimate, IMAGENET_SEARCH_RECIPE, NETWORK_KINDS, oneLine, readRunConfig, parseSubsetFractions, RunInputError, type SearchConfig, SearchRun,
  type SearchRuntime,
} from '../index.js';
import { cappedThreads, reportFailure } from './common.js';
import { addImageFolderOptions, imageFolderRuntime } from './data-options.js';
import { searchNextSteps } from './next-steps.js';
import { driveRun, writeReportAfterRun } from './run-session.js';

export function parseInteger(value: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) throw new InvalidArgumentError('expected an integer.');
  return Number(value);
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number.');
  return n;
}

/** Keys of SearchConfig that are flags (commander's attribute names equal the config keys). */
const CONFIG_KEYS = Object.keys(DEFAULT_SEARCH_CONFIG) as (keyof SearchConfig)[];

/** "--search-subset 0.1,0.025" as commander parses it; the library checks the values. */
function parseSubsetOption(value: string): [number, number] {
  try {
    return parseSubsetFractions(value);
  } catch (error) {
    throw new InvalidArgumentError(`${oneLine(error).replace(/^--search-subset: /, '')}.`);
  }
}

/** "(default: 256; 1024 with the ImageNet network)" for a setting the ImageNet recipe changes. */
export function recipeDefault(key: keyof SearchConfig): string {
  const show = (v: unknown): string => Array.isArray(v) ? v.join(',') : v === null ? 'none' : typeof v === 'string' ? JSON.stringify(v) : String(v);
  const imagenet = IMAGENET_SEARCH_RECIPE[key];
  const cifar = show(DEFAULT_SEARCH_CONFIG[key]);
  return imagenet === undefined || show(imagenet) === cifar ? `(default: ${cifar})` : `(default: ${cifar}; ${show(imagenet)} with the ImageNet network)`;
}

/** "20250131-142501": the default run directory's suffix. */
export function timestamp(date = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

export function searchCommand(): Command {
  const d = DEFAULT_SEARCH_CONFIG;
  const r = recipeDefault;
  const command = new Command('search')
    .description('PC-DARTS architecture search (first order, or second order with --order 2); defaults are the paper\'s CIFAR-10 settings, on the bundled Fashion-MNIST subset, or its ImageNet settings with the ImageNet network')
    .addOption(new Option('--network <kind>', 'search network: cifar (stem at full resolution) or imagenet (three stride-2 stems, the ImageNet recipe as defaults) (default: imagenet for the ImageNet dataset and images of 128 pixels or more, else cifar)').choices([...NETWORK_KINDS]))
    .addOption(new Option('--dataset <name>', 'training data').choices([...DATASET_NAMES]).default(d.dataset))
    .addOption(new Option('--data <dir>', 'dataset directory (default: the dataset\'s standard location; none for the bundled subset)'))
    .addOption(new Option('--batch-size <n>', `batch size of both halves ${r('batchSize')}`).argParser(parseInteger))
    .addOption(new Option('--lr <x>', `weight learning rate (cosine schedule) ${r('lr')}`).argParser(parseNumber))
    .addOption(new Option('--lr-min <x>', `final weight learning rate ${r('lrMin')}`).argParser(parseNumber))
    .addOption(new Option('--lr-warmup-epochs <n>', 'epochs of linear learning-rate warm-up, lr (e+1)/N, before the cosine (default: 0; 5 with the ImageNet network when the batch exceeds 256)').argParser(parseInteger))
    .addOption(new Option('--momentum <x>', 'SGD momentum').argParser(parseNumber).default(d.momentum))
    .addOption(new Option('--weight-decay <x>', `SGD weight decay ${r('weightDecay')}`).argParser(parseNumber))
    .addOption(new Option('--arch-lr <x>', `architecture Adam learning rate ${r('archLr')}`).argParser(parseNumber))
    .addOption(new Option('--arch-weight-decay <x>', `architecture weight decay ${r('archWeightDecay')}`).argParser(parseNumber))
    .addOption(new Option('--arch-grad-clip <x>', `clip the architecture gradients' global norm before the Adam step ${r('archGradClip')}`).argParser(parseNumber))
    .addOption(new Option('--no-arch-grad-clip', 'do not clip the architecture gradients'))
    .addOption(new Option('--order <n>', 'architecture step: 1 first order (PC-DARTS, DARTS v1), 2 the unrolled second order of DARTS v2, about 2.7x the time per step (default: 1)').argParser(parseInteger))
    .addOption(new Option('--epochs <n>', `search epochs ${r('epochs')}`).argParser(parseInteger))
    .addOption(new Option('--warmup-epochs <n>', `epochs before architecture steps begin ${r('warmupEpochs')}`).argParser(parseInteger))
    .addOption(new Option('--init-channels <n>', 'initial channels C').argParser(parseInteger).default(d.initChannels))
    .addOption(new Option('--layers <n>', 'cells').argParser(parseInteger).default(d.layers))
    .addOption(new Option('--nodes <n>', 'intermediate nodes per cell').argParser(parseInteger).default(d.nodes))
    .addOption(new Option('--k <n>', `partial channel proportion 1/K ${r('k')}`).argParser(parseInteger))
    .addOption(new Option('--no-edge-norm', 'switch edge normalisation off (ablation) (default: on)'))
    .addOption(new Option('--train-portion <x>', 'without a search subset: fraction of the training set for the weights; the rest trains the architecture').argParser(parseNumber).default(d.trainPortion))
    .addOption(new Option('--search-subset <w,a>', `disjoint, seeded per-class fractions of the training set for the weights and the architecture, recorded in RUN_DIR/search-subset.json ${r('searchSubset')}`).argParser(parseSubsetOption))
    .addOption(new Option('--no-search-subset', 'split by --train-portion instead of per-class samples'))
    .addOption(new Option('--search-subset-from <dir>', 'reuse the per-class sample recorded by that search run directory (or its search-subset.json)'))
    .addOption(new Option('--grad-clip <x>', 'clip the weight gradients\' global norm').argParser(parseNumber).default(d.gradClip))
    .addOption(new Option('--seed <n>', 'random seed').argParser(parseInteger).default(d.seed))
    .addOption(new Option('--limit-train <n>', 'use only the first N training images, for quick runs (default: all)').argParser(parseInteger))
    .addOption(new Option('--threads <n>', 'kernel threads; results do not depend on it (default: all cores, or PCDARTS_THREADS)').argParser(parseInteger))
    .addOption(new Option('--activation-budget <mib>', `MiB of activations kept before the rest is recomputed in backward: faster with more memory, 0 recomputes all; results do not depend on it (default: ${DEFAULT_SEARCH_RUNTIME.activationBudgetMiB})`).argParser(parseInteger))
    .addOption(new Option('--checkpoint-every <n>', 'write a checkpoint every N steps, and at every epoch end').argParser(parseInteger).default(DEFAULT_SEARCH_RUNTIME.checkpointEvery))
    .addOption(new Option('-o, --out <dir>', 'new run directory (default: runs/search-<date>-<time>)'))
    .addOption(new Option('--resume <dir>', 'continue the run in DIR from its last checkpoint; other flags must match the run or be left out'))
    .action(async (_options: Record<string, unknown>, self: Command) => {
      process.exitCode = await runSearchCommand(self);
    });
  return addImageFolderOptions(command);
}

/** Runs the command whose options commander has parsed; returns the exit status. */
async function runSearchCommand(command: Command): Promise<number> {
  const options = command.opts<Record<string, unknown>>();
  const fromCli = (key: string): boolean => command.getOptionValueSource(key) === 'cli';
  const err = (line: string): void => { process.stderr.write(`pcdarts search: ${line}\n`); };
  // --no-arch-grad-clip and --no-search-subset: commander's false is the config's null.
  for (const key of ['archGradClip', 'searchSubset'] as const) if (options[key] === false) options[key] = null;
  const runtime: Partial<SearchRuntime> = {
    threads: cappedThreads('search', options.threads as number | undefined),
    activationBudgetMiB: options.activationBudget as number | undefined,
    checkpointEvery: fromCli('checkpointEvery') ? options.checkpointEvery as number : undefined,
    ...imageFolderRuntime('search', options),
  };
  let run: SearchRun;
  try {
    const resume = options.resume as string | undefined;
    if (resume !== undefined) {
      if (options.out !== undefined) throw new RunInputError('--out and --resume exclude each other: --resume continues the run in its own directory');
      const given: Partial<SearchConfig> = {};
      for (const key of CONFIG_KEYS) if (fromCli(key)) (given as Record<string, unknown>)[key] = options[key];
      run = SearchRun.resume({ dir: resume, given, runtime });
    } else {
      // Only what was given: the library fills in the defaults of the network's recipe.
      const config: Partial<SearchConfig> = {};
      for (const key of CONFIG_KEYS) if (fromCli(key)) (config as Record<string, unknown>)[key] = options[key];
      run = SearchRun.create({
        config,
        runtime: { ...runtime, checkpointEvery: options.checkpointEvery as number },
        out: (options.out as string | undefined) ?? `runs/search-${timestamp()}`,
      });
    }
  } catch (error) {
    return reportFailure('search', error);
  }

  const dir = run.directory;
  for (const warning of run.warnings) err(`warning: ${warning}`);
  if (run.finished) {
    err(`${dir} has already finished all ${run.config.epochs} epochs; its genotype is in ${dir}/genotype.json`);
    run.dispose();
    // A run killed while writing its report (written atomically: absent, never half) gets it now.
    if (!existsSync(join(dir, 'report.html'))) await writeReportAfterRun(dir);
    return 0;
  }
  if (run.position.epoch === 0 && run.position.step === 0) printSearchEstimate(run);
  const outcome = await driveRun('search', run, { step: formatStepStatus, epoch: formatEpochLine });
  if (typeof outcome === 'number') return outcome;
  process.stdout.write(`search finished: ${dir}/genotype.json\n`);
  if (outcome.genotype) process.stdout.write(genotypeToJSON(outcome.genotype));
  await writeReportAfterRun(dir);
  process.stdout.write(`${searchNextSteps(dir).join('\n')}\n`);
  return 0;
}

/** Searches of more than this many seconds say how to make a shorter one. */
const LONG_SEARCH_SECONDS = 3600;

/** "estimated time: about 6 h (50 epochs, 15 of warm-up; ...)" before a new search starts. */
function printSearchEstimate(run: SearchRun): void {
  const err = (line: string): void => { process.stderr.write(`pcdarts search: ${line}\n`); };
  try {
    const info = readRunConfig(run.directory).info as Record<string, number>;
    const config = run.config;
    const estimate = estimateSearchTime(config, {
      channels: info.channels!, imageSize: info.image_size!, classes: info.classes!, weightImages: info.weight_images!, archImages: info.arch_images!,
    });
    let line = `estimated time: ${formatEstimate(estimate.seconds)} on this machine (${config.epochs} epochs, the first ${config.warmupEpochs} of warm-up; `
      + `C${config.initChannels}, ${config.layers} cells, K ${config.k}, ${info.weight_images} + ${info.arch_images} images)`;
    if (estimate.seconds > LONG_SEARCH_SECONDS) {
      line += '; for a first look: --epochs 6 --warmup-epochs 2 --limit-train 2000 --batch-size 64 --layers 5 --init-channels 8 (README, Your first hour)';
    }
    err(line);
  } catch (error) {
    err(`estimated time: unknown (${oneLine(error)})`);
  }
}
