/// <reference types="@webgpu/types" />
/**
 * Getting a WebGPU device: `navigator.gpu` in a browser, Dawn's Node binding (the npm package
 * `webgpu`, whose prebuilt dawn.node ships inside the package) in Node.
 *
 * The binding is imported lazily, on the first request for a device, so importing pcdarts
 * never loads dawn.node (nor needs a GPU driver) unless the webgpu backend is asked for.
 *
 * What the driver needs (Linux): Dawn drives Vulkan through the loader libvulkan.so.1
 * (Debian: libvulkan1) and an installable client driver. A real GPU brings its own (NVIDIA:
 * nvidia_icd.json and libnvidia-gl; in containers NVIDIA_DRIVER_CAPABILITIES must include
 * `graphics`). SwiftShader, a full WebGPU adapter on the CPU, comes with Debian's chromium:
 * `VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json`. Mesa's llvmpipe answers
 * through OpenGL ES in compatibility mode: `dawnOptions: ['backend=opengles']`,
 * `EGL_PLATFORM=surfaceless`, `featureLevel: 'compatibility'`.
 */

/** The ICD file of the SwiftShader Vulkan driver inside Debian's chromium package. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface WebGpuDeviceOptions {
  /** Dawn instance toggles for Node (`create(options)`), e.g. `['backend=vulkan']`. Ignored in browsers. */
  dawnOptions?: string[];
  powerPreference?: GPUPowerPreference;
  /** 'compatibility' admits OpenGL ES adapters (llvmpipe); default 'core'. */
  featureLevel?: 'core' | 'compatibility';
  /** Refuse software adapters (SwiftShader, llvmpipe, WARP): for benchmarks. */
  requireHardware?: boolean;
}

/** What the adapter says about itself, and the limits the device was created with. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** A CPU implementation (SwiftShader, llvmpipe, WARP), judged from the names and the fallback flag. */
  software: boolean;
  /** A discrete GPU (NVIDIA, AMD, Intel Arc), judged from the vendor and architecture names. */
  discrete: boolean;
  features: string[];
  limits: Record<string, number>;
}

export interface WebGpuDevice {
  /**
   * The entry point the adapter came from. Hold it as long as the device: Dawn's Node binding
   * destroys its instance when this object is garbage-collected, and a device whose instance
   * is gone crashes the process on its next event (seen as SIGSEGV or abort in
   * InstanceBase::ProcessEvents).
   */
  readonly gpu: GPU;
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly summary: AdapterSummary;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render/i;

function summarise(adapter: GPUAdapter, device: GPUDevice): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const description = info.description ?? '';
  const name = `${vendor} ${architecture} ${info.device ?? ''} ${description}`;
  const isFallbackAdapter = Boolean(info.isFallbackAdapter);
  const software = isFallbackAdapter || SOFTWARE.test(name);
  const discrete = !software && (/nvidia|amd|\bati\b|radeon/i.test(name)
    || (/intel/i.test(vendor) && /xe-hpg|xe-hpc|alchemist|battlemage|arc/i.test(`${architecture} ${description}`)));
  const limits: Record<string, number> = {};
  for (const key in device.limits) {
    const value = (device.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === 'number') limits[key] = value;
  }
  return {
    vendor, architecture, device: info.device ?? '', description, isFallbackAdapter, software, discrete,
    features: [...device.features].map(String).sort(), limits,
  };
}

/**
 * Every Dawn instance created, held for the life of the process. The binding tears an
 * instance down when its JS object is collected, while its event loop may still poll it (a
 * device's pending callbacks, its `lost` promise): the process then dies in
 * InstanceBase::ProcessEvents (SIGSEGV, or an abort on a destroyed mutex). A handful of
 * instances is all a process makes, so they are simply never released.
 */
const instances = new Set<GPU>();

async function gpuEntry(dawnOptions: string[]): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let binding: { create(options: string[]): GPU };
  try {
    binding = await import('webgpu');
  } catch (error) {
    throw new Error(`webgpu backend: cannot load Dawn's Node binding (npm package 'webgpu'; install it with npm install webgpu): ${(error as Error).message}`);
  }
  const gpu = binding.create(dawnOptions);
  instances.add(gpu);
  return gpu;
}

const NO_ADAPTER_HELP = 'no WebGPU adapter. In Node, Dawn needs the Vulkan loader libvulkan.so.1 (Debian: apt-get install libvulkan1) and a Vulkan driver:'
  + ` a GPU's own, or SwiftShader on the CPU with VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (Debian's chromium)`;

/**
 * A device with every limit raised to what the adapter supports (WebGPU hands out its
 * low defaults otherwise) and timestamp queries when the adapter has them.
 */
export async function requestWebGpuDevice(options: WebGpuDeviceOptions = {}): Promise<WebGpuDevice> {
  const gpu = await gpuEntry(options.dawnOptions ?? []);
  const request: GPURequestAdapterOptions & { featureLevel?: string } = {};
  if (options.powerPreference) request.powerPreference = options.powerPreference;
  if (options.featureLevel) request.featureLevel = options.featureLevel;
  const adapter = await gpu.requestAdapter(request);
  if (!adapter) throw new Error(`webgpu backend: ${NO_ADAPTER_HELP}`);
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === 'number') requiredLimits[key] = value;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  for (const feature of ['timestamp-query'] as const) if (adapter.features.has(feature)) requiredFeatures.push(feature);
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'pcdarts' });
  const summary = summarise(adapter, device);
  if (options.requireHardware && summary.software) {
    device.destroy();
    throw new Error(`webgpu backend: the adapter is a software renderer (${summary.description || summary.architecture}), and a hardware GPU was required`);
  }
  return { gpu, device, adapter, summary };
}
