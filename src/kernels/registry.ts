/**
 * The one place that decides which kernel backend runs. Backends register a factory;
 * `kernels()` returns the active one, creating the default lazily.
 */
import type { KernelBackend } from './backend.js';

export type BackendName = 'wasm' | 'ref';

export interface BackendOptions {
  /** Worker threads (the calling thread counts as one); default: every core. */
  threads?: number;
}

type BackendFactory = (options: BackendOptions) => KernelBackend;

const factories = new Map<string, BackendFactory>();
let active: KernelBackend | null = null;
let activeOptions: { name: string; options: BackendOptions } | null = null;

export function registerBackend(name: string, factory: BackendFactory): void {
  factories.set(name, factory);
}

/** Threads from `PCDARTS_THREADS`, else undefined (meaning: all cores). */
export function threadsFromEnvironment(): number | undefined {
  const raw = process.env.PCDARTS_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`PCDARTS_THREADS: expected a positive integer, got '${raw}'`);
  }
  return threads;
}

/** Backend name from `PCDARTS_BACKEND` (wasm by default). */
export function backendFromEnvironment(): string {
  return process.env.PCDARTS_BACKEND || 'wasm';
}

/**
 * Selects the backend used by every tensor operation from now on. Tensors allocated by a
 * previous backend must not be mixed with the new one: call this before building models.
 */
export function setBackend(name: string, options: BackendOptions = {}): KernelBackend {
  const factory = factories.get(name);
  if (!factory) {
    throw new Error(`unknown kernel backend '${name}' (known: ${[...factories.keys()].join(', ')})`);
  }
  const threads = options.threads ?? threadsFromEnvironment();
  active = factory({ threads });
  activeOptions = { name, options: { threads } };
  return active;
}

/** The active backend (created on first use from PCDARTS_BACKEND / PCDARTS_THREADS). */
export function kernels(): KernelBackend {
  if (active === null) setBackend(backendFromEnvironment());
  return active as KernelBackend;
}

export function activeBackendName(): string | null {
  return activeOptions?.name ?? null;
}
