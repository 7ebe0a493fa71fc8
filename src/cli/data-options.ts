/**
 * The image-folder flags that search, train and test share: what the crops are (config:
 * --image-size, --skip-bad-images) and how the decode pipeline runs (runtime: --data-workers,
 * --prefetch, which never change results).
 */
import { type Command, Option } from 'commander';

import { DEFAULT_IMAGE_SIZE, DEFAULT_PREFETCH } from '../index.js';
import { cappedThreads } from './common.js';
import { parseInteger } from './search.js';

/** Adds --image-size and --skip-bad-images (config), --data-workers and --prefetch (runtime). */
export function addImageFolderOptions(command: Command, options: { config: boolean } = { config: true }): Command {
  if (options.config) {
    command
      .addOption(new Option('--image-size <n>', 'image folders: side of the square crops the network sees (training: random resized crop; evaluation: resize the short side to n*256/224, centre crop)').argParser(parseInteger).default(DEFAULT_IMAGE_SIZE))
      .addOption(new Option('--skip-bad-images', 'image folders: leave out images that fail to decode (counted and named in the log) instead of stopping'));
  }
  return command
    .addOption(new Option('--data-workers <n>', 'image folders: decode worker threads; results do not depend on it (default: all cores)').argParser(parseInteger))
    .addOption(new Option('--prefetch <n>', `image folders: batches decoded ahead of the one in use; results do not depend on it (default: ${DEFAULT_PREFETCH})`).argParser(parseInteger));
}

/** The pipeline's runtime settings from parsed options. */
export function imageFolderRuntime(command: string, options: Record<string, unknown>): { dataWorkers?: number; prefetch?: number } {
  return { dataWorkers: cappedThreads(command, options.dataWorkers as number | undefined, '--data-workers'), prefetch: options.prefetch as number | undefined };
}
