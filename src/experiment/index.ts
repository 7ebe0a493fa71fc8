/** Experiments: specs, trials, experiment directories, the local runner, results and reports. */
export * from './spec.js';
export * from './trials.js';
export * from './dir.js';
export * from './phase.js';
export * from './results.js';
export * from './runner.js';
export * from './report.js';
// report-html.ts (report.html with figures and cell drawings) is loaded on demand: it brings Vega and Graphviz.
