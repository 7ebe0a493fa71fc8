/**
 * The WebGPU backend (`pcdarts/webgpu`). Importing this module loads no native code: Dawn's
 * Node binding is imported when `createWebGpuBackend()` or `requestWebGpuDevice()` is called.
 */
export { WebGpuBackend, createWebGpuBackend, type WebGpuBackendOptions } from './backend.js';
export { GpuBuffer, sizeClass, type RuntimeOptions } from './runtime.js';
export { requestWebGpuDevice, SWIFTSHADER_ICD, type AdapterSummary, type WebGpuDevice, type WebGpuDeviceOptions } from './device.js';
export type * from './handles.js';
