/**
 * The experiment report's content: configurations (trials that differ only by seed) with mean
 * and standard deviation over their seeds, tables shaped like the paper's Table 3 (ablation:
 * partial channels and edge normalisation, with search cost) and Table 4 (stability over
 * seeds: every run listed), every trial, and the comparisons between configurations, saying
 * plainly when a configuration has fewer than 2 seeds and when a difference is within one
 * standard deviation. `reportMarkdown` writes it as Markdown; report-html.ts as HTML with the
 * figures.
 */
import { cpus } from 'node:os';

import { PRIMITIVES } from '../darts/primitives.js';
import type { ExperimentResults, TrialResult } from './results.js';

export interface Summary {
  n: number;
  mean: number | null;
  /** Sample standard deviation (n - 1); null below 2 values. */
  std: number | null;
}

export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  if (n === 0) return { n, mean: null, std: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, std: null };
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { n, mean, std: Math.sqrt(variance) };
}

export interface Configuration {
  label: string;
  method: TrialResult['method'];
  k: number;
  edgeNorm: boolean;
  order: 1 | 2;
  random: boolean;
  trials: TrialResult[];
  done: TrialResult[];
  /** Test error in % (100 - top-1). */
  error: Summary;
  top1: Summary;
  top5: Summary;
  params: Summary;
  searchHours: Summary;
  retrainHours: Summary;
  skipConnects: Summary;
}

