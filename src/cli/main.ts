#!/usr/bin/env node
/**
 * The `pcdarts` command: one subcommand per file of this folder (search, train, test, info,
 * visualize, report, prepare). Exit statuses: 0 success, 1 unexpected failure, 2 bad input (unknown
 * flag, bad value, unusable data, genotype, checkpoint or directory; a run directory another
 * process holds; a failed write: no space, I/O error, no permission), 3 a non-finite number (NaN or
 * infinity in a loss, a gradient norm, the architecture parameters or a tensor to checkpoint)
 * stopped the run, its last good checkpoint intact, 130 / 143 stopped by SIGINT / SIGTERM after
 * writing a checkpoint.
 */
import { Command, CommanderError } from 'commander';

import { experimentCommand } from './experiment.js';
import { exportCommand } from './export.js';
import { infoCommand } from './info.js';
import { predictCommand } from './predict.js';
import { prepareCommand } from './prepare.js';
import { registerReportCommand } from './report.js';
import { sampleCommand } from './sample.js';
import { searchCommand } from './search.js';
import { testCommand } from './test.js';
import { trainCommand } from './train.js';
import { versionText } from './version.js';
import { registerVisualizeCommand } from './visualize.js';
import { workerCommand } from './worker.js';

/** Errors as one line on stderr, and exceptions instead of process.exit (statuses are decided below). */
function configure(command: Command): Command {
  return command
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      outputError: (text, write) => {
        const line = text.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' ').replace(/^error: /, '');
        write(`${command.name() === 'pcdarts' ? 'pcdarts' : `pcdarts ${command.name()}`}: ${line}\n`);
      },
    });
}

export function program(): Command {
  const root = configure(new Command('pcdarts'))
    .description('PC-DARTS: partially-connected differentiable architecture search, in TypeScript')
    .version(versionText(), '-V, --version', 'print the version, the Node runtime and the wasm kernel build')
    .enablePositionalOptions();
  root.addCommand(configure(searchCommand()));
  root.addCommand(configure(trainCommand()));
  root.addCommand(configure(testCommand()));
  root.addCommand(configure(infoCommand()));
  root.addCommand(configure(exportCommand()));
  root.addCommand(configure(predictCommand()));
  root.addCommand(configure(prepareCommand()));
  root.addCommand(configure(workerCommand()));
  root.addCommand(configure(sampleCommand()));
  root.addCommand(configure(experimentCommand()));
  configure(registerVisualizeCommand(root));
  configure(registerReportCommand(root));
  return root;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      // Errors a command raised itself (visualize, report) carry their status; commander's own are bad input.
      if (error.code.startsWith('pcdarts.')) return error.exitCode;
      return 2;
    }
    process.stderr.write(`pcdarts: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    return 1;
  }
}

process.exit(await main(process.argv.slice(2)));
