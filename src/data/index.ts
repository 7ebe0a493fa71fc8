/**
 * The data layer: datasets (Fashion-MNIST idx, CIFAR-10/100 binary and python versions, the
 * bundled subset, image folders), the one dataset interface (dataset.ts) and the batch sources
 * the run loops read (batch-source.ts), epoch-shuffled batch samplers, CIFAR-style batch
 * assembly (batch.ts), torchvision-semantics augmentation (augment.ts) and the image decode
 * pipeline (pipeline.ts, decode-worker.ts). Node-only modules: load.ts, image-folder.ts,
 * image-decode.ts, pipeline.ts, prepare*.ts (fs, zlib, sharp, worker threads); the others are pure.
 */
export * from './dataset.js';
export * from './idx.js';
export * from './cifar.js';
export * from './pickle.js';
export * from './load.js';
export * from './split.js';
export * from './sampler.js';
export * from './batch.js';
export * from './batch-source.js';
export * from './keyed-random.js';
export * from './augment.js';
export * from './image-folder.js';
export * from './image-decode.js';
export * from './pipeline.js';
export * from './prepare.js';
