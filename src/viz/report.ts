/**
 * The run report: one self-contained HTML file (RUN_DIR/report.html) that opens offline. Every
 * drawing is rendered here to SVG and inlined with the CSS; the page has no script and loads
 * nothing. Sections: summary, skipped log lines, final cells, curves, genotype per epoch with
 * the changes marked, architecture-weight heatmaps, config.
 */
import { basename, join, resolve } from 'node:path';

import type { Genotype } from '../darts/genotype.js';
import { writeFileAtomic } from '../run/files.js';
import { CELL_TYPES, cellTitle, type CellType } from './cell-graph.js';
import { drawCellSvg } from './cell-drawing.js';
import { renderChartSvg, runCharts } from './charts.js';
import { graphvizVersion } from './graphviz.js';
import { readRunDirectory, runInfo, runSettings, type EpochRecord, type LogIssue, type RunRecord } from './run-log.js';
import { escapeXml, prefixSvgIds, svgElement, svgSize } from './svg.js';

export interface ReportResult {
  /** The file written. */
  path: string;
  run: RunRecord;
  /** Ids of the charts in the report. */
  charts: string[];
  /** Log lines that were skipped entirely (a truncated last line, say). */
  skipped: LogIssue[];
}

export interface ReportOptions {
  /** How the reader starts pcdarts, for the resume command of an unfinished run (default: `npx pcdarts`). */
  invocation?: string;
}

/**
 * Reads RUN_DIR and writes its report (default RUN_DIR/report.html). Throws
 * RunDirectoryError for a missing directory or one that holds no run.
 */
export async function writeRunReport(dir: string, outPath: string = join(dir, 'report.html'), options: ReportOptions = {}): Promise<ReportResult> {
  const run = readRunDirectory(dir);
  const { html, charts } = await buildRunReport(run, options);
  // Atomic: a kill or a full disk leaves the previous report (or none), never half a page.
  writeFileAtomic(outPath, html, { point: 'report-write' });
  return { path: outPath, run, charts, skipped: run.issues.filter((issue) => issue.skipped) };
}

const h = escapeXml;

/** Accuracies are fractions or percent depending on the writer: show both as percent. */
function accuracyFormatter(run: RunRecord): (value: number | undefined) => string {
  const values = [
    ...run.epochs.flatMap((e) => [e.trainAcc, e.validAcc, e.testAcc]),
    run.test?.top1,
    run.test?.top5,
  ].filter((v): v is number => v !== undefined);
  const fractions = values.every((v) => v <= 1);
  return (value) => (value === undefined ? '–' : `${(fractions ? value * 100 : value).toFixed(2)} %`);
}

function formatNumber(value: number | undefined, digits = 4): string {
  if (value === undefined) return '–';
  return Number.isInteger(value) ? String(value) : value.toPrecision(digits);
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}

function last<T>(items: readonly T[], has: (item: T) => boolean): T | undefined {
  for (let k = items.length - 1; k >= 0; k--) if (has(items[k]!)) return items[k];
  return undefined;
}

/** Epochs the run's config asks for, if it says. */
function plannedEpochs(run: RunRecord): number | undefined {
  const epochs = runSettings(run).epochs;
  return typeof epochs === 'number' && Number.isInteger(epochs) && epochs > 0 ? epochs : undefined;
}

/** Whether the run did all its epochs (a training run: and its final test). */
function isFinished(run: RunRecord): boolean {
  const planned = plannedEpochs(run);
  if (planned === undefined) return true;
  const done = new Set(run.epochs.filter((e) => e.trainLoss !== undefined || e.validLoss !== undefined || e.seconds !== undefined).map((e) => e.epoch)).size;
  return done >= planned && (run.kind === 'search' || run.test !== undefined);
}

/** The banner of a run that has not finished: what is there, and the command that continues it. */
function unfinishedSection(run: RunRecord, invocation: string): string {
  if (isFinished(run)) return '';
  const planned = plannedEpochs(run)!;
  const done = run.epochs.filter((e) => e.trainLoss !== undefined || e.validLoss !== undefined || e.seconds !== undefined).length;
  const command = `${invocation} ${run.kind === 'search' ? 'search' : 'train'} --resume ${resolve(run.dir)}`;
  return `<section id="unfinished" class="warning"><h2>Not finished</h2><p>This run has not finished: ${done} of ${planned} epochs are logged `
    + `(it was stopped, or it is still running). What is shown is what it logged so far${run.kind === 'search' ? '; the cells are those of the last logged epoch' : ''}. `
    + `Continue it from its last checkpoint with:</p><pre><code>${h(command)}</code></pre></section>`;
}

