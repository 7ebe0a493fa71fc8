/**
 * `pcdarts report RUN_DIR [--out FILE]`: writes RUN_DIR/report.html, one self-contained page
 * (config, final cells, genotype per epoch, architecture-weight heatmaps, curves). Skipped log
 * lines (a run killed mid-write) are listed in the page and as warnings here; a missing run
 * directory is a one-line error with exit code 2.
 */
import { join } from 'node:path';

import type { Command } from 'commander';

import { RunDirectoryError, writeRunReport } from '../viz/index.js';

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
      try {
        result = await writeRunReport(runDir, options.out ?? join(runDir, 'report.html'));
      } catch (error) {
        const exitCode = error instanceof RunDirectoryError ? 2 : 1;
        command.error(`error: ${firstLine(error)}`, { exitCode, code: 'pcdarts.report' });
      }
      for (const issue of result.skipped) {
        process.stderr.write(`warning: ${issue.file}${issue.line > 0 ? `:${issue.line}` : ''} skipped: ${issue.message}\n`);
      }
      process.stdout.write(`wrote ${result.path} (${result.charts.length} charts)\n`);
    });
}
