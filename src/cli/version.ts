/**
 * `pcdarts --version`: the package version, the Node runtime, and which wasm kernel build
 * this runtime uses (relaxed-SIMD fused multiply-add where available, else plain SIMD).
 */
import { readFileSync } from 'node:fs';

import { describeKernelBuild } from '../kernels/wasm/backend.js';

/** The `version` field of the package.json this file belongs to. */
export function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    return String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** The lines `pcdarts --version` prints. */
export function versionText(): string {
  return [`pcdarts ${packageVersion()}`, `node ${process.version}`, describeKernelBuild()].join('\n');
}
