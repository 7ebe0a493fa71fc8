/**
 * `pcdarts visualize GENOTYPE --out cell.svg|cell.png [--cell normal|reduce]`: draws a
 * genotype's cells as the paper's Figure 2. Without --cell, one file holds both cells, the
 * normal cell left of the reduction cell. Bad input (no such genotype, name or directory, an
 * output name that is neither .svg nor .png) is a one-line error with exit code 2.
 */
import { writeFileSync } from 'node:fs';

import { Command, Option } from 'commander';

import { CELL_TYPES, drawGenotype, drawingFormatOf, genotypeFromSpec, type CellType } from '../viz/index.js';
import { fileSystemErrorLine } from './common.js';

interface VisualizeOptions {
  out: string;
  cell?: CellType;
  scale: string;
}

/** First line of an error's message: errors on the command line are one line. */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

export function registerVisualizeCommand(program: Command): Command {
  return program
    .command('visualize')
    .description(
      "draw a genotype's cells like the paper's Figure 2 (inputs c_{k-2}, c_{k-1}, nodes 0..n-1, output c_{k}, " +
        'edges labelled with their operations); without --cell both cells go into one file, normal cell left, reduction cell right',
    )
    .argument('<genotype>', 'published name (PC_DARTS_cifar, ...), genotype file (.json or Python form) or run directory')
    .requiredOption('-o, --out <file>', 'output file: .svg or .png (the format follows the extension)')
    .addOption(new Option('--cell <cell>', 'draw only this cell').choices(CELL_TYPES))
    .option('--scale <factor>', 'PNG pixels per SVG pixel', '2')
    .action(async (spec: string, options: VisualizeOptions, command: Command) => {
      const format = drawingFormatOf(options.out);
      if (format === undefined) {
        command.error(`error: --out ${options.out}: expected a file name ending in .svg or .png`, { exitCode: 2, code: 'pcdarts.input' });
      }
      const scale = Number(options.scale);
      if (!(scale > 0) || !Number.isFinite(scale)) {
        command.error(`error: --scale ${options.scale}: expected a positive number`, { exitCode: 2, code: 'pcdarts.input' });
      }
      let genotype;
      try {
        genotype = genotypeFromSpec(spec);
      } catch (error) {
        command.error(`error: ${firstLine(error)}`, { exitCode: 2, code: 'pcdarts.input' });
      }
      const cells = options.cell === undefined ? CELL_TYPES : [options.cell];
      let contents: Uint8Array | string;
      try {
        contents = await drawGenotype(genotype, format, cells, { scale });
      } catch (error) {
        command.error(`error: ${firstLine(error)}`, { exitCode: 1, code: 'pcdarts.visualize' });
      }
      try {
        // Only the file: a directory that is not there is the user's to create.
        writeFileSync(options.out, contents);
      } catch (error) {
        const line = fileSystemErrorLine(error);
        command.error(`error: --out ${line ?? firstLine(error)}`, { exitCode: line !== null ? 2 : 1, code: 'pcdarts.visualize' });
      }
      const what = cells.length === 1 ? `the ${cells[0]} cell` : 'the normal and reduction cells side by side';
      process.stdout.write(`wrote ${options.out} (${what})\n`);
    });
}
