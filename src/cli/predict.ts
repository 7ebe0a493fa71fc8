/**
 * `pcdarts predict RUN_DIR|WEIGHTS.safetensors|MODEL.onnx IMAGE... [--top 5] [--json]`: the
 * most probable classes of image files under a trained network, decoded through the
 * evaluation transform of its dataset (README, Export). A run directory or weights file runs
 * on pcdarts's engine, a .onnx file on onnxruntime-node. Exit statuses: 0 done, 2 bad input
 * (a search run or an untrained one, a missing or corrupt checkpoint or model, an image that
 * cannot be decoded, onnxruntime-node missing for a .onnx); on bad input nothing is printed
 * on stdout.
 */
import { existsSync, statSync } from 'node:fs';

import { Command, Option } from 'commander';

import { DATASET_NAMES, type DatasetName, RunInputError, useBackend } from '../index.js';
import { predictImages, type PredictResult } from '../export/predict.js';
import { cappedThreads, reportFailure } from './common.js';
import { parseInteger } from './search.js';
import { genotypeArgument } from './train.js';

interface PredictCommandOptions {
  top: number;
  json?: boolean;
  last?: boolean;
  genotype?: string;
  dataset?: DatasetName;
  data?: string;
  batchSize?: number;
  threads?: number;
}

export function predictCommand(): Command {
  return new Command('predict')
    .description('the most probable classes of image files under a trained network (a train run, a weights file or an exported .onnx)')
    .argument('<model>', 'a train run directory (its best model, else its last checkpoint), a .safetensors weights file, or a .onnx file from pcdarts export')
    .argument('<images...>', 'image files (.jpg .png .webp .bmp .tif), each decoded as the run\'s evaluation decodes its test images')
    .addOption(new Option('--top <n>', 'classes to show per image').default(5).argParser(parseInteger))
    .addOption(new Option('--json', 'print the result as JSON (one object: model, runtime, input, images with their top classes)'))
    .addOption(new Option('--last', 'with a run directory: use the last checkpoint even when a best model exists'))
    .addOption(new Option('--genotype <spec>', 'the architecture, for a weights file that does not record it'))
    .addOption(new Option('--dataset <name>', 'the dataset a weights file was trained on, when it does not record it').choices([...DATASET_NAMES]))
    .addOption(new Option('--data <dir>', 'dataset directory for --dataset'))
    .addOption(new Option('--batch-size <n>', 'images per forward pass (engine only; default 16)').argParser(parseInteger))
    .addOption(new Option('--threads <n>', 'kernel threads (default: all cores, or PCDARTS_THREADS)').argParser(parseInteger))
    .action(async (model: string, images: string[], options: PredictCommandOptions) => {
      process.exitCode = await runPredictCommand(model, images, options);
    });
}

function percent(p: number): string {
  return `${(100 * p).toFixed(p >= 0.9995 || p < 0.0005 ? 1 : 2).padStart(6)} %`;
}

function text(result: PredictResult): string {
  const lines: string[] = [];
  const width = Math.max(...result.description.classNames.map((name) => name.length));
  for (const prediction of result.predictions) {
    lines.push(prediction.file);
    prediction.top.forEach((score, rank) => {
      lines.push(`  ${String(rank + 1).padStart(2)}. ${score.name.padEnd(width)}  ${percent(score.probability)}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

function json(result: PredictResult): string {
  const { description: d, transform: t } = result;
  return `${JSON.stringify({
    model: result.model, runtime: result.runtime, network: d.network, dataset: d.dataset,
    input: { kind: t.kind, channels: t.channels, size: t.size, resize: t.resize, crop: t.crop, pad: t.pad, mean: t.mean, std: t.std },
    images: result.predictions.map((p) => ({
      file: p.file, top: p.top.map((s) => ({ class: s.name, index: s.index, probability: s.probability, logit: s.logit })),
    })),
  })}\n`;
}

async function runPredictCommand(model: string, images: string[], options: PredictCommandOptions): Promise<number> {
  try {
    for (const [flag, value] of [['--top', options.top], ['--batch-size', options.batchSize], ['--threads', options.threads]] as const) {
      if (value !== undefined && value < 1) throw new RunInputError(`${flag}: expected an integer >= 1, got ${value}`);
    }
    const isFile = existsSync(model) && statSync(model).isFile();
    const onnx = model.toLowerCase().endsWith('.onnx');
    if (onnx && (options.last || options.genotype !== undefined || options.dataset !== undefined)) {
      throw new RunInputError(`${model} is an ONNX model: it records its own architecture and data (--last, --genotype and --dataset go with a run or weights file)`);
    }
    if (!onnx) useBackend(cappedThreads('predict', options.threads) ?? null);
    const result = await predictImages({
      onnx: onnx ? model : undefined,
      run: !onnx && !isFile ? model : undefined,
      checkpoint: !onnx && isFile ? model : undefined,
      last: options.last ?? false,
      genotype: options.genotype === undefined ? undefined : genotypeArgument(options.genotype),
      dataset: options.dataset, data: options.data,
      images, top: options.top, batchSize: options.batchSize,
    });
    process.stdout.write(options.json ? json(result) : text(result));
    return 0;
  } catch (error) {
    return reportFailure('predict', error);
  }
}
