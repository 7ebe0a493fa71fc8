#!/usr/bin/env node
/**
 * The `pcdarts` command: one subcommand per file of this folder (search, train, test, info,
 * visualize, report, prepare). Exit statuses: 0 success, 1 unexpected failure, 2 bad input (unknown
 * flag, bad value, unusable data, genotype, checkpoint or directory; a run directory another
 * process holds; a failed write: no space, I/O error, no permission), 3 a non-finite number (NaN or
 * infinity in a loss, a gradient norm, the architecture parameters or a tensor to checkpoint)
 * stopped the run, its last good checkpoint intact, 130 / 143 stopped by SIGINT / SIGTERM after
 * writing a checkpoint. Bad input includes filesystem errors (a path that is not a directory, no
 * permission) and bad environment variables (PCDARTS_THREADS, PCDARTS_WASM_BUILD,
 * PCDARTS_BACKEND); every error is one line on stderr, never a stack trace (PCDARTS_DEBUG=1 adds
 * it for a bug).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Command, CommanderError } from 'commander';

import { rewriteAuthorFlags } from './aliases.js';
import { checkEnvironment, errorLine, exitStatusOf } from './common.js';
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

/** argv with the authors' flag names of the command it names rewritten to pcdarts names (a note each). */
function withAuthorFlags(root: Command, argv: string[]): string[] {
  const at = argv.findIndex((arg) => !arg.startsWith('-'));
  if (at < 0) return argv;
  const command = root.commands.find((c) => c.name() === argv[at] || c.aliases().includes(argv[at]!));
  if (command === undefined) return argv;
  const rest = rewriteAuthorFlags(command, argv.slice(at + 1), (line) => process.stderr.write(`pcdarts ${command.name()}: note: ${line}\n`));
  return [...argv.slice(0, at + 1), ...rest];
}

/** Runs the CLI on `argv` (without node and the script) in this process; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  try {
    checkEnvironment();
    const root = program();
    await root.parseAsync(withAuthorFlags(root, argv), { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      // Errors a command raised itself (visualize, report) carry their status; commander's own are bad input.
      if (error.code.startsWith('pcdarts.')) return error.exitCode;
      return 2;
    }
    const status = exitStatusOf(error);
    const debug = process.env.PCDARTS_DEBUG === '1' && error instanceof Error && error.stack !== undefined;
    process.stderr.write(`pcdarts: ${errorLine(error)}${status === 1 && !debug ? ' (an unexpected failure: PCDARTS_DEBUG=1 shows where)' : ''}\n`);
    if (status === 1 && debug) process.stderr.write(`${(error as Error).stack}\n`);
    return status;
  }
}

/** True when this file is the script node runs (through a bin symlink or without its extension too). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  for (const candidate of [script, `${script}.js`]) {
    try {
      if (realpathSync(candidate) === fileURLToPath(import.meta.url)) return true;
    } catch {
      // not this one
    }
  }
  return false;
}

// Only as the entry point (the fuzz test imports program() and main() to run many cases in one process).
if (isEntryPoint()) process.exit(await main(process.argv.slice(2)));
