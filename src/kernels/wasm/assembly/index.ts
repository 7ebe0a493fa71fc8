// Entry point of the kernel module: everything the JS side (backend.ts, worker.ts) calls.
// Built with SIMD and threads on an imported shared memory; see asconfig.json.

export { heapBase, relaxedSimd } from './common';
export { simdPeak } from './peak';
export {
  convScratchBytes, convForward, convGradInput, convGradWeight, reduceChunks,
  dwScratchBytes, dwForward, dwGradInput, dwGradWeight,
} from './conv';
export {
  bnPlaneSums, bnMean, bnPlaneSqDev, bnInvStd, bnPlaneAffine,
  bnPlaneGradSums, bnGradFinish, bnPlaneTrainBackward, bnPlaneApplyBackward,
} from './batchnorm';
export { relu, reluBackward, add, axpy, scale, dot, gatherChannels, scaleSamples, scaleMany, cropPlanes, weightedSum, dots } from './elementwise';
export { poolScratchBytes, maxPool, avgPool, maxPoolBackward, avgPoolBackward } from './pool';
export { linear, linearGradInput, linearGradWeight, linearScratchBytes } from './linear';