function thousands(n: number): string {
  return n.toLocaleString('en-US');
}

function summarySection(run: RunRecord): string {
  const accuracy = accuracyFormatter(run);
  const items: [string, string][] = [];
  const info = runInfo(run);
  items.push(['run', run.kind === 'search' ? 'architecture search' : 'training']);
  const planned = plannedEpochs(run);
  items.push(['epochs', `${run.epochs.length}${planned !== undefined ? ` of ${planned}` : ''}${isFinished(run) ? '' : ' (not finished)'}`]);
  const warmup = runSettings(run).warmupEpochs;
  if (run.kind === 'search' && typeof warmup === 'number' && warmup > 0) items.push(['warm-up (weights only)', `epochs 1-${warmup}`]);
  const c = runSettings(run);
  if (typeof c.initChannels === 'number' && typeof c.layers === 'number') items.push(['network', `C${c.initChannels}, ${c.layers} cells${typeof c.network === 'string' ? ` (${c.network})` : ''}`]);
  if (typeof info.parameters === 'number') items.push(['parameters', `${thousands(info.parameters)} (${(info.parameters / 1e6).toFixed(2)} M)`]);
  if (typeof info.mult_adds === 'number') items.push(['mult-adds per image', `${thousands(info.mult_adds)} (${(info.mult_adds / 1e6).toFixed(1)} M)`]);
  const lastEpoch = last(run.epochs, (e) => e.trainAcc !== undefined || e.validAcc !== undefined);
  if (lastEpoch !== undefined) {
    items.push([`train accuracy (epoch ${lastEpoch.epoch + 1})`, accuracy(lastEpoch.trainAcc)]);
    if (lastEpoch.validAcc !== undefined || run.kind === 'search') items.push([`valid accuracy (epoch ${lastEpoch.epoch + 1})`, accuracy(lastEpoch.validAcc)]);
  }
  const valid = run.epochs.map((e) => e.validAcc).filter((v): v is number => v !== undefined);
  if (valid.length > 1) items.push(['best valid accuracy', accuracy(Math.max(...valid))]);
  if (run.test !== undefined) {
    items.push(['test accuracy top-1', accuracy(run.test.top1)]);
    if (run.test.top5 !== undefined) items.push(['test accuracy top-5', accuracy(run.test.top5)]);
    if (run.test.loss !== undefined) items.push(['test loss', formatNumber(run.test.loss)]);
  }
  const seconds = run.epochs.map((e) => e.seconds).filter((v): v is number => v !== undefined);
  if (seconds.length > 0) items.push(['time (epochs logged)', formatSeconds(seconds.reduce((s, v) => s + v, 0))]);
  const speeds = run.steps.map((s) => s.imagesPerSecond).filter((v): v is number => v !== undefined);
  if (speeds.length > 0) items.push(['mean images/s', (speeds.reduce((s, v) => s + v, 0) / speeds.length).toFixed(1)]);
  if (run.genotypeSource !== undefined) items.push(['final genotype from', run.genotypeSource]);
  const cards = items.map(([name, value]) => `<div class="card"><dt>${h(name)}</dt><dd>${h(value)}</dd></div>`).join('\n');
  return `<section id="summary"><h2>Summary</h2><dl class="cards">\n${cards}\n</dl></section>`;
}

function issuesSection(run: RunRecord): string {
  if (run.issues.length === 0) return '';
  const skipped = run.issues.filter((issue) => issue.skipped);
  const partial = run.issues.filter((issue) => !issue.skipped);
  const item = (issue: LogIssue): string =>
    `<li><code>${h(issue.file)}${issue.line > 0 ? `:${issue.line}` : ''}</code> ${h(issue.message)}</li>`;
  const parts: string[] = [];
  if (skipped.length > 0) {
    parts.push(
      `<p>Skipped ${skipped.length} line${skipped.length === 1 ? '' : 's'} (or file${skipped.length === 1 ? '' : 's'}); the report shows the rest:</p>`,
      `<ul>${skipped.map(item).join('')}</ul>`,
    );
  }
  if (partial.length > 0) parts.push('<p>Parts of these lines were ignored:</p>', `<ul>${partial.map(item).join('')}</ul>`);
  return `<section id="log-issues" class="warning"><h2>Log problems</h2>\n${parts.join('\n')}\n</section>`;
}

