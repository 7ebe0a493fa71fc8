/**
 * The whole WGSL kernel suite (webgpu.test.ts) a second time, on another driver and feature
 * level: Mesa's llvmpipe through Dawn's OpenGL ES backend in compatibility mode, with other
 * limits (16 storage buffers per stage, so the chunked kernels take their one-dispatch path).
 * It found a real difference once: llvmpipe let invocations read a workgroup value before a
 * tree sum finished (see channelSum in src/kernels/webgpu/wgsl/reduce.ts). It runs in a child
 * test process because the adapter is chosen when that file's backend is created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('the WGSL kernel suite passes on llvmpipe (OpenGL ES, compatibility mode)', { timeout: 600_000 }, () => {
  const suite = fileURLToPath(new URL('./webgpu.test.js', import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env, PCDARTS_WEBGPU_TEST_ADAPTER: 'llvmpipe', EGL_PLATFORM: 'surfaceless' };
  delete env.NODE_TEST_CONTEXT; // a top-level run of its own, reporting on stdout
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', suite], { encoding: 'utf8', env });
  const failures = run.stdout.split('\n').filter((line) => /not ok|error:/.test(line)).slice(0, 20).join('\n');
  assert.equal(run.status, 0, `on llvmpipe:\n${failures}\n${run.stderr.slice(-2000)}`);
  assert.match(run.stdout, /^# pass [1-9][0-9]*$/m);
  assert.match(run.stdout, /^# fail 0$/m);
});
