/**
 * Exports of a trained network (the entry 'pcdarts/export'): ONNX (onnx-proto) and PyTorch
 * state dicts in safetensors, with a self-description (metadata.ts) that readers use to
 * rebuild the network and to feed it images.
 */
export * from './metadata.js';
export * from './onnx.js';
export * from './pytorch.js';
export * from './export-model.js';
export * from './image-input.js';
export * from './predict.js';
export * from './web.js';
export type { WebModelInfo } from './web-client.js';
