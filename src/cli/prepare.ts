/**
 * `pcdarts prepare SRC --out DST --short-side N`: a pre-resized copy of an image folder (the
 * FFCV habit), so that an epoch of full-size photos does not pay for a full decode of each
 * image. All the work is in the library (src/data/prepare.ts). Exit statuses: 0 done, 2 bad
 * input (no such folder, a non-empty --out, a bad flag, an undecodable image).
 */
import { Command, Option } from 'commander';

import { oneLine, prepareFolder, RunInputError } from '../index.js';
import { cappedThreads, commandLine, errorLine, reportFailure } from './common.js';
import { parseInteger } from './search.js';

interface PrepareCommandOptions {
  out?: string;
  shortSide?: number;
  quality: number;
  skipBadImages?: boolean;
  dataWorkers?: number;
}

export function prepareCommand(): Command {
  return new Command('prepare')
    .description('write a pre-resized copy of an image folder (same relative paths, short side N), so that epochs do not pay for full-size decodes')
    .argument('<src>', 'the image folder to copy (DIR with train/ and val/, or any folder of images)')
    .addOption(new Option('-o, --out <dir>', 'the new folder (absent or empty; a folder an interrupted prepare left is continued)'))
    .addOption(new Option('--short-side <n>', 'short side of the copies in pixels (smaller images are copied as they are), e.g. 160 for --image-size 128 or 256 for 224').argParser(parseInteger))
    .addOption(new Option('--quality <n>', 'JPEG / WebP quality of the resized copies').argParser(parseInteger).default(90))
    .addOption(new Option('--skip-bad-images', 'leave out images that fail to decode (listed in DST/prepare.json) instead of stopping'))
    .addOption(new Option('--data-workers <n>', 'worker threads (default: all cores)').argParser(parseInteger))
    .action((src: string, options: PrepareCommandOptions) => {
      process.exitCode = runPrepareCommand(src, options);
    });
}

function runPrepareCommand(src: string, options: PrepareCommandOptions): number {
  try {
    if (options.out === undefined) throw new RunInputError('--out DIR is required: where the copy goes');
    if (options.shortSide === undefined) throw new RunInputError('--short-side N is required: the short side of the copies in pixels');
    if (options.dataWorkers !== undefined && options.dataWorkers < 1) throw new RunInputError(`--data-workers: expected an integer >= 1, got ${options.dataWorkers}`);
    const started = performance.now();
    let report;
    try {
      report = prepareFolder({
        source: src, out: options.out, shortSide: options.shortSide, quality: options.quality,
        skipBadImages: options.skipBadImages ?? false, workers: cappedThreads('prepare', options.dataWorkers, '--data-workers'),
      });
    } catch (error) {
      throw new RunInputError(errorLine(error));
    }
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`prepared ${report.images} images in ${seconds.toFixed(1)} s: ${report.resized} resized to short side ${report.short_side}, `
      + `${report.copied} copied as they were${report.already_done > 0 ? `, ${report.already_done} done before` : ''}`
      + `${report.bad_images.length > 0 ? `, ${report.bad_images.length} bad images left out` : ''}; ${report.ignored} other files not copied\n`);
    // The usual crop for a short side: 224 for 256 (7/8), down to a multiple of 8.
    const imageSize = Math.max(8, Math.floor((report.short_side * 7) / 8 / 8) * 8);
    process.stdout.write(`next: ${commandLine(['search', '--dataset', 'imagefolder', '--data', report.out, '--image-size', imageSize])}\n`);
    return 0;
  } catch (error) {
    return reportFailure('prepare', error);
  }
}
