/**
 * The data layer: datasets (Fashion-MNIST idx, CIFAR-10 binary, the bundled subset),
 * the search's train/validation split, epoch-shuffled batch samplers and batch assembly
 * with augmentation. `load.ts` is the only Node-only module (fs, zlib).
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
