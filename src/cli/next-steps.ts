/**
 * The next steps printed when search, train and test finish: exact commands, in the form that
 * works from where the user stands (common.ts: invocation), with the time a training run
 * would take on this machine.
 */
import {
  estimateTrainTime, formatEstimate, loadGenotype, loadTrainData, readRunConfig, resolveTrainConfig, type TrainConfig, trainDefaultsFromRun,
} from '../index.js';
import { commandLine } from './common.js';

/** Minutes a "fits this machine" training run is sized for. */
export const QUICK_TRAIN_SECONDS = 30 * 60;

/** The paper's CIFAR retraining size (spec section 7). */
const PAPER_SIZE = { initChannels: 36, layers: 20, epochs: 600 };

interface SearchFacts {
  channels: number;
  image_size: number;
  classes: number;
  /** Images of the whole training and test splits (a training run uses all of them, whatever --limit-train the search had). */
  train_images: number;
  test_images: number;
}

/** Seconds per epoch of training `config` on the search's dataset (one timed pass). */
function secondsPerEpoch(config: TrainConfig, facts: SearchFacts): number {
  return estimateTrainTime(config, {
    channels: facts.channels, imageSize: facts.image_size, classes: facts.classes,
    trainImages: facts.train_images, evaluatedImages: facts.test_images,
  }).secondsPerEpoch;
}

/** The lines after a finished search: train its genotype at a size that fits, or at the paper's, and look at it. */
export function searchNextSteps(dir: string): string[] {
  const lines = ['next steps:'];
  try {
    const info = readRunConfig(dir, 'search').info as Record<string, number>;
    const inherited = trainDefaultsFromRun(dir) ?? {};
    const genotype = loadGenotype(dir);
    const base = resolveTrainConfig({ ...inherited, genotype });
    const data = loadTrainData(base);
    const facts: SearchFacts = {
      channels: info.channels!, image_size: info.image_size!, classes: info.classes!, train_images: data.train.count, test_images: data.test.count,
    };
    const perEpoch = secondsPerEpoch(base, facts);
    const epochs = Math.max(1, Math.min(PAPER_SIZE.epochs, Math.floor(QUICK_TRAIN_SECONDS / perEpoch)));
    const quick: (string | number)[] = ['train', dir, '--epochs', epochs];
    let quickSeconds = perEpoch * epochs;
    if (perEpoch > QUICK_TRAIN_SECONDS) {
      const images = Math.max(100, Math.floor((facts.train_images * QUICK_TRAIN_SECONDS) / perEpoch / 100) * 100);
      quick.push('--limit-train', images);
      quickSeconds = (perEpoch * images) / facts.train_images;
    }
    lines.push(`  train the genotype at the search's size (C${base.initChannels}, ${base.layers} cells, ${base.dataset}), ${formatEstimate(quickSeconds)} here:`);
    lines.push(`    ${commandLine(quick)}`);
    const paper = resolveTrainConfig({ ...inherited, genotype, ...PAPER_SIZE });
    const paperSeconds = secondsPerEpoch(paper, facts) * PAPER_SIZE.epochs;
    lines.push(`  the paper's size (C${PAPER_SIZE.initChannels}, ${PAPER_SIZE.layers} cells, ${PAPER_SIZE.epochs} epochs), ${formatEstimate(paperSeconds)} here:`);
    lines.push(`    ${commandLine(['train', dir, '--init-channels', PAPER_SIZE.initChannels, '--layers', PAPER_SIZE.layers, '--epochs', PAPER_SIZE.epochs])}`);
  } catch {
    lines.push(`  train the genotype: ${commandLine(['train', dir, '--epochs', 20])}`);
  }
  lines.push(`  draw its cells: ${commandLine(['visualize', dir, '--out', `${dir}/cells.png`])}`);
  lines.push(`  its size: ${commandLine(['info', dir])}`);
  return lines;
}

/** The lines after a finished train run: test, export, report. */
export function trainNextSteps(dir: string): string[] {
  return [
    'next steps:',
    `  test it (top-1, top-5; --json for a script): ${commandLine(['test', dir])}`,
    `  export it for inference (ONNX; --format pytorch for the authors' state dict): ${commandLine(['export', dir])}`,
    `  its size: ${commandLine(['info', dir])}`,
    `  the report again (after a change): ${commandLine(['report', dir])}`,
  ];
}

/** The lines after `test` on a run directory. */
export function testNextSteps(dir: string): string[] {
  return [`next: export it for inference: ${commandLine(['export', dir])}`];
}
