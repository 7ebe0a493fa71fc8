/**
 * Choosing the kernel backend for a run: the one named by PCDARTS_BACKEND (default wasm) with
 * the run's thread count. The active backend is kept when it already fits, so that several
 * runs in one process (tests, notebooks) share it rather than each starting worker threads.
 */
import type { KernelBackend } from '../kernels/backend.js';
import { activeBackendName, backendFromEnvironment, kernels, setBackend } from '../kernels/registry.js';

/** The backend a run uses: PCDARTS_BACKEND or wasm, with `threads` (null: the backend's default). */
export function useBackend(threads: number | null): KernelBackend {
  const name = backendFromEnvironment();
  if (activeBackendName() === name && (threads === null || kernels().threads === threads)) return kernels();
  return setBackend(name, threads === null ? {} : { threads });
}
