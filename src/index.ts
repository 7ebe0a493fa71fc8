/**
 * The library entry point (what the CLI uses). Importing it registers both kernel backends
 * ('wasm' and 'ref'); the first tensor operation creates the one named by PCDARTS_BACKEND
 * (default wasm), or call setBackend() first.
 */
import './kernels/ref/backend.js';
import './kernels/wasm/backend.js';

// tensor engine
export * from './tensor/tensor.js';
export * from './tensor/autograd.js';
export * from './tensor/random.js';
/** Differentiable operations (conv2d, batchNorm2d, crossEntropy, ...), as a namespace: nn has layers of the same names. */
export * as ops from './tensor/ops.js';

// kernels
export * from './kernels/registry.js';
export type * from './kernels/backend.js';

// nn
export * from './nn/module.js';
export * from './nn/layers.js';
export * from './nn/init.js';
export * from './nn/optim.js';
export * from './nn/schedule.js';
export * from './nn/safetensors.js';

// darts
export * from './darts/primitives.js';
export * from './darts/operations.js';
export * from './darts/mixed-op.js';
export * from './darts/search-network.js';
export * from './darts/architect.js';
export * from './darts/second-order-architect.js';
export * from './darts/architects.js';
export * from './darts/genotype.js';
export * from './darts/genotype-derive.js';
export * from './darts/genotype-python.js';
export * from './darts/genotype-load.js';
export * from './darts/sample.js';

// eval (the networks that retrain a genotype, drop path, parameter and mult-add counts)
export * from './eval/network.js';
export * from './eval/drop-path.js';
export * from './eval/complexity.js';

// data
export * from './data/index.js';

// runs
export * from './run/errors.js';
export * from './run/backend.js';
export * from './run/files.js';
export * from './run/run-dir.js';
export * from './run/lock.js';
export * from './run/checkpoint.js';
export * from './run/signals.js';
export * from './run/progress.js';
export * from './run/metrics.js';
export * from './run/settings.js';
export * from './run/data.js';
export * from './run/epoch-run.js';
export * from './run/search.js';
export * from './run/train-settings.js';
export * from './run/train-estimate.js';
export * from './run/evaluate.js';
export * from './run/train.js';
export * from './run/test-model.js';
export * from './run/network-info.js';
export * from './run/network-kind.js';
export * from './run/search-subset.js';

// experiments (specs, trials, the local runner, results)
export * from './experiment/index.js';

// Visualisation (cell drawings, run reports) is the separate entry 'pcdarts/viz': it loads
// Vega, Graphviz (wasm) and resvg, which the engine and the loops do not need.