async function cellsSection(run: RunRecord): Promise<string> {
  if (run.genotype === undefined) {
    return '<section id="cells"><h2>Final cells</h2><p>No genotype found (no genotype.json, no genotype in the log).</p></section>';
  }
  const genotype = run.genotype;
  const figures = await Promise.all(
    CELL_TYPES.map(async (cell) => {
      const drawing = await drawCellSvg(genotype, cell, { title: false });
      // Full width of its half of the row, but never enlarged past its natural size.
      const style = `max-width: ${Math.round(svgSize(drawing).width * 0.8)}px`;
      const svg = prefixSvgIds(drawing.replace(/^<svg/, `<svg style="${style}"`), `cell-${cell}`);
      return `<figure class="cell-drawing" id="cell-${cell}" data-cell="${cell}">${svg}<figcaption>${h(cellTitle(cell))}</figcaption></figure>`;
    }),
  );
  return (
    `<section id="cells"><h2>Final cells</h2><p class="note">From ${h(run.genotypeSource ?? '')}; drawn as the paper's ` +
    'Figure 2: inputs c<sub>k-2</sub>, c<sub>k-1</sub>, intermediate nodes, output c<sub>k</sub> (the concatenation).</p>' +
    `<div class="row">\n${figures.join('\n')}\n</div></section>`
  );
}

function inputHtml(input: number): string {
  if (input === 0) return 'c<sub>k-2</sub>';
  if (input === 1) return 'c<sub>k-1</sub>';
  return String(input - 2);
}

function pairKey([op, input]: [string, number]): string {
  return `${op}@${input}`;
}

/** The per-epoch genotype table; a pair not in the same node the epoch before is marked. */
function genotypeSection(run: RunRecord): string {
  const epochs = run.epochs.filter((e): e is EpochRecord & { genotype: Genotype } => e.genotype !== undefined);
  if (epochs.length === 0) return '';
  const steps = epochs[0]!.genotype.normal.length / 2;
  const warmup = run.kind === 'search' ? runSettings(run).warmupEpochs : undefined;
  const header =
    '<tr><th rowspan="2">epoch</th><th rowspan="2">changes</th>' +
    CELL_TYPES.map((cell) => `<th colspan="${steps}">${h(cellTitle(cell))}</th>`).join('') +
    '</tr><tr>' +
    CELL_TYPES.map(() => Array.from({ length: steps }, (_, node) => `<th>node ${node}</th>`).join('')).join('') +
    '</tr>';
  let previous: Genotype | undefined;
  const rows = epochs.map(({ epoch, genotype }) => {
    let changes = 0;
    const cells = CELL_TYPES.map((cell: CellType) =>
      Array.from({ length: steps }, (_, node) => {
        const pairs = genotype[cell].slice(2 * node, 2 * node + 2);
        const before = previous?.[cell].slice(2 * node, 2 * node + 2).map(pairKey) ?? [];
        const text = pairs.map((pair) => {
          const changed = previous !== undefined && !before.includes(pairKey(pair));
          if (changed) changes++;
          const body = `${h(pair[0])} ← ${inputHtml(pair[1])}`;
          return changed ? `<mark>${body}</mark>` : body;
        });
        return `<td>${text.join('<br>')}</td>`;
      }).join(''),
    ).join('');
    const warm = typeof warmup === 'number' && epoch < warmup;
    const classes = [changes > 0 ? 'changed' : '', warm ? 'warmup' : ''].filter((c) => c !== '').join(' ');
    const row = `<tr${classes !== '' ? ` class="${classes}"` : ''}><th>${epoch + 1}${warm ? ' <span class="tag">warm-up</span>' : ''}</th><td class="count">${previous === undefined ? '' : changes}</td>${cells}</tr>`;
    previous = genotype;
    return row;
  });
  return (
    '<section id="genotypes"><h2>Genotype per epoch</h2>' +
    '<p class="note">Each node keeps two (operation ← input) pairs; <mark>marked</mark> pairs are new since the epoch before; ' +
    '"changes" counts them. Epochs are numbered from 1; those tagged warm-up took no architecture step (their genotype is that of the starting α).</p>' +
    `<div class="scroll"><table class="genotypes">${header}\n${rows.join('\n')}</table></div></section>`
  );
}

