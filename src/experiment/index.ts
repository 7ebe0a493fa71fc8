/** Experiments: specs, trials, experiment directories, the local runner, results and reports. */
export * from './spec.js';
export * from './trials.js';
export * from './dir.js';
export * from './phase.js';
export * from './results.js';
export * from './runner.js';
