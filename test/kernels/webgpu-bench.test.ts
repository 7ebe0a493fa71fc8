/**
 * bench/gpu/run.sh, the prepared real-GPU benchmark, as a smoke run on SwiftShader
 * (--allow-software --quick) with PyTorch on the CPU: it must probe, check every kernel
 * against the reference before timing it, write result.json with both sides and their
 * ratios, and refuse a software adapter without --allow-software. No figure is asserted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SWIFTSHADER_ICD } from '../../src/kernels/webgpu/device.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const allShapes = JSON.parse(readFileSync(path.join(root, 'bench/gpu/shapes.json'), 'utf8')) as { quickGemm: number[]; conv: { name: string }[] };
/**
 * The smoke run takes three rows of the real list (a dense, a strided depthwise and a pointwise
 * convolution: each product path once); on SwiftShader every further row mostly adds shader
 * compilation time.
 */
const shapes = { ...allShapes, conv: allShapes.conv.filter((c) => /^(stem conv|K=4 reduce sep 3x3 s2|K=4 sep pointwise)/.test(c.name)) };
const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

function runScript(args: string[], env: NodeJS.ProcessEnv): ReturnType<typeof spawnSync> {
  return spawnSync('bash', ['bench/gpu/run.sh', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
}

describe('bench/gpu/run.sh', () => {
  it('runs end to end on SwiftShader with --allow-software --quick and writes result.json', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'pcdarts-gpu-bench-'));
    try {
      const env = { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD };
      const shapesFile = path.join(out, 'shapes.json');
      writeFileSync(shapesFile, JSON.stringify(shapes));
      assert.equal(shapes.conv.length, 3);
      const run = runScript(['--allow-software', '--quick', '--out', out, '--shapes', shapesFile], env);
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
      const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
      assert.equal(result.smoke, true);
      assert.match(result.probe, /== host:/);
      assert.equal(result.webgpu.adapter.software, true);
      assert.equal(result.webgpu.gemm.length, shapes.quickGemm.length);
      assert.equal(result.webgpu.conv.length, shapes.conv.length);
      for (const row of result.webgpu.conv) {
        for (const pass of ['forward', 'gradInput', 'gradWeight']) {
          assert.ok(row[pass].ms > 0 && Number.isFinite(row[pass].ms), `${row.name} ${pass}`);
          assert.ok(row.checkError[pass] <= 1e-4, `${row.name} ${pass} was checked against the reference`);
        }
      }
      assert.ok(result.webgpu.dispatch.usPerDispatch > 0);
      assert.match(result.search.todo, /phase 2/);
      if (torch) {
        assert.equal(result.pytorch.device, 'cpu');
        assert.equal(result.comparisons.length, 1 + shapes.quickGemm.length + 3 * shapes.conv.length);
        for (const c of result.comparisons) assert.ok(c.timeRatio > 0 && Number.isFinite(c.timeRatio), c.what);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('stops with exit 3 on a software adapter without --allow-software', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'pcdarts-gpu-bench-'));
    try {
      const run = runScript(['--quick', '--out', out], { VK_ICD_FILENAMES: SWIFTSHADER_ICD });
      assert.equal(run.status, 3, `${run.stdout}\n${run.stderr}`);
      assert.match(String(run.stderr), /no discrete GPU/);
      assert.equal(existsSync(path.join(out, 'result.json')), false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('rejects an unknown option with exit 2', () => {
    const run = runScript(['--bogus'], {});
    assert.equal(run.status, 2);
    assert.match(String(run.stderr), /unknown option '--bogus'/);
  });
});
