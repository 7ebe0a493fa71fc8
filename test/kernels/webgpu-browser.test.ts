/**
 * The WebGPU kernels in a browser: the backend bundles for the browser with esbuild (no
 * Node-only import may reach it) and runs on `navigator.gpu` in headless Chromium (Debian's,
 * with --enable-unsafe-webgpu, on its SwiftShader Vulkan driver), against the reference
 * backend bundled alongside. The page is served through Playwright's request routing on
 * http://localhost (a secure context, as WebGPU requires), so no port is opened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

import type { CaseResult } from './webgpu-browser-page.js';

const CHROMIUM = process.env['PCDARTS_CHROMIUM'] ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) && process.env['CI'] === undefined ? `no Chromium at ${CHROMIUM} (.ci/run installs it)` : false;

test('WGSL kernels bundle for the browser and match the reference on navigator.gpu in headless Chromium', { skip, timeout: 300_000 }, async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./webgpu-browser-page.js', import.meta.url))],
    bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent',
    // Dawn's Node binding: imported only where navigator.gpu is missing, never in a browser
    external: ['webgpu'],
  });
  const code = bundle.outputFiles[0].text;
  assert.doesNotMatch(code, /from\s*["']node:|require\(["']node:/, 'a Node-only import reached the browser bundle');

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
      '--use-webgpu-adapter=swiftshader', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname !== 'localhost') return route.abort();
      if (url.pathname === '/kernels.js') return route.fulfill({ contentType: 'text/javascript', body: code });
      if (url.pathname === '/') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><script type="module" src="/kernels.js"></script>' });
      return route.fulfill({ status: 404, body: '' });
    });
    await page.goto('http://localhost/', { waitUntil: 'load' });
    await page.waitForFunction(() => 'runKernels' in globalThis);
    const result = await page.evaluate(async () => {
      const run = (globalThis as unknown as { runKernels: () => Promise<{ adapter: string; navigatorGpu: boolean; cases: CaseResult[] }> }).runKernels;
      return run();
    });
    assert.deepEqual(errors, []);
    assert.equal(result.navigatorGpu, true, 'the page had no navigator.gpu');
    assert.equal(result.cases.length, 7);
    for (const c of result.cases) {
      // float32 sums against the float64 reference on these sizes (at most ~9000 terms): well under 1e-5 relative
      assert.ok(c.error <= 1e-5, `${c.name}: relative L2 error ${c.error} in the browser`);
      assert.ok(c.sameBits, `${c.name}: a second run in the browser gave other bits`);
    }
  } finally {
    await browser.close();
  }
});
