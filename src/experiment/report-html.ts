/**
 * DIR/report.md and DIR/report.html of an experiment. The HTML page is self-contained: the
 * report's tables, top-1 accuracy against search cost per K (the paper's Figure 3, a
 * Vega-Lite chart rendered to SVG), the cells found per configuration (the viz cell
 * drawings) and the operation frequencies. Loaded on demand: it brings Vega and Graphviz.
 */
import { join } from 'node:path';

import type { TopLevelSpec } from 'vega-lite';

import { writeFileAtomic } from '../run/files.js';
import { escapeXml } from '../viz/svg.js';
import { drawGenotypeSvg, prefixSvgIds, renderChartSvg, svgElement } from '../viz/index.js';
import { collectResults, type ExperimentResults } from './results.js';
import { buildExperimentReport, type ExperimentReport, referenceTable, reportMarkdown, type Table } from './report.js';
import { readExperimentSpec } from './dir.js';

export const REPORT_MD = 'report.md';
export const REPORT_HTML = 'report.html';

function htmlTable(table: Table): string {
  const head = table.header.map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const rows = table.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>${escapeXml(table.title)}</h2>\n${table.note ? `<p>${escapeXml(table.note)}</p>\n` : ''}<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table>`;
}

/** Figure 3: test accuracy against search cost, one colour per K, a point per searched trial. */
export function figure3Spec(results: ExperimentResults): TopLevelSpec | null {
  const values = results.trials.filter((t) => t.state === 'done' && !t.random && t.top1 !== null && t.searchSeconds !== null).map((t) => ({
    K: `K=${t.k}`, 'search cost (hours)': t.searchSeconds! / 3600, 'top-1 (%)': 100 * t.top1!, configuration: t.label, seed: t.seed,
    'edge normalisation': t.edgeNorm ? 'on' : 'off',
  }));
  if (values.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Test accuracy against search cost per K (the paper\'s Figure 3)',
    width: 480, height: 300, data: { values },
    mark: { type: 'point', filled: true, size: 80 },
    encoding: {
      x: { field: 'search cost (hours)', type: 'quantitative', scale: { zero: false } },
      y: { field: 'top-1 (%)', type: 'quantitative', scale: { zero: false } },
      color: { field: 'K', type: 'nominal' },
      shape: { field: 'edge normalisation', type: 'nominal' },
      tooltip: [{ field: 'configuration' }, { field: 'seed' }, { field: 'top-1 (%)' }, { field: 'search cost (hours)' }],
    },
  } as TopLevelSpec;
}

export async function reportHtml(report: ExperimentReport, results: ExperimentResults): Promise<string> {
  const sections: string[] = [];
  sections.push(`<h1>${escapeXml(report.title)}</h1>\n<ul>${report.facts.map((f) => `<li>${escapeXml(f)}</li>`).join('')}</ul>`);
  if (report.warnings.length > 0) sections.push(`<h2>Read with care</h2>\n<ul class="warn">${report.warnings.map((w) => `<li>${escapeXml(w)}</li>`).join('')}</ul>`);
  const [table3, table4, every, ops] = report.tables;
  sections.push(htmlTable(table3), htmlTable(table4));
  sections.push(`<h2>Differences between configurations</h2>\n<ul>${report.comparisons.map((c) => `<li class="${c.verdict.replace(/ /g, '-')}">${escapeXml(c.text)}.</li>`).join('') || '<li>Only one configuration: nothing to compare.</li>'}</ul>`);
  const figure = figure3Spec(results);
  sections.push(`<h2>Accuracy against search cost per K (Figure 3)</h2>\n${figure === null ? '<p>No finished searched trial yet.</p>' : `<figure>${svgElement(await renderChartSvg(figure))}</figure>`}`);
  const cells: string[] = [];
  for (const config of report.configurations) {
    const drawn: string[] = [];
    for (const t of config.trials) {
      if (t.genotype === null) continue;
      const svg = prefixSvgIds(await drawGenotypeSvg(t.genotype), `c${t.id}-`);
      drawn.push(`<figure><figcaption>seed ${t.seed} (${t.id})${t.top1 === null ? '' : `: top-1 ${(100 * t.top1).toFixed(2)}%`}, ${t.skipConnects} skip-connects in the normal cell</figcaption>${svgElement(svg)}</figure>`);
    }
    cells.push(`<h3>${escapeXml(config.label)}</h3>\n${drawn.length === 0 ? '<p>No genotype yet.</p>' : drawn.join('\n')}`);
  }
  sections.push(`<h2>Cells found (normal and reduction) per configuration</h2>\n${cells.join('\n')}`);
  sections.push(htmlTable(ops), htmlTable(every));
  const reference = referenceTable(report.reference);
  if (reference !== null) sections.push(htmlTable(reference));
  else if (report.reference !== undefined) sections.push(`<h2>Reference</h2>\n<pre>${escapeXml(JSON.stringify(report.reference, null, 2))}</pre>`);
  const style = 'body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}'
    + 'td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}.warn li,li.fewer-than-2-seeds,li.within-one-std{color:#8a4b00}'
    + 'figure{display:inline-block;margin:0.5em}figcaption{font-size:0.9em}svg{max-width:100%;height:auto}';
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${escapeXml(report.title)}</title>\n<style>${style}</style>\n</head>\n<body>\n${sections.join('\n')}\n</body>\n</html>\n`;
}

/** Collects DIR/results.json again and writes DIR/report.md and DIR/report.html (atomically). */
export async function writeExperimentReport(dir: string): Promise<{ markdown: string; html: string; report: ExperimentReport }> {
  const results = collectResults(dir);
  const spec = readExperimentSpec(dir);
  const report = buildExperimentReport(results, { reference: spec.reference, description: spec.description });
  const markdown = join(dir, REPORT_MD);
  const html = join(dir, REPORT_HTML);
  writeFileAtomic(markdown, reportMarkdown(report));
  writeFileAtomic(html, await reportHtml(report, results));
  return { markdown, html, report };
}
