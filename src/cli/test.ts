/**
 * `pcdarts test --run DIR | --checkpoint FILE`: top-1 / top-5 accuracy and loss of a trained
 * model on the test split (eval mode), as a line of text or, with --json, as JSON. Exit
 * statuses: 0 done, 2 bad input (no such run or file, a checkpoint of another architecture).
 */
import { Command, Option } from 'commander';

import { existsSync, statSync } from 'node:fs';

import {
  createProgress, DATASET_NAMES, type DatasetName, formatTestResult, NETWORK_KINDS, type NetworkKind, type ProgressReporter, RunInputError, testModel,
} from '../index.js';
import { cappedThreads, reportFailure } from './common.js';
import { testNextSteps } from './next-steps.js';
import { parseInteger } from './search.js';
import { genotypeArgument } from './train.js';

interface TestOptions {
  run?: string;
  checkpoint?: string;
  last?: boolean;
  genotype?: string;
  nodes?: number;
  network?: NetworkKind;
  initChannels?: number;
  layers?: number;
  dataset?: DatasetName;
  data?: string;
  limitTest?: number;
  batchSize?: number;
  threads?: number;
  imageSize?: number;
  skipBadImages?: boolean;
  dataWorkers?: number;
  prefetch?: number;
  json?: boolean;
}

export function testCommand(): Command {
  return new Command('test')
    .description('accuracy (top-1, top-5) and loss of a trained model on the test split')
    .argument('[source]', 'a train run directory (the same as --run) or a weights file (the same as --checkpoint)')
    .addOption(new Option('--run <dir>', 'a train run directory: its best model (with --valid-portion), else its last checkpoint'))
    .addOption(new Option('--checkpoint <file>', 'a weights file (.safetensors): a run\'s checkpoint or best model, or a plain state dict'))
    .addOption(new Option('--last', 'with --run: test the last checkpoint even when a best model exists'))
    .addOption(new Option('--genotype <spec>', 'the architecture (default: the run\'s); needed for a file outside a train run directory'))
    .addOption(new Option('--nodes <n>', 'intermediate nodes the genotype must have (checked)').argParser(parseInteger))
    .addOption(new Option('--network <kind>', 'the authors\' NetworkCIFAR or NetworkImageNet (default: the run\'s, else the dataset\'s)').choices([...NETWORK_KINDS]))
    .addOption(new Option('--init-channels <n>', 'initial channels C (default: the run\'s, else 36; 48 with the ImageNet network)').argParser(parseInteger))
    .addOption(new Option('--layers <n>', 'cells (default: the run\'s, else 20; 14 with the ImageNet network)').argParser(parseInteger))
    .addOption(new Option('--dataset <name>', 'test data (default: the run\'s, else fashion-mnist-bundled)').choices([...DATASET_NAMES]))
    .addOption(new Option('--data <dir>', 'dataset directory (default: the run\'s, else the dataset\'s standard location)'))
    .addOption(new Option('--limit-test <n>', 'evaluate only the first N test images (default: the run\'s, else all)').argParser(parseInteger))
    .addOption(new Option('--batch-size <n>', 'evaluation batch size (default: the run\'s, else 96)').argParser(parseInteger))
    .addOption(new Option('--threads <n>', 'kernel threads (default: all cores, or PCDARTS_THREADS)').argParser(parseInteger))
    .addOption(new Option('--image-size <n>', 'image folders: side of the centre crops (default: the run\'s, else 224)').argParser(parseInteger))
    .addOption(new Option('--skip-bad-images', 'image folders: leave out test images that fail to decode instead of stopping (default: the run\'s setting)'))
    .addOption(new Option('--data-workers <n>', 'image folders: decode worker threads (default: all cores)').argParser(parseInteger))
    .addOption(new Option('--prefetch <n>', 'image folders: batches decoded ahead (default: 2)').argParser(parseInteger))
    .addOption(new Option('--json', 'print the result as JSON'))
    .action((source: string | undefined, options: TestOptions) => {
      process.exitCode = runTestCommand(source, options);
    });
}

/** Evaluations that take longer than this show a progress display (PCDARTS_TEST_PROGRESS_AFTER_MS: the tests' hook). */
const PROGRESS_AFTER_MS = Number(process.env.PCDARTS_TEST_PROGRESS_AFTER_MS ?? 2000);

function runTestCommand(source: string | undefined, options: TestOptions): number {
  let progress: ProgressReporter | null = null;
  try {
    if (source !== undefined) {
      if (options.run !== undefined || options.checkpoint !== undefined) throw new RunInputError(`give the source once: ${source} and ${options.run !== undefined ? `--run ${options.run}` : `--checkpoint ${options.checkpoint}`}`);
      // A file is a weights file; anything else is taken as a run directory.
      options = existsSync(source) && statSync(source).isFile() ? { ...options, checkpoint: source } : { ...options, run: source };
    }
    if (options.run !== undefined && options.checkpoint !== undefined) {
      throw new RunInputError('--run and --checkpoint exclude each other');
    }
    if (options.run === undefined && options.checkpoint === undefined) {
      throw new RunInputError('give a train run directory (pcdarts test RUN_DIR) or a weights file (--checkpoint FILE)');
    }
    if (options.last && options.run === undefined) throw new RunInputError('--last goes with --run');
    for (const [flag, value] of [['--init-channels', options.initChannels], ['--layers', options.layers], ['--limit-test', options.limitTest], ['--batch-size', options.batchSize], ['--threads', options.threads], ['--data-workers', options.dataWorkers], ['--prefetch', options.prefetch]] as const) {
      if (value !== undefined && value < 1) throw new RunInputError(`${flag}: expected an integer >= 1, got ${value}`);
    }
    const started = Date.now();
    const threads = cappedThreads('test', options.threads);
    const dataWorkers = cappedThreads('test', options.dataWorkers, '--data-workers');
    const result = testModel({
      run: options.run, checkpoint: options.checkpoint, last: options.last ?? false,
      genotype: options.genotype === undefined ? undefined : genotypeArgument(options.genotype),
      nodes: options.nodes, network: options.network, initChannels: options.initChannels, layers: options.layers, dataset: options.dataset,
      data: options.data, limitTest: options.limitTest, batchSize: options.batchSize, threads: threads ?? null,
      imageSize: options.imageSize, skipBadImages: options.skipBadImages,
      pipeline: { workers: dataWorkers, prefetch: options.prefetch },
      onBatch: (done, total) => {
        if (progress === null && done < total && Date.now() - started >= PROGRESS_AFTER_MS) {
          progress = createProgress(process.stderr, { unit: 'test images' });
          progress.start(total, done);
        }
        progress?.update(done);
      },
    });
    (progress as ProgressReporter | null)?.stop();
    if (options.json) {
      const { top1, top5, loss, images, checkpoint, dataset, network, initChannels, layers } = result;
      process.stdout.write(`${JSON.stringify({ top1, top5, loss, images, dataset, checkpoint, network, init_channels: initChannels, layers })}\n`);
    } else {
      process.stdout.write(`${formatTestResult(result)} | ${result.dataset} | ${result.checkpoint}\n`);
      // On stderr: stdout stays the one result line a script may read.
      if (options.run !== undefined) process.stderr.write(`${testNextSteps(options.run).join('\n')}\n`);
    }
    return 0;
  } catch (error) {
    (progress as ProgressReporter | null)?.stop();
    return reportFailure('test', error);
  }
}
