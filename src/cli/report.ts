/**
 * `pcdarts report RUN_DIR [--out FILE]`: writes RUN_DIR/report.html, one self-contained page
 * (config, final cells, genotype per epoch, architecture-weight heatmaps, curves). Skipped log
 * lines (a run killed mid-write) are listed in the page and as warnings here; a missing run
 * directory is a one-line error with exit code 2.
 */
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

import type { Command } from 'commander';

import { CONFIG_FILE, isRunDirectory, readRunConfig, RunInputError, runFinished, withRunLock } from '../index.js';
import { RunDirectoryError, writeRunReport } from '../viz/index.js';
import { fileSystemErrorLine, invocation } from './common.js';

/**
 * A report written into the directory of a run that is not finished takes the run lock (one
 * writer per run directory): refused while the run is being written. A finished run, or a
 * report written elsewhere (--out outside the run), needs no lock.
 */
function needsLock(runDir: string, out: string): boolean {
  if (!existsSync(join(runDir, CONFIG_FILE)) || !isRunDirectory(runDir)) return false;
  const inside = !relative(resolve(runDir), resolve(out)).startsWith('..');
  if (!inside) return false;
  try {
    return !runFinished(runDir, readRunConfig(runDir));
  } catch {
    return false; // the report names what is wrong with config.json
  }
}

interface ReportOptions {
  out?: string;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

export function registerReportCommand(program: Command): Command {
  return program
    .command('report')
    .description('write RUN_DIR/report.html: a self-contained HTML report of a search or training run (opens offline)')
    .argument('<run-dir>', 'run directory (config.json, log.jsonl, genotype.json)')
    .option('-o, --out <file>', 'write the report here instead of RUN_DIR/report.html')
    .action(async (runDir: string, options: ReportOptions, command: Command) => {
      let result;
      const out = options.out ?? join(runDir, 'report.html');
      try {
        result = await withRunLock(runDir, 'report', needsLock(runDir, out), () => writeRunReport(runDir, out, { invocation: invocation() }));
      } catch (error) {
        const fsLine = fileSystemErrorLine(error);
        const exitCode = error instanceof RunDirectoryError || error instanceof RunInputError || fsLine !== null ? 2 : 1;
        command.error(`error: ${fsLine ?? firstLine(error)}`, { exitCode, code: 'pcdarts.report' });
      }
      for (const issue of result.skipped) {
        process.stderr.write(`warning: ${issue.file}${issue.line > 0 ? `:${issue.line}` : ''} skipped: ${issue.message}\n`);
      }
      process.stdout.write(`wrote ${result.path} (${result.charts.length} charts)\n`);
    });
}