/** Trials grouped by everything but the seed (the label names the group), in grid order. */
export function configurations(results: ExperimentResults): Configuration[] {
  const groups = new Map<string, TrialResult[]>();
  for (const t of results.trials) {
    const key = JSON.stringify([t.label, t.method, t.k, t.edgeNorm, t.order, t.random]);
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  return [...groups.values()].map((trials) => {
    const done = trials.filter((t) => t.state === 'done' && t.top1 !== null);
    const of = (f: (t: TrialResult) => number | null): Summary => summarize(done.map(f).filter((v): v is number => v !== null));
    const first = trials[0];
    return {
      label: first.label, method: first.method, k: first.k, edgeNorm: first.edgeNorm, order: first.order, random: first.random, trials, done,
      error: of((t) => 100 * (1 - t.top1!)), top1: of((t) => 100 * t.top1!), top5: of((t) => 100 * t.top5!),
      params: of((t) => t.params), searchHours: of((t) => t.searchSeconds === null ? null : t.searchSeconds / 3600),
      retrainHours: of((t) => t.retrainSeconds === null ? null : t.retrainSeconds / 3600), skipConnects: of((t) => t.skipConnects),
    };
  });
}

const fixed = (v: number | null, digits: number): string => v === null ? '-' : v.toFixed(digits);

/** "27.64 ± 1.12", "27.64 (1 seed)", "-". */
export function meanStd(s: Summary, digits = 2): string {
  if (s.mean === null) return '-';
  return s.std === null ? `${s.mean.toFixed(digits)} (1 seed)` : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

export interface Comparison {
  a: Configuration;
  b: Configuration;
  /** Top-1 of a minus top-1 of b, in points. */
  difference: number | null;
  verdict: 'fewer than 2 seeds' | 'within one std' | 'beyond one std' | 'no results';
  text: string;
}

/** Every pair of configurations with results: the top-1 difference and whether it exceeds one std of either. */
export function comparisons(configs: readonly Configuration[]): Comparison[] {
  const out: Comparison[] = [];
  for (let i = 0; i < configs.length; i++) {
    for (let j = i + 1; j < configs.length; j++) {
      const [a, b] = [configs[i], configs[j]];
      if (a.top1.mean === null || b.top1.mean === null) {
        out.push({ a, b, difference: null, verdict: 'no results', text: `${a.label} vs ${b.label}: no results for ${a.top1.mean === null ? a.label : b.label} yet` });
        continue;
      }
      const difference = a.top1.mean - b.top1.mean;
      const better = difference >= 0 ? a : b;
      const worse = better === a ? b : a;
      const head = `${better.label} ${fixed(better.top1.mean, 2)}% vs ${worse.label} ${fixed(worse.top1.mean, 2)}% top-1: ${Math.abs(difference).toFixed(2)} points`;
      if (a.top1.std === null || b.top1.std === null) {
        out.push({ a, b, difference, verdict: 'fewer than 2 seeds', text: `${head}; cannot tell: ${[a, b].filter((c) => c.top1.std === null).map((c) => c.label).join(' and ')} has fewer than 2 seeds` });
        continue;
      }
      const spread = Math.max(a.top1.std, b.top1.std);
      const within = Math.abs(difference) <= spread;
      out.push({
        a, b, difference, verdict: within ? 'within one std' : 'beyond one std',
        text: within
          ? `${head}, within one standard deviation (${spread.toFixed(2)}) of the seeds: not a difference this experiment can tell`
          : `${head}, more than one standard deviation (${spread.toFixed(2)}) of the seeds`,
      });
    }
  }
  return out;
}

/** How often each operation was chosen, per configuration and cell type, over its done trials' genotypes. */
export function operationFrequencies(config: Configuration): { normal: Record<string, number>; reduce: Record<string, number>; cells: number } {
  const count = (cell: 'normal' | 'reduce'): Record<string, number> => {
    const counts: Record<string, number> = Object.fromEntries(PRIMITIVES.filter((p) => p !== 'none').map((p) => [p, 0]));
    let edges = 0;
    for (const t of config.trials) {
      if (t.genotype === null) continue;
      for (const [op] of t.genotype[cell]) {
        counts[op] = (counts[op] ?? 0) + 1;
        edges += 1;
      }
    }
    for (const op of Object.keys(counts)) counts[op] = edges === 0 ? 0 : counts[op] / edges;
    return counts;
  };
  return { normal: count('normal'), reduce: count('reduce'), cells: config.trials.filter((t) => t.genotype !== null).length };
}

/** A table: header and rows of cells (plain text). */
export interface Table {
  title: string;
  note?: string;
  header: string[];
  rows: string[][];
}

export interface ExperimentReport {
  title: string;
  facts: string[];
  tables: Table[];
  comparisons: Comparison[];
  warnings: string[];
  configurations: Configuration[];
  reference: unknown;
}

const yesNo = (v: boolean): string => v ? 'yes' : 'no';
const hours = (s: Summary): string => s.mean === null ? '-' : s.mean < 0.01 ? `${(s.mean * 60).toFixed(1)} min` : s.mean.toFixed(3);

export function buildExperimentReport(results: ExperimentResults, options: { reference?: unknown; description?: string } = {}): ExperimentReport {
  const configs = configurations(results);
  const done = results.trials.filter((t) => t.state === 'done').length;
  const failed = results.trials.filter((t) => t.state === 'failed').length;
  const pending = results.trials.length - done - failed;
  const cpu = cpus();
  const facts = [
    `Dataset: ${results.dataset}. Trials: ${results.trials.length} (${done} done, ${failed} failed, ${pending} not finished).`,
    `Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}; search cost is the sum of the search epochs' wall-clock times on it, in hours (the paper's is in GPU-days).`,
    'Test error and accuracies are in %, over the test images each retraining was given; ± is the sample standard deviation over seeds.',
    ...(options.description ? [options.description] : []),
  ];
  const warnings: string[] = [];
  for (const c of configs) {
    if (c.done.length < 2) warnings.push(`${c.label}: ${c.done.length === 0 ? 'no finished seeds' : 'only 1 finished seed'}, so no standard deviation: its numbers are single runs, not a mean.`);
  }
  for (const t of results.trials) if (t.state === 'failed') warnings.push(`${t.label} seed ${t.seed} (${t.id}) failed in its ${t.failedPhase}: ${t.error}`);

  const searched = configs.filter((c) => !c.random);
  const table3: Table = {
    title: 'Ablation (shaped like the paper\'s Table 3)',
    note: 'Partial channel connections (K > 1) and edge normalisation switched on and off; the random baseline has no search.',
    header: ['configuration', 'partial channels (K)', 'edge normalisation', 'order', 'seeds', 'test error (%)', 'params (M)', 'search cost (hours)', 'skip-connects (normal cell)'],
    rows: [...searched, ...configs.filter((c) => c.random)].map((c) => [
      c.label, c.random ? '-' : c.k > 1 ? `yes (K=${c.k})` : 'no (K=1)', c.random ? '-' : yesNo(c.edgeNorm), c.random ? '-' : String(c.order), `${c.done.length}/${c.trials.length}`,
      meanStd(c.error), c.params.mean === null ? '-' : (c.params.mean / 1e6).toFixed(3), c.random ? '0 (sampled)' : hours(c.searchHours), meanStd(c.skipConnects, 1),
    ]),
  };
  const seeds = [...new Set(results.trials.map((t) => t.seed))].sort((a, b) => a - b);
  const table4: Table = {
    title: 'Stability over seeds (shaped like the paper\'s Table 4)',
    note: 'Test error (%) of every seed\'s retrained cell; failed or unfinished runs show their state.',
    header: ['configuration', ...seeds.map((s) => `seed ${s}`), 'mean ± std', 'top-5 (%)'],
    rows: configs.map((c) => [
      c.label,
      ...seeds.map((s) => {
        const t = c.trials.find((u) => u.seed === s);
        if (t === undefined) return '';
        return t.state === 'done' && t.top1 !== null ? (100 * (1 - t.top1)).toFixed(2) : t.state;
      }),
      meanStd(c.error), meanStd(c.top5),
    ]),
  };
  const every: Table = {
    title: 'Every run',
    header: ['trial', 'configuration', 'seed', 'state', 'top-1 (%)', 'top-5 (%)', 'params', 'mult-adds', 'search (h)', 'retrain (h)', 'skip-connects', 'error'],
    rows: results.trials.map((t) => [
      t.id, t.label, String(t.seed), t.state, t.top1 === null ? '-' : (100 * t.top1).toFixed(2), t.top5 === null ? '-' : (100 * t.top5).toFixed(2),
      t.params === null ? '-' : String(t.params), t.multAdds === null ? '-' : String(t.multAdds),
      t.searchSeconds === null ? '-' : (t.searchSeconds / 3600).toFixed(3), t.retrainSeconds === null ? '-' : (t.retrainSeconds / 3600).toFixed(3),
      t.skipConnects === null ? '-' : String(t.skipConnects), t.error ?? '',
    ]),
  };
  const ops: Table = {
    title: 'How often each operation was chosen (fraction of the edges of the genotypes found, normal / reduction cell)',
    header: ['configuration', 'cells', ...PRIMITIVES.filter((p) => p !== 'none')],
    rows: configs.map((c) => {
      const f = operationFrequencies(c);
      return [c.label, String(f.cells), ...PRIMITIVES.filter((p) => p !== 'none').map((p) => `${f.normal[p].toFixed(2)} / ${f.reduce[p].toFixed(2)}`)];
    }),
  };
  return {
    title: `Experiment ${results.name}`, facts, tables: [table3, table4, every, ops], comparisons: comparisons(configs), warnings, configurations: configs,
    reference: options.reference,
  };
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(table: Table): string {
  return [
    `| ${table.header.map(cell).join(' | ')} |`,
    `|${table.header.map(() => '---').join('|')}|`,
    ...table.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** The paper's numbers when the spec gives them as {"table": [...rows], "source"?, "note"?}, else JSON. */
export function referenceTable(reference: unknown): Table | null {
  if (reference === null || typeof reference !== 'object') return null;
  const rows = (reference as { table?: unknown }).table;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) return null;
  const header = [...new Set(rows.flatMap((r) => Object.keys(r as object)))];
  const ref = reference as { source?: string; note?: string };
  return {
    title: `Reference: ${ref.source ?? 'the paper'}`, ...(ref.note ? { note: ref.note } : {}),
    header, rows: rows.map((r) => header.map((h) => { const v = (r as Record<string, unknown>)[h]; return v === undefined ? '' : String(v); })),
  };
}

export function reportMarkdown(report: ExperimentReport): string {
  const parts = [`# ${report.title}`, '', ...report.facts.map((f) => `- ${f}`), ''];
  if (report.warnings.length > 0) parts.push('## Read with care', '', ...report.warnings.map((w) => `- ${w}`), '');
  for (const table of report.tables) {
    parts.push(`## ${table.title}`, '');
    if (table.note) parts.push(table.note, '');
    parts.push(markdownTable(table), '');
  }
  parts.push('## Differences between configurations', '');
  parts.push(report.comparisons.length === 0 ? 'Only one configuration: nothing to compare.' : report.comparisons.map((c) => `- ${c.text}.`).join('\n'), '');
  const reference = referenceTable(report.reference);
  if (reference !== null) {
    parts.push(`## ${reference.title}`, '');
    if (reference.note) parts.push(reference.note, '');
    parts.push(markdownTable(reference), '');
  } else if (report.reference !== undefined) {
    parts.push('## Reference', '', '```json', JSON.stringify(report.reference, null, 2), '```', '');
  }
  return `${parts.join('\n').trimEnd()}\n`;
}