function flattenConfig(value: unknown, prefix = ''): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length > 0) return entries.flatMap(([key, inner]) => flattenConfig(inner, prefix === '' ? key : `${prefix}.${key}`));
  }
  return [[prefix, typeof value === 'string' ? value : JSON.stringify(value)]];
}

function configSection(run: RunRecord): string {
  if (run.config === undefined) return '<section id="config"><h2>Config</h2><p>No config.json.</p></section>';
  const rows = flattenConfig(run.config).map(([key, value]) => `<tr><th>${h(key)}</th><td><code>${h(value)}</code></td></tr>`);
  return `<section id="config"><h2>Config</h2><table class="config">${rows.join('\n')}</table></section>`;
}

const STYLE = `
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1400px; padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.subtitle, .note, figcaption { color: #555; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; min-width: 120px; }
.card dt { font-size: 12px; color: #666; }
.card dd { margin: 2px 0 0; font-size: 16px; font-weight: bold; }
.warning { background: #fff6e0; border: 1px solid #e6b800; border-radius: 6px; padding: 4px 16px; }
.warning h2 { border: none; margin-top: 8px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; border: 1px solid #e4e4e4; border-radius: 6px; padding: 8px; background: #fff; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { max-width: 520px; margin-top: 4px; }
.cell-drawing { flex: 1 1 0; min-width: 360px; }
.cell-drawing svg { width: 100%; height: auto; max-height: 520px; }
.cell-drawing figcaption { font-weight: bold; color: #333; text-align: center; max-width: none; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #e0e0e0; padding: 3px 6px; text-align: left; vertical-align: top; }
table.genotypes td { white-space: nowrap; font-family: "DejaVu Sans Mono", monospace; }
table.genotypes tr.changed > th { background: #fff3c4; }
table.genotypes tr.warmup > td { color: #888; }
.tag { font-size: 10px; color: #666; background: #ececec; border-radius: 3px; padding: 0 3px; }
pre { background: #f6f6f6; padding: 6px 10px; border-radius: 4px; overflow-x: auto; }
td.count { text-align: right; }
mark { background: #ffd54f; }
table.config td code { white-space: pre-wrap; word-break: break-all; }
footer { margin-top: 40px; color: #888; font-size: 12px; }
`;

/** The report's HTML text (and the ids of its charts). */
export async function buildRunReport(run: RunRecord, options: ReportOptions = {}): Promise<{ html: string; charts: string[] }> {
  const charts = runCharts(run);
  const rendered = await Promise.all(
    charts.map(async (chart) => {
      const svg = prefixSvgIds(svgElement(await renderChartSvg(chart.spec)), chart.id);
      return `<figure class="chart" id="chart-${chart.id}" data-chart="${chart.id}">${svg}<figcaption>${h(chart.caption)}</figcaption></figure>`;
    }),
  );
  const isHeatmap = (id: string): boolean => id.startsWith('edge-weights-') || id === 'betas';
  const curves = rendered.filter((_, k) => !isHeatmap(charts[k]!.id));
  const heatmaps = rendered.filter((_, k) => isHeatmap(charts[k]!.id));
  const name = basename(resolve(run.dir));
  const title = `${run.kind === 'search' ? 'Architecture search' : 'Training'} run ${name}`;
  const sections = [
    unfinishedSection(run, options.invocation ?? 'npx pcdarts'),
    summarySection(run),
    issuesSection(run),
    await cellsSection(run),
    curves.length > 0 ? `<section id="curves"><h2>Curves</h2><div class="row">\n${curves.join('\n')}\n</div></section>` : '',
    genotypeSection(run),
    heatmaps.length > 0
      ? `<section id="architecture-weights"><h2>Architecture weights over epochs</h2><div class="row">\n${heatmaps.join('\n')}\n</div></section>`
      : '',
    configSection(run),
  ].filter((section) => section !== '');
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${h(title)}</h1><p class="subtitle">PC-DARTS run directory <code>${h(resolve(run.dir))}</code></p></header>
${sections.join('\n')}
<footer>Written by pcdarts report; charts by Vega-Lite, cells laid out by Graphviz ${h(await graphvizVersion())}.</footer>
</body>
</html>
`;
  return { html, charts: charts.map((chart) => chart.id) };
}
