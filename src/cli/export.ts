/**
 * `pcdarts export RUN_DIR | --checkpoint FILE [--format onnx|pytorch] [--out FILE]`: the
 * trained network of a train run (or a weights file) as ONNX for inference, or as a PyTorch
 * state dict under the authors' keys. Exit statuses: 0 written, 2 bad input (a search run or
 * an untrained one, a missing or corrupt checkpoint, an unknown format, an output path that
 * cannot be written); on bad input nothing is written.
 */
import { existsSync, statSync } from 'node:fs';

import { Command, Option } from 'commander';

import { DATASET_NAMES, type DatasetName, oneLine, RunInputError, useBackend } from '../index.js';
import { EXPORT_FORMATS, exportModel, type ExportModelResult, exportWeb, inputDescription, ONNX_OPSET, type WebExportResult } from '../export/index.js';
import { cappedThreads, commandLine, reportFailure } from './common.js';
import { parseInteger } from './search.js';
import { genotypeArgument } from './train.js';

interface ExportOptions {
  run?: string;
  checkpoint?: string;
  last?: boolean;
  format: string;
  out?: string;
  genotype?: string;
  initChannels?: number;
  layers?: number;
  dataset?: DatasetName;
  data?: string;
  threads?: number;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('write a trained network as ONNX (inference), as a PyTorch state dict (safetensors, the authors\' keys), or as a one-page classifier (web)')
    .argument('[source]', 'a train run directory (its best model with --valid-portion, else its last checkpoint), or a weights file')
    .addOption(new Option('--format <name>', `what to write: ${EXPORT_FORMATS.join(', ')} (web: a static page folder running the ONNX model with onnxruntime-web)`).default('onnx'))
    .addOption(new Option('-o, --out <path>', 'the file to write (default: model.onnx or model.safetensors in the run directory; in the working directory for a weights file); with --format web the folder (default: web/ there)'))
    .addOption(new Option('--run <dir>', 'the train run directory (the same as the first argument)'))
    .addOption(new Option('--checkpoint <file>', 'a weights file (.safetensors): a run\'s best model or checkpoint, a pcdarts export, or a PyTorch state dict'))
    .addOption(new Option('--last', 'with a run directory: export the last checkpoint even when a best model exists'))
    .addOption(new Option('--genotype <spec>', 'the architecture, for a weights file that does not record it (a name, a genotype file or a search run directory)'))
    .addOption(new Option('--init-channels <n>', 'initial channels C (checked against the weights)').argParser(parseInteger))
    .addOption(new Option('--layers <n>', 'cells (checked against the weights)').argParser(parseInteger))
    .addOption(new Option('--dataset <name>', 'the dataset the weights were trained on (class names, image size, normalisation), when nothing recorded it').choices([...DATASET_NAMES]))
    .addOption(new Option('--data <dir>', 'dataset directory for --dataset'))
    .addOption(new Option('--threads <n>', 'kernel threads (default: all cores, or PCDARTS_THREADS)').argParser(parseInteger))
    .action(async (sourceArgument: string | undefined, options: ExportOptions) => {
      process.exitCode = await runExportCommand(sourceArgument, options);
    });
}

function megabytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1)} MB`;
}

function summary(result: ExportModelResult): string {
  const d = result.description;
  const what = result.format === 'onnx' ? `ONNX opset ${ONNX_OPSET}` : `PyTorch state dict (safetensors${d.auxiliary ? ', auxiliary head included' : ''})`;
  const lines = [
    `export: wrote ${result.out} (${what}, ${megabytes(result.bytes)}): ${d.network} C ${d.initChannels}, ${d.layers} cells, ${d.classes} classes, from ${result.weights}`,
  ];
  if (result.format === 'onnx') {
    lines.push(`input "input": ${inputDescription(d)} (mean ${JSON.stringify(d.mean)}, std ${JSON.stringify(d.std)}); output "logits" [N, ${d.classes}]`);
    lines.push('next: run it with onnxruntime (InferenceSession.create), as the README\'s Export section shows; its metadata holds the genotype, class names and normalisation');
  } else {
    lines.push(`next: load it into the authors' ${d.network} with load_state_dict(strict=True) (README, Export), or continue training here: ${commandLine(['train', result.runDir ?? 'GENOTYPE', '--init-from', result.out])}`);
  }
  return `${lines.join('\n')}\n`;
}

function webSummary(result: WebExportResult): string {
  const d = result.description;
  return [
    `export: wrote ${result.out}/ (one-page classifier, ${result.files.length} files, ${megabytes(result.bytes)}): ${d.network} C ${d.initChannels}, ${d.layers} cells, ${d.classes} classes, from ${result.weights}; onnxruntime-web ${result.ortVersion}`,
    `next: open ${result.out}/index.html in a browser (it works from the file, offline), or serve ${result.out}/ with any static server`,
    '',
  ].join('\n');
}

async function runExportCommand(sourceArgument: string | undefined, options: ExportOptions): Promise<number> {
  const err = (line: string): void => { process.stderr.write(`pcdarts export: ${line}\n`); };
  try {
    let { run, checkpoint } = options;
    if (sourceArgument !== undefined) {
      if (run !== undefined || checkpoint !== undefined) throw new RunInputError(`give the source once: ${sourceArgument} and ${run !== undefined ? `--run ${run}` : `--checkpoint ${checkpoint}`}`);
      // A file as the first argument is a weights file; anything else is taken as a run directory.
      if (existsSync(sourceArgument) && statSync(sourceArgument).isFile()) checkpoint = sourceArgument;
      else run = sourceArgument;
    }
    if (run !== undefined && checkpoint !== undefined) throw new RunInputError('--run and --checkpoint exclude each other');
    if (run === undefined && checkpoint === undefined) {
      throw new RunInputError('give a train run directory (pcdarts export RUN_DIR) or a weights file (--checkpoint FILE)');
    }
    for (const [flag, value] of [['--init-channels', options.initChannels], ['--layers', options.layers], ['--threads', options.threads]] as const) {
      if (value !== undefined && value < 1) throw new RunInputError(`${flag}: expected an integer >= 1, got ${value}`);
    }
    useBackend(cappedThreads('export', options.threads) ?? null);
    if (options.format === 'web') {
      const web = await exportWeb({
        run, checkpoint, last: options.last ?? false, out: options.out,
        genotype: options.genotype === undefined ? undefined : genotypeArgument(options.genotype),
        initChannels: options.initChannels, layers: options.layers, dataset: options.dataset, data: options.data,
      });
      if (web.unfinished !== null) {
        err(`note: ${run} has not finished (epoch ${web.unfinished.epoch + 1} of ${web.unfinished.epochs} in progress): exported its ${web.weights.endsWith('.safetensors') ? 'best model so far' : 'last checkpoint'}`);
      }
      process.stdout.write(webSummary(web));
      return 0;
    }
    const result = exportModel({
      run, checkpoint, last: options.last ?? false, format: options.format, out: options.out,
      genotype: options.genotype === undefined ? undefined : genotypeArgument(options.genotype),
      initChannels: options.initChannels, layers: options.layers, dataset: options.dataset, data: options.data,
    });
    if (result.unfinished !== null) {
      err(`note: ${run} has not finished (epoch ${result.unfinished.epoch + 1} of ${result.unfinished.epochs} in progress): exported its ${result.weights.endsWith('.safetensors') ? 'best model so far' : 'last checkpoint'}`);
    }
    process.stdout.write(summary(result));
    return 0;
  } catch (error) {
    return reportFailure('export', error);
  }
}
